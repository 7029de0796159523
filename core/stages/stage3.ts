// Stage 3: Phase 3 then Phase 4, in batches of dates with date-by-date semantics, in one process, strict mode,
// stopping at the first error and resuming after a fix at the first date that is not complete. Refuses to start
// unless the gate passes. Asked to stop, it lets the batch in progress commit (or not at all) and starts no other.

import type { Logger } from 'pino';
import { CheckedWarehouse, checkDataOf } from '../checks/data.js';
import { DependencyError } from '../checks/defensive.js';
import { type DateRunResult, runInBatch, stage3Processors } from '../dateRun.js';
import type { IsoDate } from '../dates.js';
import { oneLine } from '../errors.js';
import type { ProcessorErrorFault } from '../faults.js';
import { writeFileAtomic } from '../files.js';
import { type GateResult, runGate } from '../gate.js';
import { PROCESSORS } from '../pipeline/definition.js';
import type { PipelinePorts } from '../pipeline/processor.js';
import type { PlanDate } from '../plan.js';
import { TOPIC_PHASE4_COMPLETE } from '../ports/events.js';
import { type LatestRun, latestRuns } from '../runs/history.js';
import { staleDates } from '../runs/versions.js';
import { Phase4WaitError, Phase4Wakeups, runPhase3WithRemotePhase4 } from './phase4Remote.js';

/**
 * Stage 3 checkpoints the warehouse after this many dates, and at its end. A checkpoint rewrites each table's
 * last, growing row group, so the checkpoints of a season cost in proportion to how many there are (measured
 * on 2021-22, batched: 6 checkpoints at 30 dates 0.82-0.98 s, 2 at 90 dates 0.34-0.39 s, the final one alone
 * 0.31-0.33 s). 90 dates keeps at most about half a season's work in the WAL at any time.
 */
export const STAGE3_CHECKPOINT_DATES = 90;

/**
 * Dates a Stage 3 batch computes and commits at once by default (measured with `npm run bench:stage3`; see
 * README's benchmarks). 1 is date by date.
 */
export const STAGE3_BATCH_SIZE = 32;

const STAGE3_PROCESSORS = PROCESSORS.filter((p) => p.phase === 3 || p.phase === 4).map((p) => p.name);

/** What the Stage 3 pod leaves in its termination message: short, and readable by the controller. */
export interface Stage3Summary {
  /** `interrupted`: asked to stop (SIGINT, SIGTERM); completedThrough says where the next run resumes. */
  readonly status: 'succeeded' | 'failed' | 'gate_failed' | 'interrupted';
  readonly season: string;
  readonly dates: number;
  readonly processed: number;
  readonly resumedFrom: IsoDate | null;
  readonly completedThrough: IsoDate | null;
  readonly failedDate?: IsoDate;
  readonly processor?: string;
  readonly check?: string;
  readonly error?: string;
  /** Dates of the selection complete when it ended (absent when the gate refused it). */
  readonly datesComplete?: number;
  /** Whole milliseconds each date this run completed took, in order (left out if the message would not fit). */
  readonly msPerDate?: readonly number[];
}

export interface Stage3Options {
  readonly season: string;
  readonly dates: readonly PlanDate[];
  /** Where the summary goes: the pod's terminationMessagePath in the cluster. */
  readonly summaryFile?: string;
  readonly strictMode?: boolean;
  readonly onDate?: (date: IsoDate, index: number, total: number, ms: number) => void | Promise<void>;
  /** Told the gate's result before any date runs (awaited). */
  readonly onGate?: (gate: GateResult) => void | Promise<void>;
  /**
   * `inline` (default): this process runs Phase 4. `pubsub`: Phase 3's completions are published and
   * Stage 3 waits until run history shows Phase 4 done for the date (jobs/phase4-subscriber runs it).
   */
  readonly phase4Mode?: 'inline' | 'pubsub';
  /** pubsub mode: how long to wait for one date's Phase 4. @default 600000 */
  readonly phase4TimeoutMs?: number;
  /** Aborted to stop before the next date; the summary then says `interrupted`. */
  readonly signal?: AbortSignal;
  /**
   * The logger of one date's runs (`index`: the date's place in `dates`), closed after the date: the local
   * run gives each date its own log file. @default a child of `log` with the date
   */
  readonly dateLog?: (date: IsoDate, index: number) => { readonly log: Logger; close(): void };
  /** The Job running it (the Stage 3 pod's), for its per-date log lines. @default null */
  readonly job?: string | null;
  /** Milliseconds for durations. @default performance.now */
  readonly now?: () => number;
  /**
   * The most dates computed and committed at once; each still succeeds, fails or is blocked on its own, as
   * date by date (`1`). Batches grow from one date, doubling up to this size (1, 2, 4, ...), so that the
   * first dates report soon and a signal or a stop early in the run costs little. pubsub mode runs date by
   * date. @default STAGE3_BATCH_SIZE
   */
  readonly batchSize?: number;
  /** Injected processor errors (a fault file's processorErrors). */
  readonly processorErrors?: readonly ProcessorErrorFault[];
  /** Checkpoints after every this many dates (and at the end). @default STAGE3_CHECKPOINT_DATES */
  readonly checkpointEvery?: number;
}

export interface Stage3Result {
  readonly summary: Stage3Summary;
  readonly gate: GateResult;
  /** Milliseconds each processed date took, in order. */
  readonly perDateMs: readonly number[];
}

/** The dates whose every Phase 3-4 processor's latest run succeeded. */
export async function completedDates(ports: PipelinePorts, dates: readonly IsoDate[]): Promise<Set<IsoDate>> {
  if (dates.length === 0) return new Set();
  const sorted = [...dates].sort();
  const runs = await latestRuns(
    ports.warehouse,
    { start: sorted[0] as IsoDate, end: sorted.at(-1) as IsoDate },
    [3, 4],
  );
  return completeAmong(runs, dates);
}

/** The dates whose every Phase 3-4 processor's latest run (among `runs`, the latest runs) succeeded. */
export function completeAmong(runs: readonly LatestRun[], dates: readonly IsoDate[]): Set<IsoDate> {
  const ok = new Map<IsoDate, number>();
  for (const r of runs)
    if (r.status === 'success' && STAGE3_PROCESSORS.includes(r.processorName))
      ok.set(r.dataDate, (ok.get(r.dataDate) ?? 0) + 1);
  return new Set(dates.filter((d) => ok.get(d) === STAGE3_PROCESSORS.length));
}

/**
 * Reads the dates' runs from run history, after their commit, and returns the dates it shows complete. The
 * next date's runs (its Phase 1-2 runs, which its checks read next) come back in the same query.
 */
async function confirmedComplete(
  warehouse: PipelinePorts['warehouse'],
  dates: readonly IsoDate[],
  next: IsoDate | undefined,
): Promise<Set<IsoDate>> {
  if (dates.length === 0) return new Set();
  const runs = await checkDataOf(warehouse).latestRunsOn(next ? [...dates, next] : dates);
  return completeAmong(runs, dates);
}

/** The summary as written: a termination message holds at most 4096 bytes, so the error is cut, then the durations dropped. */
export function summaryText(summary: Stage3Summary): string {
  const LIMIT = 4000;
  let fitted = summary;
  let text = JSON.stringify(fitted);
  if (text.length > LIMIT && fitted.error) {
    const room = LIMIT - (text.length - fitted.error.length);
    fitted = { ...fitted, error: fitted.error.slice(0, Math.max(300, room)) };
    text = JSON.stringify(fitted);
  }
  if (text.length > LIMIT && fitted.msPerDate) {
    const { msPerDate: _dropped, ...rest } = fitted;
    text = JSON.stringify(rest);
  }
  return text;
}

function writeSummary(path: string | undefined, summary: Stage3Summary): void {
  if (!path) return;
  writeFileAtomic(path, `${summaryText(summary)}\n`);
}

export async function runStage3(ports: PipelinePorts, log: Logger, options: Stage3Options): Promise<Stage3Result> {
  const dates = options.dates.map((d) => d.date);
  const base = { season: options.season, dates: dates.length };
  const gate = await runGate(ports.warehouse, [{ season: options.season, dates: options.dates }]);
  await options.onGate?.(gate);
  if (!gate.passed) {
    const missing = [...new Set(gate.tables.flatMap((t) => t.missingDates))].sort();
    const summary: Stage3Summary = {
      ...base,
      status: 'gate_failed',
      processed: 0,
      resumedFrom: null,
      completedThrough: null,
      check: 'phase2_gate',
      error: `the Phase 2 gate fails for ${options.season}: ${missing.length} date(s) incomplete${missing.length ? ` (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''})` : ''}${gate.runProblems.length ? `, ${gate.runProblems.length} failed or missing run(s)` : ''}`,
    };
    writeSummary(options.summaryFile, summary);
    return { summary, gate, perDateMs: [] };
  }

  // Resume at the first date that is not complete or is stale (a correction changed what it read); every date
  // after it runs again (its inputs may differ).
  const done = await completedDates(ports, dates);
  const stale = new Set(staleDates(await checkDataOf(ports.warehouse).staleRuns(options.season)));
  const first = dates.findIndex((d) => !done.has(d) || stale.has(d));
  if (stale.size > 0) {
    log.info(
      { season: options.season, stale: stale.size, firstStale: [...stale][0] },
      'dates stale after a correction: Stage 3 recomputes from the first of them',
    );
  }
  const todo = first < 0 ? [] : dates.slice(first);
  const resumedFrom = first > 0 ? (dates[first] as IsoDate) : null;
  const checked =
    ports.warehouse instanceof CheckedWarehouse
      ? ports
      : { ...ports, warehouse: new CheckedWarehouse(ports.warehouse) };
  const perDateMs: number[] = [];
  const now = options.now ?? (() => performance.now());
  /** The fields of every per-date line: Stage 3 has no retry (backoffLimit 0), so each date runs once per Job. */
  const dateFields = (date: IsoDate) => ({
    season: options.season,
    stage: 'stage3',
    job: options.job ?? null,
    index: dates.indexOf(date),
    date,
    attempt: 1,
  });
  const whole = (ms: readonly number[]) => ms.map((x) => Math.round(x));
  let completedThrough: IsoDate | null =
    first < 0 ? (dates.at(-1) ?? null) : first > 0 ? (dates[first - 1] as IsoDate) : null;

  const remote = options.phase4Mode === 'pubsub';
  // Wakes the wait for a date as soon as its Phase 4 completion message arrives (polling is the fallback).
  const wakeups = remote
    ? await Phase4Wakeups.start(ports.events, `${TOPIC_PHASE4_COMPLETE}-stage3-${options.season}`)
    : undefined;
  try {
    return await runDates();
  } finally {
    await wakeups?.stop();
    // Whatever the outcome, the dates committed so far leave the WAL (see DuckDbWarehouse.checkpoint). A
    // failed checkpoint loses nothing committed and must not hide the stage's own outcome: a warning.
    await checkpoint();
  }

  /**
   * A failed checkpoint loses nothing committed (the work stays in the WAL) and must not hide the stage's own
   * outcome: a warning.
   */
  async function checkpoint(): Promise<void> {
    await ports.warehouse
      .checkpoint()
      .catch((err: unknown) => log.warn({ err }, 'checkpoint during Stage 3 failed; the work stays in the WAL'));
  }

  async function runDates(): Promise<Stage3Result> {
    const largest = remote ? 1 : Math.max(1, Math.trunc(options.batchSize ?? STAGE3_BATCH_SIZE));
    const checkpointEvery = Math.max(1, Math.trunc(options.checkpointEvery ?? STAGE3_CHECKPOINT_DATES));
    let size = 1;
    const processors = stage3Processors(options.processorErrors);
    const runOptions = {
      trigger: { command: 'backfill stage3', stage: 'stage3' },
      strictMode: options.strictMode ?? true,
      skipDownstreamTrigger: true,
    };
    for (let i = 0; i < todo.length; ) {
      if (options.signal?.aborted) {
        // Between batches: everything through completedThrough committed, nothing after it began.
        const summary: Stage3Summary = {
          ...base,
          status: 'interrupted',
          processed: i,
          resumedFrom,
          completedThrough,
          datesComplete: first + i,
          msPerDate: whole(perDateMs),
        };
        log.warn({ summary, signal: String(options.signal.reason) }, 'stage 3 interrupted');
        writeSummary(options.summaryFile, summary);
        return { summary, gate, perDateMs };
      }
      const chunk = todo.slice(i, i + size);
      const started = now();
      const dated = chunk.map(
        (date, j) => options.dateLog?.(date, first + i + j) ?? { log: log.child({ date }), close: () => {} },
      );
      const logOf = (date: IsoDate) => (dated[chunk.indexOf(date)] ?? dated[0])?.log ?? log;
      let results: DateRunResult[];
      try {
        results = remote
          ? [
              await runPhase3WithRemotePhase4(checked, logOf(chunk[0] as IsoDate), chunk[0] as IsoDate, {
                ...runOptions,
                phase4: { timeoutMs: options.phase4TimeoutMs ?? 600_000, ...(wakeups ? { wakeups } : {}) },
              }),
            ]
          : await runInBatch(checked, logOf, chunk, processors, runOptions);
      } finally {
        for (const d of dated) d.close();
      }
      // No sleeps, no time windows: a date is done when run history says every processor succeeded.
      const confirmed = await confirmedComplete(
        checked.warehouse,
        results.filter((r) => r.ok).map((r) => r.date),
        todo[i + chunk.length],
      );
      // A batch's dates share its time evenly: they were computed together.
      const each = (now() - started) / Math.max(1, results.length);
      for (const [j, result] of results.entries()) {
        const date = result.date;
        perDateMs.push(each);
        const durationMs = Math.round(each);
        const rows = Object.values(result.rows).reduce((a, b) => a + b, 0);
        if (!result.ok || !confirmed.has(date)) {
          const f = result.failures[0];
          const error = f?.error;
          // The processor's own line carries the error's stack (core/runner.ts); this one says what it means.
          log.error(
            {
              ...dateFields(date),
              durationMs,
              rows,
              outcome: 'failed',
              processor: f?.processor ?? null,
              error: oneLine(error?.message ?? 'run history does not show every Phase 3-4 processor succeeded', 500),
              retryLimitReached: true,
            },
            `date failed: retry limit reached (Stage 3 does not retry; fix the cause and run it again: it resumes at ${date})`,
          );
          const summary: Stage3Summary = {
            ...base,
            status: 'failed',
            processed: i + j,
            resumedFrom,
            completedThrough,
            failedDate: date,
            processor: f?.processor ?? 'unknown',
            check: error instanceof DependencyError || error instanceof Phase4WaitError ? error.check : 'error',
            error: oneLine(error?.message ?? 'run history does not show every Phase 3-4 processor succeeded', 2000),
            datesComplete: first + i + j,
            msPerDate: whole(perDateMs.slice(0, -1)),
          };
          log.error({ summary }, 'stage 3 stopped');
          writeSummary(options.summaryFile, summary);
          return { summary, gate, perDateMs };
        }
        completedThrough = date;
        log.info({ ...dateFields(date), durationMs, rows, outcome: 'succeeded' }, 'date complete');
        // A long Stage 3 does not leave a season's work in the WAL until its end (a damaged WAL can lose it).
        if ((i + j + 1) % checkpointEvery === 0) await checkpoint();
        await options.onDate?.(date, first + i + j, dates.length, each);
      }
      if (results.length === 0) throw new Error(`Stage 3 ran no date of the batch from ${chunk[0]}`);
      i += results.length;
      size = Math.min(largest, 2 * size);
    }
    const summary: Stage3Summary = {
      ...base,
      status: 'succeeded',
      processed: todo.length,
      resumedFrom,
      completedThrough,
      datesComplete: dates.length,
      msPerDate: whole(perDateMs),
    };
    writeSummary(options.summaryFile, summary);
    return { summary, gate, perDateMs };
  }
}
