// One index of the Stage 1 Indexed Job: resolve its game date from JOB_COMPLETION_INDEX and the job plan,
// run Phase 1-2 for it, and answer with the exit code the pod failure policy reads. The phase2-date pod's
// program, beside its main.ts: it picks adapters from configuration, which is an entrypoint's job, not core's.

import {
  awaitGoogleCredentials,
  type CredentialWait,
  googleServicesIn,
} from '../../core/adapters/google/credentials.js';
import { type Adapters, openAdapters } from '../../core/adapters/index.js';
import { loadConfig } from '../../core/config.js';
import { runPhases1And2 } from '../../core/dateRun.js';
import { BadInputError, oneLine } from '../../core/errors.js';
import { readJobPlan } from '../../core/jobs/jobPlan.js';
import {
  EXIT_INDEX_OK,
  EXIT_INDEX_PERMANENT,
  EXIT_INDEX_RETRIABLE,
  FORCE_ENV,
  INDEX_FAILURE_COUNT_ENV,
  JOB_PLAN_ENV,
  type JobPlan,
  STAGE1_RETRIES_PER_DATE,
} from '../../core/jobs/spec.js';
import type { Logger } from '../../core/log.js';

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

/** BACKFILL_FORCE: `true` or `false` (or unset, false); anything else is a typo, refused. */
export function forceOf(env: Readonly<Record<string, string | undefined>>): boolean {
  const raw = env[FORCE_ENV];
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new BadInputError(`${FORCE_ENV}=${raw}: must be true or false`, { where: FORCE_ENV });
}

/** The fields of every line a Stage 1 pod logs (before its date is known: the raw index only). */
export function podLogFields(a: IndexAssignment | undefined, env: Readonly<Record<string, string | undefined>>) {
  return a
    ? { season: a.plan.season, stage: 'stage1', job: a.plan.jobName, index: a.index, date: a.date, attempt: a.attempt }
    : { stage: 'stage1', index: env.JOB_COMPLETION_INDEX };
}

/** What the date's line says of a failure: a retry comes, or none does, and why. */
function failureVerdict(attempt: number, permanent: boolean): { retryLimitReached: boolean; msg: string } {
  const attempts = STAGE1_RETRIES_PER_DATE + 1;
  if (permanent)
    return {
      retryLimitReached: false,
      msg: 'date failed on bad input: no retry (the pod failure policy fails the index)',
    };
  if (attempt >= attempts)
    return {
      retryLimitReached: true,
      msg: `date failed: retry limit reached (attempt ${attempt} of ${attempts}, backoffLimitPerIndex ${STAGE1_RETRIES_PER_DATE}); the date is recorded as failed`,
    };
  return { retryLimitReached: false, msg: `date failed: retriable (attempt ${attempt} of ${attempts}), it runs again` };
}

/**
 * Runs one index and returns its exit code: 0 done; 2 when every failure is bad input (a retry cannot help,
 * so the pod failure policy fails the index at once); 1 otherwise, which uses up the index's one retry.
 */
export async function runPhase2Index(
  env: Readonly<Record<string, string | undefined>>,
  logFor: (a: IndexAssignment | undefined, level: string) => Logger,
  now: () => number = () => performance.now(),
  credentialWait?: CredentialWait,
): Promise<number> {
  let assignment: IndexAssignment | undefined;
  let adapters: Adapters | undefined;
  let log: Logger | undefined;
  const started = now();
  const durationMs = () => Math.round(now() - started);
  try {
    assignment = resolveAssignment(env);
    const force = forceOf(env);
    const config = loadConfig({ env, file: undefined });
    log = logFor(assignment, config.logLevel);
    await awaitGoogleCredentials(googleServicesIn(config, env), log, credentialWait);
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
      force,
    });
    const rows = Object.values(result.rows).reduce((a, b) => a + b, 0);
    if (result.ok) {
      log.info(
        {
          durationMs: durationMs(),
          rows,
          rowsByProcessor: result.rows,
          outcome: 'succeeded',
          ...(result.unchanged ? { unchanged: true } : {}),
        },
        result.unchanged ? 'date unchanged since its last load: scraped, not written again' : 'date loaded',
      );
      return EXIT_INDEX_OK;
    }
    // Each processor's error was logged once, with its stack, where it failed (core/runner.ts): here only what
    // the attempt's outcome means.
    const permanent = result.failures.every((f) => f.error instanceof BadInputError);
    const verdict = failureVerdict(assignment.attempt, permanent);
    log.error(
      {
        durationMs: durationMs(),
        // What the processors that succeeded did (nothing of Phase 2 commits: the date commits whole or not).
        rows,
        rowsByProcessor: result.rows,
        outcome: 'failed',
        permanent,
        retryLimitReached: verdict.retryLimitReached,
        failures: result.failures.map((f) => ({ processor: f.processor, error: oneLine(f.error.message, 300) })),
      },
      verdict.msg,
    );
    return permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE;
  } catch (err) {
    // Nothing logged this error yet: its stack goes on the date's line.
    const permanent = err instanceof BadInputError;
    const verdict = assignment ? failureVerdict(assignment.attempt, permanent) : null;
    (log ?? logFor(assignment, 'info')).error(
      {
        durationMs: durationMs(),
        rows: 0,
        outcome: 'failed',
        permanent,
        retryLimitReached: verdict?.retryLimitReached ?? false,
        err,
      },
      `index could not run: ${verdict?.msg ?? (permanent ? 'no retry' : 'retriable')}`,
    );
    return permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE;
  } finally {
    await adapters?.close();
  }
}
