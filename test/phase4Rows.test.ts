// Phase 4's rows against their formulas on the real 2021-22 data: the composite factors (rest, fatigue,
// pace, usage) and the v1 feature vector (each feature from the cache or the factors, or its default), with
// and without the date's own transaction; and the freshness check of daily runs. Values are computed by hand
// from the loaded Phase 3 tables in plain loops.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runDefensiveChecks } from '../core/checks/defensive.js';
import { runInOneCommit } from '../core/dateRun.js';
import { daysBetween, type IsoDate } from '../core/dates.js';
import { silentLogger } from '../core/log.js';
import {
  compositeFactorsProcessor,
  mlFeatureStoreProcessor,
  PHASE4_PROCESSORS,
  playerDailyCacheProcessor,
} from '../core/phase4/processors.js';
import { getProcessorDefinition } from '../core/pipeline/definition.js';
import type { Processor, ProcessorResult } from '../core/pipeline/processor.js';
import { requireDateInSeason } from '../core/pipeline/seasons.js';
import { mlFeatureStore, playerCompositeFactors, playerDailyCache } from '../core/schema/derived.js';
import { FEATURES_V1, featureColumn } from '../core/schema/features.js';
import type { Row } from '../core/schema/table.js';
import { LOADED_FIXTURE, type LoadedPipeline, openLoaded } from './support/loaded.js';

const log = silentLogger();
let tick = 0;
const clock = () => new Date(Date.UTC(2030, 0, 1) + 1000 * tick++);
const opts = { trigger: { command: 'test', stage: 'stage3' }, skipDownstreamTrigger: true, clock };
/** Dates with back-to-backs, long rests and 30+ game histories; Thanksgiving has no game. */
const DATES: IsoDate[] = ['2021-10-21', '2021-11-27', '2021-12-26'];
const NO_GAMES: IsoDate = '2021-11-25';

interface Summary {
  readonly d: IsoDate;
  readonly usage: number;
}

let t: LoadedPipeline;
let summaries: Map<number, Summary[]>;
let pace: { d: IsoDate; team: string; pace: number }[];
let home: Map<string, boolean>;

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const mean = (xs: readonly number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const close = (a: unknown, b: unknown) => (a === null || b === null ? a === b : Math.abs(Number(a) - Number(b)) < 1e-9);

// Only the fixture is read here; the processors run inside the cases (see boundaries.lookbacks.test.ts).
beforeAll(async () => {
  t = await openLoaded(LOADED_FIXTURE);
  const q = (sql: string) => t.pristine(sql);
  summaries = new Map();
  for (const r of await q(
    `SELECT player_id, CAST(game_date AS STRING) AS d, fga, fta, tov FROM nba_analytics.player_game_summary ORDER BY game_date`,
  )) {
    const id = Number(r.player_id);
    if (!summaries.has(id)) summaries.set(id, []);
    summaries.get(id)?.push({ d: String(r.d), usage: Number(r.fga) + 0.44 * Number(r.fta) + Number(r.tov) });
  }
  pace = (
    await q(`SELECT CAST(game_date AS STRING) AS d, team_abbr, pace FROM nba_analytics.team_offense_game_summary`)
  ).map((r) => ({ d: String(r.d), team: String(r.team_abbr), pace: Number(r.pace) }));
  home = new Map();
  for (const r of await q(
    `SELECT CAST(game_date AS STRING) AS d, home_team_abbr AS h, away_team_abbr AS a FROM nba_raw.nbac_schedule`,
  )) {
    home.set(`${r.d}|${r.h}`, true);
    home.set(`${r.d}|${r.a}`, false);
  }
});
afterAll(async () => t.dispose());

/** A processor's result for a date, computed on its own (no transaction, nothing written). */
function runAlone(processor: Processor, date: IsoDate): Promise<ProcessorResult> {
  const { season, seasonType } = requireDateInSeason(date);
  return processor.run({ ...t.adapters, date, season, seasonType, log });
}

/** The composite factors of a player on a date, by hand. */
function handFactors(playerId: number, team: string, opp: string, date: IsoDate, min7: number) {
  const games = (summaries.get(playerId) ?? []).filter((g) => g.d < date);
  const rest = games.length > 0 ? daysBetween((games.at(-1) as Summary).d, date) : null;
  const b2b = rest === 1;
  const teamPace = mean(pace.filter((p) => p.d < date && p.team === team).map((p) => p.pace));
  const oppPace = mean(pace.filter((p) => p.d < date && p.team === opp).map((p) => p.pace));
  const leaguePace = mean(pace.filter((p) => p.d < date).map((p) => p.pace));
  const season = mean(games.map((g) => g.usage));
  const last5 = mean(games.slice(-5).map((g) => g.usage));
  return {
    days_rest: rest,
    back_to_back: b2b,
    fatigue_score: clamp(min7 / 2 + (b2b ? 20 : 0) - (rest !== null && rest >= 3 ? 10 : 0), 0, 100),
    pace_factor:
      teamPace !== null && oppPace !== null && leaguePace ? clamp((teamPace + oppPace) / 2 / leaguePace, 0.8, 1.2) : 1,
    usage_trend: season && last5 !== null ? clamp((last5 - season) / season, -1, 1) : 0,
  };
}

/** The branches of the factor formulas, each to be taken by some row of some date. */
const BRANCHES: Record<string, (r: Row) => boolean> = {
  'no earlier game': (r) => r.days_rest === null && r.usage_trend === 0 && r.back_to_back === false,
  'back-to-back': (r) => r.back_to_back === true,
  'three days of rest or more': (r) => Number(r.days_rest) >= 3,
  'exactly three days of rest': (r) => r.days_rest === 3,
  'fatigue clamped at 0': (r) => r.fatigue_score === 0 && r.days_rest !== null,
  'fatigue above 0': (r) => Number(r.fatigue_score) > 0,
  'pace against the league': (r) => r.pace_factor !== 1,
  'usage trend': (r) => r.usage_trend !== 0,
};

describe('Phase 4 rows against their formulas', () => {
  it.each(DATES)('composite factors on %s: rest, back-to-back, fatigue, pace and usage', async (date) => {
    const result = await runAlone(compositeFactorsProcessor, date);
    const rows = result.write?.rows ?? [];
    expect(result).toMatchObject({ decision: 'processed', rows: rows.length });
    expect(rows.length).toBeGreaterThan(50);
    const wrong: string[] = [];
    for (const r of rows) {
      const hand = handFactors(
        Number(r.player_id),
        String(r.team_abbr),
        String(r.opponent_team_abbr),
        date,
        Number(r.minutes_last_7_days),
      );
      expect(r).toMatchObject({ cache_date: date, season: '2021-22' });
      expect(r.team_abbr).not.toBe(r.opponent_team_abbr);
      expect(home.has(`${date}|${r.team_abbr}`) && home.has(`${date}|${r.opponent_team_abbr}`)).toBe(true);
      for (const [k, v] of Object.entries(hand)) {
        if (!close(r[k], v)) wrong.push(`${r.player_id} ${k}: ${String(r[k])}, by hand ${String(v)}`);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  // On its own (it does not read what the cases above found, so the cases run in any order).
  it('takes every branch of the factor formulas on some date', async () => {
    const taken = new Set<string>();
    for (const date of DATES) {
      const rows = (await runAlone(compositeFactorsProcessor, date)).write?.rows ?? [];
      for (const [name, p] of Object.entries(BRANCHES)) if (rows.some(p)) taken.add(name);
    }
    expect([...taken].sort()).toEqual(Object.keys(BRANCHES).sort());
  });

  it.each(DATES)(
    'the v1 feature vector on %s: each feature from the cache or the factors, or its default',
    async (date) => {
      const cache = (await runAlone(playerDailyCacheProcessor, date)).write?.rows ?? [];
      const factors = (await runAlone(compositeFactorsProcessor, date)).write?.rows ?? [];
      await t.adapters.warehouse.commit({
        replace: [
          { table: playerDailyCache, date, rows: cache },
          { table: playerCompositeFactors, date, rows: factors },
        ],
        append: [],
      });
      const result = await runAlone(mlFeatureStoreProcessor, date);
      const rows = result.write?.rows ?? [];
      expect(rows).toHaveLength(cache.length);
      const byPlayer = new Map(factors.map((f) => [Number(f.player_id), f]));
      let defaulted = 0;
      const expected = cache.map((c) => {
        const f = byPlayer.get(Number(c.player_id)) as Row;
        const row: Row = {
          cache_date: date,
          season: '2021-22',
          player_id: Number(c.player_id),
          team_abbr: String(c.team_abbr),
          feature_version: 'v1',
          history_games: Number(c.games_played),
        };
        for (const feature of FEATURES_V1) {
          const raw =
            feature.name === 'is_home'
              ? home.get(`${date}|${c.team_abbr}`)
              : feature.name in c
                ? c[feature.name]
                : f[feature.name];
          let v = typeof raw === 'boolean' ? Number(raw) : num(raw);
          if (feature.name === 'days_rest' && v !== null) v = Math.min(v, 30);
          if (v === null) {
            v = feature.defaultValue;
            defaulted++;
          }
          row[featureColumn(feature.name)] = v;
        }
        return row;
      });
      const byId = (xs: readonly Row[]) => [...xs].sort((a, b) => Number(a.player_id) - Number(b.player_id));
      expect(byId(rows)).toEqual(byId(expected));
      expect(result).toMatchObject({
        decision: 'processed',
        rows: rows.length,
        details: { featureVersion: 'v1', defaultedValues: defaulted },
      });
      // The date bites: defaults, and home and away players.
      expect(defaulted).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.f_is_home))).toEqual(new Set([0, 1]));

      // The same vector from one transaction (Stage 3's way: cache, factors and features in one commit). The
      // committed cache and factors are emptied first, so that only the transaction's own rows can give it.
      await t.adapters.warehouse.commit({
        replace: [
          { table: playerDailyCache, date, rows: [] },
          { table: playerCompositeFactors, date, rows: [] },
        ],
        append: [],
      });
      const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
      const r = await runInOneCommit(ports, log, date, PHASE4_PROCESSORS, opts);
      expect(r.failures.map((x) => x.error.message)).toEqual([]);
      const committed = await t.adapters.warehouse.query(
        `SELECT * EXCLUDE (cache_date), CAST(cache_date AS STRING) AS cache_date FROM nba_precompute.ml_feature_store
        WHERE cache_date = CAST(@date AS DATE)`,
        { date },
      );
      const sorted = (xs: readonly Row[]) =>
        byId(xs).map((x) => Object.fromEntries(mlFeatureStore.columns.map((c) => [c.name, x[c.name] ?? null])));
      expect(sorted(committed)).toEqual(sorted(rows));
    },
  );

  it.each([
    { name: 'the cache', processor: playerDailyCacheProcessor },
    { name: 'the factors', processor: compositeFactorsProcessor },
    { name: 'the feature vector', processor: mlFeatureStoreProcessor },
  ])('a date without games: $name has no rows and says so', async ({ processor }) => {
    const result = await runAlone(processor, NO_GAMES);
    expect(result).toMatchObject({ rows: 0, decision: 'no_games' });
    expect(result.write?.rows).toEqual([]);
  });
});

describe('the freshness check of daily runs', () => {
  const def = getProcessorDefinition('player_game_summary');
  const date = DATES[0] as IsoDate;
  const season = requireDateInSeason(date).season;
  const DAY_MS = 86_400_000;
  const stale = {
    check: 'freshness',
    message: 'upstream not refreshed in the last 24 hours: nbac_player_boxscore',
    missingDates: [],
    missingGames: [],
  };
  /** When the upstream's latest run on the date finished, read by DuckDB (ms since the epoch). */
  const upstreamFinished = async () => {
    const rows = await t.pristine(
      `SELECT MAX(epoch_ms(finished_at)) AS ms FROM nba_reference.processor_run_history
        WHERE processor_name = 'nbac_player_boxscore' AND data_date = CAST('${date}' AS DATE)`,
    );
    return Number(rows[0]?.ms);
  };

  it('backfill mode skips it, whatever the clock says', async () => {
    const late = new Date((await upstreamFinished()) + 365 * DAY_MS);
    const report = await runDefensiveChecks(t.adapters.warehouse, def, season, date, 'backfill', undefined, () => late);
    expect(report.failures).toEqual([]);
    expect(report.skipped).toEqual([
      { check: 'freshness', reason: 'backfill mode loads history: freshness only applies to live daily runs' },
    ]);
  });

  it.each([
    { name: 'a success exactly 24 hours old is fresh', after: DAY_MS, failures: [] },
    { name: 'one millisecond more is stale', after: DAY_MS + 1, failures: [stale] },
    { name: 'a success an hour old is fresh', after: 3_600_000, failures: [] },
  ])('daily mode: $name', async ({ after, failures }) => {
    const now = new Date((await upstreamFinished()) + after);
    const report = await runDefensiveChecks(t.adapters.warehouse, def, season, date, 'daily', undefined, () => now);
    expect(report.skipped).toEqual([]);
    expect(report.failures).toEqual(failures);
  });

  it('daily mode without a clock of its own reads the time: runs from the fixture’s build are days old', async () => {
    const report = await runDefensiveChecks(t.adapters.warehouse, def, season, date, 'daily');
    expect(report.failures).toEqual([stale]);
  });

  it('daily mode names every stale upstream: the cache reads the summaries and the rosters', async () => {
    const cache = getProcessorDefinition('player_daily_cache');
    const late = new Date((await upstreamFinished()) + 365 * DAY_MS);
    const report = await runDefensiveChecks(t.adapters.warehouse, cache, season, date, 'daily', undefined, () => late);
    expect(report.failures.find((f) => f.check === 'freshness')?.message).toBe(
      'upstream not refreshed in the last 24 hours: player_game_summary, espn_team_roster',
    );
  });

  it('daily mode: an upstream without any run on the date is stale', async () => {
    const after: IsoDate = '2022-01-05';
    const report = await runDefensiveChecks(
      t.adapters.warehouse,
      def,
      requireDateInSeason(after).season,
      after,
      'daily',
      undefined,
      () => new Date(Date.UTC(2022, 0, 5)),
    );
    expect(report.failures.find((f) => f.check === 'freshness')).toEqual(stale);
  });

  it('daily mode: an upstream whose latest run failed is stale however recent', async () => {
    const finished = await upstreamFinished();
    const w = t.adapters.warehouse;
    const mark = (status: string) =>
      w.query(
        `UPDATE nba_reference.processor_run_history SET status = '${status}'
          WHERE processor_name = 'nbac_player_boxscore' AND data_date = CAST('${date}' AS DATE)`,
      );
    await mark('failed');
    try {
      const report = await runDefensiveChecks(w, def, season, date, 'daily', undefined, () => new Date(finished + 1));
      expect(report.failures.find((f) => f.check === 'freshness')).toEqual(stale);
    } finally {
      await mark('success'); // the other cases read the fixture's successful runs
    }
  });
});
