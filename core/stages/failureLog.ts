// The failure log of a Stage 1 job: one entry per failed date, the same in the local runtime's file and in
// the controller's report ConfigMap, and what `backfill retry --from-log` reads back.

import { z } from 'zod';
import { type IsoDate, isIsoDate } from '../dates.js';
import { BadInputError } from '../errors.js';
import { readJsonFile } from '../files.js';
import { inRange, SEASONS, seasonRange } from '../pipeline/seasons.js';

/** One failed date of a job. */
export interface FailureLogEntry {
  readonly date: IsoDate;
  readonly index: number;
  readonly processor: string | null;
  readonly error: string | null;
  readonly attempts: number;
  /** Exit code of each attempt, oldest first; null for a disrupted attempt. */
  readonly exitCodes: readonly (number | null)[];
  readonly reason: string;
  readonly logs: string;
}

/** The file as `retry --from-log` reads it: what it needs of each entry, the rest passed through. */
export const FailureLogSchema = z.object({
  jobName: z.string(),
  season: z.string(),
  completedIndexes: z.string(),
  failedIndexes: z.string(),
  failed: z.array(
    z
      .object({
        date: z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD'),
        index: z.number().int(),
        processor: z.string().nullable(),
        error: z.string().nullable(),
        attempts: z.number().int(),
        reason: z.string(),
        logs: z.string(),
      })
      .passthrough(),
  ),
});
export type FailureLog = z.infer<typeof FailureLogSchema>;

/** A failure log file, its dates checked against its season. */
export function readFailureLog(path: string): FailureLog {
  const log = readJsonFile(path, 'failure log', FailureLogSchema);
  // A date outside its season would run a job for it and leave a failure row for that date forever.
  const season = SEASONS.find((s) => s.label === log.season);
  if (!season) {
    throw new BadInputError(
      `failure log ${path}: season "${log.season}" is not one of ${SEASONS.map((s) => s.label).join(', ')}`,
      { where: path },
    );
  }
  const range = seasonRange(season);
  const outside = log.failed.filter((f) => !inRange(f.date, range)).map((f) => f.date);
  if (outside.length > 0) {
    throw new BadInputError(
      `failure log ${path}: ${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} outside season ${season.label} (${range.start}..${range.end})`,
      { where: path },
    );
  }
  return log;
}
