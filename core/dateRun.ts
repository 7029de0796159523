// Phases 1 and 2 for one date: the scrapers in order, then every raw processor.

import type { Logger } from 'pino';
import { CheckedWarehouse } from './checks/data.js';
import type { IsoDate } from './dates.js';
import type { PipelinePorts } from './pipeline/processor.js';
import { phaseProcessors } from './pipeline/registry.js';
import { requireDateInSeason } from './pipeline/seasons.js';
import { type RunOptions, runProcessor } from './runner.js';
import { RunBatch } from './runs/history.js';

export interface ProcessorFailure {
  readonly processor: string;
  readonly error: Error;
  readonly runId: string;
}

export interface DateRunResult {
  readonly date: IsoDate;
  readonly ok: boolean;
  readonly failures: readonly ProcessorFailure[];
  readonly rows: Readonly<Record<string, number>>;
}

/** Commits a batch; when the commit fails, its runs become failures (recorded, and reported to the caller). */
async function commitOrFail(
  ports: PipelinePorts,
  batch: RunBatch,
  rows: Record<string, number>,
  failures: ProcessorFailure[],
): Promise<void> {
  try {
    await batch.commit(ports.warehouse);
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    for (const processor of await batch.fail(ports.warehouse, error, new Date())) {
      failures.push({ processor, error, runId: '' });
      delete rows[processor];
    }
  }
}

/**
 * The date's runs commit together at the end, in one transaction (data and run history alike), which is
 * what makes a date cheap enough to load 650 of them in a minute.
 * A scraper failure stops the date's scrapers (the roster scraper needs the team log), and Phase 2 is then
 * not run, since its files would be missing or stale. Phase 2's processors are independent of each other,
 * so all of them run and every failure is reported.
 */
export async function runPhases1And2(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  options: RunOptions,
): Promise<DateRunResult> {
  const rows: Record<string, number> = {};
  const failures: ProcessorFailure[] = [];
  const batch = new RunBatch();
  for (const phase of [1, 2] as const) {
    for (const processor of phaseProcessors(phase)) {
      const out = await runProcessor(ports, log, processor, date, { ...options, batch });
      if (out.ok) rows[processor.definition.name] = out.result.rows;
      else {
        failures.push({ processor: processor.definition.name, error: out.error, runId: out.runId });
        if (phase === 1) break;
      }
    }
    if (failures.length > 0) break;
  }
  await commitOrFail(ports, batch, rows, failures);
  return { date, ok: failures.length === 0, failures, rows };
}

/**
 * Phases 3 and 4 for one date, in the order their inputs allow, committing once: the three Phase 3
 * summaries (from nba_raw), the daily cache and composite factors (from earlier dates of nba_analytics and
 * the date's roster), then the feature store, which reads the cache and factors of this same transaction.
 * The first failure or block ends the date: nothing after it runs, and the runs before it commit with its
 * record. Pass a CheckedWarehouse to keep the checks' reads between dates.
 */
export async function runPhases3And4(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  options: RunOptions,
): Promise<DateRunResult> {
  const rows: Record<string, number> = {};
  const failures: ProcessorFailure[] = [];
  const batch = new RunBatch();
  const processors = [...phaseProcessors(3), ...phaseProcessors(4)];
  // The date's big reads are independent of each other (Phase 3 reads nba_raw, Phase 4 nba_analytics before
  // the date, and nothing commits until the date's end): start them all now, to run side by side.
  const { season, seasonType } = requireDateInSeason(date);
  for (const p of processors) p.prefetch?.({ ...ports, date, season, seasonType, log, pending: batch });
  if (ports.warehouse instanceof CheckedWarehouse) {
    // Every check of the date reads the date's raw rows: one query for all of them, not one per processor.
    const written = new Set(
      processors.map((p) => p.definition.output).flatMap((o) => (o.kind === 'table' ? [o.table] : [])),
    );
    const tables = new Set(
      processors.flatMap((p) =>
        p.definition.dependencies.flatMap((d) => [d.table, ...(d.expectedFrom ? [d.expectedFrom] : [])]),
      ),
    );
    await ports.warehouse.data.prefetch(
      [...tables].filter((t) => !written.has(t)).map((table) => ({ table, dates: [date] })),
    );
  }
  for (const processor of processors) {
    const out = await runProcessor(ports, log, processor, date, { ...options, batch });
    if (out.ok) rows[processor.definition.name] = out.result.rows;
    else {
      failures.push({ processor: processor.definition.name, error: out.error, runId: out.runId });
      break;
    }
  }
  await commitOrFail(ports, batch, rows, failures);
  return { date, ok: failures.length === 0, failures, rows };
}
