// The decision code's pure parts pinned exactly, without a warehouse: the gate's report as a person reads
// it, the defensive checks' error, the factor ranges and clamp, and the versioned v1 feature list. The
// mutation suite runs this file first: it is cheap, and it kills what mutants of module-level tables do.

import { describe, expect, it } from 'vitest';
import { CHECKS, type CheckFailure, DependencyError, lookbackWindow } from '../core/checks/defensive.js';
import { sortableTime } from '../core/dates.js';
import { formatGate, type GateResult, type RunProblem, type TableCoverage } from '../core/gate.js';
import { batchDates, blankRow, PHASE3_PROCESSORS, queryProcessor } from '../core/phase3/processors.js';
import { clamp, FACTOR_RANGES } from '../core/phase4/factors.js';
import { factorsRow, featureRow } from '../core/phase4/processors.js';
import { FEATURE_VERSION, FEATURES_V1, featureColumn } from '../core/schema/features.js';
import { nbacSchedule } from '../core/schema/raw.js';
import type { Row } from '../core/schema/table.js';
import { DUCKDB_DIALECT } from '../core/sql/dialect.js';

/** A table's coverage with `missing` of 120 games missing, spread over `dates` dates. */
function coverage(name: string, missing: number, dates = 1): TableCoverage {
  const missingGames = Array.from({ length: missing }, (_v, i) => ({
    date: `2021-10-${String(10 + (i % dates)).padStart(2, '0')}`,
    gameId: `g${i}`,
  }));
  return {
    table: name,
    expectedGames: 120,
    presentGames: 120 - missing,
    coveragePct: Math.floor((1000 * (120 - missing)) / 120) / 10,
    missingDates: [...new Set(missingGames.map((g) => g.date))],
    missingGames,
  };
}

function gate(tables: TableCoverage[], runProblems: RunProblem[] = [], games = 120): GateResult {
  return {
    passed: games > 0 && tables.every((t) => t.missingGames.length === 0) && runProblems.length === 0,
    seasons: ['2021-22', '2022-23'],
    dates: 14,
    games,
    range: games > 0 ? { start: '2021-10-19', end: '2021-11-01' } : null,
    tables,
    runProblems,
  };
}

describe('formatGate', () => {
  it('passed: the table of coverage and the verdict', () => {
    expect(formatGate(gate([coverage('nba_raw.long_table_name', 0), coverage('nba_raw.t', 0)]))).toBe(
      [
        'Phase 2 gate for 2021-22, 2022-23: 14 dates, 120 final games (2021-10-19..2021-11-01)',
        '',
        'table                    expected  present  coverage  missing dates',
        'nba_raw.long_table_name       120      120    100.0%  -',
        'nba_raw.t                     120      120    100.0%  -',
        '',
        'GATE PASSED: Phase 2 is 100% complete for every critical table; Stage 3 may start.',
        '',
      ].join('\n'),
    );
  });

  it('no games: no range, and the verdict says why', () => {
    expect(formatGate(gate([coverage('nba_raw.t', 0)], [], 0))).toBe(
      [
        'Phase 2 gate for 2021-22, 2022-23: 14 dates, 0 final games',
        '',
        'table      expected  present  coverage  missing dates',
        'nba_raw.t       120      120    100.0%  -',
        '',
        'GATE FAILED: no final games selected; Stage 3 must not start.',
        '',
      ].join('\n'),
    );
  });

  it.each([
    {
      name: 'six missing dates are all shown',
      dates: 6,
      shown: '2021-10-10, 2021-10-11, 2021-10-12, 2021-10-13, 2021-10-14, 2021-10-15',
    },
    {
      name: 'seven missing dates show six and the count',
      dates: 7,
      shown: '2021-10-10, 2021-10-11, 2021-10-12, 2021-10-13, 2021-10-14, 2021-10-15, ... (7 dates)',
    },
  ])('missing games: $name', ({ dates, shown }) => {
    const text = formatGate(gate([coverage('nba_raw.t', 20, dates)]));
    const lines = text.split('\n');
    expect(lines[3]).toBe(`nba_raw.t       120      100     83.3%  ${shown}`);
    expect(lines.slice(4, 7)).toEqual(['', 'Missing games (20):', `  nba_raw.t 2021-10-10 g0`]);
    expect(lines.filter((l) => l.startsWith('  nba_raw.t '))).toHaveLength(20);
    expect(text).not.toContain('more (--format json lists all)');
    expect(
      text.endsWith('\nGATE FAILED: Phase 2 is incomplete. Stage 3 must not start until the missing data is loaded.\n'),
    ).toBe(true);
  });

  it('missing games: more than 20 show 20 and the rest as a count', () => {
    const lines = formatGate(gate([coverage('nba_raw.t', 21)])).split('\n');
    expect(lines.filter((l) => l.startsWith('  nba_raw.t '))).toHaveLength(20);
    expect(lines).toContain('  ... and 1 more (--format json lists all)');
    expect(lines).toContain('Missing games (21):');
  });

  it.each([
    { name: '20 problems are all listed', count: 20, more: null },
    { name: '21 problems list 20 and the rest as a count', count: 21, more: '  ... and 1 more' },
  ])('run problems: $name', ({ count, more }) => {
    const problems: RunProblem[] = Array.from({ length: count }, (_v, i) => ({
      processor: `p${i}`,
      date: '2021-10-20',
      problem: i % 2 === 0 ? 'failed' : 'never_ran',
      error: i === 2 ? null : 'boom',
    }));
    const lines = formatGate(gate([coverage('nba_raw.t', 0)], problems)).split('\n');
    const at = lines.indexOf(`Runs whose latest attempt did not succeed (${count}):`);
    expect(at).toBe(5);
    expect(lines[at - 1]).toBe('');
    expect(lines.slice(at + 1, at + 4)).toEqual([
      '  2021-10-20  p0  failed: boom',
      '  2021-10-20  p1  never ran',
      '  2021-10-20  p2  failed: ',
    ]);
    expect(lines.filter((l) => l.startsWith('  2021-10-20  p'))).toHaveLength(20);
    expect(lines.at(at + 21)).toBe(more ?? '');
    expect(lines.at(-2)).toBe(
      'GATE FAILED: Phase 2 is incomplete. Stage 3 must not start until the missing data is loaded.',
    );
  });
});

describe('DependencyError', () => {
  const failure = (check: CheckFailure['check'], dates: string[] = [], games: string[] = []): CheckFailure => ({
    check,
    message: `${check} says no`,
    missingDates: dates,
    missingGames: games,
  });

  it('knows the four checks', () => {
    expect(CHECKS).toEqual(['gap_detection', 'upstream_failure', 'completeness', 'freshness']);
  });

  it.each([
    { check: 'gap_detection', phase: 3, message: 'Analytics BLOCKED: Gap Detected - gap_detection says no' },
    { check: 'upstream_failure', phase: 4, message: 'Precompute BLOCKED: Upstream Failure - upstream_failure says no' },
    { check: 'completeness', phase: 3, message: 'Analytics BLOCKED: Incomplete Upstream - completeness says no' },
    { check: 'freshness', phase: 4, message: 'Precompute BLOCKED: Stale Upstream - freshness says no' },
  ] as const)('names the first failing check: $check in Phase $phase', ({ check, phase, message }) => {
    const e = new DependencyError('p', '2021-10-20', phase, [failure(check)]);
    expect(e.message).toBe(message);
    expect(e.name).toBe('DependencyError');
    expect(e).toMatchObject({ processor: 'p', date: '2021-10-20', check, missingDates: [], missingGames: [] });
  });

  it('counts the other failing checks and merges their missing dates and games, sorted and once each', () => {
    const failures = [
      failure('gap_detection', ['2021-10-21', '2021-10-19'], ['g2', 'g1']),
      failure('upstream_failure', ['2021-10-19', '2021-10-20'], ['g1']),
      failure('completeness'),
    ];
    const e = new DependencyError('p', '2021-10-22', 3, failures);
    expect(e.message).toBe('Analytics BLOCKED: Gap Detected - gap_detection says no (and 2 more failing check(s))');
    expect(e.missingDates).toEqual(['2021-10-19', '2021-10-20', '2021-10-21']);
    expect(e.missingGames).toEqual(['g1', 'g2']);
    expect(e.failures).toBe(failures);
  });
});

describe('factor ranges and clamp', () => {
  it('pins each factor’s documented range', () => {
    expect(FACTOR_RANGES.map(({ column, min, max }) => ({ column, min, max }))).toEqual([
      { column: 'fatigue_score', min: 0, max: 100 },
      { column: 'matchup_score', min: -30, max: 30 },
      { column: 'pace_factor', min: 0.8, max: 1.2 },
      { column: 'usage_trend', min: -1, max: 1 },
    ]);
    for (const r of FACTOR_RANGES) expect(r.meaning.length).toBeGreaterThan(40);
  });

  it.each([
    { name: 'below', x: -5, out: 0 },
    { name: 'at the bottom', x: 0, out: 0 },
    { name: 'inside', x: 42, out: 42 },
    { name: 'at the top', x: 100, out: 100 },
    { name: 'above', x: 105, out: 100 },
  ])('clamps $name', ({ x, out }) => {
    expect(clamp(x, 0, 100)).toBe(out);
  });
});

describe('the v1 feature vector', () => {
  it('is fixed: names, order and defaults (a change needs a new version)', () => {
    expect(FEATURE_VERSION).toBe('v1');
    expect(FEATURES_V1.map((f) => [f.name, f.defaultValue])).toEqual([
      ['pts_avg_last_5', 0],
      ['pts_avg_last_10', 0],
      ['pts_avg_season', 0],
      ['pts_std_last_30', 0],
      ['min_avg_last_10', 0],
      ['reb_avg_last_10', 0],
      ['ast_avg_last_10', 0],
      ['games_played', 0],
      ['days_rest', 30],
      ['back_to_back', 0],
      ['minutes_last_7_days', 0],
      ['fatigue_score', 0],
      ['matchup_score', 0],
      ['pace_factor', 1],
      ['usage_trend', 0],
      ['is_home', 0],
    ]);
    expect(featureColumn('pace_factor')).toBe('f_pace_factor');
  });

  it('describes every feature (the descriptions become the feature store’s column descriptions)', () => {
    expect(FEATURES_V1.map((f) => f.description)).toEqual([
      'Points, last 5 games',
      'Points, last 10 games',
      'Points, season to date',
      'Standard deviation of points, last 30 games',
      'Minutes, last 10 games',
      'Rebounds, last 10 games',
      'Assists, last 10 games',
      'Games played in the season before the date',
      'Days since the last game, capped at 30',
      '1 when the player played the day before',
      'Minutes in the 7 days before the date',
      'Fatigue in [0, 100]',
      "Opponent's defensive rating against the league's, [-30, 30]",
      'Expected pace against the league, [0.8, 1.2]',
      'Usage, last 5 against season, [-1, 1]',
      "1 when the player's team is the nominal home team",
    ]);
  });
});

describe('the Phase 3 processors as the pipeline lists them', () => {
  it('are the player summary, then team offense and defense', () => {
    expect(PHASE3_PROCESSORS.map((p) => p.definition.name)).toEqual([
      'player_game_summary',
      'team_offense_game_summary',
      'team_defense_game_summary',
    ]);
  });

  it('a query processor must write a table: a Phase 1 scraper writes objects', () => {
    expect(() => queryProcessor('nbac_team_game_log_scraper', () => 'SELECT 1')).toThrow(
      new Error('nbac_team_game_log_scraper does not write a table'),
    );
  });
});

describe('sortableTime: printed timestamps in time order', () => {
  // DuckDB and BigQuery print `CAST(ts AS STRING)` without a fraction's trailing zeros, so the strings alone
  // put 00:00:00 after 00:00:00.001 (`|` and `+` sort after `.`) and .5 after .50001.
  it.each([
    { name: 'a whole second before a millisecond later', a: '2031-01-01 00:00:00', b: '2031-01-01 00:00:00.001' },
    { name: 'a fraction before a longer one it prefixes', a: '2031-01-01 00:00:00.5', b: '2031-01-01 00:00:00.50001' },
    { name: "BigQuery's zone suffix", a: '2031-01-01 00:00:00+00', b: '2031-01-01 00:00:00.000001+00' },
    { name: 'an ISO string with T', a: '2031-01-01T23:59:59.999Z', b: '2031-01-02T00:00:00Z' },
  ])('$name', ({ a, b }) => {
    expect(sortableTime(a) < sortableTime(b)).toBe(true);
    expect(sortableTime(b) < sortableTime(a)).toBe(false);
  });

  it('pads the fraction to nanoseconds and keeps what follows it', () => {
    expect(sortableTime('2031-01-01 00:00:00.5+00')).toBe('2031-01-01 00:00:00.500000000+00');
    expect(sortableTime('2031-01-01 00:00:00')).toBe('2031-01-01 00:00:00.000000000');
    expect(sortableTime('not a time')).toBe('not a time');
  });
});

describe('Phase 4 rows from their inputs, by hand', () => {
  const DATE = '2021-11-27';
  /** Two days' rest, 71.6 minutes in 7 days, a defence 4 points worse than the league, usage up a quarter. */
  const INPUT = {
    player_id: 7,
    team_abbr: 'AAA',
    opp: 'BBB',
    last_game: '2021-11-25',
    min7: 71.6,
    def15: 112,
    league_def: 108,
    team_pace: 100,
    opp_pace: 96,
    league_pace: 98,
    usage_season: 20,
    usage_last5: 25,
  };

  it('the composite factors: rest, back-to-back, fatigue, matchup, pace and usage', () => {
    expect(factorsRow(INPUT, DATE, '2021-22')).toEqual({
      cache_date: DATE,
      season: '2021-22',
      player_id: 7,
      team_abbr: 'AAA',
      opponent_team_abbr: 'BBB',
      days_rest: 2,
      back_to_back: false,
      minutes_last_7_days: 72,
      fatigue_score: 36,
      matchup_score: 4,
      pace_factor: 1,
      usage_trend: 0.25,
    });
  });

  it.each([
    {
      name: 'a back-to-back adds 20 to fatigue',
      input: { last_game: '2021-11-26' },
      want: { days_rest: 1, back_to_back: true, fatigue_score: 56 },
    },
    {
      name: '3 days of rest take 10 off',
      input: { last_game: '2021-11-24' },
      want: { days_rest: 3, back_to_back: false, fatigue_score: 26 },
    },
    {
      name: 'no earlier game: no rest, no minutes',
      input: { last_game: null, min7: null },
      want: { days_rest: null, back_to_back: false, minutes_last_7_days: 0, fatigue_score: 0 },
    },
    { name: 'fatigue clamped at 100', input: { min7: 240, last_game: '2021-11-26' }, want: { fatigue_score: 100 } },
    { name: 'fatigue clamped at 0', input: { min7: 10, last_game: '2021-11-20' }, want: { fatigue_score: 0 } },
    { name: 'the opponent without a defence yet: matchup 0', input: { def15: null }, want: { matchup_score: 0 } },
    { name: 'the league without a defence yet: matchup 0', input: { league_def: null }, want: { matchup_score: 0 } },
    { name: 'matchup clamped at 30', input: { def15: 150 }, want: { matchup_score: 30 } },
    { name: 'matchup clamped at -30', input: { def15: 70 }, want: { matchup_score: -30 } },
    { name: 'no team pace: pace 1', input: { team_pace: null }, want: { pace_factor: 1 } },
    { name: 'no opponent pace: pace 1', input: { opp_pace: null }, want: { pace_factor: 1 } },
    { name: 'no league pace: pace 1', input: { league_pace: null }, want: { pace_factor: 1 } },
    { name: 'pace clamped at 1.2', input: { team_pace: 150, opp_pace: 150 }, want: { pace_factor: 1.2 } },
    { name: 'pace clamped at 0.8', input: { team_pace: 50, opp_pace: 50 }, want: { pace_factor: 0.8 } },
    { name: 'pace of two teams against the league', input: { team_pace: 101, opp_pace: 95 }, want: { pace_factor: 1 } },
    { name: 'no season usage: trend 0', input: { usage_season: null }, want: { usage_trend: 0 } },
    { name: 'a season usage of 0: trend 0', input: { usage_season: 0 }, want: { usage_trend: 0 } },
    { name: 'no recent usage: trend 0', input: { usage_last5: null }, want: { usage_trend: 0 } },
    { name: 'usage trend clamped at 1', input: { usage_last5: 60 }, want: { usage_trend: 1 } },
    { name: 'usage trend clamped at -1', input: { usage_season: 10, usage_last5: -5 }, want: { usage_trend: -1 } },
    { name: 'usage trend downwards', input: { usage_last5: 15 }, want: { usage_trend: -0.25 } },
  ])('factors: $name', ({ input, want }) => {
    expect(factorsRow({ ...INPUT, ...input }, DATE, '2021-22')).toMatchObject(want);
  });

  const CACHE = {
    player_id: 7,
    team_abbr: 'AAA',
    games_played: 12,
    pts_avg_last_5: 20.5,
    pts_avg_last_10: 19,
    pts_avg_season: 18,
    pts_std_last_30: 4.5,
    min_avg_last_10: 33,
    reb_avg_last_10: 7,
    ast_avg_last_10: 5,
  };
  const FACTORS = factorsRow(INPUT, DATE, '2021-22');

  it('the feature vector: each feature from the cache, the factors or the schedule', () => {
    const { row, defaulted } = featureRow(CACHE, FACTORS, true, DATE, '2021-22');
    expect(defaulted).toBe(0);
    expect(row).toMatchObject({
      cache_date: DATE,
      season: '2021-22',
      player_id: 7,
      team_abbr: 'AAA',
      feature_version: 'v1',
      history_games: 12,
      f_pts_avg_last_5: 20.5,
      f_pts_avg_last_10: 19,
      f_pts_avg_season: 18,
      f_pts_std_last_30: 4.5,
      f_min_avg_last_10: 33,
      f_reb_avg_last_10: 7,
      f_ast_avg_last_10: 5,
      f_games_played: 12,
      f_days_rest: 2,
      f_back_to_back: 0,
      f_minutes_last_7_days: 72,
      f_fatigue_score: 36,
      f_matchup_score: 4,
      f_pace_factor: 1,
      f_usage_trend: 0.25,
      f_is_home: 1,
    });
  });

  it.each([
    { name: 'away is 0, not a default', cache: {}, factors: {}, home: false, want: { f_is_home: 0 }, defaulted: 0 },
    {
      name: 'a back-to-back is 1',
      cache: {},
      factors: { back_to_back: true },
      home: true,
      want: { f_back_to_back: 1 },
      defaulted: 0,
    },
    {
      name: 'rest capped at 30',
      cache: {},
      factors: { days_rest: 45 },
      home: true,
      want: { f_days_rest: 30 },
      defaulted: 0,
    },
    {
      name: 'rest of 29 kept',
      cache: {},
      factors: { days_rest: 29 },
      home: true,
      want: { f_days_rest: 29 },
      defaulted: 0,
    },
    {
      name: 'no rest yet: the default 30',
      cache: {},
      factors: { days_rest: null },
      home: true,
      want: { f_days_rest: 30 },
      defaulted: 1,
    },
    {
      name: 'a missing average: its default',
      cache: { pts_avg_last_5: null },
      factors: {},
      home: true,
      want: { f_pts_avg_last_5: 0 },
      defaulted: 1,
    },
    {
      name: 'NaN: the default',
      cache: { pts_std_last_30: Number.NaN },
      factors: {},
      home: true,
      want: { f_pts_std_last_30: 0 },
      defaulted: 1,
    },
    {
      name: 'Infinity: the default',
      cache: {},
      factors: { pace_factor: Number.POSITIVE_INFINITY },
      home: true,
      want: { f_pace_factor: 1 },
      defaulted: 1,
    },
    {
      name: 'a debut: no games, history 0',
      cache: { games_played: undefined },
      factors: {},
      home: true,
      want: { history_games: 0, f_games_played: 0 },
      defaulted: 1,
    },
    {
      name: 'two missing values count twice',
      cache: { reb_avg_last_10: null, ast_avg_last_10: null },
      factors: {},
      home: true,
      want: { f_reb_avg_last_10: 0, f_ast_avg_last_10: 0 },
      defaulted: 2,
    },
  ])('features: $name', ({ cache, factors, home, want, defaulted }) => {
    const got = featureRow({ ...CACHE, ...cache } as Row, { ...FACTORS, ...factors } as Row, home, DATE, '2021-22');
    expect(got.row).toMatchObject(want);
    expect(got.defaulted).toBe(defaulted);
  });
});

describe('lookbackWindow over any schedule order', () => {
  // Team ZZZ hosts AAA on the date; ZZZ's three earlier games and AAA's two are listed out of order.
  const SCHEDULE = [
    { date: '2021-11-05', gameId: 'z3', home: 'ZZZ', away: 'X3' },
    { date: '2021-11-10', gameId: 'za', home: 'ZZZ', away: 'AAA' },
    { date: '2021-11-01', gameId: 'z1', home: 'ZZZ', away: 'X1' },
    { date: '2021-11-04', gameId: 'a2', home: 'Y2', away: 'AAA' },
    { date: '2021-11-03', gameId: 'z2', home: 'X2', away: 'ZZZ' },
    { date: '2021-11-02', gameId: 'a1', home: 'AAA', away: 'Y1' },
  ];

  it.each([
    { n: 2, start: '2021-11-02', bootstrap: false },
    { n: 3, start: '2021-11-01', bootstrap: true },
    { n: 1, start: '2021-11-04', bootstrap: false },
  ])('the $n previous games of each team, teams sorted', ({ n, start, bootstrap }) => {
    expect(lookbackWindow(SCHEDULE, '2021-11-10', n, true)).toEqual({
      start,
      end: '2021-11-10',
      bootstrap,
      teams: ['AAA', 'ZZZ'],
    });
  });
});

describe('the Phase 3-4 row and date helpers', () => {
  it('batchDates lists each date as a parameter, for IN (...) and as a relation of days', () => {
    expect(batchDates(DUCKDB_DIALECT, ['2021-10-19', '2021-10-20'])).toEqual({
      list: 'CAST(@d0 AS DATE), CAST(@d1 AS DATE)',
      days: 'SELECT CAST(@d0 AS DATE) AS day UNION ALL SELECT CAST(@d1 AS DATE) AS day',
    });
  });

  // On a table no other case of this file builds rows of, so that this case makes its blank row first.
  it('blankRow holds every column of the table, null, in its order, and is new each time', () => {
    const a = blankRow(nbacSchedule);
    expect(Object.keys(a)).toEqual(nbacSchedule.columns.map((c) => c.name));
    expect(Object.values(a).every((v) => v === null)).toBe(true);
    a.game_id = '0022100001';
    const b = blankRow(nbacSchedule);
    expect(b.game_id).toBeNull();
    expect(Object.keys(b)).toHaveLength(nbacSchedule.columns.length);
  });
});
