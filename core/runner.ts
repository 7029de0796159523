// Runs one processor for one date: the work, its run-history row, and its completion event.

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { IsoDate } from './dates.js';
import { BadInputError, messageOf } from './errors.js';
import { PHASES, type PhaseNumber } from './pipeline/definition.js';
import type { PipelinePorts, Processor, ProcessorResult } from './pipeline/processor.js';
import { requireDateInSeason } from './pipeline/seasons.js';
import { TOPIC_PHASE2_COMPLETE, TOPIC_PHASE3_COMPLETE, TOPIC_PHASE4_COMPLETE } from './ports/events.js';
import { type RunRecord, recordRun, type Trigger, writeDateAndRecord } from './runs/history.js';

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
  /** @default () => new Date() */
  readonly clock?: () => Date;
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
    const result = await processor.run({ ...ports, date, season, seasonType, log: runLog });
    const record: RunRecord = {
      ...base,
      status: 'success',
      errorMessage: null,
      rowsProcessed: result.rows,
      decision: result.decision,
      finishedAt: clock(),
      details: result.details ?? {},
    };
    if (result.write) await writeDateAndRecord(ports.warehouse, result.write, record);
    else await recordRun(ports.warehouse, record);
    runLog.info({ rows: result.rows, decision: result.decision }, 'processor succeeded');
    const topic = TOPICS[def.phase];
    if (topic && !options.skipDownstreamTrigger) {
      await ports.events.publish(topic, {
        data: { processor: def.name, date, rows: result.rows, runId, success: true },
        attributes: { season: season.label, backfill: 'true', phase: String(def.phase) },
      });
    }
    const { write: _written, ...summary } = result;
    return { ok: true, runId, result: summary };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    await recordRun(ports.warehouse, {
      ...base,
      status: 'failed',
      errorMessage: messageOf(error),
      rowsProcessed: 0,
      decision: 'failed',
      finishedAt: clock(),
      details: {
        errorType: error.name,
        badInput: error instanceof BadInputError,
        phaseName: PHASES[def.phase].name,
      },
    });
    runLog.error({ err: error }, 'processor failed');
    return { ok: false, runId, error };
  }
}
