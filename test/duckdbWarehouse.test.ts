// The DuckDB warehouse: atomic date replace, rollback on failure, parameters, and one writer per file.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse, toDuckDbSql } from '../core/adapters/duckdb/warehouse.js';
import { processorRunHistory } from '../core/schema/raw.js';
import type { Row, TableSchema } from '../core/schema/table.js';
import { ensureBuilt, REPO_ROOT } from './support/workspace.js';

const table: TableSchema = {
  dataset: 'nba_test',
  name: 'scores',
  description: 'test table',
  columns: [
    { name: 'game_date', type: 'DATE', description: 'date' },
    { name: 'team', type: 'STRING', description: 'team' },
    { name: 'points', type: 'INT64', description: 'points' },
    { name: 'pct', type: 'FLOAT64', nullable: true, description: 'pct' },
  ],
  partitionColumn: 'game_date',
  key: ['team'],
  clusterBy: ['team'],
};

// The lock tests run the built adapter in a second process.
beforeAll(async () => {
  await ensureBuilt();
});

const opened: DuckDbWarehouse[] = [];
async function open(path = ':memory:'): Promise<DuckDbWarehouse> {
  const w = await DuckDbWarehouse.open(path);
  opened.push(w);
  await w.ensureTables([table, processorRunHistory]);
  return w;
}
afterEach(async () => {
  for (const w of opened.splice(0)) await w.close();
});

const replace = (w: DuckDbWarehouse, date: string, rows: Row[]) =>
  w.commit({ replace: [{ table, date, rows }], append: [] });

const all = (w: DuckDbWarehouse) =>
  w.query('SELECT CAST(game_date AS STRING) AS d, team, points, pct FROM nba_test.scores ORDER BY d, team');

describe('DuckDbWarehouse.commit', () => {
  it('replaces one date and leaves the others alone, rows sorted by key', async () => {
    const w = await open();
    await replace(w, '2021-10-19', [
      { game_date: '2021-10-19', team: 'MIL', points: 127, pct: 0.5 },
      { game_date: '2021-10-19', team: 'BKN', points: 104, pct: null },
    ]);
    await replace(w, '2021-10-20', [{ game_date: '2021-10-20', team: 'BOS', points: 115, pct: null }]);
    await replace(w, '2021-10-19', [{ game_date: '2021-10-19', team: 'MIL', points: 128, pct: null }]);
    expect(await all(w)).toEqual([
      { d: '2021-10-19', team: 'MIL', points: 128, pct: null },
      { d: '2021-10-20', team: 'BOS', points: 115, pct: null },
    ]);
  });

  it('replaces correctly whatever wrote the date before: its own commits, appends, SQL, another process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'duckdb-dates-'));
    const path = join(dir, 'w.duckdb');
    const row = (date: string, team: string, points: number) => ({ game_date: date, team, points, pct: null });
    let w = await open(path);
    // The first replace of a date the table does not hold skips its DELETE; the second must not.
    await replace(w, '2021-10-19', [row('2021-10-19', 'MIL', 1)]);
    await replace(w, '2021-10-19', [row('2021-10-19', 'MIL', 2)]);
    // Rows appended outside a replace, and rows written by SQL, are replaced too.
    await w.append(table, [row('2021-10-20', 'BOS', 3)]);
    await replace(w, '2021-10-20', [row('2021-10-20', 'BOS', 4)]);
    await w.query("INSERT INTO nba_test.scores VALUES (DATE '2021-10-21', 'NYK', 5, NULL)");
    await replace(w, '2021-10-21', [row('2021-10-21', 'NYK', 6)]);
    // A replace with no rows empties the date; a later replace then has nothing to delete.
    await replace(w, '2021-10-19', []);
    await replace(w, '2021-10-19', [row('2021-10-19', 'MIL', 7)]);
    await w.close();
    opened.splice(opened.indexOf(w), 1);
    // Another process (here: a fresh open) wrote the file since: what it holds is read again.
    w = await open(path);
    await replace(w, '2021-10-21', [row('2021-10-21', 'NYK', 8)]);
    expect(await all(w)).toEqual([
      { d: '2021-10-19', team: 'MIL', points: 7, pct: null },
      { d: '2021-10-20', team: 'BOS', points: 4, pct: null },
      { d: '2021-10-21', team: 'NYK', points: 8, pct: null },
    ]);
  });

  it('leaves the date as it was when the write fails part-way', async () => {
    const w = await open();
    const good = [{ game_date: '2021-10-19', team: 'MIL', points: 127, pct: null }];
    await replace(w, '2021-10-19', good);
    // The second row breaks NOT NULL after the DELETE ran: the whole replace must roll back.
    await expect(
      replace(w, '2021-10-19', [
        { game_date: '2021-10-19', team: 'BKN', points: 104, pct: null },
        { game_date: '2021-10-19', team: 'LAL', points: null, pct: null },
      ]),
    ).rejects.toThrow();
    expect(await all(w)).toEqual([{ d: '2021-10-19', team: 'MIL', points: 127, pct: null }]);
  });

  it('refuses a row of another date', async () => {
    const w = await open();
    await expect(
      replace(w, '2021-10-19', [{ game_date: '2021-10-20', team: 'MIL', points: 1, pct: null }]),
    ).rejects.toThrow(/a row for 2021-10-20 was handed to the replace of 2021-10-19/);
  });
});

describe('DuckDbWarehouse', () => {
  it('rewrites @name parameters for DuckDB and binds them', async () => {
    expect(toDuckDbSql('SELECT * FROM t WHERE a = @a AND b = @b_2')).toBe('SELECT * FROM t WHERE a = $a AND b = $b_2');
    const w = await open();
    expect(await w.query('SELECT @x + 1 AS y', { x: 41 })).toEqual([{ y: 42 }]);
  });

  it.each([
    { name: 'a writer', readOnly: false },
    { name: 'a read-only opener (backfill status)', readOnly: true },
  ])('$name is told plainly, through the adapter, that another process holds the file', async ({ readOnly }) => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const path = join(dir, 'w.duckdb');
    await open(path);
    // The adapter in another process (DuckDB's lock is per process): what a second command would print.
    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { DuckDbWarehouse } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'build/core/adapters/duckdb/warehouse.js')).href)};
         try { await DuckDbWarehouse.open(${JSON.stringify(path)}, { readOnly: ${readOnly}, lockWaitMs: 0 }); console.log('opened'); }
         catch (e) { console.log(e.name + ' pid=' + e.holderPid + ': ' + e.message); }`,
      ],
      { encoding: 'utf8', cwd: REPO_ROOT },
    );
    expect(probe.stdout, probe.stderr).toMatch(
      new RegExp(
        `^WarehouseLockedError pid=${process.pid}: the DuckDB file ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is open in another process \\(DuckDB allows one writer per file\\)`,
      ),
    );
  });

  it('a writer waits for a lock that goes away (a status that was reading), then opens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-wait-'));
    const path = join(dir, 'w.duckdb');
    await (await DuckDbWarehouse.open(path)).close();
    // Another process holds the file until told to let go.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { DuckDBInstance } from '@duckdb/node-api';
         const db = await DuckDBInstance.create(${JSON.stringify(path)}, { access_mode: 'READ_ONLY' });
         console.log('held');
         process.stdin.once('data', () => { db.closeSync(); process.exit(0); });`,
      ],
      { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout?.once('data', () => resolve()));
    const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
    const pauses: number[] = [];
    const w = await DuckDbWarehouse.open(path, {
      lockWaitMs: 3000,
      // The first pause lets the holder go; no clock decides anything.
      sleep: async (ms) => {
        pauses.push(ms);
        if (pauses.length === 1) {
          holder.stdin?.write('go\n');
          await exited;
        }
      },
    });
    opened.push(w);
    expect(pauses).toEqual([50]);
    expect(await w.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('a writer gives up after its lock wait, with pauses that add up to exactly the wait', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-give-up-'));
    const path = join(dir, 'w.duckdb');
    await open(path);
    const script = `import { DuckDbWarehouse } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'build/core/adapters/duckdb/warehouse.js')).href)};
      const pauses = [];
      try { await DuckDbWarehouse.open(${JSON.stringify(path)}, { lockWaitMs: 1000, sleep: async (ms) => { pauses.push(ms); } }); }
      catch (e) { console.log(JSON.stringify({ name: e.name, pauses })); }`;
    const probe = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: REPO_ROOT,
    });
    expect(JSON.parse(probe.stdout)).toEqual({ name: 'WarehouseLockedError', pauses: [50, 100, 200, 400, 250] });
  });
});
