// Phase 1-4 over all four real regular seasons: factors inside their documented ranges, a feature store
// with no null or non-finite value, and season sums that agree with the box scores.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runPhases1And2, runPhases3And4 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { FACTOR_RANGES } from '../core/phase4/factors.js';
import { SEASONS } from '../core/pipeline/seasons.js';
import { type PlanDate, readPlan, selectDates } from '../core/plan.js';
import { FEATURES_V1, featureColumn } from '../core/schema/features.js';
import { validate } from '../core/stages/validate.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';

const log = silentLogger();
const opts = { trigger: { command: 'test' }, skipDownstreamTrigger: true };
let t: TestPipeline;
const selections: { season: string; dates: PlanDate[] }[] = [];

beforeAll(async () => {
  t = await openTestPipeline();
  const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
  for (const season of SEASONS) {
    const dates = selectDates(await readPlan(join(packageRoot(), 'plans'), season.label), season, {
      seasonType: 'regular',
    });
    selections.push({ season: season.label, dates });
    for (const d of dates) expect((await runPhases1And2(ports, log, d.date, opts)).failures).toEqual([]);
    for (const d of dates) {
      const r = await runPhases3And4(ports, log, d.date, opts);
      expect(r.failures.map((f) => `${d.date} ${f.processor}: ${f.error.message}`)).toEqual([]);
    }
  }
}, 600_000);
afterAll(async () => t.dispose());

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
