// Phase 1-4 over all four real regular seasons: factors inside their documented ranges, a feature store
// with no null or non-finite value, and season sums that agree with the box scores.

import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Adapters, openAdapters } from '../core/adapters/index.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { loadConfig } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { FACTOR_RANGES } from '../core/phase4/factors.js';
import { SEASONS } from '../core/pipeline/seasons.js';
import { type PlanDate, readPlan, selectDates } from '../core/plan.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { FEATURES_V1, featureColumn } from '../core/schema/features.js';
import { runStage3, STAGE3_BATCH_SIZE } from '../core/stages/stage3.js';
import { validate } from '../core/stages/validate.js';
import { tableHashes } from './support/hashes.js';

const log = silentLogger();
const opts = { trigger: { command: 'test' }, skipDownstreamTrigger: true };
/** The four seasons' Phase 1-2, then Stage 3 date by date (`--batch-size 1`): what most cases read. */
let t: { dir: string; adapters: Adapters };
/** A copy of the same Phase 1-2, then Stage 3 in batches of the default size. */
let batched: { dir: string; adapters: Adapters };
const selections: { season: string; dates: PlanDate[] }[] = [];

async function openAt(dir: string): Promise<Adapters> {
  return openAdapters(
    loadConfig({
      env: {},
      flags: { warehouse: `duckdb:${join(dir, 'warehouse.duckdb')}`, objects: `file:${join(dir, 'objects')}` },
    }),
  );
}

/** Stage 3 of every season, one after the other, at a batch size. */
async function stage3(adapters: Adapters, batchSize: number): Promise<void> {
  const ports = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
  for (const { season, dates } of selections) {
    const r = await runStage3(ports, log, { season, dates, batchSize });
    expect(r.summary, `${season} at --batch-size ${batchSize}`).toMatchObject({ status: 'succeeded' });
  }
}

/** Every Phase 3-4 table's hash, and the Phase 3-4 run history without what differs by run (ids, times). */
async function snapshot(a: Adapters): Promise<{ tables: Record<string, string>; runs: unknown[] }> {
  const runs = await a.warehouse.query(
    `SELECT * EXCLUDE (run_id, started_at, finished_at, data_date), CAST(data_date AS VARCHAR) AS data_date
       FROM nba_reference.processor_run_history
      WHERE phase >= 3 ORDER BY data_date, phase, processor_name, status`,
  );
  return { tables: await tableHashes(a, [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]), runs };
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nba-backfill-test-'));
  let adapters = await openAt(dir);
  for (const season of SEASONS) {
    const dates = selectDates(await readPlan(join(packageRoot(), 'plans'), season.label), season, {
      seasonType: 'regular',
    });
    selections.push({ season: season.label, dates });
    for (const d of dates) expect((await runPhases1And2(adapters, log, d.date, opts)).failures).toEqual([]);
  }
  // Both runs start from the same file: closed (checkpointed) and copied.
  await adapters.close();
  const copy = mkdtempSync(join(tmpdir(), 'nba-backfill-test-'));
  cpSync(join(dir, 'warehouse.duckdb'), join(copy, 'warehouse.duckdb'));
  adapters = await openAt(dir);
  t = { dir, adapters };
  batched = { dir: copy, adapters: await openAt(copy) };
  // Two files, two connections: one run's JavaScript goes on while the other waits for DuckDB.
  await Promise.all([stage3(t.adapters, 1), stage3(batched.adapters, STAGE3_BATCH_SIZE)]);
}, 1_200_000);
afterAll(async () => {
  for (const p of [t, batched]) {
    if (!p) continue;
    await p.adapters.close();
    rmSync(p.dir, { recursive: true, force: true });
  }
});

describe('Stage 3 in batches over the four regular seasons', () => {
  it('the default batch size and --batch-size 1 give identical content hashes for all six Phase 3-4 tables and run history (apart from run ids and times)', async () => {
    expect(STAGE3_BATCH_SIZE).toBeGreaterThan(1);
    const byDate = await snapshot(t.adapters);
    expect(byDate.runs).toHaveLength(652 * 6);
    expect(Object.values(byDate.tables).every((h) => !h.startsWith('0:'))).toBe(true);
    expect(await snapshot(batched.adapters)).toEqual(byDate);
  });
});

describe('Phase 3-4 over the four regular seasons', () => {
  it('ran every Phase 3-4 processor on all 652 game dates', async () => {
    const [r] = await t.adapters.warehouse.query(
      `SELECT COUNT(DISTINCT data_date) AS dates, COUNT(*) AS runs FROM nba_reference.processor_run_history
        WHERE phase >= 3 AND status = 'success'`,
    );
    expect(r).toEqual({ dates: 652, runs: 652 * 6 });
  });

  it.each(FACTOR_RANGES.map((f) => [f.column, f.min, f.max] as const))(
    'keeps %s inside [%d, %d]',
    async (column, min, max) => {
      const [r] = await t.adapters.warehouse.query(
        `SELECT COUNT(*) AS n, MIN(${column}) AS lo, MAX(${column}) AS hi,
              SUM(CASE WHEN ${column} IS NULL OR ${column} < @min OR ${column} > @max THEN 1 ELSE 0 END) AS outside
         FROM nba_precompute.player_composite_factors`,
        { min, max },
      );
      expect(Number(r?.n)).toBeGreaterThan(100_000);
      expect(r?.outside).toBe(0);
      // The factor varies: a constant would satisfy its range and mean nothing.
      expect(Number(r?.hi)).toBeGreaterThan(Number(r?.lo));
    },
  );

  it('holds only finite numbers in the feature store, every feature of version v1 named', async () => {
    const checks = FEATURES_V1.map(
      (f) =>
        `SUM(CASE WHEN ${featureColumn(f.name)} IS NULL OR isnan(${featureColumn(f.name)}) OR isinf(${featureColumn(f.name)}) THEN 1 ELSE 0 END) AS ${f.name}`,
    );
    const [r] = await t.adapters.warehouse.query(
      `SELECT COUNT(*) AS n, COUNT(DISTINCT feature_version) AS versions, ${checks.join(', ')} FROM nba_precompute.ml_feature_store`,
    );
    const { n, versions, ...bad } = r as Record<string, number>;
    expect(n).toBeGreaterThan(100_000);
    expect(versions).toBe(1);
    expect(Object.values(bad).every((v) => v === 0)).toBe(true);
    expect(Object.keys(bad)).toEqual(FEATURES_V1.map((f) => f.name));
  });

  it('has a cache row for every rostered player of every team playing each date', async () => {
    const [r] = await t.adapters.warehouse.query(
      `SELECT (SELECT COUNT(*) FROM nba_precompute.player_daily_cache) AS cache,
              (SELECT COUNT(*) FROM nba_precompute.ml_feature_store) AS features,
              (SELECT COUNT(*) FROM nba_raw.espn_team_roster) AS roster`,
    );
    expect(r?.cache).toBe(r?.roster);
    expect(r?.features).toBe(r?.roster);
  });

  it('keeps season sums: every player’s points over player_game_summary equal his box score total', async () => {
    const bad = await t.adapters.warehouse.query(
      `SELECT b.season, b.player_id FROM
         (SELECT season, player_id, SUM(points) AS p FROM nba_raw.nbac_player_boxscore GROUP BY season, player_id) AS b
         FULL JOIN (SELECT season, player_id, SUM(points) AS p FROM nba_analytics.player_game_summary GROUP BY season, player_id) AS s
           ON s.player_id = b.player_id AND s.season = b.season
        WHERE s.p IS DISTINCT FROM b.p`,
    );
    expect(bad).toEqual([]);
  });

  it('validates all four regular seasons together, without the playoffs that fall between them', async () => {
    const report = await validate(t.adapters.warehouse, selections);
    expect(report.checks.length).toBeGreaterThan(15);
    expect(report.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.failures[0]?.detail}`)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.dates).toHaveLength(652);
    expect(report.coverage.every((c) => c.pct === 100)).toBe(true);
  });

  it('resets the windows each season: a season’s first game has no previous-game averages', async () => {
    const [r] = await t.adapters.warehouse.query(
      `SELECT COUNT(*) AS n, COUNT(pts_avg_last_10) AS with_avg, MAX(season_games_played) AS most
         FROM nba_analytics.player_game_summary WHERE season_games_played = 1`,
    );
    expect(Number(r?.n)).toBeGreaterThan(2000);
    expect(r).toMatchObject({ with_avg: 0, most: 1 });
  });
});
