// The defensive checks at their numbers: completeness one row below, exactly at and one row above 90% on real
// box score rows, and the lookback window at N-1, N and N+1 earlier games (the bootstrap edge) on a
// hand-made schedule.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CheckedWarehouse, type ScheduledGame } from '../core/checks/data.js';
import { COMPLETENESS_THRESHOLD, lookbackWindow, runDefensiveChecks } from '../core/checks/defensive.js';
import type { IsoDate } from '../core/dates.js';
import { getProcessorDefinition } from '../core/pipeline/definition.js';
import { requireDateInSeason } from '../core/pipeline/seasons.js';
import { RunBatch, type RunRecord, type RunStatus, recordRun } from '../core/runs/history.js';
import { espnTeamRoster, nbacGamebookPlayerStats, nbacPlayerBoxscore, nbacTeamBoxscore } from '../core/schema/raw.js';
import type { Row, TableSchema } from '../core/schema/table.js';
import type { TestPipeline } from './support/adapters.js';
import { LOADED_FIXTURE, openLoaded } from './support/loaded.js';

/**
 * `keep` of the rows, at least one of every game and team first (so that no game loses a team and the gap
 * check stays quiet), then the rest in their order.
 */
function thin(rows: readonly Row[], keep: number): Row[] {
  const seen = new Set<string>();
  const first: Row[] = [];
  const rest: Row[] = [];
  for (const r of rows) {
    const k = `${r.game_id}|${r.team_abbr}`;
    (seen.has(k) ? rest : first).push(r);
    seen.add(k);
  }
  if (keep < first.length) throw new Error(`cannot keep ${keep} rows and every game's two teams (${first.length})`);
  return [...first, ...rest.slice(0, keep - first.length)];
}

describe('completeness of player_game_summary’s box score window at 90%', () => {
  // The first four dates of 2021-22: 2021-10-22's window reaches back to the first (every team playing it is
  // in its bootstrap period) and holds the date's own games too (Phase 3 reads the date itself). Later dates
  // are loaded too, and outside the window.
  const LOADED: IsoDate[] = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];
  const DATE: IsoDate = '2021-10-22';
  const def = getProcessorDefinition('player_game_summary');
  const { season } = requireDateInSeason(DATE);
  let t: TestPipeline;
  let windowDates: IsoDate[];
  let original: Map<TableSchema, Row[]>;
  /** The gamebook rows the cases keep: the most that make 90% a whole number of rows. */
  let expected: number;

  const rowsOf = (table: TableSchema) =>
    t.adapters.warehouse.query(
      `SELECT * EXCLUDE (game_date), CAST(game_date AS STRING) AS game_date FROM ${table.dataset}.${table.name}
        WHERE game_date BETWEEN CAST(@start AS DATE) AND CAST(@end AS DATE) ORDER BY game_date, game_id, team_abbr, player_id`,
      { start: windowDates[0] as IsoDate, end: windowDates.at(-1) as IsoDate },
    );

  /** Replaces every window date of the table with the first `keep` rows of its thinned original rows. */
  async function holdOnly(table: TableSchema, keep: number): Promise<void> {
    const kept = thin(original.get(table) ?? [], keep);
    await t.adapters.warehouse.commit({
      replace: windowDates.map((date) => ({ table, date, rows: kept.filter((r) => r.game_date === date) })),
      append: [],
    });
  }

  // Only the fixture is read here; the checks run inside the cases, so that Stryker counts the cases as
  // covering them (a mutant hit in beforeAll would make every test of the suite run for it).
  beforeAll(async () => {
    t = await openLoaded(LOADED_FIXTURE);
    windowDates = LOADED;
    original = new Map([
      [nbacPlayerBoxscore, await rowsOf(nbacPlayerBoxscore)],
      [nbacGamebookPlayerStats, await rowsOf(nbacGamebookPlayerStats)],
    ]);
    expected = 10 * Math.floor((original.get(nbacGamebookPlayerStats)?.length ?? 0) / 10);
  });
  afterAll(async () => t.dispose());

  it('checks against 90%, over a window of the first four dates that passes as loaded', async () => {
    expect(COMPLETENESS_THRESHOLD).toBe(0.9);
    const report = await runDefensiveChecks(t.adapters.warehouse, def, season, DATE, 'backfill');
    expect(report.failures).toEqual([]);
    expect(report.window).toMatchObject({ start: LOADED[0], end: DATE, bootstrap: true });
    // Enough rows that one row is under a fifth of a percentage point, and box rows for each case.
    expect(expected).toBeGreaterThanOrEqual(500);
    expect(original.get(nbacPlayerBoxscore)?.length).toBeGreaterThan(0.9 * expected);
  });

  it.each([
    { name: 'one row below 90% blocks', offset: -1, blocked: true },
    { name: 'exactly 90% passes', offset: 0, blocked: false },
    { name: 'one row above 90% passes', offset: 1, blocked: false },
  ])('$name', async ({ offset, blocked }) => {
    // 90% of a multiple of 10 is a whole number, and present/expected is then exactly the double 0.9.
    const present = (9 * expected) / 10 + offset;
    await holdOnly(nbacGamebookPlayerStats, expected);
    await holdOnly(nbacPlayerBoxscore, present);
    const report = await runDefensiveChecks(t.adapters.warehouse, def, season, DATE, 'backfill');
    const failed = report.failures.map((f) => f.check);
    // Every game keeps both teams: completeness is the only check with something to say.
    expect(failed).toEqual(blocked ? ['completeness'] : []);
    if (blocked) {
      const pct = ((100 * present) / expected).toFixed(1);
      expect(report.failures[0]).toEqual({
        check: 'completeness',
        message: `nba_raw.nbac_player_boxscore holds ${pct}% of the rows expected in the lookback window ${report.window.start}..${report.window.end} (${present} of ${expected}), below 90%`,
        missingDates: [],
        missingGames: [],
      });
    }
  });
});

describe('lookbackWindow: the N-th previous game of each team playing the date, bootstrap below N', () => {
  const DATE: IsoDate = '2021-12-15';

  /**
   * Team A's k-th game is on 2021-10-k, team B's on 2021-09-k, each against a team with no other game; A and
   * B meet on DATE, and A plays once more after it (a later game never counts).
   */
  function schedule(aGames: number, bGames: number): ScheduledGame[] {
    const day = (month: number, k: number) => `2021-${String(month).padStart(2, '0')}-${String(k).padStart(2, '0')}`;
    return [
      ...Array.from({ length: aGames }, (_v, i) => ({
        date: day(10, i + 1),
        gameId: `a${i}`,
        home: 'AAA',
        away: `X${i}`,
      })),
      ...Array.from({ length: bGames }, (_v, i) => ({
        date: day(9, i + 1),
        gameId: `b${i}`,
        home: `Y${i}`,
        away: 'BBB',
      })),
      { date: DATE, gameId: 'ab', home: 'AAA', away: 'BBB' },
      { date: '2021-12-20', gameId: 'later', home: 'AAA', away: 'ZZZ' },
    ];
  }

  // Starts by hand: with k earlier games and a lookback of n, a team reaches back to its game k-n+1 (its
  // first when k <= n); the window starts at the earliest reach, B's (September) before A's (October).
  it.each([
    // Phase 3's 10 games, the date included.
    {
      name: '10 games: 10 and 10 earlier, no bootstrap',
      n: 10,
      a: 10,
      b: 10,
      phase3: true,
      start: '2021-09-01',
      bootstrap: false,
    },
    {
      name: '10 games: 9 earlier is bootstrap',
      n: 10,
      a: 9,
      b: 10,
      phase3: true,
      start: '2021-09-01',
      bootstrap: true,
    },
    {
      name: '10 games: 11 earlier reach back to the 2nd',
      n: 10,
      a: 11,
      b: 11,
      phase3: true,
      start: '2021-09-02',
      bootstrap: false,
    },
    {
      name: '10 games: the earliest of the two reaches',
      n: 10,
      a: 30,
      b: 12,
      phase3: true,
      start: '2021-09-03',
      bootstrap: false,
    },
    {
      name: '10 games: a team without earlier games pulls nothing back',
      n: 10,
      a: 30,
      b: 0,
      phase3: true,
      start: '2021-10-21',
      bootstrap: true,
    },
    // Phase 3's 15-game defence.
    {
      name: '15 games: 15 and 16 earlier, no bootstrap',
      n: 15,
      a: 15,
      b: 16,
      phase3: true,
      start: '2021-09-02',
      bootstrap: false,
    },
    {
      name: '15 games: 14 earlier is bootstrap',
      n: 15,
      a: 16,
      b: 14,
      phase3: true,
      start: '2021-09-01',
      bootstrap: true,
    },
    {
      name: '15 games: 16 earlier reach back to the 2nd',
      n: 15,
      a: 16,
      b: 0,
      phase3: true,
      start: '2021-10-02',
      bootstrap: true,
    },
    // Phase 4's 30 games, up to the day before.
    {
      name: '30 games: 30 and 30 earlier, no bootstrap',
      n: 30,
      a: 30,
      b: 30,
      phase3: false,
      start: '2021-09-01',
      bootstrap: false,
    },
    {
      name: '30 games: 29 earlier is bootstrap',
      n: 30,
      a: 31,
      b: 29,
      phase3: false,
      start: '2021-09-01',
      bootstrap: true,
    },
    {
      name: '30 games: 31 earlier reach back to the 2nd',
      n: 30,
      a: 31,
      b: 0,
      phase3: false,
      start: '2021-10-02',
      bootstrap: true,
    },
    // No earlier game: the window is the date itself (Phase 3) or the day before (Phase 4).
    { name: 'no earlier games, Phase 3: the date', n: 10, a: 0, b: 0, phase3: true, start: DATE, bootstrap: true },
    {
      name: 'no earlier games, Phase 4: the day before',
      n: 30,
      a: 0,
      b: 0,
      phase3: false,
      start: '2021-12-14',
      bootstrap: true,
    },
  ])('$name', ({ n, a, b, phase3, start, bootstrap }) => {
    const window = lookbackWindow(schedule(a, b), DATE, n, phase3);
    expect(window).toEqual({ start, end: phase3 ? DATE : '2021-12-14', bootstrap, teams: ['AAA', 'BBB'] });
  });
});

describe('the gap and upstream-failure checks on real dates', () => {
  // player_game_summary on 2021-10-22 reads the box scores of 2021-10-19..22 (every team in its bootstrap
  // period); player_daily_cache on 2021-11-27 reads that date's rosters only (a date-scoped dependency).
  const DATE: IsoDate = '2021-10-22';
  const IN_WINDOW: IsoDate = '2021-10-20';
  const AFTER: IsoDate = '2021-10-23';
  const CACHE_DATE: IsoDate = '2021-11-27';
  const summary = getProcessorDefinition('player_game_summary');
  const cache = getProcessorDefinition('player_daily_cache');
  const { season } = requireDateInSeason(DATE);
  let t: TestPipeline;

  // A private copy per case: the cases change rows and run history.
  beforeEach(async () => {
    t = await openLoaded(LOADED_FIXTURE);
  });
  afterEach(async () => t.dispose());

  const gamesOn = async (date: IsoDate) =>
    (
      await t.adapters.warehouse.query(
        `SELECT game_id, home_team_abbr AS home FROM nba_raw.nbac_schedule
          WHERE game_date = CAST(@date AS DATE) AND game_status = 'Final' ORDER BY game_id`,
        { date },
      )
    ).map((r) => ({ gameId: String(r.game_id), home: String(r.home) }));

  /** Replaces a table's rows on a date with those the filter keeps. */
  async function keepOnly(table: TableSchema, date: IsoDate, keep: (r: Row) => boolean): Promise<void> {
    const rows = await t.adapters.warehouse.query(
      `SELECT * EXCLUDE (${table.partitionColumn}), CAST(${table.partitionColumn} AS STRING) AS ${table.partitionColumn}
         FROM ${table.dataset}.${table.name} WHERE ${table.partitionColumn} = CAST(@date AS DATE)`,
      { date },
    );
    const kept = rows.filter(keep);
    expect(kept.length).toBeLessThan(rows.length);
    await t.adapters.warehouse.commit({ replace: [{ table, date, rows: kept }], append: [] });
  }

  const check = (def: typeof summary, date: IsoDate) =>
    runDefensiveChecks(t.adapters.warehouse, def, season, date, 'backfill');

  it('a game with one team missing on a window date is a gap, named with its date and game', async () => {
    const games = (await Promise.all(['2021-10-19', '2021-10-20', '2021-10-21', DATE].map(gamesOn))).flat();
    const lost = (await gamesOn(IN_WINDOW))[0] as { gameId: string; home: string };
    await keepOnly(nbacPlayerBoxscore, IN_WINDOW, (r) => !(r.game_id === lost.gameId && r.team_abbr === lost.home));
    const report = await check(summary, DATE);
    expect(report.failures).toEqual([
      {
        check: 'gap_detection',
        message: `missing dates in lookback window: ${IN_WINDOW} (nba_raw.nbac_player_boxscore: 1 of ${games.length} games missing, window 2021-10-19..${DATE})`,
        missingDates: [IN_WINDOW],
        missingGames: [lost.gameId],
      },
    ]);
  });

  it('the same loss on a date after the window is no gap', async () => {
    const lost = (await gamesOn(AFTER))[0] as { gameId: string; home: string };
    await keepOnly(nbacPlayerBoxscore, AFTER, (r) => !(r.game_id === lost.gameId && r.team_abbr === lost.home));
    expect((await check(summary, DATE)).failures).toEqual([]);
  });

  it.each([
    { name: 'on the date itself is a gap of that date', before: false, gap: true },
    { name: 'on its previous game date is outside a date-scoped window', before: true, gap: false },
  ])('a team missing from the rosters $name', async ({ before, gap }) => {
    const games = await gamesOn(CACHE_DATE);
    const team = (games[0] as { home: string }).home;
    // The team's roster rows on its last earlier date, for the other case: a lookback would read them.
    const earlier = await t.adapters.warehouse.query(
      `SELECT CAST(MAX(roster_date) AS STRING) AS d FROM nba_raw.espn_team_roster
        WHERE team_abbr = @team AND roster_date < CAST(@date AS DATE)`,
      { team, date: CACHE_DATE },
    );
    const date = before ? String(earlier[0]?.d) : CACHE_DATE;
    await keepOnly(espnTeamRoster, date, (r) => r.team_abbr !== team);
    const report = await check(cache, CACHE_DATE);
    const lostGames = games.filter((g) => g.home === team).map((g) => g.gameId);
    expect(report.failures.filter((f) => f.check === 'gap_detection')).toEqual(
      gap
        ? [
            {
              check: 'gap_detection',
              message: `missing dates in lookback window: ${CACHE_DATE} (nba_raw.espn_team_roster: ${lostGames.length} of ${games.length} games missing, window ${CACHE_DATE}..${CACHE_DATE})`,
              missingDates: [CACHE_DATE],
              missingGames: lostGames,
            },
          ]
        : [],
    );
  });

  const LATER = new Date(Date.UTC(2031, 0, 1));
  const run = (processorName: string, dataDate: IsoDate, status: RunStatus, finishedAt: Date): RunRecord => ({
    runId: `test-${processorName}-${dataDate}-${status}-${finishedAt.getTime()}`,
    processorName,
    phase: 2,
    dataDate,
    season: season.label,
    status,
    errorMessage: status === 'success' ? null : 'HTTP 503 from the stats API\n    at fetch (http.ts:1:1)',
    rowsProcessed: 0,
    decision: status === 'success' ? 'processed' : status,
    attempt: 1,
    startedAt: finishedAt,
    finishedAt,
    trigger: { command: 'test' },
    strictMode: true,
    details: {},
  });

  it.each([
    { name: 'failed', status: 'failed' as const },
    { name: 'blocked', status: 'blocked' as const },
  ])('the box scores’ writer $name on a window date blocks, with its first error line', async ({ status }) => {
    await recordRun(t.adapters.warehouse, run('nbac_player_boxscore', IN_WINDOW, status, LATER));
    const report = await check(summary, DATE);
    expect(report.failures).toEqual([
      {
        check: 'upstream_failure',
        message: `nbac_player_boxscore ${status} on ${IN_WINDOW} (latest run: HTTP 503 from the stats API)`,
        missingDates: [IN_WINDOW],
        missingGames: [],
      },
    ]);
  });

  it.each([
    {
      name: 'a failure followed by a success',
      runs: [
        run('nbac_player_boxscore', IN_WINDOW, 'failed', LATER),
        run('nbac_player_boxscore', IN_WINDOW, 'success', new Date(LATER.getTime() + 1)),
      ],
    },
    { name: 'a failure after the window', runs: [run('nbac_player_boxscore', AFTER, 'failed', LATER)] },
    { name: 'a failure of a processor not read', runs: [run('nbac_team_boxscore', IN_WINDOW, 'failed', LATER)] },
  ])('no upstream failure for $name', async ({ runs }) => {
    for (const r of runs) await recordRun(t.adapters.warehouse, r);
    expect((await check(summary, DATE)).failures).toEqual([]);
  });

  it('games lost on two window dates: both dates, in order, and every game', async () => {
    const games = (await Promise.all(['2021-10-19', '2021-10-20', '2021-10-21', DATE].map(gamesOn))).flat();
    const lost: string[] = [];
    for (const date of ['2021-10-21', IN_WINDOW] as IsoDate[]) {
      const g = (await gamesOn(date))[0] as { gameId: string; home: string };
      lost.push(g.gameId);
      await keepOnly(nbacPlayerBoxscore, date, (r) => !(r.game_id === g.gameId && r.team_abbr === g.home));
    }
    const [gap] = (await check(summary, DATE)).failures;
    expect(gap).toEqual({
      check: 'gap_detection',
      message: `missing dates in lookback window: ${IN_WINDOW}, 2021-10-21 (nba_raw.nbac_player_boxscore: 2 of ${games.length} games missing, window 2021-10-19..${DATE})`,
      missingDates: [IN_WINDOW, '2021-10-21'],
      missingGames: [...lost].sort(),
    });
  });

  it('a table read by team (no expected-rows table) must hold two rows a game: one date gone is below 90%', async () => {
    const offense = getProcessorDefinition('team_offense_game_summary');
    const window = ['2021-10-19', '2021-10-20', '2021-10-21', DATE] as IsoDate[];
    const games = (await Promise.all(window.map(gamesOn))).flat();
    const lostGames = (await gamesOn(IN_WINDOW)).map((g) => g.gameId);
    await keepOnly(nbacTeamBoxscore, IN_WINDOW, () => false);
    const report = await check(offense, DATE);
    const expected = 2 * games.length;
    const present = expected - 2 * lostGames.length;
    expect(present / expected).toBeLessThan(0.9);
    expect(report.failures.find((f) => f.check === 'completeness')).toEqual({
      check: 'completeness',
      message: `nba_raw.nbac_team_boxscore holds ${((100 * present) / expected).toFixed(1)}% of the rows expected in the lookback window 2021-10-19..${DATE} (${present} of ${expected}), below 90%`,
      missingDates: [],
      missingGames: [],
    });
  });

  it('failures on two dates, the batch’s and a committed one: each named, dates in order, the first one’s error', async () => {
    await recordRun(t.adapters.warehouse, run('nbac_player_boxscore', '2021-10-21', 'failed', LATER));
    const batch = new RunBatch();
    batch.add({ ...run('nbac_player_boxscore', IN_WINDOW, 'blocked', LATER), errorMessage: null });
    const report = await runDefensiveChecks(t.adapters.warehouse, summary, season, DATE, 'backfill', batch);
    expect(report.failures).toEqual([
      {
        check: 'upstream_failure',
        message: `nbac_player_boxscore failed on 2021-10-21, nbac_player_boxscore blocked on ${IN_WINDOW} (latest run: HTTP 503 from the stats API)`,
        missingDates: [IN_WINDOW, '2021-10-21'],
        missingGames: [],
      },
    ]);
  });

  it('a failed run without a message says only that it was the latest run', async () => {
    await recordRun(t.adapters.warehouse, {
      ...run('nbac_player_boxscore', IN_WINDOW, 'failed', LATER),
      errorMessage: null,
    });
    expect((await check(summary, DATE)).failures.map((f) => f.message)).toEqual([
      `nbac_player_boxscore failed on ${IN_WINDOW} (latest run)`,
    ]);
  });

  it('one checked warehouse across processors and dates: each gets its own window and its own dates', async () => {
    const LATE: IsoDate = '2021-11-27';
    const late = (await check(summary, LATE)).window;
    // A failure inside the late window only.
    await recordRun(t.adapters.warehouse, run('nbac_player_boxscore', '2021-11-26', 'failed', LATER));
    const checked = new CheckedWarehouse(t.adapters.warehouse);
    const via = (def: typeof summary, date: IsoDate) => runDefensiveChecks(checked, def, season, date, 'backfill');
    const early = await via(summary, DATE);
    expect(early.window).toMatchObject({ start: '2021-10-19', end: DATE });
    expect(early.failures).toEqual([]);
    const cached = await via(cache, DATE);
    expect(cached.window).toMatchObject({ end: '2021-10-21' });
    const later = await via(summary, LATE);
    expect(later.window).toEqual(late);
    expect(later.failures.map((f) => f.check)).toEqual(['upstream_failure']);
    expect(later.failures[0]?.missingDates).toEqual(['2021-11-26']);
  });
});
