// Where a warehouse cannot commit across tables at once (BigQuery: one load job per partition, then the
// run history), RunBatch writes a pending marker first: until the run's own row lands, the latest run of each
// writing processor on the date is `blocked`, so a crash between two partition replacements leaves a date
// the gate does not count. A warehouse that commits atomically (DuckDB) gets no marker.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warehouse, WarehouseChange } from '../core/ports/warehouse.js';
import { latestRuns, PENDING_MESSAGE, pendingRecord, RunBatch, type RunRecord } from '../core/runs/history.js';
import { nbacSchedule, processorRunHistory } from '../core/schema/raw.js';
import type { Row, SqlValue, TableSchema } from '../core/schema/table.js';
import { openMemoryWarehouse } from './support/memoryWarehouse.js';

const DATE = '2021-10-19';

function run(
  runId: string,
  processorName: string,
  finishedAt: string,
  status: RunRecord['status'] = 'success',
): RunRecord {
  return {
    runId,
    processorName,
    phase: 2,
    dataDate: DATE,
    season: '2021-22',
    status,
    errorMessage: status === 'success' ? null : 'failed',
    rowsProcessed: status === 'success' ? 1 : 0,
    decision: status === 'success' ? 'processed' : 'failed',
    attempt: 1,
    startedAt: new Date(Date.parse(finishedAt) - 500),
    finishedAt: new Date(finishedAt),
    trigger: { command: 'test' },
    strictMode: true,
    details: {},
  };
}

/** A schedule row with every column filled, on DATE. */
function scheduleRow(gameId: string): Row {
  const row: Row = {};
  for (const c of nbacSchedule.columns) {
    row[c.name] =
      c.type === 'DATE'
        ? DATE
        : c.type === 'TIMESTAMP'
          ? '2021-10-19T23:30:00.000Z'
          : c.type === 'INT64'
            ? 1
            : c.type === 'FLOAT64'
              ? 0.5
              : c.type === 'BOOL'
                ? true
                : c.name;
  }
  return { ...row, game_id: gameId };
}

/** The embedded warehouse told to say its commits are not atomic; the calls it gets, in order. */
class NotAtomic implements Warehouse {
  readonly commitsAtomically = false;
  readonly calls: string[] = [];
  /** The next commit throws, as a pod killed between its partition loads would leave it. */
  failNextCommit = false;
  /** What commits report: the most tries a job took (BigQuery's adapter). */
  tries: number | undefined = undefined;

  constructor(private readonly inner: Warehouse) {}

  get description() {
    return this.inner.description;
  }
  get dialect() {
    return this.inner.dialect;
  }
  ensureTables(tables: readonly TableSchema[]) {
    return this.inner.ensureTables(tables);
  }
  query(sql: string, params?: Readonly<Record<string, SqlValue>>) {
    return this.inner.query(sql, params);
  }
  async commit(change: WarehouseChange) {
    this.calls.push('commit');
    if (this.failNextCommit) {
      this.failNextCommit = false;
      throw new Error('the pod was killed between two partition loads');
    }
    await this.inner.commit(change);
    return this.tries === undefined ? undefined : { tries: this.tries };
  }
  append(table: TableSchema, rows: readonly Row[]) {
    this.calls.push(`append ${table.name} ${rows.map((r) => r.run_id).join(',')}`);
    return this.inner.append(table, rows);
  }
  checkpoint() {
    return this.inner.checkpoint();
  }
  close() {
    return this.inner.close();
  }
}

let inner: Warehouse;
beforeEach(async () => {
  inner = await openMemoryWarehouse();
  await inner.ensureTables([nbacSchedule, processorRunHistory]);
});
afterEach(async () => {
  await inner.close();
});

const latest = async (w: Warehouse) =>
  (await latestRuns(w, { start: DATE, end: DATE }))
    .map((r) => [r.processorName, r.status, r.errorMessage, r.runId])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));

describe('the pending marker of a run whose commit is not atomic', () => {
  it('is written before the commit, one per writing run, blocked and finished a millisecond before the run began', async () => {
    const w = new NotAtomic(inner);
    const batch = new RunBatch();
    const schedule = run('r1', 'nbac_schedule', '2030-01-01T00:00:10.000Z');
    batch.add(schedule, { table: nbacSchedule, rows: [scheduleRow('g1')] });
    // A Phase 1 run writes no table: no marker.
    batch.add({ ...run('r2', 'scrape_schedule', '2030-01-01T00:00:09.000Z'), phase: 1 });
    await batch.commit(w);
    expect(w.calls).toEqual([
      'append processor_run_history r1-pending',
      'commit',
      'append processor_run_history r1,r2',
    ]);
    const rows = await inner.query(
      `SELECT run_id, status, processing_decision, error_message, rows_processed, CAST(finished_at AS STRING) AS f
         FROM nba_reference.processor_run_history ORDER BY run_id`,
    );
    expect(rows.map((r) => [r.run_id, r.status, r.processing_decision, r.error_message, r.rows_processed])).toEqual([
      ['r1', 'success', 'processed', null, 1],
      ['r1-pending', 'blocked', 'blocked', PENDING_MESSAGE, 0],
      ['r2', 'success', 'processed', null, 1],
    ]);
    expect(pendingRecord(schedule).finishedAt.toISOString()).toBe('2030-01-01T00:00:09.499Z');
    expect(
      JSON.parse(
        String(
          (await inner.query(`SELECT details FROM nba_reference.processor_run_history WHERE run_id = 'r1-pending'`))[0]
            ?.details,
        ),
      ),
    ).toEqual({ pending: true });
    // Once the run's row is in, it is the latest: the marker never outranks it.
    expect(await latest(w)).toEqual([
      ['nbac_schedule', 'success', null, 'r1'],
      ['scrape_schedule', 'success', null, 'r2'],
    ]);
  });

  it('is the latest run when the commit stops midway: a date loaded before no longer counts as loaded', async () => {
    const w = new NotAtomic(inner);
    const before = new RunBatch();
    before.add(run('old', 'nbac_schedule', '2030-01-01T00:00:01.000Z'), {
      table: nbacSchedule,
      rows: [scheduleRow('g0')],
    });
    await before.commit(w);
    const reload = new RunBatch();
    reload.add(run('new', 'nbac_schedule', '2030-01-01T00:00:10.000Z'), {
      table: nbacSchedule,
      rows: [scheduleRow('g1')],
    });
    w.failNextCommit = true;
    await expect(reload.commit(w)).rejects.toThrow('killed between two partition loads');
    expect(await latest(w)).toEqual([['nbac_schedule', 'blocked', PENDING_MESSAGE, 'new-pending']]);
  });

  it('the runs record how many tries the warehouse’s jobs took, when they took more than one', async () => {
    const w = new NotAtomic(inner);
    const details = async (runId: string) =>
      JSON.parse(
        String(
          (
            await inner.query(`SELECT details FROM nba_reference.processor_run_history WHERE run_id = @id`, {
              id: runId,
            })
          )[0]?.details,
        ),
      );
    for (const [runId, tries] of [
      ['once', 1],
      ['thrice', 3],
    ] as const) {
      w.tries = tries;
      const batch = new RunBatch();
      batch.add(run(runId, 'nbac_schedule', '2030-01-01T00:00:10.000Z'), {
        table: nbacSchedule,
        rows: [scheduleRow('g1')],
      });
      await batch.commit(w);
    }
    expect(await details('once')).toEqual({});
    expect(await details('thrice')).toEqual({ warehouseTries: 3 });
  });

  it('is never written where commits are atomic', async () => {
    const batch = new RunBatch();
    batch.add(run('r1', 'nbac_schedule', '2030-01-01T00:00:10.000Z'), {
      table: nbacSchedule,
      rows: [scheduleRow('g1')],
    });
    await batch.commit(inner);
    const ids = await inner.query('SELECT run_id FROM nba_reference.processor_run_history');
    expect(ids).toEqual([{ run_id: 'r1' }]);
  });
});
