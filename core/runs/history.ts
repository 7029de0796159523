// Run history: one row per processor run in nba_reference.processor_run_history, and reads of it.

import { sortableTime } from '../dates.js';
import type { Warehouse } from '../ports/warehouse.js';
import { processorRunHistory } from '../schema/raw.js';
import type { Row, TableSchema } from '../schema/table.js';

export const RUN_STATUSES = ['success', 'failed', 'blocked'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** `unchanged`: a Phase 2 run not written again, its date's raw files being those of its last success. */
export const DECISIONS = ['processed', 'no_games', 'failed', 'blocked', 'forced', 'bootstrap', 'unchanged'] as const;
export type ProcessingDecision = (typeof DECISIONS)[number];

/** What started a run: the command, and the stage and job when there is one. */
export interface Trigger {
  readonly command: string;
  readonly stage?: string | undefined;
  readonly jobName?: string | undefined;
  readonly jobIndex?: number | undefined;
}

export interface RunRecord {
  readonly runId: string;
  readonly processorName: string;
  readonly phase: number;
  readonly dataDate: string;
  readonly season: string;
  readonly status: RunStatus;
  readonly errorMessage: string | null;
  readonly rowsProcessed: number;
  readonly decision: ProcessingDecision;
  readonly attempt: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly trigger: Trigger;
  readonly strictMode: boolean;
  readonly details: Readonly<Record<string, unknown>>;
}

export function runRow(r: RunRecord): Row {
  return {
    run_id: r.runId,
    processor_name: r.processorName,
    phase: r.phase,
    data_date: r.dataDate,
    season: r.season,
    status: r.status,
    success: r.status === 'success',
    error_message: r.errorMessage,
    rows_processed: r.rowsProcessed,
    processing_decision: r.decision,
    attempt: r.attempt,
    started_at: r.startedAt.toISOString(),
    finished_at: r.finishedAt.toISOString(),
    trigger_command: r.trigger.command,
    trigger_stage: r.trigger.stage ?? null,
    job_name: r.trigger.jobName ?? null,
    job_index: r.trigger.jobIndex ?? null,
    strict_mode: r.strictMode,
    details: JSON.stringify(r.details),
  };
}

/** What the pending marker of a run says: its date's partitions are being replaced. */
export const PENDING_MESSAGE = 'not committed: its partitions are being replaced';

/**
 * The marker a run's commit writes first where commits are not atomic (see RunBatch.commit): blocked,
 * finished a millisecond before the run started, so that it is the latest run until the run's own row lands
 * and never outranks it.
 */
export function pendingRecord(r: RunRecord): RunRecord {
  return {
    ...r,
    runId: `${r.runId}-pending`,
    status: 'blocked',
    decision: 'blocked',
    rowsProcessed: 0,
    errorMessage: PENDING_MESSAGE,
    details: { ...r.details, pending: true },
    finishedAt: new Date(r.startedAt.getTime() - 1),
  };
}

export async function recordRun(warehouse: Warehouse, record: RunRecord): Promise<void> {
  await warehouse.append(processorRunHistory, [runRow(record)]);
}

/** A processor's rows for its table, replaced for the run's date. */
export interface TableWrite {
  readonly table: TableSchema;
  readonly rows: readonly Row[];
}

/**
 * What a batch has produced but not committed yet. The runs after it in the same transaction read their
 * inputs through it, as a query inside the transaction would see them: a date's Phase 4 feature store reads
 * the cache and factors its own batch computed, so the whole date commits once.
 */
export interface PendingWrites {
  /** The rows a successful run of the batch wrote to a table for a date; undefined when none did. */
  rowsOf(table: TableSchema, date: string): readonly Row[] | undefined;
  /** The batch's runs on a date, as run history will hold them once committed. */
  runsOn(date: string): readonly RunRecord[];
  /**
   * Loads something once per batch: two processors of a date that read the same inputs (team offense and
   * defense, the cache and the factors) query them once. A failed load is not kept.
   */
  shared<T>(key: string, load: () => Promise<T>): Promise<T>;
}

/**
 * Runs whose writes and history rows commit together, in one transaction: a date's Phase 1-2 runs commit
 * once instead of eight times. Completion events go out only after the commit.
 */
export class RunBatch implements PendingWrites {
  private items: {
    record: RunRecord;
    write?: TableWrite | undefined;
    publish?: (() => Promise<unknown>) | undefined;
  }[] = [];

  /** The items of each date, in order (a Stage 3 batch holds many dates; its checks ask by date). */
  private byDate = new Map<string, RunBatch['items']>();

  add(record: RunRecord, write?: TableWrite, publish?: () => Promise<unknown>): void {
    const item = { record, write, publish };
    this.items.push(item);
    const onDate = this.byDate.get(record.dataDate);
    if (onDate) onDate.push(item);
    else this.byDate.set(record.dataDate, [item]);
  }

  /** Moves every run of `other` (a date's, once it is accepted) into this batch, after its own. */
  absorb(other: RunBatch): void {
    for (const i of other.items) this.add(i.record, i.write, i.publish);
    other.items = [];
    other.byDate = new Map();
  }

  private reindex(): void {
    this.byDate = new Map();
    for (const i of this.items) {
      const onDate = this.byDate.get(i.record.dataDate);
      if (onDate) onDate.push(i);
      else this.byDate.set(i.record.dataDate, [i]);
    }
  }

  get size(): number {
    return this.items.length;
  }

  rowsOf(table: TableSchema, date: string): readonly Row[] | undefined {
    const onDate = this.byDate.get(date) ?? [];
    for (let i = onDate.length - 1; i >= 0; i--) {
      const item = onDate[i];
      if (item?.write?.table === table) return item.write.rows;
    }
    return undefined;
  }

  runsOn(date: string): readonly RunRecord[] {
    return (this.byDate.get(date) ?? []).map((i) => i.record);
  }

  private readonly loaded = new Map<string, Promise<unknown>>();

  shared<T>(key: string, load: () => Promise<T>): Promise<T> {
    let value = this.loaded.get(key) as Promise<T> | undefined;
    if (!value) {
      value = load();
      this.loaded.set(key, value);
      value.catch(() => this.loaded.delete(key));
    }
    return value;
  }

  async commit(warehouse: Warehouse): Promise<void> {
    if (this.items.length === 0) return;
    const items = this.items;
    const replace = items.flatMap((i) =>
      i.write ? [{ table: i.write.table, date: i.record.dataDate, rows: i.write.rows }] : [],
    );
    if (warehouse.commitsAtomically === false && replace.length > 0) {
      // The partitions land one by one before the run history: until it is written, the latest run of each
      // writing processor says the date is not loaded, so a crash between two replaces hides the date.
      await warehouse.append(
        processorRunHistory,
        items.flatMap((i) => (i.write ? [runRow(pendingRecord(i.record))] : [])),
      );
      const tries = (await warehouse.commit({ replace, append: [] }))?.tries ?? 1;
      // Then the history, the date's commit marker, saying how many tries the warehouse's jobs took.
      await warehouse.append(
        processorRunHistory,
        items.map((i) =>
          runRow(tries > 1 ? { ...i.record, details: { ...i.record.details, warehouseTries: tries } } : i.record),
        ),
      );
    } else {
      await warehouse.commit({
        replace,
        append: [{ table: processorRunHistory, rows: items.map((i) => runRow(i.record)) }],
      });
    }
    this.items = [];
    this.byDate = new Map();
    for (const i of items) await i.publish?.();
  }

  /**
   * Keeps every table of the batch as it was: the successful runs that would have written lose their write
   * and their completion message, and are recorded as `blocked` with `reason`, so that run history, the gate
   * and `failures` see their date as not loaded. Runs that write nothing (Phase 1) and failed runs stay as
   * they are. Returns the processors whose work is withheld.
   */
  withhold(reason: string): string[] {
    const withheld: string[] = [];
    this.items = this.items.map((i) => {
      if (!i.write || i.record.status !== 'success') return i;
      withheld.push(i.record.processorName);
      return {
        record: {
          ...i.record,
          status: 'blocked',
          decision: 'blocked',
          rowsProcessed: 0,
          errorMessage: reason,
          details: { ...i.record.details, notCommitted: true },
        },
      };
    });
    this.reindex();
    return withheld;
  }

  /**
   * After a failed commit nothing of the batch counts (on an atomic warehouse nothing was written; on
   * BigQuery some partitions may be, behind their pending markers): records every run in it as failed with
   * the commit's error, and returns the processors whose work was lost.
   */
  async fail(warehouse: Warehouse, error: Error, finishedAt: Date): Promise<string[]> {
    const items = this.items;
    this.items = [];
    this.byDate = new Map();
    const lost = items.filter((i) => i.record.status === 'success').map((i) => i.record.processorName);
    await warehouse.append(
      processorRunHistory,
      items.map((i) =>
        runRow(
          i.record.status === 'success'
            ? {
                ...i.record,
                status: 'failed',
                decision: 'failed',
                rowsProcessed: 0,
                errorMessage: `the warehouse commit failed: ${error.message}`,
                finishedAt,
              }
            : i.record,
        ),
      ),
    );
    return lost;
  }
}

export interface LatestRun {
  readonly processorName: string;
  readonly phase: number;
  readonly dataDate: string;
  readonly season: string;
  readonly status: RunStatus;
  readonly errorMessage: string | null;
  readonly attempt: number;
  readonly finishedAt: string;
  readonly runId: string;
}

/**
 * The latest run of every (processor, date) in a date range, optionally for some phases only.
 * Ordered by finish time, then run id, so that two runs in the same instant still give one answer.
 */
export async function latestRuns(
  warehouse: Warehouse,
  range: { start: string; end: string },
  phases?: readonly number[],
): Promise<LatestRun[]> {
  const phaseFilter = phases && phases.length > 0 ? `AND phase IN (${phases.map((p) => Number(p)).join(', ')})` : '';
  // A plain filtered read, the latest picked here: cheaper than a window function for the few rows of a range.
  const rows = await warehouse.query(
    `SELECT processor_name, phase, CAST(data_date AS STRING) AS data_date, season, status, error_message,
            attempt, CAST(finished_at AS STRING) AS finished_at, run_id
       FROM nba_reference.processor_run_history
      WHERE data_date BETWEEN @start AND @end ${phaseFilter}`,
    { start: range.start, end: range.end },
  );
  const latest = new Map<string, Row>();
  for (const r of rows) {
    const key = `${r.processor_name}|${r.data_date}`;
    const prev = latest.get(key);
    // Latest by finish time, then run id, so that two runs in the same instant still give one answer.
    if (!prev || `${sortableTime(r.finished_at)}|${r.run_id}` > `${sortableTime(prev.finished_at)}|${prev.run_id}`)
      latest.set(key, r);
  }
  return [...latest.values()]
    .sort((x, y) =>
      `${x.data_date}|${x.phase}|${x.processor_name}` < `${y.data_date}|${y.phase}|${y.processor_name}` ? -1 : 1,
    )
    .map((r) => ({
      processorName: String(r.processor_name),
      phase: Number(r.phase),
      dataDate: String(r.data_date),
      season: String(r.season),
      status: r.status as RunStatus,
      errorMessage: (r.error_message as string | null) ?? null,
      attempt: Number(r.attempt),
      finishedAt: String(r.finished_at),
      runId: String(r.run_id),
    }));
}
