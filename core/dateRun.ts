// A date's processors, run in order and committed together: Phases 1-2 in Stage 1, Phases 3-4 in Stage 3.

import type { Logger } from 'pino';
import { CheckedWarehouse } from './checks/data.js';
import type { IsoDate } from './dates.js';
import type { PipelinePorts, Processor } from './pipeline/processor.js';
import { requireDateInSeason } from './pipeline/seasons.js';
import { phaseProcessors } from './processors.js';
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

/**
 * Commits a batch; when the commit fails, its runs become failures (recorded, and reported to the caller).
 * When nothing was lost, the commit went through and publishing a completion message failed afterwards.
 */
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
    const lost = await batch.fail(ports.warehouse, error, new Date());
    for (const processor of lost.length > 0 ? lost : ['publish completion messages']) {
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
 * so all of them run and every failure is reported. A date lands whole or not at all: when any processor
 * fails, the others' writes are withheld (every table keeps what it held) and their runs are recorded as
 * `blocked`, naming the failure; `failures` lists only the processors that failed.
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
  if (failures.length > 0) {
    const cause = failures.map((f) => f.processor).join(', ');
    const first = failures[0]?.error.message.split('\n')[0] ?? '';
    for (const p of batch.withhold(
      `not committed: ${cause} failed on ${date}, so no data of the date was written (${first})`,
    ))
      delete rows[p];
  }
  await commitOrFail(ports, batch, rows, failures);
  return { date, ok: failures.length === 0, failures, rows };
}

/**
 * Processors of one date, in order, committed once at the end (data and run history together). A processor
 * that reads what an earlier one of the date wrote reads it from the same transaction (PendingWrites). The
 * first failure or block ends the date: nothing after it runs, and the runs before it commit with its record.
 * Pass a CheckedWarehouse to keep the checks' reads between dates.
 */
export async function runInOneCommit(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  processors: readonly Processor[],
  options: RunOptions,
): Promise<DateRunResult> {
  const rows: Record<string, number> = {};
  const failures: ProcessorFailure[] = [];
  const batch = new RunBatch();
  // The date's big reads are independent of each other (nothing commits until the date's end, and a
  // prefetch reads only what no earlier processor of the date writes): start them all now, side by side.
  const { season, seasonType } = requireDateInSeason(date);
  for (const p of processors) p.prefetch?.({ ...ports, date, season, seasonType, log, pending: batch });
  if (ports.warehouse instanceof CheckedWarehouse) {
    // The checks read the date's own rows of the tables whose window includes the date (Phase 3's lookbacks,
    // and date-scoped inputs) and that no processor of the date writes: one query for all of them.
    const written = new Set(
      processors.map((p) => p.definition.output).flatMap((o) => (o.kind === 'table' ? [o.table] : [])),
    );
    const tables = new Set(
      processors.flatMap((p) =>
        p.definition.dependencies
          .filter((d) => d.scope === 'date' || p.definition.phase === 3)
          .flatMap((d) => [d.table, ...(d.expectedFrom ? [d.expectedFrom] : [])]),
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

/** Phases 3 and 4 for one date, in one commit: Stage 3's step. */
export function runPhases3And4(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  options: RunOptions,
): Promise<DateRunResult> {
  return runInOneCommit(ports, log, date, [...phaseProcessors(3), ...phaseProcessors(4)], options);
}
