// Stage 4's checks one by one, in-process on a hand-made warehouse (real DuckDB, in memory): one date, one game,
// every table complete; each case breaks one thing, at the edge of its rule where the rule has a number, and the
// report must fail exactly the checks it names, with exactly the failures it lists.

import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { FACTOR_RANGES } from '../core/phase4/factors.js';
import { PROCESSORS } from '../core/pipeline/definition.js';
import type { PlanDate } from '../core/plan.js';
import {
  mlFeatureStore,
  playerCompositeFactors,
  playerDailyCache,
  playerGameSummary,
  teamDefenseGameSummary,
  teamOffenseGameSummary,
} from '../core/schema/derived.js';
import { FEATURES_V1, featureColumn } from '../core/schema/features.js';
import {
  espnTeamRoster,
  nbacGamebookPlayerStats,
  nbacPlayerBoxscore,
  nbacSchedule,
  nbacTeamBoxscore,
  processorRunHistory,
} from '../core/schema/raw.js';
import type { Row, SqlValue, TableSchema } from '../core/schema/table.js';
import { validate } from '../core/stages/validate.js';
import type { ValidationFailure, ValidationReport } from '../core/stages/validation.js';
import { openMemoryWarehouse } from './support/memoryWarehouse.js';

const D1 = '2021-10-19';
const D2 = '2021-10-20';
const D3 = '2021-10-21';
const GENERATED = new Date(Date.UTC(2024, 0, 1));

const TABLES = [
  nbacSchedule,
  nbacPlayerBoxscore,
  nbacGamebookPlayerStats,
  nbacTeamBoxscore,
  espnTeamRoster,
  playerGameSummary,
  teamOffenseGameSummary,
  teamDefenseGameSummary,
  playerDailyCache,
  playerCompositeFactors,
  mlFeatureStore,
  processorRunHistory,
];

/** A row of the table with every column set to a plain value of its type, then `over`. */
function fill(table: TableSchema, date: string, over: Row): Row {
  const row: Row = {};
  for (const c of table.columns) {
    const plain: Record<string, SqlValue> = {
      STRING: 'x',
      INT64: 1,
      FLOAT64: 1,
      BOOL: false,
      DATE: date,
      TIMESTAMP: `${date}T12:00:00.000Z`,
      JSON: '{}',
    };
    row[c.name] = plain[c.type] ?? null;
  }
  return { ...row, ...over };
}

/**
 * One date's complete data: game `gameId`, HOM 100 - AWY 90; player 1 (HOM) scored all 100, player 2 (AWY) all
 * 90; player 3 (HOM) is rostered and did not play, so the Phase 4 tables have three rows and the others two.
 */
function dateRows(date: string, gameId: string, second = false): Map<TableSchema, Row[]> {
  // A second game of the date: teams HM2 and AW2, players 11, 12 and 13.
  const [home, away, p] = second ? ['HM2', 'AW2', 10] : ['HOM', 'AWY', 0];
  const teams = [
    { team: home, opp: away, pts: 100, player: p + 1 },
    { team: away, opp: home, pts: 90, player: p + 2 },
  ];
  const players = (table: TableSchema, over: Row = {}) =>
    teams.map((t) =>
      fill(table, date, {
        game_date: date,
        game_id: gameId,
        team_abbr: t.team,
        player_id: t.player,
        points: t.pts,
        ...over,
      }),
    );
  const rostered = [
    { team: home, player: p + 1 },
    { team: away, player: p + 2 },
    { team: home, player: p + 3 },
  ];
  const perPlayer = (table: TableSchema, over: Row = {}) =>
    rostered.map((r) => fill(table, date, { cache_date: date, player_id: r.player, ...over }));
  return new Map<TableSchema, Row[]>([
    [
      nbacSchedule,
      [
        fill(nbacSchedule, date, {
          game_date: date,
          game_id: gameId,
          home_team_abbr: home,
          away_team_abbr: away,
          home_score: 100,
          away_score: 90,
          game_status: 'Final',
        }),
      ],
    ],
    [nbacPlayerBoxscore, players(nbacPlayerBoxscore, { fg_pct: 0.5, fg3_pct: 0.5, ft_pct: 0.5 })],
    [nbacGamebookPlayerStats, players(nbacGamebookPlayerStats)],
    [
      nbacTeamBoxscore,
      teams.map((t) =>
        fill(nbacTeamBoxscore, date, {
          game_date: date,
          game_id: gameId,
          team_abbr: t.team,
          points: t.pts,
          derived_from: 'player_rows',
        }),
      ),
    ],
    [
      espnTeamRoster,
      rostered.map((r) => fill(espnTeamRoster, date, { roster_date: date, team_abbr: r.team, player_id: r.player })),
    ],
    [
      playerGameSummary,
      players(playerGameSummary, {
        minutes: 30,
        season_games_played: 1,
        fga: 10,
        fta: 0,
        ts_pct: 0.5,
        pts_avg_last_5: null,
        pts_avg_last_10: null,
        min_avg_last_5: null,
        days_rest: null,
      }),
    ],
    [teamOffenseGameSummary, players(teamOffenseGameSummary, { player_id: null })],
    [teamDefenseGameSummary, players(teamDefenseGameSummary, { player_id: null })],
    [playerDailyCache, perPlayer(playerDailyCache)],
    [
      playerCompositeFactors,
      perPlayer(playerCompositeFactors, Object.fromEntries(FACTOR_RANGES.map((f) => [f.column, f.min]))),
    ],
    [mlFeatureStore, perPlayer(mlFeatureStore)],
    [
      processorRunHistory,
      PROCESSORS.map((p, i) =>
        fill(processorRunHistory, date, {
          run_id: `${date}-${gameId}-${i}`,
          processor_name: p.name,
          data_date: date,
          status: 'success',
          error_message: null,
        }),
      ),
    ],
  ]);
}

const CHECKS = [
  'runs_complete',
  'runs_current',
  'rows_present',
  'one_summary_per_box_row',
  'two_team_rows_per_game',
  'cache_rows_per_rostered_player',
  'player_summary_critical_fields',
  'team_offense_game_summary_critical_fields',
  'team_defense_game_summary_critical_fields',
  'ts_pct_in_range',
  'raw_percentages_in_range',
  'minutes_in_range',
  ...FACTOR_RANGES.map((f) => `${f.column}_in_range`),
  'features_finite',
  'team_points_equal_player_sums',
  'schedule_scores_agree',
];

const G1 = '0022100001';
const G3 = '0022100003';
const planDate = (date: string, gameId: string): PlanDate => ({
  date,
  seasonType: 'Regular Season' as PlanDate['seasonType'],
  games: 1,
  gameIds: [gameId],
});

type Fixture = Map<TableSchema, Row[]>;
const rowsOf = (fx: Fixture, table: TableSchema): Row[] => fx.get(table) ?? [];
/** The first row of `table` matching `where`, changed by `over`. */
function change(fx: Fixture, table: TableSchema, where: Row, over: Row): void {
  const rows = rowsOf(fx, table);
  const i = rows.findIndex((r) => Object.entries(where).every(([k, v]) => r[k] === v));
  if (i < 0) throw new Error(`no ${table.name} row ${JSON.stringify(where)}`);
  rows[i] = { ...rows[i], ...over };
}
function drop(fx: Fixture, table: TableSchema, where: Row): void {
  const rows = rowsOf(fx, table);
  const i = rows.findIndex((r) => Object.entries(where).every(([k, v]) => r[k] === v));
  if (i < 0) throw new Error(`no ${table.name} row ${JSON.stringify(where)}`);
  rows.splice(i, 1);
}

/**
 * The table as a warehouse that does not enforce NOT NULL holds it: the checks for NULL in required fields are
 * there for such a warehouse (and for rows written before a column became required).
 */
const relaxed = (t: TableSchema): TableSchema => ({ ...t, columns: t.columns.map((c) => ({ ...c, nullable: true })) });

async function reportKeeping(
  fixtures: Fixture[],
  selections: { season: string; dates: PlanDate[] }[],
  failuresKept?: number,
): Promise<ValidationReport> {
  const warehouse = await openMemoryWarehouse();
  try {
    await warehouse.ensureTables(TABLES.map(relaxed));
    for (const fx of fixtures) {
      for (const [table, rows] of fx) if (rows.length > 0) await warehouse.append(relaxed(table), rows);
    }
    return await validate(warehouse, selections, () => GENERATED, failuresKept === undefined ? {} : { failuresKept });
  } finally {
    await warehouse.close();
  }
}

const report = (fixtures: Fixture[], selections: { season: string; dates: PlanDate[] }[]) =>
  reportKeeping(fixtures, selections);

const failedChecks = (r: ValidationReport): Record<string, readonly ValidationFailure[]> =>
  Object.fromEntries(r.checks.filter((c) => !c.passed).map((c) => [c.name, c.failures]));

const PGS = 'nba_analytics.player_game_summary';
const NONE: Record<string, ValidationFailure[]> = {};
const PGS_KEY1 = `game_id=${G1}, player_id=1`;
const fail = (table: string, detail: string, key: string | null = null, date = D1): ValidationFailure => ({
  table,
  date,
  key,
  detail,
});

describe('validate on a complete date', () => {
  let fx: Fixture;
  beforeEach(() => {
    fx = dateRows(D1, G1);
  });

  it('a table-date with nothing expected is no data (pct null), not 100%; one whose processor never ran is not run', async () => {
    // Stage 3 never ran on the date: no Phase 3-4 run, no Phase 3-4 row; and no player rows expected for the
    // cache (no rostered player of a playing team).
    const phase34 = new Set(PROCESSORS.filter((p) => p.phase >= 3).map((p) => p.name));
    fx.set(
      processorRunHistory,
      (fx.get(processorRunHistory) ?? []).filter((r) => !phase34.has(String(r.processor_name))),
    );
    for (const t of [playerGameSummary, playerDailyCache, playerCompositeFactors, mlFeatureStore]) fx.set(t, []);
    fx.set(espnTeamRoster, []);
    const r = await report([fx], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    const cell = (table: string) => r.coverage.find((c) => c.table === table);
    // The cache expects one row per rostered player: none here, so nothing expected, and it never ran.
    expect(cell('nba_precompute.player_daily_cache')).toMatchObject({
      expected: 0,
      present: 0,
      pct: null,
      notRun: true,
    });
    expect(cell(PGS)).toMatchObject({ pct: 0, notRun: true });
    expect(cell('nba_raw.nbac_schedule')).toEqual({
      table: 'nba_raw.nbac_schedule',
      date: D1,
      expected: 1,
      present: 1,
      pct: 100,
    });
    // No data is no failure of rows_present; the summary that never ran is.
    const rowsPresent = r.checks.find((c) => c.name === 'rows_present');
    expect(rowsPresent?.failures.map((f) => f.table)).not.toContain('nba_precompute.player_daily_cache');
    expect(rowsPresent?.failures.map((f) => f.table)).toContain(PGS);
  });

  it('passes every check, with full coverage of every table, and says what it read', async () => {
    const r = await report([fx], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(failedChecks(r)).toEqual({});
    expect(r.passed).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual(CHECKS);
    expect(r.checks.every((c) => c.failureCount === 0 && c.failures.length === 0)).toBe(true);
    expect({ seasons: r.seasons, range: r.range, dates: r.dates, generatedAt: r.generatedAt }).toEqual({
      seasons: ['2021-22'],
      range: { start: D1, end: D1 },
      dates: [D1],
      generatedAt: GENERATED.toISOString(),
    });
    expect(r.coverage.map((c) => [c.table, c.date, c.expected, c.present, c.pct])).toEqual([
      ['nba_raw.nbac_schedule', D1, 1, 1, 100],
      ['nba_raw.nbac_player_boxscore', D1, 1, 1, 100],
      ['nba_raw.nbac_gamebook_player_stats', D1, 1, 1, 100],
      ['nba_raw.nbac_team_boxscore', D1, 1, 1, 100],
      ['nba_raw.espn_team_roster', D1, 2, 2, 100],
      [PGS, D1, 2, 2, 100],
      ['nba_analytics.team_offense_game_summary', D1, 2, 2, 100],
      ['nba_analytics.team_defense_game_summary', D1, 2, 2, 100],
      ['nba_precompute.player_daily_cache', D1, 3, 3, 100],
      ['nba_precompute.player_composite_factors', D1, 3, 3, 100],
      ['nba_precompute.ml_feature_store', D1, 3, 3, 100],
    ]);
    expect(r.tables).toEqual(r.coverage.map((c) => c.table));
    expect(r.checks.map((c) => [c.name, c.category, c.description])).toMatchInlineSnapshot(`
      [
        [
          "runs_complete",
          "completeness",
          "every Phase 1-4 processor’s latest run on every date succeeded",
        ],
        [
          "runs_current",
          "completeness",
          "no Phase 3-4 result read an input that was corrected after it ran (no stale date)",
        ],
        [
          "rows_present",
          "completeness",
          "every table holds every game (or every expected row) of every date",
        ],
        [
          "one_summary_per_box_row",
          "row_counts",
          "one player_game_summary row per player box score row",
        ],
        [
          "two_team_rows_per_game",
          "row_counts",
          "two rows per game in the team tables",
        ],
        [
          "cache_rows_per_rostered_player",
          "row_counts",
          "a cache, factors and feature row for every player of every team playing the date",
        ],
        [
          "player_summary_critical_fields",
          "nulls",
          "player_game_summary: points, minutes, games played set; averages and rest NULL only before the first game; TS% only without attempts",
        ],
        [
          "team_offense_game_summary_critical_fields",
          "nulls",
          "team_offense_game_summary: points, possessions, off_rating, pace set",
        ],
        [
          "team_defense_game_summary_critical_fields",
          "nulls",
          "team_defense_game_summary: opponent_points, def_rating, opponent_fg_pct set",
        ],
        [
          "ts_pct_in_range",
          "ranges",
          "true shooting in [0, 1.5] (free throws alone can pass 1)",
        ],
        [
          "raw_percentages_in_range",
          "ranges",
          "nbac_player_boxscore: FG%, 3P%, FT% in [0, 1]",
        ],
        [
          "minutes_in_range",
          "ranges",
          "player minutes in [0, 70]",
        ],
        [
          "fatigue_score_in_range",
          "ranges",
          "player_composite_factors.fatigue_score in [0, 100]",
        ],
        [
          "matchup_score_in_range",
          "ranges",
          "player_composite_factors.matchup_score in [-30, 30]",
        ],
        [
          "pace_factor_in_range",
          "ranges",
          "player_composite_factors.pace_factor in [0.8, 1.2]",
        ],
        [
          "usage_trend_in_range",
          "ranges",
          "player_composite_factors.usage_trend in [-1, 1]",
        ],
        [
          "features_finite",
          "ranges",
          "ml_feature_store: every 16 v1 feature set and finite",
        ],
        [
          "team_points_equal_player_sums",
          "consistency",
          "a team's points equal the sum of its players' points",
        ],
        [
          "schedule_scores_agree",
          "consistency",
          "schedule final scores equal the team box scores and the offense summaries",
        ],
      ]
    `);
  });

  const factor = FACTOR_RANGES[0] as (typeof FACTOR_RANGES)[number];
  const feature = featureColumn((FEATURES_V1[0] as (typeof FEATURES_V1)[number]).name);
  const cases: { name: string; edit: (fx: Fixture) => void; failed: Record<string, ValidationFailure[]> }[] = [
    {
      name: "a scraper's latest run failed: named by itself (it has no table), with the first line of its error",
      edit: (f) => {
        rowsOf(f, processorRunHistory).push(
          fill(processorRunHistory, D1, {
            run_id: 'later',
            processor_name: 'nbac_team_game_log_scraper',
            data_date: D1,
            status: 'failed',
            error_message: 'boom\nat somewhere',
            finished_at: `${D1}T13:00:00.000Z`,
          }),
        );
      },
      failed: {
        runs_complete: [fail('nbac_team_game_log_scraper', 'latest run failed: boom', 'nbac_team_game_log_scraper')],
      },
    },
    {
      name: 'a failed run followed by a success: passes',
      edit: (f) => {
        change(f, processorRunHistory, { run_id: `${D1}-${G1}-0` }, { status: 'failed', error_message: 'boom' });
        rowsOf(f, processorRunHistory).push(
          fill(processorRunHistory, D1, {
            run_id: 'later',
            processor_name: 'nbac_team_game_log_scraper',
            data_date: D1,
            status: 'success',
            error_message: null,
            finished_at: `${D1}T13:00:00.000Z`,
          }),
        );
      },
      failed: {},
    },
    {
      name: 'a processor that never ran: named by its table',
      edit: (f) => drop(f, processorRunHistory, { processor_name: 'ml_feature_store' }),
      failed: { runs_complete: [fail('nba_precompute.ml_feature_store', 'never ran', 'ml_feature_store')] },
    },
    {
      name: 'a blocked run without a message',
      edit: (f) => change(f, processorRunHistory, { processor_name: 'ml_feature_store' }, { status: 'blocked' }),
      failed: { runs_complete: [fail('nba_precompute.ml_feature_store', 'latest run blocked: ', 'ml_feature_store')] },
    },
    {
      name: 'points NULL in a player summary',
      edit: (f) => change(f, playerGameSummary, { player_id: 1 }, { points: null }),
      failed: { player_summary_critical_fields: [fail(PGS, 'a critical field is NULL without a reason', PGS_KEY1)] },
    },
    ...(['minutes', 'season_games_played'] as const).map((col) => ({
      name: `${col} NULL in a player summary`,
      edit: (f: Fixture) => change(f, playerGameSummary, { player_id: 1 }, { [col]: null }),
      failed: { player_summary_critical_fields: [fail(PGS, 'a critical field is NULL without a reason', PGS_KEY1)] },
    })),
    ...(['pts_avg_last_5', 'pts_avg_last_10', 'min_avg_last_5', 'days_rest'] as const).flatMap((col) => [
      {
        name: `${col} NULL at the second game: fails`,
        edit: (f: Fixture) => change(f, playerGameSummary, { player_id: 1 }, { season_games_played: 2, [col]: null }),
        failed: {
          player_summary_critical_fields: [fail(PGS, 'a critical field is NULL without a reason', PGS_KEY1)],
        },
      },
    ]),
    {
      name: 'averages NULL at the second game except one: fails',
      edit: (f) =>
        change(
          f,
          playerGameSummary,
          { player_id: 1 },
          { season_games_played: 2, pts_avg_last_5: 1, pts_avg_last_10: 1, min_avg_last_5: 1, days_rest: null },
        ),
      failed: { player_summary_critical_fields: [fail(PGS, 'a critical field is NULL without a reason', PGS_KEY1)] },
    },
    {
      name: 'averages set at the second game: passes',
      edit: (f) =>
        change(
          f,
          playerGameSummary,
          { player_id: 1 },
          { season_games_played: 2, pts_avg_last_5: 1, pts_avg_last_10: 1, min_avg_last_5: 1, days_rest: 1 },
        ),
      failed: {},
    },
    {
      name: 'TS% NULL with attempts: fails',
      edit: (f) => change(f, playerGameSummary, { player_id: 1 }, { fga: 0, fta: 1, ts_pct: null }),
      failed: { player_summary_critical_fields: [fail(PGS, 'a critical field is NULL without a reason', PGS_KEY1)] },
    },
    {
      name: 'TS% NULL without attempts: passes',
      edit: (f) => change(f, playerGameSummary, { player_id: 1 }, { fga: 0, fta: 0, ts_pct: null }),
      failed: {},
    },
    ...(['points', 'possessions', 'off_rating', 'pace'] as const).map((col) => ({
      name: `team offense ${col} NULL`,
      edit: (f: Fixture) => change(f, teamOffenseGameSummary, { team_abbr: 'AWY' }, { [col]: null }),
      failed: {
        team_offense_game_summary_critical_fields: [
          fail('nba_analytics.team_offense_game_summary', 'a critical field is NULL', `game_id=${G1}, team=AWY`),
        ],
        ...(col === 'points'
          ? {
              schedule_scores_agree: [
                fail(
                  'nba_raw.nbac_schedule',
                  'schedule 100-90, box scores 100-90, offense summaries 100-?',
                  `game_id=${G1}`,
                ),
              ],
            }
          : {}),
      },
    })),
    ...(['opponent_points', 'def_rating', 'opponent_fg_pct'] as const).map((col) => ({
      name: `team defense ${col} NULL`,
      edit: (f: Fixture) => change(f, teamDefenseGameSummary, { team_abbr: 'HOM' }, { [col]: null }),
      failed: {
        team_defense_game_summary_critical_fields: [
          fail('nba_analytics.team_defense_game_summary', 'a critical field is NULL', `game_id=${G1}, team=HOM`),
        ],
      },
    })),
    ...[
      { v: 0, ok: true },
      { v: 1.5, ok: true },
      { v: -0.01, ok: false },
      { v: 1.51, ok: false },
    ].map(({ v, ok }) => ({
      name: `TS% ${v}: ${ok ? 'passes' : 'fails'}`,
      edit: (f: Fixture) => change(f, playerGameSummary, { player_id: 1 }, { ts_pct: v }),
      failed: ok ? NONE : { ts_pct_in_range: [fail(PGS, `ts_pct = ${v}`, PGS_KEY1)] },
    })),
    ...[
      { v: 0, ok: true },
      { v: 70, ok: true },
      { v: -1, ok: false },
      { v: 71, ok: false },
    ].map(({ v, ok }) => ({
      name: `minutes ${v}: ${ok ? 'passes' : 'fails'}`,
      edit: (f: Fixture) => change(f, playerGameSummary, { player_id: 1 }, { minutes: v }),
      failed: ok ? NONE : { minutes_in_range: [fail(PGS, `minutes = ${v}`, PGS_KEY1)] },
    })),
    ...(['fg_pct', 'fg3_pct', 'ft_pct'] as const).flatMap((col) =>
      [
        { v: 0, ok: true },
        { v: 1, ok: true },
        { v: -0.01, ok: false },
        { v: 1.01, ok: false },
      ].map(({ v, ok }) => ({
        name: `raw ${col} ${v}: ${ok ? 'passes' : 'fails'}`,
        edit: (f: Fixture) => change(f, nbacPlayerBoxscore, { player_id: 2 }, { [col]: v }),
        failed: ok
          ? NONE
          : {
              raw_percentages_in_range: [
                fail('nba_raw.nbac_player_boxscore', 'a percentage outside [0, 1]', `game_id=${G1}, player_id=2`),
              ],
            },
      })),
    ),
    ...[
      { v: factor.min, ok: true },
      { v: factor.max, ok: true },
      { v: factor.min - 1, ok: false },
      { v: factor.max + 1, ok: false },
      { v: null, ok: false },
    ].map(({ v, ok }) => ({
      name: `${factor.column} ${v}: ${ok ? 'passes' : 'fails'}`,
      edit: (f: Fixture) => change(f, playerCompositeFactors, { player_id: 3 }, { [factor.column]: v }),
      failed: ok
        ? NONE
        : {
            [`${factor.column}_in_range`]: [
              fail(
                'nba_precompute.player_composite_factors',
                `${factor.column} = ${v === null ? 'NULL' : v.toFixed(1)}`,
                'player_id=3',
              ),
            ],
          },
    })),
    {
      name: 'a feature NULL',
      edit: (f) => change(f, mlFeatureStore, { player_id: 2 }, { [feature]: null }),
      failed: {
        features_finite: [fail('nba_precompute.ml_feature_store', 'a feature is NULL or not finite', 'player_id=2')],
      },
    },
    {
      name: "a player's points not adding up to the team's",
      edit: (f) => change(f, nbacPlayerBoxscore, { player_id: 1 }, { points: 99 }),
      failed: {
        team_points_equal_player_sums: [
          fail('nba_raw.nbac_team_boxscore', 'team 100, players 99', `game_id=${G1}, team=HOM`),
        ],
      },
    },
    {
      name: 'a team row from a team log is not summed from players',
      edit: (f) => {
        change(f, nbacPlayerBoxscore, { player_id: 1 }, { points: 99 });
        change(f, nbacTeamBoxscore, { team_abbr: 'HOM' }, { derived_from: 'team_game_log' });
      },
      failed: {},
    },
    {
      name: 'a team without player rows sums to 0',
      edit: (f) => {
        drop(f, nbacPlayerBoxscore, { player_id: 2 });
        drop(f, nbacGamebookPlayerStats, { player_id: 2 });
        drop(f, playerGameSummary, { player_id: 2 });
      },
      failed: {
        rows_present: [
          fail('nba_raw.nbac_player_boxscore', '0 of 1 present (0%)'),
          fail('nba_raw.nbac_gamebook_player_stats', '0 of 1 present (0%)'),
        ],
        team_points_equal_player_sums: [
          fail('nba_raw.nbac_team_boxscore', 'team 90, players 0', `game_id=${G1}, team=AWY`),
        ],
      },
    },
    {
      name: 'the schedule score disagreeing with the box scores',
      edit: (f) => change(f, nbacSchedule, { game_id: G1 }, { home_score: 101 }),
      failed: {
        schedule_scores_agree: [
          fail(
            'nba_raw.nbac_schedule',
            'schedule 101-90, box scores 100-90, offense summaries 100-90',
            `game_id=${G1}`,
          ),
        ],
      },
    },
    {
      name: 'an offense summary disagreeing with the schedule',
      edit: (f) => change(f, teamOffenseGameSummary, { team_abbr: 'AWY' }, { points: 91 }),
      failed: {
        schedule_scores_agree: [
          fail(
            'nba_raw.nbac_schedule',
            'schedule 100-90, box scores 100-90, offense summaries 100-91',
            `game_id=${G1}`,
          ),
        ],
      },
    },
    {
      name: 'a team box score missing: the schedule shows "?"',
      edit: (f) => drop(f, nbacTeamBoxscore, { team_abbr: 'AWY' }),
      failed: {
        rows_present: [fail('nba_raw.nbac_team_boxscore', '0 of 1 present (0%)')],
        two_team_rows_per_game: [fail('nba_raw.nbac_team_boxscore', '1 rows, expected 2')],
        schedule_scores_agree: [
          fail('nba_raw.nbac_schedule', 'schedule 100-90, box scores 100-?, offense summaries 100-90', `game_id=${G1}`),
        ],
      },
    },
    {
      name: 'one summary too many',
      edit: (f) => rowsOf(f, playerGameSummary).push({ ...(rowsOf(f, playerGameSummary)[0] as Row), player_id: 3 }),
      failed: { one_summary_per_box_row: [fail(PGS, '3 rows, expected 2')] },
    },
    {
      name: 'a gamebook row missing',
      edit: (f) => drop(f, nbacGamebookPlayerStats, { player_id: 1 }),
      failed: {
        rows_present: [fail('nba_raw.nbac_gamebook_player_stats', '0 of 1 present (0%)')],
        one_summary_per_box_row: [fail('nba_raw.nbac_gamebook_player_stats', '1 rows, expected 2')],
      },
    },
    {
      name: 'a defense row missing',
      edit: (f) => drop(f, teamDefenseGameSummary, { team_abbr: 'AWY' }),
      failed: {
        rows_present: [fail('nba_analytics.team_defense_game_summary', '1 of 2 present (50%)')],
        two_team_rows_per_game: [fail('nba_analytics.team_defense_game_summary', '1 rows, expected 2')],
      },
    },
    {
      name: 'an offense row missing',
      edit: (f) => drop(f, teamOffenseGameSummary, { team_abbr: 'HOM' }),
      failed: {
        rows_present: [fail('nba_analytics.team_offense_game_summary', '1 of 2 present (50%)')],
        two_team_rows_per_game: [fail('nba_analytics.team_offense_game_summary', '1 rows, expected 2')],
        schedule_scores_agree: [
          fail('nba_raw.nbac_schedule', 'schedule 100-90, box scores 100-90, offense summaries ?-90', `game_id=${G1}`),
        ],
      },
    },
    {
      name: 'a team without a roster',
      edit: (f) => drop(f, espnTeamRoster, { player_id: 2 }),
      failed: {
        // The Phase 4 tables expect a row per rostered player of a playing team: 2 now, and 3 are there.
        rows_present: [fail('nba_raw.espn_team_roster', '1 of 2 present (50%)')],
        cache_rows_per_rostered_player: ['player_daily_cache', 'player_composite_factors', 'ml_feature_store'].map(
          (t) => fail(`nba_precompute.${t}`, '3 rows, expected 2'),
        ),
      },
    },
    {
      name: 'a rostered team that does not play needs no Phase 4 rows',
      edit: (f) =>
        rowsOf(f, espnTeamRoster).push(fill(espnTeamRoster, D1, { roster_date: D1, team_abbr: 'OTH', player_id: 9 })),
      failed: {},
    },
    ...(['player_daily_cache', 'player_composite_factors', 'ml_feature_store'] as const).map((t) => ({
      name: `a ${t} row missing: 2 of 3 is 66.6%, rounded down`,
      edit: (f: Fixture) =>
        drop(
          f,
          {
            player_daily_cache: playerDailyCache,
            player_composite_factors: playerCompositeFactors,
            ml_feature_store: mlFeatureStore,
          }[t],
          { player_id: 3 },
        ),
      failed: {
        rows_present: [fail(`nba_precompute.${t}`, '2 of 3 present (66.6%)')],
        cache_rows_per_rostered_player: [fail(`nba_precompute.${t}`, '2 rows, expected 3')],
      },
    })),
    {
      name: 'the schedule game missing',
      edit: (f) => drop(f, nbacSchedule, { game_id: G1 }),
      failed: {
        // No game on the schedule: no player expected in Phase 4 (0 of 0 is full coverage), but 3 rows are there.
        rows_present: [fail('nba_raw.nbac_schedule', '0 of 1 present (0%)')],
        cache_rows_per_rostered_player: ['player_daily_cache', 'player_composite_factors', 'ml_feature_store'].map(
          (t) => fail(`nba_precompute.${t}`, '3 rows, expected 0'),
        ),
      },
    },
    {
      name: 'a game not final counts as missing',
      edit: (f) => change(f, nbacSchedule, { game_id: G1 }, { game_status: 'Scheduled' }),
      failed: {
        rows_present: [fail('nba_raw.nbac_schedule', '0 of 1 present (0%)')],
        cache_rows_per_rostered_player: ['player_daily_cache', 'player_composite_factors', 'ml_feature_store'].map(
          (t) => fail(`nba_precompute.${t}`, '3 rows, expected 0'),
        ),
      },
    },
  ];

  // Many checks failing at once, each on rows of its own: first, so that a broken check shows in one test
  // (and Stryker, stopping at the first failing test, need not run the rest).
  it.each([
    {
      set: 'rows wrong',
      names: [
        'one summary too many',
        "a scraper's latest run failed: named by itself (it has no table), with the first line of its error",
        'points NULL in a player summary',
        'team offense pace NULL',
        'team defense def_rating NULL',
        'TS% 1.51: fails',
        'minutes 71: fails',
        'raw fg_pct 1.01: fails',
        'fatigue_score -1: fails',
        'a feature NULL',
        "a player's points not adding up to the team's",
        'an offense summary disagreeing with the schedule',
        'a defense row missing',
        'a ml_feature_store row missing: 2 of 3 is 66.6%, rounded down',
      ],
    },
    {
      set: 'rows missing',
      names: [
        'a team without player rows sums to 0',
        'a team without a roster',
        'the schedule score disagreeing with the box scores',
        'a blocked run without a message',
        'TS% -0.01: fails',
        'minutes -1: fails',
        'a feature NULL',
        'fatigue_score null: fails',
      ],
    },
  ])('many checks failing at once, each for its own rows: $set', async ({ names }) => {
    const picked = names.map((n) => {
      const c = cases.find((x) => x.name === n);
      if (!c) throw new Error(`no case ${n}`);
      return c;
    });
    for (const c of picked) c.edit(fx);
    const want: Record<string, ValidationFailure[]> = {};
    for (const c of picked)
      for (const [check, f] of Object.entries(c.failed)) want[check] = [...(want[check] ?? []), ...f];
    const r = await report([fx], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(failedChecks(r)).toEqual(want);
  });

  it.each(cases)('$name', async ({ edit, failed }) => {
    edit(fx);
    const r = await report([fx], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(failedChecks(r)).toEqual(failed);
    expect(r.passed).toBe(Object.keys(failed).length === 0);
    // Every cell a percentage, or null where nothing was expected (no data: never counted as 100%).
    expect(r.coverage.filter((c) => !(c.pct === null ? c.expected === 0 : c.pct >= 0 && c.pct <= 100))).toEqual([]);
    for (const c of r.checks) expect(c.failureCount, c.name).toBe(c.failures.length);
  });
});

describe('validate: results read from corrected inputs, and the fix a failed run needs', () => {
  /** The hash a run records of an input whose dates' writer runs hold no fingerprint (core/runs/versions.ts). */
  const noFingerprints = (dates: string[]) =>
    createHash('sha256')
      .update(dates.map((d) => `${d}=none\n`).join(''))
      .digest('hex')
      .slice(0, 16);
  /**
   * The player summary's run on `date` recording that it read the box score rows of that date with `hash`; the
   * date's schedule and runs of season 2021-22 and the runs of their processors' phases, where data versions
   * look for them.
   */
  const recordRead = (fx: Fixture, date: string, hash: string) => {
    const phaseOf = new Map(PROCESSORS.map((p) => [p.name, p.phase]));
    fx.set(
      nbacSchedule,
      rowsOf(fx, nbacSchedule).map((r) => ({ ...r, season: '2021-22' })),
    );
    fx.set(
      processorRunHistory,
      rowsOf(fx, processorRunHistory).map((r) => ({
        ...r,
        season: '2021-22',
        phase: phaseOf.get(String(r.processor_name)) ?? null,
      })),
    );
    change(
      fx,
      processorRunHistory,
      { processor_name: 'player_game_summary', data_date: date },
      {
        details: JSON.stringify({
          inputs: [{ table: 'nba_raw.nbac_player_boxscore', part: 'rows', start: date, end: date, hash }],
        }),
      },
    );
  };

  it('a run whose input changed since is stale: runs_current fails with why and the Stage 3 command', async () => {
    const fx = dateRows(D1, G1);
    recordRead(fx, D1, 'a-changed-input');
    const r = await report([fx], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    const detail =
      'stale: nba_raw.nbac_player_boxscore changed between 2021-10-19 and 2021-10-19 (rows); recompute with backfill stage3 --season 2021-22';
    expect(failedChecks(r)).toEqual({ runs_current: [fail(PGS, detail, 'player_game_summary')] });
    expect(r.stale).toEqual([{ table: PGS, date: D1 }]);
    expect(r.checks.find((c) => c.name === 'runs_current')?.fixes?.map((f) => f.command)).toEqual([
      'backfill stage3 --season 2021-22 --start-date 2021-10-19 --end-date 2021-10-19',
    ]);
  });

  it('the same input as recorded: current, and every check passes', async () => {
    const fx = dateRows(D1, G1);
    recordRead(fx, D1, noFingerprints([D1]));
    const r = await report([fx], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(failedChecks(r)).toEqual(NONE);
    expect(r.stale).toEqual([]);
  });

  it('a stale run on a date outside the selection is not this report’s', async () => {
    const [one, two] = [dateRows(D1, G1), dateRows(D2, G3)];
    recordRead(two, D2, 'a-changed-input');
    const r = await report([one, two], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(failedChecks(r)).toEqual(NONE);
    expect(r.stale).toEqual([]);
  });

  it('a Phase 1-2 run that failed is retried; one that never ran is loaded by Stage 1', async () => {
    const failed = dateRows(D1, G1);
    change(failed, processorRunHistory, { processor_name: 'nbac_player_boxscore' }, { status: 'failed' });
    const retry = await report([failed], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(retry.checks.find((c) => c.name === 'runs_complete')?.fixes?.map((f) => f.kind)).toEqual(['retry']);
    const never = dateRows(D1, G1);
    drop(never, processorRunHistory, { processor_name: 'nbac_player_boxscore' });
    const load = await report([never], [{ season: '2021-22', dates: [planDate(D1, G1)] }]);
    expect(load.checks.find((c) => c.name === 'runs_complete')?.fixes?.map((f) => f.kind)).toEqual(['load']);
  });
});

describe('validate over several seasons and no dates', () => {
  it('reads only the selected seasons: a bad row between them is not theirs', async () => {
    const between = dateRows(D2, '0022100002');
    change(between, playerGameSummary, { player_id: 1 }, { minutes: 99 });
    change(between, nbacSchedule, {}, { home_score: 1 });
    const r = await report(
      [dateRows(D1, G1), between, dateRows(D3, G3)],
      [
        { season: '2021-22', dates: [planDate(D1, G1)] },
        { season: '2022-23', dates: [planDate(D3, G3)] },
      ],
    );
    expect(failedChecks(r)).toEqual({});
    expect({ seasons: r.seasons, range: r.range, dates: r.dates }).toEqual({
      seasons: ['2021-22', '2022-23'],
      range: { start: D1, end: D3 },
      dates: [D1, D3],
    });
    expect(r.coverage).toHaveLength(2 * 11);
  });

  it('a bad row in a later selected season is found', async () => {
    const later = dateRows(D3, G3);
    change(later, playerGameSummary, { player_id: 2 }, { minutes: 99 });
    const r = await report(
      [dateRows(D1, G1), later],
      [
        { season: '2021-22', dates: [planDate(D1, G1)] },
        { season: '2022-23', dates: [planDate(D3, G3)] },
      ],
    );
    expect(failedChecks(r)).toEqual({
      minutes_in_range: [fail(PGS, 'minutes = 99', `game_id=${G3}, player_id=2`, D3)],
    });
  });

  it('lists every failure of a check and counts them all; failuresKept bounds the list, never the count', async () => {
    const fx = dateRows(D1, G1);
    const base = rowsOf(fx, playerGameSummary)[0] as Row;
    // Players 100..150: 51 bad rows, listed by key (as text).
    for (let p = 100; p <= 150; p++) rowsOf(fx, playerGameSummary).push({ ...base, player_id: p, minutes: 99 });
    // Five dates of which four have no data: every processor never ran on them.
    const dates = [D1, D2, D3, '2021-10-22', '2021-10-23'];
    const selections = [{ season: '2021-22', dates: dates.map((d, i) => planDate(d, `00221000${10 + i}`)) }];
    const r = await report([fx], selections);
    const minutes = r.checks.find((c) => c.name === 'minutes_in_range');
    expect(minutes?.failureCount).toBe(51);
    expect(minutes?.failures.map((f) => f.key)).toEqual(
      Array.from({ length: 51 }, (_v, i) => `game_id=${G1}, player_id=${100 + i}`),
    );
    const runs = r.checks.find((c) => c.name === 'runs_complete');
    expect(runs?.failureCount).toBe(4 * PROCESSORS.length);
    expect(runs?.failures).toHaveLength(4 * PROCESSORS.length);
    expect(runs?.failures[0]).toMatchObject({ date: D2, detail: 'never ran' });
    // Every failing check says how to fix it: here Stage 1 for the dates never loaded, and Stage 3.
    expect(runs?.fixes?.map((f) => f.command)).toEqual([
      'backfill stage1 --season 2021-22 --start-date 2021-10-20 --end-date 2021-10-23',
      'backfill stage3 --season 2021-22 --start-date 2021-10-20 --end-date 2021-10-23',
    ]);
    const kept = await reportKeeping([fx], selections, 7);
    for (const name of ['minutes_in_range', 'runs_complete']) {
      const c = kept.checks.find((x) => x.name === name);
      expect(c?.failures, name).toHaveLength(7);
      expect(c?.failureCount, name).toBe(name === 'minutes_in_range' ? 51 : 4 * PROCESSORS.length);
    }
  });

  it('a date with two games: twice the rows expected, and all there', async () => {
    const both = dateRows(D1, G1);
    for (const [table, rows] of dateRows(D1, '0022100002', true)) {
      // One run history per processor and date is enough.
      if (table !== processorRunHistory) rowsOf(both, table).push(...rows);
    }
    const r = await report(
      [both],
      [{ season: '2021-22', dates: [{ ...planDate(D1, G1), games: 2, gameIds: [G1, '0022100002'] }] }],
    );
    expect(failedChecks(r)).toEqual({});
    expect(r.coverage.map((c) => [c.expected, c.present, c.pct])).toEqual([
      [2, 2, 100],
      [2, 2, 100],
      [2, 2, 100],
      [2, 2, 100],
      [4, 4, 100],
      [4, 4, 100],
      [4, 4, 100],
      [4, 4, 100],
      [6, 6, 100],
      [6, 6, 100],
      [6, 6, 100],
    ]);
  });

  it('a team row missing on a date with two games: 3 of 4', async () => {
    const both = dateRows(D1, G1);
    for (const [table, rows] of dateRows(D1, '0022100002', true)) {
      if (table !== processorRunHistory) rowsOf(both, table).push(...rows);
    }
    drop(both, teamOffenseGameSummary, { team_abbr: 'AW2' });
    drop(both, teamDefenseGameSummary, { team_abbr: 'AW2' });
    drop(both, nbacTeamBoxscore, { team_abbr: 'AW2' });
    change(both, nbacSchedule, { game_id: '0022100002' }, { away_score: null });
    const r = await report(
      [both],
      [{ season: '2021-22', dates: [{ ...planDate(D1, G1), games: 2, gameIds: [G1, '0022100002'] }] }],
    );
    expect(failedChecks(r)).toEqual({
      rows_present: [
        fail('nba_raw.nbac_team_boxscore', '1 of 2 present (50%)'),
        fail('nba_analytics.team_offense_game_summary', '3 of 4 present (75%)'),
        fail('nba_analytics.team_defense_game_summary', '3 of 4 present (75%)'),
      ],
      two_team_rows_per_game: [
        fail('nba_raw.nbac_team_boxscore', '3 rows, expected 4'),
        fail('nba_analytics.team_offense_game_summary', '3 rows, expected 4'),
        fail('nba_analytics.team_defense_game_summary', '3 rows, expected 4'),
      ],
    });
  });

  it('dates given out of order: sorted, and each season read from its first date to its last', async () => {
    const r = await report(
      [dateRows(D1, G1), dateRows(D3, G3)],
      [
        { season: '2021-22', dates: [planDate(D3, G3), planDate(D1, G1)] },
        { season: '2022-23', dates: [] },
      ],
    );
    expect(failedChecks(r)).toEqual({});
    expect({ range: r.range, dates: r.dates }).toEqual({ range: { start: D1, end: D3 }, dates: [D1, D3] });
    expect(r.coverage.every((c) => c.pct === 100)).toBe(true);
  });

  it('without a clock, the time of the report is now (a valid ISO time)', async () => {
    const warehouse = await openMemoryWarehouse();
    try {
      const r = await validate(warehouse, [{ season: '2021-22', dates: [] }]);
      expect(new Date(r.generatedAt).toISOString()).toBe(r.generatedAt);
    } finally {
      await warehouse.close();
    }
  });

  it('no date selected: not passed, nothing checked', async () => {
    const r = await report([dateRows(D1, G1)], [{ season: '2021-22', dates: [] }]);
    expect(r).toEqual({
      seasons: ['2021-22'],
      range: null,
      dates: [],
      generatedAt: GENERATED.toISOString(),
      passed: false,
      checks: [],
      tables: expect.any(Array),
      coverage: [],
    });
    expect(r.tables).toHaveLength(11);
  });
});
