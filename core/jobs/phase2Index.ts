// One index of the Stage 1 Indexed Job: resolve its game date from JOB_COMPLETION_INDEX and the job plan,
// run Phase 1-2 for it, and answer with the exit code the pod failure policy reads.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { type Adapters, openAdapters } from '../adapters/index.js';
import { loadConfig } from '../config.js';
import { runPhases1And2 } from '../dateRun.js';
import { isIsoDate } from '../dates.js';
import { BadInputError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import {
  EXIT_INDEX_OK,
  EXIT_INDEX_PERMANENT,
  EXIT_INDEX_RETRIABLE,
  INDEX_FAILURE_COUNT_ENV,
  JOB_PLAN_ENV,
  type JobPlan,
} from './spec.js';

export const JobPlanSchema = z.object({
  jobName: z.string().min(1),
  season: z.string(),
  dates: z.array(z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD')).min(1),
  runId: z.string().min(1).optional(),
});

export function readJobPlan(path: string | undefined): JobPlan {
  if (!path) throw new BadInputError(`${JOB_PLAN_ENV} is not set: the pod cannot know its dates`);
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BadInputError(`job plan ${path}: ${messageOf(err)}`, { where: path });
  }
  const parsed = JobPlanSchema.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new BadInputError(`job plan ${path}: ${i?.path.join('.')}: ${i?.message}`, { where: path });
  }
  return parsed.data;
}

export interface IndexAssignment {
  readonly index: number;
  readonly date: string;
  readonly attempt: number;
  readonly plan: JobPlan;
}

/** Reads the index, its date and its attempt from the pod's environment. */
export function resolveAssignment(env: Readonly<Record<string, string | undefined>>): IndexAssignment {
  const raw = env.JOB_COMPLETION_INDEX;
  const index = Number(raw);
  if (raw === undefined || raw === '' || !Number.isInteger(index) || index < 0) {
    throw new BadInputError(`JOB_COMPLETION_INDEX "${raw ?? ''}" is not an index (a whole number >= 0)`);
  }
  const plan = readJobPlan(env[JOB_PLAN_ENV]);
  const date = plan.dates[index];
  if (date === undefined) {
    throw new BadInputError(`index ${index} is outside job ${plan.jobName}'s ${plan.dates.length} dates`);
  }
  const failures = Number(env[INDEX_FAILURE_COUNT_ENV] || '0');
  return { index, date, plan, attempt: Number.isInteger(failures) && failures >= 0 ? failures + 1 : 1 };
}

/**
 * Runs one index and returns its exit code: 0 done; 2 when every failure is bad input (a retry cannot help,
 * so the pod failure policy fails the index at once); 1 otherwise, which uses up the index's one retry.
 */
export async function runPhase2Index(
  env: Readonly<Record<string, string | undefined>>,
  logFor: (a: IndexAssignment | undefined, level: string) => Logger,
): Promise<number> {
  let assignment: IndexAssignment | undefined;
  let adapters: Adapters | undefined;
  let log: Logger | undefined;
  try {
    assignment = resolveAssignment(env);
    const config = loadConfig({ env, file: undefined });
    log = logFor(assignment, config.logLevel);
    adapters = await openAdapters(config, { attempt: assignment.attempt });
    log.info({ source: adapters.source.description }, 'index started');
    const result = await runPhases1And2(adapters, log, assignment.date, {
      trigger: {
        command: 'jobs/phase2-date',
        stage: 'stage1',
        jobName: assignment.plan.jobName,
        jobIndex: assignment.index,
      },
      attempt: assignment.attempt,
      skipDownstreamTrigger: true,
    });
    if (result.ok) {
      log.info({ rows: result.rows }, 'index succeeded');
      return EXIT_INDEX_OK;
    }
    const permanent = result.failures.every((f) => f.error instanceof BadInputError);
    for (const f of result.failures) log.error({ processor: f.processor, err: f.error }, 'processor failed');
    log.error({ permanent }, permanent ? 'index failed on bad input: no retry' : 'index failed: retriable');
    return permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE;
  } catch (err) {
    (log ?? logFor(assignment, 'info')).error({ err }, 'index could not run');
    return err instanceof BadInputError ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE;
  } finally {
    await adapters?.close();
  }
}
