// Runs one processor for one date: the work, its run-history row, and its completion event.

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { checkDataOf } from './checks/data.js';
import { DependencyError, type RunMode, runDefensiveChecks } from './checks/defensive.js';
import type { IsoDate } from './dates.js';
import { BadInputError, messageOf, redact } from './errors.js';
import { PHASES, type PhaseNumber } from './pipeline/definition.js';
import type { PipelinePorts, Processor, ProcessorResult } from './pipeline/processor.js';
import { requireDateInSeason } from './pipeline/seasons.js';
import { TOPIC_PHASE2_COMPLETE, TOPIC_PHASE3_COMPLETE, TOPIC_PHASE4_COMPLETE } from './ports/events.js';
import { type PendingWrites, RunBatch, type RunRecord, recordRun, type Trigger } from './runs/history.js';
import { fingerprinted, fingerprintRows, recordInputs } from './runs/versions.js';

const TOPICS: Partial<Record<PhaseNumber, string>> = {
  2: TOPIC_PHASE2_COMPLETE,
  3: TOPIC_PHASE3_COMPLETE,
  4: TOPIC_PHASE4_COMPLETE,
};

export interface RunOptions {
  readonly trigger: Trigger;
  /** 1 for a first try; the batch runner passes 2 for the retry. @default 1 */
  readonly attempt?: number;
  /** @default true */
  readonly strictMode?: boolean;
  /** Backfills never trigger downstream phases through events. @default false */
  readonly skipDownstreamTrigger?: boolean;
  /** Backfills skip the checks that only live daily runs need (freshness). @default 'backfill' */
  readonly mode?: RunMode;
  /** @default () => new Date() */
  readonly clock?: () => Date;
  /**
   * Collects the run's write and record for the caller to commit with others; without one, the run
   * commits on its own before runProcessor returns.
   */
  readonly batch?: RunBatch;
  /** Recorded in the details of every successful run (Phase 2's: the content hash of the files it read). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export type RunOutcome =
  | { readonly ok: true; readonly runId: string; readonly result: ProcessorResult }
  | { readonly ok: false; readonly runId: string; readonly error: Error };

export async function runProcessor(
  ports: PipelinePorts,
  log: Logger,
  processor: Processor,
  date: IsoDate,
  options: RunOptions,
): Promise<RunOutcome> {
  const def = processor.definition;
  const { season, seasonType } = requireDateInSeason(date);
  const clock = options.clock ?? (() => new Date());
  const runId = randomUUID();
  const attempt = options.attempt ?? 1;
  const strictMode = options.strictMode ?? true;
  const runLog = log.child({ processor: def.name, date, runId, attempt });
  const startedAt = clock();
  const base = {
    runId,
    processorName: def.name,
    phase: def.phase,
    dataDate: date,
    season: season.label,
    attempt,
    startedAt,
    trigger: options.trigger,
    strictMode,
  };
  try {
    const checks =
      def.dependencies.length > 0
        ? await runDefensiveChecks(ports.warehouse, def, season, date, options.mode ?? 'backfill', options.batch, clock)
        : undefined;
    const checkDetails = checks && {
      window: { start: checks.window.start, end: checks.window.end },
      bootstrap: checks.window.bootstrap,
      failed: checks.failures.map((f) => ({ check: f.check, message: f.message })),
      skipped: checks.skipped,
    };
    if (checks && checks.failures.length > 0 && strictMode) {
      const error = new DependencyError(def.name, date, def.phase, checks.failures);
      const blocked: RunRecord = {
        ...base,
        status: 'blocked',
        errorMessage: redact(error.message),
        rowsProcessed: 0,
        decision: 'blocked',
        finishedAt: clock(),
        details: {
          checks: checkDetails,
          check: error.check,
          missingDates: error.missingDates,
          missingGames: error.missingGames,
        },
      };
      if (options.batch) options.batch.add(blocked);
      else await recordRun(ports.warehouse, blocked);
      runLog.error({ err: error, check: error.check, missingDates: error.missingDates }, 'blocked');
      return { ok: false, runId, error };
    }
    const result = await processor.run({
      ...ports,
      date,
      season,
      seasonType,
      log: runLog,
      ...(options.batch ? { pending: options.batch } : {}),
    });
    // A forced run went ahead despite failing checks; a bootstrap run had a short window by design.
    const decision = checks?.failures.length ? 'forced' : checks?.window.bootstrap ? 'bootstrap' : result.decision;
    const versions = await dataVersions(ports, processor, date, season.label, result, options.batch);
    const record: RunRecord = {
      ...base,
      status: 'success',
      errorMessage: null,
      rowsProcessed: result.rows,
      decision,
      finishedAt: clock(),
      details: {
        ...result.details,
        ...(checkDetails ? { checks: checkDetails } : {}),
        ...versions,
        ...options.details,
      },
    };
    const topic = TOPICS[def.phase];
    const publish =
      topic && !options.skipDownstreamTrigger
        ? () =>
            ports.events.publish(topic, {
              // The fingerprint of what the run wrote: a correction's completions say what changed downstream.
              data: {
                processor: def.name,
                date,
                rows: result.rows,
                runId,
                success: true,
                ...(versions.fingerprint ? { fingerprint: versions.fingerprint } : {}),
              },
              attributes: { season: season.label, backfill: 'true', phase: String(def.phase) },
            })
        : undefined;
    const batch = options.batch ?? new RunBatch();
    batch.add(record, result.write, publish);
    if (!options.batch) await batch.commit(ports.warehouse);
    runLog.info({ rows: result.rows, decision: result.decision }, 'processor succeeded');
    const { write: _written, ...summary } = result;
    return { ok: true, runId, result: { ...summary, decision } };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    const failed: RunRecord = {
      ...base,
      status: 'failed',
      // Run history outlives any log and is read by everyone with warehouse access: no URL credential in it.
      errorMessage: redact(messageOf(error)),
      rowsProcessed: 0,
      decision: 'failed',
      finishedAt: clock(),
      details: {
        errorType: error.name,
        badInput: error instanceof BadInputError,
        phaseName: PHASES[def.phase].name,
      },
    };
    if (options.batch) options.batch.add(failed);
    else await recordRun(ports.warehouse, failed);
    runLog.error({ err: error }, 'processor failed');
    return { ok: false, runId, error };
  }
}

/**
 * The data versions a successful run records (core/runs/versions.ts): the fingerprint of the rows it writes,
 * and for Phases 3-4 the hashes of the inputs it read, as they are now (the batch's uncommitted runs first).
 */
async function dataVersions(
  ports: PipelinePorts,
  processor: Processor,
  date: IsoDate,
  season: string,
  result: ProcessorResult,
  pending: PendingWrites | undefined,
): Promise<Record<string, unknown>> {
  const def = processor.definition;
  const out: Record<string, unknown> = {};
  if (result.write && fingerprinted(result.write.table, def.phase))
    out.fingerprint = fingerprintRows(result.write.table, result.write.rows);
  if (def.reads && def.reads.length > 0) {
    const data = checkDataOf(ports.warehouse);
    const [versions, gameDates] = await Promise.all([data.versions.versions(season), data.gameDates(season)]);
    out.inputs = await recordInputs(def, date, {
      versions,
      gameDates,
      entities: (table, per) => data.entityDates(table, per, season),
      pending,
    });
  }
  return out;
}
