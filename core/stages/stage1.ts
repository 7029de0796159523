// Stage 1: Phase 1-2 for every date of a plan as one Indexed Job, then the failure log (a file and a table).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, podSettings } from '../config.js';
import { type IsoDate, sortableTime } from '../dates.js';
import { messageOf } from '../errors.js';
import { FileWriteError, writeFileAtomic } from '../files.js';
import { parseIndexes } from '../jobs/indexes.js';
import { buildStage1Job, FORCE_ENV, type IndexedJob, type JobPlan } from '../jobs/spec.js';
import { PROCESSORS } from '../pipeline/definition.js';
import type { IndexEvent, IndexedJobStatus, JobRuntime } from '../ports/jobRuntime.js';
import type { Warehouse } from '../ports/warehouse.js';
import { latestRuns } from '../runs/history.js';
import { backfillFailureLog } from '../schema/raw.js';
import { qualifiedName, type Row } from '../schema/table.js';
import type { FailureLogEntry } from './failureLog.js';

export interface Stage1Result {
  readonly jobName: string;
  readonly season: string;
  readonly dates: readonly IsoDate[];
  readonly status: IndexedJobStatus;
  readonly failed: readonly FailureLogEntry[];
  /** Dates whose raw files were those of their last successful load: Phase 2 was not written again. */
  readonly unchanged: readonly IsoDate[];
  /** The failure log file (written whether or not anything failed). */
  readonly failureLogFile: string;
  /**
   * Why the failure log file could not be written (`could not write the failure log <path>: <reason>`), or
   * null. The failures are in nba_reference.backfill_failure_log all the same.
   */
  readonly failureLogError: string | null;
  readonly wallSeconds: number;
}

export interface Stage1Options {
  readonly season: string;
  readonly dates: readonly IsoDate[];
  readonly parallelism: number;
  /** `stage1`, or `retry` for a job of failed dates. */
  readonly purpose?: string;
  /**
   * The run this job belongs to (core/jobs/runNames.ts): the job is named after it, so its folder, logs and
   * failure log are its own. Without it, the name is the plan's hash, shared by every run of the same dates.
   */
  readonly runId?: string;
  /** Write Phase 2 of every date, even of those whose raw files did not change (BACKFILL_FORCE in the pods). */
  readonly force?: boolean;
  readonly config: Config;
  readonly runtime: JobRuntime;
  readonly warehouse: Warehouse;
  /** Where the runtime keeps the job's files (its plan, logs). */
  readonly jobDir: (jobName: string) => string;
  readonly onIndex?: (event: IndexEvent, date: IsoDate) => void;
  /** Stops the job between dates; its status as it then is gets written as usual. */
  readonly signal?: AbortSignal;
}

export function stage1Job(
  options: Pick<Stage1Options, 'season' | 'dates' | 'parallelism' | 'purpose' | 'runId' | 'config' | 'force'>,
): IndexedJob {
  return buildStage1Job({
    season: options.season,
    dates: options.dates,
    parallelism: options.parallelism,
    purpose: options.purpose ?? 'stage1',
    ...(options.runId === undefined ? {} : { runId: options.runId }),
    env: { ...podSettings(options.config), ...(options.force ? { [FORCE_ENV]: 'true' } : {}) },
  });
}

/** The dates of a job whose Phase 2 it recorded as unchanged (core/dateRun.ts), from run history. */
export async function unchangedDates(warehouse: Warehouse, jobName: string): Promise<IsoDate[]> {
  const rows = await warehouse.query(
    `SELECT DISTINCT CAST(data_date AS STRING) AS d FROM nba_reference.processor_run_history
      WHERE job_name = @job AND phase = 2 AND processing_decision = 'unchanged' ORDER BY d`,
    { job: jobName },
  );
  return rows.map((r) => String(r.d));
}

export async function runStage1(options: Stage1Options): Promise<Stage1Result> {
  const started = performance.now();
  const job = stage1Job(options);
  const jobName = job.metadata.name;
  const dir = options.jobDir(jobName);
  mkdirSync(dir, { recursive: true });
  const plan: JobPlan = {
    jobName,
    season: options.season,
    dates: options.dates,
    ...(options.runId === undefined ? {} : { runId: options.runId }),
  };
  writeFileSync(join(dir, 'job-plan.json'), `${JSON.stringify(plan, null, 2)}\n`);
  const status = await options.runtime.run(job, (e) => options.onIndex?.(e, options.dates[e.index] as IsoDate), {
    signal: options.signal,
  });
  const failed = await describeFailures(options.warehouse, jobName, status, options.dates);
  const failureLogFile = join(options.config.logDir, 'failures', `${jobName}.json`);
  const failureLogError = await recordFailures(options.warehouse, {
    jobName,
    season: options.season,
    failed,
    file: failureLogFile,
    status,
  });
  return {
    jobName,
    season: options.season,
    dates: options.dates,
    status,
    failed,
    unchanged: await unchangedDates(options.warehouse, jobName),
    failureLogFile,
    failureLogError,
    wallSeconds: (performance.now() - started) / 1000,
  };
}

/**
 * The failed indexes as dates, each with the processor and error of its failed run in this job's last attempt
 * of the index (run history carries the job name, index and attempt of every pod's runs). A run of another
 * job or an older attempt is never taken: it may be an old failure of another processor, since fixed. When the
 * last attempt recorded no failed run (its pod died first), processor and error are null.
 */
export async function describeFailures(
  warehouse: Warehouse,
  jobName: string,
  status: IndexedJobStatus,
  dates: readonly IsoDate[],
): Promise<FailureLogEntry[]> {
  const failedIndexes = parseIndexes(status.failedIndexes);
  if (failedIndexes.length === 0) return [];
  const runs = await warehouse.query(
    `SELECT job_index, CAST(data_date AS STRING) AS data_date, attempt, status, processor_name, error_message, phase,
            CAST(finished_at AS STRING) AS finished_at, run_id
       FROM nba_reference.processor_run_history
      WHERE job_name = @job`,
    { job: jobName },
  );
  return failedIndexes.map((index) => {
    const date = dates[index] as IsoDate;
    const run = failedRunOf(runs, index, date);
    const record = status.indexes.find((r) => r.index === index);
    return {
      date,
      index,
      processor: run ? String(run.processor_name) : null,
      error: run ? ((run.error_message as string | null) ?? null) : null,
      attempts: record?.exitCodes.length ?? 0,
      exitCodes: record?.exitCodes ?? [],
      reason: record?.reason ?? 'Failed',
      logs: record?.logs ?? '',
    };
  });
}

/**
 * The run that failed an index: among the failed runs of the index's last attempt (the highest attempt with
 * any run, so a pod that died after some successes is not blamed on the attempt before it), a failure before
 * a block (a blocked run only follows from another), then the first to finish (the runs after it may have
 * failed because of it), then phase and name so that the answer never depends on row order.
 */
function failedRunOf(runs: readonly Row[], index: number, date: string): Row | undefined {
  const mine = runs.filter((r) => Number(r.job_index) === index && r.data_date === date);
  const last = Math.max(...mine.map((r) => Number(r.attempt)));
  const rank = (r: Row) => [
    r.status === 'failed' ? 0 : 1,
    sortableTime(r.finished_at),
    Number(r.phase),
    String(r.processor_name),
    String(r.run_id),
  ];
  return mine
    .filter((r) => Number(r.attempt) === last && r.status !== 'success')
    .sort((a, b) => {
      const [x, y] = [rank(a), rank(b)];
      for (let i = 0; i < x.length; i++)
        if (x[i] !== y[i]) return (x[i] as string | number) < (y[i] as string | number) ? -1 : 1;
      return 0;
    })[0];
}

/**
 * Writes the failure log file and appends the failed dates to nba_reference.backfill_failure_log. The file
 * is a convenience (`retry --from-log`); the table is the record. So a file that cannot be written (a full
 * disk) does not stop the rows: the reason comes back as a value, and the caller says so.
 */
async function recordFailures(
  warehouse: Warehouse,
  run: { jobName: string; season: string; failed: readonly FailureLogEntry[]; file: string; status: IndexedJobStatus },
): Promise<string | null> {
  const log = {
    jobName: run.jobName,
    season: run.season,
    completedIndexes: run.status.completedIndexes,
    failedIndexes: run.status.failedIndexes,
    failed: run.failed,
  };
  let fileError: string | null = null;
  try {
    writeFileAtomic(run.file, `${JSON.stringify(log, null, 2)}\n`);
  } catch (err) {
    fileError = `could not write the failure log ${run.file}: ${err instanceof FileWriteError ? err.reason : messageOf(err)}`;
  }
  await appendFailureLog(warehouse, failureLogRows(run.jobName, run.season, run.failed, run.status.completionTime));
  return fileError;
}

/**
 * Appends a job's failed dates to nba_reference.backfill_failure_log once: rows whose (job, index) the table
 * already holds are left out, so a report written again (the controller restarted between this append and the
 * ConfigMap that marks its report done, or a local run reported twice) adds nothing. The job's writer is one
 * process (the controller holds its lease; the local runtime runs one job), so reading first is enough.
 */
export async function appendFailureLog(warehouse: Warehouse, rows: readonly Row[]): Promise<number> {
  if (rows.length === 0) return 0;
  const jobs = [...new Set(rows.map((r) => String(r.job_name)))];
  const dates = rows.map((r) => String(r.data_date)).sort();
  const held = new Set<string>();
  for (const job of jobs) {
    const found = await warehouse.query(
      `SELECT job_index FROM ${qualifiedName(backfillFailureLog)} WHERE data_date BETWEEN @first AND @last AND job_name = @job`,
      { first: dates[0] as string, last: dates.at(-1) as string, job },
    );
    for (const f of found) held.add(`${job}#${Number(f.job_index)}`);
  }
  const fresh = rows.filter((r) => !held.has(`${String(r.job_name)}#${Number(r.job_index)}`));
  if (fresh.length > 0) await warehouse.append(backfillFailureLog, fresh);
  return fresh.length;
}

/** A job's failed dates as rows of nba_reference.backfill_failure_log (the local runtime's and the controller's). */
export function failureLogRows(
  jobName: string,
  season: string,
  failed: readonly FailureLogEntry[],
  recordedAt: string,
): Row[] {
  return failed.map((f) => ({
    job_name: jobName,
    season,
    data_date: f.date,
    job_index: f.index,
    processor_name: f.processor,
    error_message: f.error,
    attempts: f.attempts,
    exit_codes: f.exitCodes.map((c) => (c === null ? 'disrupted' : String(c))).join(','),
    reason: f.reason,
    log_location: f.logs,
    recorded_at: recordedAt,
  }));
}

const PHASE12_PROCESSORS = PROCESSORS.filter((p) => p.phase === 1 || p.phase === 2).length;

export interface OpenFailure {
  readonly date: IsoDate;
  readonly processor: string | null;
  readonly error: string | null;
  readonly logs: string | null;
  readonly jobName: string | null;
}

/**
 * The season's dates that are failing now: a Phase 1-2 processor's latest run failed, or a job recorded the
 * date as failed and no later run has fixed every processor. Log locations come from the failure log.
 */
export async function openFailures(
  warehouse: Warehouse,
  range: { start: IsoDate; end: IsoDate },
): Promise<OpenFailure[]> {
  const runs = await latestRuns(warehouse, range, [1, 2]);
  const logged = await warehouse.query(
    `SELECT CAST(data_date AS STRING) AS d, job_name, log_location, processor_name, error_message
       FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY data_date ORDER BY recorded_at DESC, job_name DESC) AS rn
               FROM nba_reference.backfill_failure_log WHERE data_date BETWEEN @start AND @end) AS f
      WHERE rn = 1`,
    range,
  );
  const byDate = new Map(logged.map((r) => [String(r.d), r]));
  const dates = new Set<string>([
    ...runs.filter((r) => r.status !== 'success').map((r) => r.dataDate),
    ...byDate.keys(),
  ]);
  const out: OpenFailure[] = [];
  for (const date of [...dates].sort()) {
    const failedRun =
      runs.find((r) => r.dataDate === date && r.status === 'failed') ??
      runs.find((r) => r.dataDate === date && r.status !== 'success');
    const hasRuns = runs.some((r) => r.dataDate === date);
    const log = byDate.get(date);
    // Logged but every latest run now succeeds: fixed by a retry.
    if (!failedRun && hasRuns && log && runs.filter((r) => r.dataDate === date).length >= PHASE12_PROCESSORS) continue;
    out.push({
      date,
      processor: failedRun?.processorName ?? (log?.processor_name as string | null) ?? null,
      error: failedRun?.errorMessage ?? (log?.error_message as string | null) ?? null,
      logs: (log?.log_location as string | null) ?? null,
      jobName: (log?.job_name as string | null) ?? null,
    });
  }
  return out;
}
