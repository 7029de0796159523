// Stage 1 and Stage 2 on the real data: retry once, the failure log, the gate, and targeted re-runs.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Row } from '../core/schema/table.js';
import {
  copyWorkspace,
  createWorkspaceWithPlans,
  ensureBuilt,
  rawTableRows,
  type Workspace,
} from './support/workspace.js';

const range = ['--season', '2021-22', '--start-date', '2021-11-01', '--end-date', '2021-11-10'];
const fast = ['--retry-delay-ms', '0'];

/** Rows of a query on a workspace's warehouse, opened in this process (no `backfill query` process each time). */
function sql(ws: Workspace, text: string): Promise<Row[]> {
  return ws.withAdapters((a) => a.warehouse.query(text));
}

describe('Stage 1 with injected faults, then Stage 2', () => {
  let ws: Workspace;
  let faults: string;
  let first: Awaited<ReturnType<Workspace['cli']>>;

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    faults = join(ws.dir, 'faults.json');
    writeFileSync(
      faults,
      JSON.stringify({
        transient: ['2021-11-03'],
        permanent: ['2021-11-05'],
        corrupt: [
          { date: '2021-11-07', file: 'playerGameLogs', how: 'negative-minutes' },
          // The same game lost from both logs: they agree, so Phase 2 loads the rest and only the gate notices.
          // (A game lost from one log only is bad input: test/dataIntegrity.test.ts.)
          { date: '2021-11-08', file: 'playerGameLogs', how: 'drop-game' },
          { date: '2021-11-08', file: 'teamGameLogs', how: 'drop-game' },
        ],
      }),
    );
    first = await ws.cli(['stage1', ...range, ...fast, '--faults', faults]);
  });
  afterAll(() => ws.remove());
  const stage1Done = () => ws;

  it('exits 1, and the transient date succeeds on its retry', async () => {
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/2021-11-03 \(index 2\) failed, retrying once/);
    const runs = await sql(
      ws,
      "SELECT attempt, status FROM nba_reference.processor_run_history WHERE data_date = DATE '2021-11-03' AND processor_name = 'nbac_player_boxscore'",
    );
    expect(runs).toEqual([{ attempt: 2, status: 'success' }]);
  });

  it('writes the failure log, with only the dates that stayed failed, to a file and the warehouse', async () => {
    const file = /failure log: (\S+)/.exec(first.stdout)?.[1] as string;
    const log = JSON.parse(readFileSync(join(ws.dir, file), 'utf8'));
    expect(log.failed.map((f: { date: string }) => f.date)).toEqual(['2021-11-05', '2021-11-07']);
    const [outage, bad] = log.failed;
    expect(outage).toMatchObject({
      attempts: 2,
      reason: 'BackoffLimitExceeded',
      processor: 'nbac_player_game_log_scraper',
    });
    expect(outage.error).toMatch(/injected fault: the player game log request for 2021-11-05 fails on every attempt/);
    // Bad input is not retried: the pod failure policy fails the index on its first attempt.
    expect(bad).toMatchObject({ attempts: 1, reason: 'PodFailurePolicy' });
    expect(bad.processor).toMatch(/^nbac_(player_boxscore|gamebook_player_stats|team_boxscore)$/);
    expect(bad.error).toMatch(/leaguegamelog_P\.json: .*record 1 .*MIN must be >= 0 \(got -5\)/s);
    expect(existsSync(outage.logs)).toBe(true);
    expect(readFileSync(outage.logs, 'utf8')).toMatch(
      /"date":"2021-11-05".*"processor":"nbac_player_game_log_scraper"/,
    );
    const table = await sql(
      ws,
      'SELECT CAST(data_date AS STRING) AS d, reason FROM nba_reference.backfill_failure_log ORDER BY d',
    );
    expect(table).toEqual([
      { d: '2021-11-05', reason: 'BackoffLimitExceeded' },
      { d: '2021-11-07', reason: 'PodFailurePolicy' },
    ]);
  });

  it('loads every other date, and the gate fails naming the failed dates and the dropped game', async () => {
    const loaded = await sql(
      ws,
      `SELECT CAST(game_date AS STRING) AS d FROM nba_raw.nbac_player_boxscore
        WHERE game_date BETWEEN DATE '2021-11-01' AND DATE '2021-11-10' GROUP BY game_date ORDER BY d`,
    );
    expect(loaded.map((r) => r.d)).toEqual([
      '2021-11-01',
      '2021-11-02',
      '2021-11-03',
      '2021-11-04',
      '2021-11-06',
      '2021-11-08',
      '2021-11-09',
      '2021-11-10',
    ]);
    const gate = await ws.cli(['gate', ...range, '--format', 'json']);
    expect(gate.code).toBe(1);
    const result = JSON.parse(gate.stdout);
    const players = result.tables.find((t: { table: string }) => t.table === 'nba_raw.nbac_player_boxscore');
    expect(players.missingDates).toEqual(['2021-11-05', '2021-11-07', '2021-11-08']);
    // 2021-11-08 has all but one of its games: the gate checks games, not dates.
    const dropped = players.missingGames.filter((g: { date: string }) => g.date === '2021-11-08');
    expect(dropped).toHaveLength(1);
    const text = await ws.cli(['gate', ...range]);
    expect(text.stdout).toMatch(/GATE FAILED.*Stage 3 must not start/);
  });

  it('lists the failing dates with their reasons and logs, retries exactly those, and then the gate passes', async () => {
    // The retry changes the warehouse: on a copy, so that the other cases see Stage 1's result whatever their order.
    const ws = copyWorkspace(stage1Done());
    onTestFinished(() => ws.remove());
    const logs = await ws.cli(['logs', '2021-11-05', '--season', '2021-22']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(
      /^== run (\d{8}-\d{9}-[0-9a-z]{4}) \(job nba-stage1-202122-\1, index 4\): \.backfill\/logs\/jobs\/nba-stage1-202122-\1\/index-4\.log\n/,
    );
    expect(logs.stdout).toMatch(/ ERROR nbac_player_game_log_scraper: processor failed: injected fault/);
    expect((await ws.cli(['logs', '2021-12-25', '--season', '2021-22'])).code).toBe(2);

    const failures = await ws.cli(['failures', '--season', '2021-22', '--format', 'json']);
    const open = JSON.parse(failures.stdout);
    expect(open.map((f: { date: string }) => f.date)).toEqual(['2021-11-05', '2021-11-07']);
    expect(open[0].logs).toMatch(/index-4\.log$/);

    const before = await sql(ws, 'SELECT COUNT(*) AS n FROM nba_reference.processor_run_history');
    // The cause is removed: no --faults any more.
    const retry = await ws.cli(['retry', '--season', '2021-22', ...fast]);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toMatch(/retrying 2 date\(s\): 2021-11-05, 2021-11-07/);
    const after = await sql(
      ws,
      `SELECT CAST(data_date AS STRING) AS d, COUNT(*) AS n FROM nba_reference.processor_run_history
        WHERE job_name LIKE 'nba-retry-%' GROUP BY data_date ORDER BY d`,
    );
    expect(after).toEqual([
      { d: '2021-11-05', n: 8 },
      { d: '2021-11-07', n: 8 },
    ]);
    const total = await sql(ws, 'SELECT COUNT(*) AS n FROM nba_reference.processor_run_history');
    expect(Number(total[0]?.n) - Number(before[0]?.n)).toBe(16);

    // The dropped game is not a failure of any run: the gate is what finds it, and a reload fixes it.
    expect((await ws.cli(['gate', ...range])).code).toBe(1);
    expect(
      (await ws.cli(['stage1', '--season', '2021-22', '--start-date', '2021-11-08', '--end-date', '2021-11-08'])).code,
    ).toBe(0);
    const gate = await ws.cli(['gate', ...range]);
    expect(gate.code).toBe(0);
    expect(gate.stdout).toMatch(/GATE PASSED/);
    expect((await ws.cli(['failures', '--season', '2021-22'])).stdout).toMatch(/no failing dates/);
  });
});

describe('retry --from-log and --failed-runs', () => {
  it('re-runs the dates of a failure log file, and every failed Phase 2 run by processor name', async () => {
    await ensureBuilt();
    const ws = createWorkspaceWithPlans();
    try {
      const faults = join(ws.dir, 'faults.json');
      writeFileSync(
        faults,
        JSON.stringify({ corrupt: [{ date: '2021-11-02', file: 'playerGameLogs', how: 'duplicate-row' }] }),
      );
      const sel = ['--season', '2021-22', '--start-date', '2021-11-01', '--end-date', '2021-11-02'];
      const run = await ws.cli(['stage1', ...sel, ...fast, '--faults', faults]);
      expect(run.code).toBe(1);
      const file = /failure log: (\S+)/.exec(run.stdout)?.[1] as string;

      // Phase 2 alone, by name: the corrupt file is still there, so the failed processors fail again.
      const byName = await ws.cli(['retry', '--failed-runs', '--phase', '2', '--season', '2021-22']);
      expect(byName.code).toBe(1);
      expect(byName.stdout).toMatch(
        /2021-11-02 {2}nbac_player_boxscore {2}FAILED: .*duplicate player rows for one game/,
      );
      // The schedule and roster runs were only withheld (the date lands whole or not at all): alone, they load.
      expect(byName.stdout).toMatch(/2021-11-02 {2}nbac_schedule {2}ok/);
      expect(byName.stdout).toMatch(/2 of 5 failed runs now succeed/);
      expect(byName.stdout).not.toMatch(/2021-11-01/);

      const fromLog = await ws.cli(['retry', '--from-log', file, ...fast]);
      expect(fromLog.code).toBe(0);
      expect(fromLog.stdout).toMatch(/retrying 1 date\(s\): 2021-11-02/);
      expect((await ws.cli(['gate', ...sel])).code).toBe(0);
      expect((await ws.cli(['retry', '--failed-runs', '--phase', '2', '--season', '2021-22'])).stdout).toMatch(
        /no failed phase 2 runs/,
      );
    } finally {
      ws.remove();
    }
  });
});

describe('the gate over a season range that includes the playoffs', () => {
  it('fails, naming the playoff dates whose player rows are missing', async () => {
    await ensureBuilt();
    const ws = createWorkspaceWithPlans();
    try {
      const sel = ['--season', '2021-22', '--start-date', '2022-04-08', '--end-date', '2022-04-17'];
      expect((await ws.cli(['stage1', ...sel, ...fast])).code).toBe(0);
      const gate = await ws.cli(['gate', ...sel, '--format', 'json']);
      expect(gate.code).toBe(1);
      const result = JSON.parse(gate.stdout);
      const byTable = Object.fromEntries(result.tables.map((t: { table: string }) => [t.table, t]));
      expect(byTable['nba_raw.nbac_player_boxscore'].missingDates).toEqual(['2022-04-16', '2022-04-17']);
      expect(byTable['nba_raw.nbac_gamebook_player_stats'].missingDates).toEqual(['2022-04-16', '2022-04-17']);
      expect(byTable['nba_raw.nbac_team_boxscore'].coveragePct).toBe(100);
      expect(byTable['nba_raw.nbac_schedule'].coveragePct).toBe(100);
      // The regular season inside the same range passes.
      expect((await ws.cli(['gate', ...sel, '--season-type', 'regular'])).code).toBe(0);
    } finally {
      ws.remove();
    }
  });
});

describe('parallel Stage 1', () => {
  it('leaves the same table contents as a serial one', async () => {
    await ensureBuilt();
    const serial = createWorkspaceWithPlans();
    const parallel = createWorkspaceWithPlans();
    try {
      const sel = ['--season', '2024-25', '--start-date', '2024-11-01', '--end-date', '2024-11-06'];
      expect((await serial.cli(['stage1', ...sel, '--parallelism', '1'])).code).toBe(0);
      expect((await parallel.cli(['stage1', ...sel, '--parallelism', '3'])).code).toBe(0);
      const dates = ['2024-11-01', '2024-11-02', '2024-11-03', '2024-11-04', '2024-11-05', '2024-11-06'];
      const a = await serial.withAdapters((ad) => rawTableRows(ad, dates));
      const b = await parallel.withAdapters((ad) => rawTableRows(ad, dates));
      expect(Object.values(a).every((rows) => rows.length > 0)).toBe(true);
      expect(b).toEqual(a);
    } finally {
      serial.remove();
      parallel.remove();
    }
  });
});
