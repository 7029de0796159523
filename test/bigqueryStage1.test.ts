// Stage 1 on BigQuery at parallelism 8: eight pods (local job runtime processes) write the same five raw
// tables at once through the BigQuery double, which cancels concurrent mutating transactions as BigQuery does
// (test/support/bigqueryContention.ts). Each date's partitions are replaced by load jobs and its run history
// appended last, so nothing is cancelled. A date whose load fails midway is not counted by the gate and is
// reloaded whole by the next run.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BigQueryDouble } from './support/bigqueryServer.js';
import { createWorkspaceWithPlans, ensureBuilt, startCli, type Workspace } from './support/workspace.js';

const PROJECT = 'nba-stage1-test';
const WAREHOUSE = ['--warehouse', `bigquery://${PROJECT}`];
const RANGE = ['--season', '2021-22', '--season-type', 'regular', '--start-date', '2021-10-19'];
// The broken date: its player box score load fails; every other table of it loads.
const BROKEN = '2021-10-21';

let double: BigQueryDouble;
let ws: Workspace;
let env: Record<string, string>;

beforeAll(async () => {
  await ensureBuilt();
  // Latencies long enough for the pods' writes to overlap, short enough for a test.
  double = await BigQueryDouble.start({
    project: PROJECT,
    latencyMs: { query: 5, dml: 30, scriptStatement: 30, load: 60, copy: 30 },
  });
  ws = createWorkspaceWithPlans();
  env = { BIGQUERY_EMULATOR_HOST: double.url };
}, 120_000);
afterAll(async () => {
  await double?.close();
  ws?.remove();
});

const isBrokenLoad = (r: { upload?: string; body: unknown }) =>
  r.upload !== undefined &&
  (r.body as { configuration?: { load?: { destinationTable?: { tableId?: string } } } }).configuration?.load
    ?.destinationTable?.tableId === `nbac_player_boxscore$${BROKEN.replaceAll('-', '')}`;

describe('Stage 1 on BigQuery with eight pods at once', () => {
  let first: Awaited<ReturnType<Workspace['cli']>>;
  let jobsBefore: number;

  beforeAll(async () => {
    double.inject({ match: isBrokenLoad, status: 400, reason: 'invalid', message: 'injected: this load fails' });
    first = await ws.cli([...WAREHOUSE, 'stage1', ...RANGE, '--end-date', '2021-11-01', '--parallelism', '8'], env);
    jobsBefore = double.jobLog.length;
  }, 300_000);

  it('loads every date but the broken one, with no transaction cancelled', () => {
    expect(first.code, first.stderr).toBe(1);
    expect(first.stdout).toMatch(/13 of 14 dates loaded/);
    expect(double.abortedTransactions).toBe(0);
    const kinds = new Set(double.jobLog.map((j) => j.kind));
    expect([...kinds].sort()).toEqual(['dml', 'load', 'query']);
    // The pods' loads overlapped: some load started before another one ended.
    const loads = double.jobLog.filter((j) => j.kind === 'load');
    expect(loads.some((a) => loads.some((b) => a !== b && a.start < (b.end ?? 0) && b.start < (a.end ?? 0)))).toBe(
      true,
    );
    expect(double.violations).toEqual([]);
  });

  it('the gate does not count the date whose loads stopped midway, though some of its tables were replaced', async () => {
    const schedule = await double.rows(`nba_raw`, 'nbac_schedule', 'game_id');
    expect(schedule.some((r) => r.game_date === BROKEN)).toBe(true);
    const gate = await ws.cli([...WAREHOUSE, 'gate', ...RANGE, '--end-date', '2021-11-01', '--format', 'json'], env);
    expect(gate.code).toBe(1);
    const report = JSON.parse(gate.stdout) as { passed: boolean; problems?: unknown };
    expect(report.passed).toBe(false);
    expect(gate.stdout).toContain(BROKEN);
  });

  it('the next run reloads that date whole, and the gate passes', async () => {
    const again = await ws.cli(
      [...WAREHOUSE, 'stage1', ...RANGE, '--end-date', '2021-11-01', '--parallelism', '8'],
      env,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(double.jobLog.length).toBeGreaterThan(jobsBefore);
    const gate = await ws.cli([...WAREHOUSE, 'gate', ...RANGE, '--end-date', '2021-11-01', '--format', 'json'], env);
    expect(gate.code, gate.stdout).toBe(0);
    const boxes = await double.rows('nba_raw', 'nbac_player_boxscore', 'game_id, player_id');
    expect(boxes.some((r) => r.game_date === BROKEN)).toBe(true);
    expect(double.abortedTransactions).toBe(0);
  });
});

describe('Stage 1 on BigQuery killed (SIGKILL) between the loads of a date', () => {
  const DATE = '2021-10-27';
  const ONE_DAY = ['--season', '2021-22', '--season-type', 'regular', '--start-date', DATE, '--end-date', DATE];
  const LOAD_MS = 61;
  let killed: BigQueryDouble;
  let kws: Workspace;
  let kenv: Record<string, string>;
  let onLoad: (n: number) => void = () => {};

  beforeAll(async () => {
    let loads = 0;
    // Only loads wait LOAD_MS, so the sleep hook knows when the n-th load of the run has begun.
    killed = await BigQueryDouble.start({
      project: PROJECT,
      latencyMs: { query: 1, dml: 2, scriptStatement: 2, load: LOAD_MS, copy: 3 },
      sleep: (ms) => {
        if (ms === LOAD_MS) onLoad(++loads);
        return new Promise((r) => setTimeout(r, ms));
      },
    });
    kws = createWorkspaceWithPlans();
    kenv = { BIGQUERY_EMULATOR_HOST: killed.url };
  }, 120_000);
  afterAll(async () => {
    await killed?.close();
    kws?.remove();
  });

  /** The date's rows in each raw table with game rows. */
  async function dayRows(): Promise<Record<string, Record<string, unknown>[]>> {
    const out: Record<string, Record<string, unknown>[]> = {};
    for (const [table, order] of [
      ['nbac_schedule', 'game_id'],
      ['nbac_team_boxscore', 'game_id, team_id'],
      ['nbac_player_boxscore', 'game_id, player_id'],
      ['nbac_gamebook_player_stats', 'game_id, player_id'],
    ] as const) {
      out[table] = (await killed.rows('nba_raw', table, order)).filter((r) => String(r.game_date) === DATE);
    }
    return out;
  }

  it('leaves the date uncounted by the gate, though an earlier run had loaded it, and the next run reloads it whole', async () => {
    const clean = await kws.cli([...WAREHOUSE, 'stage1', ...ONE_DAY, '--parallelism', '1'], kenv);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect((await kws.cli([...WAREHOUSE, 'gate', ...ONE_DAY, '--format', 'json'], kenv)).code).toBe(0);
    const loaded = await dayRows();
    expect(Object.values(loaded).every((rows) => rows.length > 0)).toBe(true);
    const loadsBefore = killed.jobLog.filter((j) => j.kind === 'load').length;
    // Reloading the date (--force: its files are those of the clean load, which would otherwise be recorded as
    // unchanged), killed once its third load has begun: the earlier success must not count for it now.
    const third = new Promise<void>((resolve) => {
      onLoad = (n) => {
        if (n === loadsBefore + 3) resolve();
      };
    });
    const run = startCli(kws.dir, [...WAREHOUSE, 'stage1', ...ONE_DAY, '--parallelism', '1', '--force'], kenv);
    await third;
    run.child.kill('SIGKILL');
    expect((await run.done).code).toBeNull();
    onLoad = () => {};
    // The loads already sent run to their end, as BigQuery's jobs do; the run history was never appended, and
    // the pending marker appended before the loads is now the date's latest run.
    const loadsOfKilledRun = killed.jobLog.filter((j) => j.kind === 'load').length;
    expect(loadsOfKilledRun).toBeGreaterThanOrEqual(loadsBefore + 3);
    const gate = await kws.cli([...WAREHOUSE, 'gate', ...ONE_DAY, '--format', 'json'], kenv);
    expect(gate.code, gate.stdout).toBe(1);
    expect(gate.stdout).toContain(DATE);

    // Without --force: the pending markers are the latest runs, so the date is not taken as unchanged.
    const again = await kws.cli([...WAREHOUSE, 'stage1', ...ONE_DAY, '--parallelism', '1'], kenv);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).not.toContain('unchanged');
    expect(killed.jobLog.filter((j) => j.kind === 'load').length).toBeGreaterThan(loadsOfKilledRun);
    const passed = await kws.cli([...WAREHOUSE, 'gate', ...ONE_DAY, '--format', 'json'], kenv);
    expect(passed.code, passed.stdout).toBe(0);
    // Whole, and once: the day's rows are those the uninterrupted first run loaded.
    expect(await dayRows()).toEqual(loaded);
    expect(killed.violations).toEqual([]);
  }, 300_000);
});
