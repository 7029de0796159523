// Reading a date's raw files back from the object store, with errors that name the file.

import { z } from 'zod';
import { BadInputError, ProcessingError } from '../errors.js';
import { rawKey } from '../phase1/scrapers.js';
import { RAW_SOURCES, type RawSourceName } from '../pipeline/definition.js';
import type { ProcessorContext } from '../pipeline/processor.js';
import { resultSetRecords } from '../ports/source.js';

const StatsResponseShape = z.object({
  resultSets: z.array(
    z.object({
      name: z.string(),
      headers: z.array(z.string()),
      rowSet: z.array(z.array(z.union([z.string(), z.number(), z.null()]))),
    }),
  ),
});

export interface RawFile {
  readonly location: string;
  readonly body: unknown;
}

export async function readRawFile(ctx: ProcessorContext, source: RawSourceName): Promise<RawFile> {
  const key = rawKey(source, ctx.date);
  const location = ctx.objects.locate(key);
  const text = await ctx.objects.get(key);
  if (text === undefined) {
    throw new ProcessingError(
      `${location} is missing: Phase 1 has not written ${RAW_SOURCES[source].prefix} for ${ctx.date}; run backfill process --phase 1 --date ${ctx.date}`,
    );
  }
  try {
    return { location, body: JSON.parse(text) };
  } catch (err) {
    throw new BadInputError(`${location}: not valid JSON: ${(err as Error).message}`, { where: location });
  }
}

/**
 * A game-log file's records, keyed by header; rows whose length disagrees with the headers are bad input.
 * Four processors of a date read its team log: in a batch they share one read and parse (the records are
 * read-only to them), and a bad file fails each of them with the same error, as separate reads would.
 */
export function readGameLogRecords(
  ctx: ProcessorContext,
  source: 'teamGameLogs' | 'playerGameLogs',
): Promise<{ location: string; records: readonly Record<string, unknown>[] }> {
  const load = () => parseGameLogRecords(ctx, source);
  return ctx.pending ? ctx.pending.shared(`phase2 records ${source} ${ctx.date}`, load) : load();
}

async function parseGameLogRecords(
  ctx: ProcessorContext,
  source: 'teamGameLogs' | 'playerGameLogs',
): Promise<{ location: string; records: readonly Record<string, unknown>[] }> {
  const { location, body } = await readRawFile(ctx, source);
  const parsed = StatsResponseShape.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadInputError(
      `${location}: not an NBA.com stats response: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
      { where: location },
    );
  }
  const records: Record<string, unknown>[] = [];
  for (const set of parsed.data.resultSets) {
    set.rowSet.forEach((row, i) => {
      if (row.length !== set.headers.length) {
        throw new BadInputError(
          `${location}: result set ${set.name} row ${i + 1} has ${row.length} values for ${set.headers.length} headers`,
          { where: location },
        );
      }
    });
    records.push(...resultSetRecords(set));
  }
  return { location, records };
}
