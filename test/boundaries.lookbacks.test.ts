// Every lookback window pinned at its edge on the real 2021-22 data through the real processors: each value
// is computed by hand from the raw box score rows in a plain loop, and each case also shows that a window
// one game (or day) shorter or longer would give another value somewhere, so a shifted window fails it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IsoDate } from '../core/dates.js';
import { silentLogger } from '../core/log.js';
import { playerGameSummaryProcessor, teamDefenseProcessor, teamOffenseProcessor } from '../core/phase3/processors.js';
import { compositeFactorsProcessor, playerDailyCacheProcessor } from '../core/phase4/processors.js';
import type { Processor } from '../core/pipeline/processor.js';
import { requireDateInSeason } from '../core/pipeline/seasons.js';
import { RunBatch } from '../core/runs/history.js';
import type { Row, SqlValue } from '../core/schema/table.js';
import { LOADED_FIXTURE, type LoadedPipeline, openLoaded } from './support/loaded.js';

const log = silentLogger();

interface PlayerGame {
  readonly d: IsoDate;
  readonly pts: number | null;
  readonly min: number | null;
  readonly reb: number | null;
  readonly ast: number | null;
}

interface TeamGame {
  readonly d: IsoDate;
  readonly team: string;
  readonly opp: string;
  /** Points per 100 possessions: the team's offensive rating, its opponent's defensive rating. */
  readonly rating: number;
}

/** A processor's value and the hand-computed one for a window of `n` (games, or days). */
interface Pinned {
  readonly what: string;
  readonly actual: unknown;
  hand(n: number): number | null;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: readonly number[]) => (xs.length > 0 ? sum(xs) / xs.length : null);
const present = (xs: readonly (number | null)[]) => xs.filter((x): x is number => x !== null);
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
function stddevSample(xs: readonly number[]): number | null {
  const m = mean(xs);
  return m === null || xs.length < 2 ? null : Math.sqrt(sum(xs.map((x) => (x - m) ** 2)) / (xs.length - 1));
}
function daysBefore(date: IsoDate, days: number): IsoDate {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}
const close = (a: number | null, b: unknown, digits: number) =>
  a === null ? b === null : typeof b === 'number' && Math.abs(a - b) < 10 ** -digits / 2;

let t: LoadedPipeline;
let gameDates: IsoDate[];
/** The dates Phase 3 runs on: spread over the loaded weeks, from opening night to 30+ game histories. */
let phase3Dates: IsoDate[];
/** The dates Phase 4 runs on: four spread over the loaded weeks, the last with 30+ game histories. */
let phase4Dates: IsoDate[];
let playerGames: Map<number, PlayerGame[]>;
let teamGames: TeamGame[];

// Only the fixture and the raw rows are read here; the processors run inside each case, so that Stryker
// counts each case as covering them (a mutant hit in beforeAll would make every test of the suite run for it).
beforeAll(async () => {
  t = await openLoaded(LOADED_FIXTURE);
  const q = (sql: string) => t.pristine(sql);
  gameDates = (await q(`SELECT DISTINCT CAST(game_date AS STRING) AS d FROM nba_raw.nbac_schedule ORDER BY d`)).map(
    (r) => String(r.d),
  );
  phase3Dates = [0, 5, 12, 20, 30, 40, 50].map((i) => gameDates[i] as IsoDate).concat(gameDates.at(-1) as IsoDate);
  phase4Dates = [10, 25, 45].map((i) => gameDates[i] as IsoDate).concat(gameDates.at(-1) as IsoDate);
  playerGames = new Map();
  for (const r of await q(
    `SELECT player_id, CAST(game_date AS STRING) AS d, points, minutes, reb, ast FROM nba_raw.nbac_player_boxscore ORDER BY game_date`,
  )) {
    const id = Number(r.player_id);
    if (!playerGames.has(id)) playerGames.set(id, []);
    playerGames
      .get(id)
      ?.push({ d: String(r.d), pts: num(r.points), min: num(r.minutes), reb: num(r.reb), ast: num(r.ast) });
  }
  teamGames = (
    await q(
      `SELECT CAST(game_date AS STRING) AS d, team_abbr, opponent_team_abbr, points, fga, oreb, tov, fta
         FROM nba_raw.nbac_team_boxscore ORDER BY game_date`,
    )
  ).map((r) => ({
    d: String(r.d),
    team: String(r.team_abbr),
    opp: String(r.opponent_team_abbr),
    rating: (100 * Number(r.points)) / (Number(r.fga) - Number(r.oreb) + Number(r.tov) + 0.44 * Number(r.fta)),
  }));
});
afterAll(async () => t.dispose());

/**
 * The rows a processor computes for some dates, read from what it returns (nothing is written), each with
 * its date as `d` and its player id as a number.
 */
async function computed(processor: Processor, dates: readonly IsoDate[]): Promise<Row[]> {
  const out: Row[] = [];
  for (const date of dates) {
    const { season, seasonType } = requireDateInSeason(date);
    const result = await processor.run({ ...t.adapters, date, season, seasonType, log });
    for (const r of result.write?.rows ?? []) {
      out.push({ ...r, d: String(r.game_date ?? r.cache_date), player_id: num(r.player_id) });
    }
  }
  return out;
}

/** A player's games of the season before a date, oldest first. */
const before = (playerId: unknown, date: IsoDate) =>
  (playerGames.get(Number(playerId)) ?? []).filter((g) => g.d < date);

type Stat = 'pts' | 'min' | 'reb' | 'ast';
const COLUMN: Record<Stat, string> = { pts: 'points', min: 'minutes', reb: 'rebounds', ast: 'assists' };

/** Phase 3: the mean of the latest n values the player has (a game without the value is skipped). */
const phase3Player = async (stat: 'pts' | 'min', n: number): Promise<Pinned[]> =>
  (await computed(playerGameSummaryProcessor, phase3Dates)).map((s) => ({
    what: `player ${s.player_id} on ${s.d}`,
    actual: s[`${stat}_avg_last_${n}`],
    hand: (k) => mean(present(before(s.player_id, String(s.d)).map((g) => g[stat])).slice(-k)),
  }));

/** Phase 4: the mean over the player's latest n games (the value's gaps are skipped, not refilled). */
const phase4Player = async (stat: Stat, n: number): Promise<Pinned[]> =>
  (await computed(playerDailyCacheProcessor, phase4Dates)).map((c) => ({
    what: `player ${c.player_id} on ${c.d}`,
    actual: c[`${stat}_avg_last_${n}`],
    hand: (k) =>
      mean(
        present(
          before(c.player_id, String(c.d))
            .slice(-k)
            .map((g) => g[stat]),
        ),
      ),
  }));

/** The latest n ratings before a date of the team's own games (offence) or of its opponents (defence). */
function latestRatings(team: string, date: IsoDate, side: 'offence' | 'defence', n: number): number[] {
  return teamGames
    .filter((g) => g.d < date && (side === 'offence' ? g.team : g.opp) === team)
    .map((g) => g.rating)
    .slice(-n);
}

interface Case {
  readonly name: string;
  /** The window's length at which the processor's values are pinned. */
  readonly n: number;
  /** Decimal digits the values agree to: Phase 4's means of doubles are summed as billionths. */
  readonly digits?: number;
  values(): Promise<Pinned[]>;
}

const CASES: readonly Case[] = [
  { name: 'Phase 3 players: points over the previous 5 games', n: 5, values: () => phase3Player('pts', 5) },
  { name: 'Phase 3 players: points over the previous 10 games', n: 10, values: () => phase3Player('pts', 10) },
  { name: 'Phase 3 players: minutes over the previous 5 games', n: 5, values: () => phase3Player('min', 5) },
  { name: 'Phase 3 players: minutes over the previous 10 games', n: 10, values: () => phase3Player('min', 10) },
  {
    name: 'Phase 3 teams: offensive rating over the previous 10 games',
    n: 10,
    values: async () =>
      (await computed(teamOffenseProcessor, phase3Dates)).map((r) => ({
        what: `${r.team_abbr} on ${r.d}`,
        actual: r.off_rating_prev_10_avg,
        hand: (k) => mean(latestRatings(String(r.team_abbr), String(r.d), 'offence', k)),
      })),
  },
  {
    name: 'Phase 3 teams: defensive rating over the previous 15 games',
    n: 15,
    values: async () =>
      (await computed(teamDefenseProcessor, phase3Dates)).map((r) => ({
        what: `${r.team_abbr} on ${r.d}`,
        actual: r.def_rating_prev_15_avg,
        hand: (k) => mean(latestRatings(String(r.team_abbr), String(r.d), 'defence', k)),
      })),
  },
  ...(['pts', 'min', 'reb', 'ast'] as const).flatMap((stat) =>
    [5, 10, 30].map((n) => ({
      name: `Phase 4 cache: ${COLUMN[stat]} over the last ${n} games`,
      n,
      values: () => phase4Player(stat, n),
    })),
  ),
  {
    name: 'Phase 4 cache: standard deviation of points over the last 30 games',
    n: 30,
    values: async () =>
      (await computed(playerDailyCacheProcessor, phase4Dates)).map((c) => ({
        what: `player ${c.player_id} on ${c.d}`,
        actual: c.pts_std_last_30,
        hand: (k) =>
          stddevSample(
            present(
              before(c.player_id, String(c.d))
                .slice(-k)
                .map((g) => g.pts),
            ),
          ),
      })),
  },
  {
    // The SQL reads game_date >= the date minus 7 days: a game exactly 7 days before counts (n - 1 = 6 is
    // the window without it, n + 1 = 8 the one with the 8th day).
    name: 'Phase 4 factors: minutes in the last 7 days, a game exactly 7 days before included',
    n: 7,
    values: async () =>
      (await computed(compositeFactorsProcessor, phase4Dates)).map((f) => ({
        what: `player ${f.player_id} on ${f.d}`,
        actual: f.minutes_last_7_days,
        hand: (days) =>
          Math.round(
            sum(
              present(
                before(f.player_id, String(f.d))
                  .filter((g) => g.d >= daysBefore(String(f.d), days))
                  .map((g) => g.min),
              ),
            ),
          ),
      })),
  },
  {
    name: 'Phase 4 factors: the opponent’s defensive rating over its previous 15 games (matchup score)',
    n: 15,
    digits: 6,
    values: async () =>
      (await computed(compositeFactorsProcessor, phase4Dates)).map((f) => ({
        what: `player ${f.player_id} on ${f.d} against ${f.opponent_team_abbr}`,
        actual: f.matchup_score,
        hand: (k) => {
          const date = String(f.d);
          const def = mean(latestRatings(String(f.opponent_team_abbr), date, 'defence', k));
          // Every team-game's defensive rating is the other team's offensive rating: the league's mean of both.
          const league = mean(teamGames.filter((g) => g.d < date).map((g) => g.rating));
          return def === null || league === null ? 0 : clamp(def - league, -30, 30);
        },
      })),
  },
];

describe('lookback windows pinned at their edges', () => {
  it('covers Phase 4 dates with players of more than 30 earlier games, and teams of more than 15', () => {
    expect(phase4Dates).toHaveLength(4);
    const last = phase4Dates.at(-1) as IsoDate;
    expect([...playerGames.values()].some((games) => games.filter((g) => g.d < last).length > 30)).toBe(true);
    const teams = new Set(teamGames.map((g) => g.team));
    expect([...teams].some((team) => latestRatings(team, last, 'defence', 16).length === 16)).toBe(true);
  });

  it.each(CASES)('$name', async ({ n, digits = 9, values }) => {
    const pinned = await values();
    expect(pinned.length).toBeGreaterThan(0);
    const wrong = pinned
      .filter((v) => !close(v.hand(n), v.actual, digits))
      .map((v) => `${v.what}: ${String(v.actual)}, by hand ${v.hand(n)}`);
    expect(wrong.slice(0, 5)).toEqual([]);
    // The fixture bites: a window one shorter and one longer each give another value for some row.
    for (const shifted of [n - 1, n + 1]) {
      expect(
        pinned.some((v) => !close(v.hand(shifted), v.actual, digits)),
        `a window of ${shifted} would agree everywhere`,
      ).toBe(true);
    }
  });
});

describe('Phase 3 processors: their decision and their shared reads', () => {
  const PHASE3 = [playerGameSummaryProcessor, teamOffenseProcessor, teamDefenseProcessor];
  // Thanksgiving 2021: the NBA played no game.
  const OFF_DAY: IsoDate = '2021-11-25';

  it.each(PHASE3.map((p) => ({ name: p.definition.name, p })))(
    '$name: processed on a game date, no_games on an off-day',
    async ({ p }) => {
      const on = (date: IsoDate) => p.run({ ...t.adapters, ...requireDateInSeason(date), date, log });
      const game = await on(phase3Dates[1] as IsoDate);
      expect([game.decision, game.rows > 0]).toEqual(['processed', true]);
      const off = await on(OFF_DAY);
      expect([off.decision, off.rows, off.write?.rows]).toEqual(['no_games', 0, []]);
    },
  );

  /** A date's batch with the warehouse's queries counted. */
  function counted(date: IsoDate) {
    const sqls: string[] = [];
    const warehouse = {
      ...t.adapters.warehouse,
      dialect: t.adapters.warehouse.dialect,
      query: (sql: string, params?: Readonly<Record<string, SqlValue>>) => {
        sqls.push(sql);
        return t.adapters.warehouse.query(sql, params);
      },
    };
    const pending = new RunBatch();
    return { sqls, ctx: { ...t.adapters, warehouse, pending, ...requireDateInSeason(date), date, log } };
  }

  it('prefetch starts each shared read before the run, and the two team processors read once a date', async () => {
    const [first, second] = [phase3Dates[1] as IsoDate, phase3Dates[2] as IsoDate];
    const a = counted(first);
    for (const p of PHASE3) p.prefetch?.(a.ctx);
    // Two reads before any run: the players', and the teams' (shared by offense and defense).
    expect(a.sqls).toHaveLength(2);
    const rows = [];
    for (const p of PHASE3) rows.push((await p.run(a.ctx)).rows);
    expect(a.sqls).toHaveLength(2);
    // The same batch on another date reads that date's rows, not the first date's again.
    const b = { ...a, ctx: { ...a.ctx, ...requireDateInSeason(second), date: second } };
    for (const p of PHASE3) {
      const result = await p.run(b.ctx);
      expect(result.write?.rows.every((r) => r.game_date === second)).toBe(true);
    }
    expect(a.sqls).toHaveLength(4);
    expect(rows.every((n) => n > 0)).toBe(true);
  });
});
