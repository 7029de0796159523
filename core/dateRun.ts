// A date's processors, run in order and committed together: Phases 1-2 in Stage 1, Phases 3-4 in Stage 3.

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CheckedWarehouse, checkDataOf } from './checks/data.js';
import { lookbackWindow } from './checks/defensive.js';
import type { IsoDate } from './dates.js';
import { type ProcessorErrorFault, withProcessorFaults } from './faults.js';
import type { PipelinePorts, Processor, ProcessorResult, RangeContext } from './pipeline/processor.js';
import { requireDateInSeason } from './pipeline/seasons.js';
import { phaseProcessors } from './processors.js';
import { type RunOptions, runProcessor } from './runner.js';
import { type PendingWrites, RunBatch } from './runs/history.js';
import { latestPhase2Runs, type Phase2Latest, sourceHash } from './runs/versions.js';
import { qualifiedName, type TableSchema } from './schema/table.js';

export interface ProcessorFailure {
  readonly processor: string;
  readonly error: Error;
  readonly runId: string;
}

export interface DateRunResult {
  readonly date: IsoDate;
  readonly ok: boolean;
  /** Phase 2 was not written again: the raw files are those of the date's last successful load. */
  readonly unchanged?: boolean;
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
  options: RunOptions & {
    /** Write Phase 2 even when the date's raw files are those of its last successful load. @default false */
    readonly force?: boolean;
  },
): Promise<DateRunResult> {
  const rows: Record<string, number> = {};
  const failures: ProcessorFailure[] = [];
  const batch = new RunBatch();
  const files: string[] = [];
  let unchanged = false;
  for (const phase of [1, 2] as const) {
    if (phase === 2) {
      const source = sourceHash(files);
      unchanged = !options.force && (await recordUnchanged(ports, date, source, batch, options));
      if (unchanged) {
        log.info({ date, source }, 'raw files unchanged since the last load: Phase 2 not written again');
        break;
      }
      options = { ...options, details: { ...options.details, source } };
    }
    for (const processor of phaseProcessors(phase)) {
      const out = await runProcessor(ports, log, processor, date, { ...options, batch });
      if (out.ok) {
        rows[processor.definition.name] = out.result.rows;
        if (phase === 1) files.push(String(out.result.details?.file ?? 'none'));
      } else {
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
  return { date, ok: failures.length === 0, failures, rows, ...(unchanged ? { unchanged } : {}) };
}

/**
 * When every Phase 2 processor's latest run on the date succeeded from raw files with this content hash, adds
 * an `unchanged` run of each to the batch (its fingerprint and rows carried over, nothing written) and says so:
 * a reload of the same data costs the scrape, not the load, and makes nothing stale.
 */
async function recordUnchanged(
  ports: PipelinePorts,
  date: IsoDate,
  source: string,
  batch: RunBatch,
  options: RunOptions,
): Promise<boolean> {
  const latest = await latestPhase2Runs(ports.warehouse, date);
  const processors = phaseProcessors(2);
  // The latest run loaded these raw files; or a run since (the plan's schedule load, which records no source)
  // wrote the very rows the last load of these files wrote.
  const same = processors.every((p) => {
    const run = latest.find((r) => r.processorName === p.definition.name);
    if (run?.status !== 'success') return false;
    if (run.details.source !== undefined || !run.lastLoad) return run.details.source === source;
    return (
      run.lastLoad.details.source === source &&
      run.details.fingerprint !== undefined &&
      JSON.stringify(run.details.fingerprint) === JSON.stringify(run.lastLoad.details.fingerprint)
    );
  });
  if (!same) return false;
  // The tables must still hold what those runs wrote: a date whose rows went some other way (deleted by hand,
  // a partition expired) is written again. One query for the five tables' counts; an edit in place that keeps
  // the counts is not seen (--force writes the date anyway).
  const tables = processors.flatMap((p) =>
    p.definition.output.kind === 'table' ? [{ name: p.definition.name, table: p.definition.output.table }] : [],
  );
  const counts = await ports.warehouse.query(
    tables
      .map(
        (t, i) =>
          `SELECT ${i} AS i, COUNT(*) AS n FROM ${qualifiedName(t.table)} WHERE ${t.table.partitionColumn} = ${ports.warehouse.dialect.asDate('@d')}`,
      )
      .join('\nUNION ALL\n'),
    { d: date },
  );
  const held = new Map(counts.map((r) => [Number(r.i), Number(r.n)]));
  if (tables.some((t, i) => latest.find((r) => r.processorName === t.name)?.rowsProcessed !== (held.get(i) ?? 0)))
    return false;
  const { season } = requireDateInSeason(date);
  const clock = options.clock ?? (() => new Date());
  for (const p of processors) {
    const run = latest.find((r) => r.processorName === p.definition.name) as Phase2Latest;
    const at = clock();
    batch.add({
      runId: randomUUID(),
      processorName: p.definition.name,
      phase: 2,
      dataDate: date,
      season: season.label,
      status: 'success',
      errorMessage: null,
      rowsProcessed: run.rowsProcessed,
      decision: 'unchanged',
      attempt: options.attempt ?? 1,
      startedAt: at,
      finishedAt: at,
      trigger: options.trigger,
      strictMode: options.strictMode ?? true,
      details: { fingerprint: run.details.fingerprint, source, unchanged: true },
    });
  }
  return true;
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

/** Phase 3 then Phase 4, with the processor errors a fault file injects (none by default). */
export function stage3Processors(faults: readonly ProcessorErrorFault[] = []): Processor[] {
  return withProcessorFaults([...phaseProcessors(3), ...phaseProcessors(4)], faults);
}

/** Phases 3 and 4 for one date, in one commit: Stage 3's step. */
export function runPhases3And4(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  options: RunOptions,
  faults: readonly ProcessorErrorFault[] = [],
): Promise<DateRunResult> {
  return runInOneCommit(ports, log, date, stage3Processors(faults), options);
}

/** The table a processor writes, if any. */
function tableOf(p: Processor): TableSchema | undefined {
  return p.definition.output.kind === 'table' ? p.definition.output.table : undefined;
}

/**
 * Starts the reads of every check of the batch's processors and dates at once, in two queries: each table's
 * rows per game on every date of any check's window (the batch's own writes excepted: those come from the
 * batch), and the latest runs on those dates. The checks of each (processor, date) then run in memory.
 */
async function prefetchChecks(
  ports: PipelinePorts,
  dates: readonly IsoDate[],
  processors: readonly Processor[],
): Promise<void> {
  const data = checkDataOf(ports.warehouse);
  const { season } = requireDateInSeason(dates[0] as IsoDate);
  const schedule = await data.schedule(season.label);
  const written = new Set(processors.map(tableOf).filter((t) => t !== undefined));
  const inBatch = new Set(dates);
  const byTable = new Map<TableSchema, Set<IsoDate>>();
  const runDates = new Set<IsoDate>();
  // The season's game dates, sorted: a window's dates are a slice of them.
  const gameDates = [...new Set(schedule.map((g) => g.date))].sort();
  const firstAtOrAfter = (d: IsoDate) => {
    let lo = 0;
    for (let hi = gameDates.length; lo < hi; ) {
      const mid = (lo + hi) >> 1;
      if ((gameDates[mid] as IsoDate) < d) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  for (const p of processors) {
    const def = p.definition;
    for (const date of dates) {
      const window = data.memo(`window|${season.label}|${date}|${def.lookbackGames}|${def.phase === 3}`, () =>
        lookbackWindow(schedule, date, def.lookbackGames, def.phase === 3),
      );
      for (const dep of def.dependencies) {
        const [start, end] = dep.scope === 'date' ? [date, date] : [window.start, window.end];
        const scheduled =
          start > end
            ? []
            : gameDates.slice(
                firstAtOrAfter(start),
                firstAtOrAfter(end) + (gameDates[firstAtOrAfter(end)] === end ? 1 : 0),
              );
        for (const table of [dep.table, ...(dep.expectedFrom ? [dep.expectedFrom] : [])]) {
          let set = byTable.get(table);
          if (!set) byTable.set(table, (set = new Set()));
          for (const d of scheduled) if (!(written.has(table) && inBatch.has(d))) set.add(d);
        }
        for (const d of scheduled) runDates.add(d);
      }
    }
  }
  await Promise.all([
    data.prefetch([...byTable].map(([table, set]) => ({ table, dates: [...set] }))),
    runDates.size > 0 ? data.latestRunsOn([...runDates]) : Promise.resolve(),
  ]);
}

/**
 * A Stage 3 batch: Phases 3 and 4 for consecutive dates of one season with date-by-date semantics, in one
 * commit. Each processor computes every date of the batch in one pass (Phase 4 reads the batch's Phase 3 rows
 * before they are committed: its query takes them from Phase 3's own query over the batch), and the checks'
 * reads for every date come in two queries. Then, date by date and processor by processor as a run of each
 * date would, the checks decide and the runs are recorded: the first date with a blocked or failed processor
 * ends the batch, with the runs before it on that date, and nothing after it is recorded or written. The
 * dates before it and that date's records commit together, once.
 *
 * A processor that throws over the range does not say on which date: the batch then runs date by date (a
 * commit each), which stops on the date it throws on, with the error a run of that date alone gives.
 * Returns each date's result in order, through the first date that failed.
 */
export async function runInBatch(
  ports: PipelinePorts,
  logOf: (date: IsoDate) => Logger,
  dates: readonly IsoDate[],
  processors: readonly Processor[],
  options: RunOptions,
): Promise<DateRunResult[]> {
  const first = dates[0];
  if (first === undefined) return [];
  const { season } = requireDateInSeason(first);
  for (const d of dates) {
    if (requireDateInSeason(d).season.label !== season.label) {
      throw new Error(`a Stage 3 batch holds dates of one season: ${first} and ${d} are not`);
    }
  }
  const dateByDate = async (): Promise<DateRunResult[]> => {
    const out: DateRunResult[] = [];
    for (const date of dates) {
      const result = await runInOneCommit(ports, logOf(date), date, processors, options);
      out.push(result);
      if (!result.ok) break;
    }
    return out;
  };
  if (dates.length === 1 || processors.some((p) => !p.runDates)) return dateByDate();

  const batch = new RunBatch();
  const computed = new Map<Processor, ReadonlyMap<IsoDate, ProcessorResult>>();
  // While computing, a later processor reads an earlier one's rows of any date of the batch (the feature
  // store reads the cache and the factors); the records come later, when the checks have passed.
  const computing: PendingWrites = {
    rowsOf: (table, date) => {
      for (const [p, results] of computed) if (tableOf(p) === table) return results.get(date)?.write?.rows;
      return undefined;
    },
    runsOn: () => [],
    shared: (key, load) => batch.shared(key, load),
  };
  const ctx: RangeContext = { ...ports, dates, season, log: logOf(first), pending: computing };
  try {
    for (const p of processors) p.prefetch?.(ctx);
    const checks = prefetchChecks(ports, dates, processors);
    for (const p of processors) computed.set(p, await (p.runDates as NonNullable<Processor['runDates']>)(ctx));
    await checks;
  } catch (err) {
    ctx.log.warn({ err, dates: dates.length }, 'a processor failed over the batch: running its dates one by one');
    return dateByDate();
  }

  const results: { date: IsoDate; rows: Record<string, number>; failures: ProcessorFailure[] }[] = [];
  for (const date of dates) {
    const rows: Record<string, number> = {};
    const failures: ProcessorFailure[] = [];
    for (const p of processors) {
      const result = computed.get(p)?.get(date);
      const done: Processor = {
        definition: p.definition,
        run: async () => {
          if (!result) throw new Error(`${p.definition.name} computed no result for ${date}`);
          return result;
        },
      };
      const out = await runProcessor(ports, logOf(date), done, date, { ...options, batch });
      if (out.ok) rows[p.definition.name] = out.result.rows;
      else {
        failures.push({ processor: p.definition.name, error: out.error, runId: out.runId });
        break;
      }
    }
    results.push({ date, rows, failures });
    if (failures.length > 0) break;
  }
  try {
    await batch.commit(ports.warehouse);
  } catch (err) {
    // Nothing of the batch was written: every run of it is recorded failed, and every date fails.
    const error = err instanceof Error ? err : new Error(String(err));
    const lost = await batch.fail(ports.warehouse, error, new Date());
    return results.map((r) => ({
      date: r.date,
      ok: false,
      failures: [{ processor: lost[0] ?? 'commit', error, runId: '' }],
      rows: {},
    }));
  }
  return results.map((r) => ({ date: r.date, ok: r.failures.length === 0, failures: r.failures, rows: r.rows }));
}
