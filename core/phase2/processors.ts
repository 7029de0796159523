// Phase 2: the five raw processors. Each reads the date's raw files, validates every record, derives what
// the data lacks, and replaces the date in its nba_raw table in one transaction.

import { BadInputError } from '../errors.js';
import { COUNTING_STATS, type CountingStat } from '../nba/boxStats.js';
import { parseMatchup, TEAMS, type TeamAbbr } from '../nba/teams.js';
import { rawKey } from '../phase1/scrapers.js';
import { getProcessorDefinition } from '../pipeline/definition.js';
import type { Processor, ProcessorContext, ProcessorResult } from '../pipeline/processor.js';
import { seasonTypeOfGameId } from '../pipeline/seasons.js';
import { playerLogSeasonTypesOf } from '../ports/source.js';
import { duplicateKeys, qualifiedName, type Row, type TableSchema } from '../schema/table.js';
import { gamesOf, type HeldKey, playerLogGaps, refuseLosses, requirePlayerLogCoverage } from './coverage.js';
import { readGameLogRecords, readRawFile } from './rawFiles.js';
import { invalid, PlayerLogRecord, RosterFile, TeamLogRecord, validateGameLog } from './records.js';

interface Built {
  readonly rows: Row[];
  readonly details?: Readonly<Record<string, unknown>>;
  /** The raw file the rows come from, for naming it when the rows are refused. */
  readonly location?: string;
}

/** Every table a Phase 2 guard protects (refuseLosses): a date reads what they hold in one query. */
const GUARDED: HeldKey[] = [];

/**
 * Wraps a row builder with the key check; the runner then replaces the date atomically. With `keep`, the
 * new rows must keep every value of those columns the table holds for the date (see refuseLosses).
 */
function tableProcessor(
  name: string,
  build: (ctx: ProcessorContext) => Promise<Built>,
  keep?: readonly string[],
): Processor {
  const definition = getProcessorDefinition(name);
  if (definition.output.kind !== 'table') throw new Error(`${name} does not write a table`);
  const table: TableSchema = definition.output.table;
  const held: HeldKey | undefined = keep && { table, columns: keep };
  if (held) GUARDED.push(held);
  return {
    definition,
    async run(ctx: ProcessorContext): Promise<ProcessorResult> {
      const { rows, details, location } = await build(ctx);
      const dups = duplicateKeys(table, rows);
      if (dups.length > 0) {
        throw new BadInputError(
          `${qualifiedName(table)} for ${ctx.date}: duplicate rows for ${dups.slice(0, 5).join('; ')}`,
        );
      }
      if (held) await refuseLosses(ctx, held, rows, location ?? 'the source', GUARDED);
      return {
        rows: rows.length,
        decision: rows.length > 0 ? 'processed' : 'no_games',
        details: details ?? {},
        write: { table, rows },
      };
    },
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const ratio = (made: number, attempted: number) => (attempted > 0 ? round3(made / attempted) : null);

async function playerRecords(ctx: ProcessorContext): Promise<PlayerLogRecord[]> {
  const { location, records } = await readGameLogRecords(ctx, 'playerGameLogs');
  const valid = validateGameLog(PlayerLogRecord, records, location, ctx.date);
  const seen = new Map<string, number>();
  for (const r of valid) {
    const k = `GAME_ID=${r.GAME_ID}, PLAYER_ID=${r.PLAYER_ID}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const dups = [...seen]
    .filter(([, n]) => n > 1)
    .map(([k, n]) => `duplicate player rows for one game: ${k} appears ${n} times`);
  if (dups.length > 0) throw invalid(location, dups);
  return valid;
}

/**
 * The date's player records, checked against the games of its team game log (coverage.ts): a short or empty
 * player answer, or a team log that lost a game, is bad input. The team log is read for its game ids and
 * teams only: whether its records are valid is the schedule's rule, so a bad team log fails that processor.
 * The three player processors of a date share one read through the date's batch.
 */
function coveredPlayerRecords(ctx: ProcessorContext): Promise<{ players: PlayerLogRecord[]; location: string }> {
  const load = async () => {
    const players = await playerRecords(ctx);
    const { location: teamLocation, records } = await readGameLogRecords(ctx, 'teamGameLogs');
    const location = ctx.objects.locate(rawKey('playerGameLogs', ctx.date));
    const gaps = playerLogGaps(gamesOf(players), gamesOf(records), playerLogSeasonTypesOf(ctx.source), ctx.seasonType);
    requirePlayerLogCoverage(ctx, { players: location, teams: teamLocation }, gaps);
    return { players, location };
  };
  return ctx.pending ? ctx.pending.shared(`phase2 covered players ${ctx.date}`, load) : load();
}

/** Stats of a team row, for telling identical duplicates from conflicting ones. */
function statsSignature(r: TeamLogRecord): string {
  return JSON.stringify(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * The date's team rows, with identical duplicates dropped: the 2023-24 playoff totals repeat 11 games
 * whose rows differ only in rank columns (SOURCE.md, quirk 10). Duplicates that disagree are bad input.
 */
function teamRecords(
  ctx: ProcessorContext,
): Promise<{ rows: TeamLogRecord[]; deduplicated: number; location: string }> {
  // The schedule and the team box scores of a date read them: once per batch.
  const load = () => validTeamRecords(ctx);
  return ctx.pending ? ctx.pending.shared(`phase2 team records ${ctx.date}`, load) : load();
}

async function validTeamRecords(
  ctx: ProcessorContext,
): Promise<{ rows: TeamLogRecord[]; deduplicated: number; location: string }> {
  const { location, records } = await readGameLogRecords(ctx, 'teamGameLogs');
  const valid = validateGameLog(TeamLogRecord, records, location, ctx.date);
  const byKey = new Map<string, TeamLogRecord>();
  const conflicts: string[] = [];
  let deduplicated = 0;
  for (const r of valid) {
    const k = `GAME_ID=${r.GAME_ID}, TEAM_ID=${r.TEAM_ID}`;
    const prev = byKey.get(k);
    if (!prev) byKey.set(k, r);
    else if (statsSignature(prev) === statsSignature(r)) deduplicated++;
    else conflicts.push(`conflicting duplicate team rows for ${k}`);
  }
  if (conflicts.length > 0) throw invalid(location, conflicts);
  return { rows: [...byKey.values()], deduplicated, location };
}

interface Side {
  readonly home: string;
  readonly away: string;
}

/** Home and away of each game, from the MATCHUP strings of its rows, which must agree. */
function sidesOf(rows: readonly { GAME_ID: string; MATCHUP: string }[], location: string): Map<string, Side> {
  const sides = new Map<string, Side>();
  const problems: string[] = [];
  for (const r of rows) {
    const m = parseMatchup(r.MATCHUP) as Side;
    const prev = sides.get(r.GAME_ID);
    if (!prev) sides.set(r.GAME_ID, m);
    else if (prev.home !== m.home || prev.away !== m.away) {
      problems.push(
        `game ${r.GAME_ID}: MATCHUP strings disagree on home and away ("${prev.away} @ ${prev.home}" vs "${r.MATCHUP}")`,
      );
    }
  }
  if (problems.length > 0) throw invalid(location, problems);
  return sides;
}

/** gameColumns of a game, built once per game of the date. */
function gameOf(ctx: ProcessorContext, games: Map<string, GameColumns>, gameId: string): GameColumns {
  let game = games.get(gameId);
  if (!game) games.set(gameId, (game = gameColumns(ctx, gameId)));
  return game;
}

interface GameColumns {
  readonly game_id: string;
  readonly game_date: string;
  readonly season: string;
  readonly season_type: string;
}

function gameColumns(ctx: ProcessorContext, gameId: string): GameColumns {
  return {
    game_id: gameId,
    game_date: ctx.date,
    season: ctx.season.label,
    season_type: seasonTypeOfGameId(gameId) ?? ctx.seasonType,
  };
}

/**
 * The schedule is derived from the team game log: the source has no schedule file. Every game a log reports
 * is final. Home and away come from the MATCHUP order, which also holds for the five 2024-25 neutral-site
 * games whose two rows carry the same `A @ B` string.
 */
export const scheduleProcessor = tableProcessor('nbac_schedule', async (ctx) => {
  const { rows: teams, deduplicated, location } = await teamRecords(ctx);
  const sides = sidesOf(teams, location);
  const byGame = new Map<string, TeamLogRecord[]>();
  for (const t of teams) {
    const pair = byGame.get(t.GAME_ID);
    if (pair) pair.push(t);
    else byGame.set(t.GAME_ID, [t]);
  }
  const problems: string[] = [];
  const rows: Row[] = [];
  for (const [gameId, pair] of byGame) {
    const side = sides.get(gameId) as Side;
    const home = pair.find((t) => t.TEAM_ABBREVIATION === side.home);
    const away = pair.find((t) => t.TEAM_ABBREVIATION === side.away);
    if (pair.length !== 2 || !home || !away) {
      problems.push(
        `game ${gameId}: expected the rows of ${side.away} and ${side.home}, found ${pair.map((t) => t.TEAM_ABBREVIATION).join(', ')}`,
      );
      continue;
    }
    const winners = pair.filter((t) => t.WL === 'W');
    const winner = winners[0];
    const loser = pair.find((t) => t !== winner);
    if (winners.length !== 1 || !winner || !loser || winner.PTS <= loser.PTS) {
      problems.push(
        `game ${gameId}: needs exactly one W row, with the higher score (${home.TEAM_ABBREVIATION} ${home.PTS} ${home.WL}, ${away.TEAM_ABBREVIATION} ${away.PTS} ${away.WL})`,
      );
      continue;
    }
    rows.push({
      ...gameColumns(ctx, gameId),
      home_team_id: home.TEAM_ID,
      home_team_abbr: home.TEAM_ABBREVIATION,
      away_team_id: away.TEAM_ID,
      away_team_abbr: away.TEAM_ABBREVIATION,
      home_score: home.PTS,
      away_score: away.PTS,
      winner_team_abbr: winner.TEAM_ABBREVIATION,
      game_status: 'Final',
    });
  }
  if (problems.length > 0) throw invalid(location, problems);
  return { rows, details: { games: rows.length, duplicateTeamRowsDropped: deduplicated } };
});

function opponentOf(side: Side, team: string): string {
  return side.home === team ? side.away : side.home;
}

/** Player-derived tables keep every game and team they hold for a date (coverage.ts, refuseLosses). */
const GAME_TEAMS = ['game_id', 'team_abbr'];

export const playerBoxscoreProcessor = tableProcessor(
  'nbac_player_boxscore',
  async (ctx) => {
    const { players, location } = await coveredPlayerRecords(ctx);
    const games = new Map<string, GameColumns>();
    const rows = players.map((p): Row => {
      const side = parseMatchup(p.MATCHUP) as Side;
      const game = gameOf(ctx, games, p.GAME_ID);
      // Every column written out, not spread from the game's: a spread row is built key by key (a measured
      // third of the date's Phase 2 time).
      return {
        game_id: game.game_id,
        game_date: game.game_date,
        season: game.season,
        season_type: game.season_type,
        player_id: p.PLAYER_ID,
        player_name: p.PLAYER_NAME,
        team_id: p.TEAM_ID,
        team_abbr: p.TEAM_ABBREVIATION,
        opponent_team_abbr: opponentOf(side, p.TEAM_ABBREVIATION),
        is_home: side.home === p.TEAM_ABBREVIATION,
        win: p.WL === 'W',
        minutes: p.MIN,
        points: p.PTS,
        fgm: p.FGM,
        fga: p.FGA,
        fg3m: p.FG3M,
        fg3a: p.FG3A,
        ftm: p.FTM,
        fta: p.FTA,
        oreb: p.OREB,
        dreb: p.DREB,
        reb: p.REB,
        ast: p.AST,
        stl: p.STL,
        blk: p.BLK,
        tov: p.TOV,
        pf: p.PF,
        // Empty percentages mean no attempts: null, not 0 (SOURCE.md, quirk 4).
        fg_pct: p.FG_PCT,
        fg3_pct: p.FG3_PCT,
        ft_pct: p.FT_PCT,
        plus_minus: p.PLUS_MINUS,
      };
    });
    return { rows, location, details: { games: new Set(players.map((p) => p.GAME_ID)).size } };
  },
  GAME_TEAMS,
);

/**
 * The gamebook lists every player of a game with a status. The source has appearances only (DNP and
 * inactive players are absent, SOURCE.md quirk 2), so every row is `active`; MIN = 0 is a real
 * appearance of under 30 seconds and is flagged, not dropped.
 */
export const gamebookProcessor = tableProcessor(
  'nbac_gamebook_player_stats',
  async (ctx) => {
    const { players, location } = await coveredPlayerRecords(ctx);
    const games = new Map<string, GameColumns>();
    const rows = players.map((p): Row => {
      const game = gameOf(ctx, games, p.GAME_ID);
      return {
        game_id: game.game_id,
        game_date: game.game_date,
        season: game.season,
        season_type: game.season_type,
        player_id: p.PLAYER_ID,
        player_name: p.PLAYER_NAME,
        team_abbr: p.TEAM_ABBREVIATION,
        player_status: 'active',
        minutes: p.MIN,
        played_under_30s: p.MIN === 0,
      };
    });
    return { rows, location, details: { underThirtySeconds: rows.filter((r) => r.played_under_30s).length } };
  },
  GAME_TEAMS,
);

/**
 * Regulation is 48 minutes and each overtime 5. Player minutes are rounded, so their sum / 5 is near but
 * not on the mark: snap it to the nearest whole number of periods.
 */
export function gameMinutes(approx: number): number {
  return 48 + 5 * Math.max(0, Math.round((approx - 48) / 5));
}

type Counts = Record<CountingStat, number>;

function teamStatColumns(c: Counts): Row {
  return {
    points: c.PTS,
    fgm: c.FGM,
    fga: c.FGA,
    fg3m: c.FG3M,
    fg3a: c.FG3A,
    ftm: c.FTM,
    fta: c.FTA,
    oreb: c.OREB,
    dreb: c.DREB,
    reb: c.REB,
    ast: c.AST,
    stl: c.STL,
    blk: c.BLK,
    tov: c.TOV,
    pf: c.PF,
    fg_pct: ratio(c.FGM, c.FGA),
    fg3_pct: ratio(c.FG3M, c.FG3A),
    ft_pct: ratio(c.FTM, c.FTA),
  };
}

/**
 * Team box scores are the sums of the team's player rows (team REB and TOV are player sums, SOURCE.md
 * quirk 12). A game with no player rows, such as a playoff game in the bundled data, takes its team game
 * log row instead; `derived_from` says which.
 */
export const teamBoxscoreProcessor = tableProcessor(
  'nbac_team_boxscore',
  async (ctx) => {
    const { players, location } = await coveredPlayerRecords(ctx);
    const { rows: teams } = await teamRecords(ctx);
    const groups = new Map<string, PlayerLogRecord[]>();
    for (const p of players) {
      const k = `${p.GAME_ID}|${p.TEAM_ABBREVIATION}`;
      const group = groups.get(k);
      if (group) group.push(p);
      else groups.set(k, [p]);
    }
    const rows: Row[] = [];
    for (const [k, group] of groups) {
      const first = group[0] as PlayerLogRecord;
      const side = parseMatchup(first.MATCHUP) as Side;
      const team = k.split('|')[1] as TeamAbbr;
      const sums = Object.fromEntries(COUNTING_STATS.map((c) => [c, group.reduce((a, p) => a + p[c], 0)])) as Counts;
      rows.push({
        ...gameColumns(ctx, first.GAME_ID),
        team_id: TEAMS[team].id,
        team_abbr: team,
        opponent_team_abbr: opponentOf(side, team),
        is_home: side.home === team,
        win: first.WL === 'W',
        ...teamStatColumns(sums),
        game_minutes: gameMinutes(group.reduce((a, p) => a + p.MIN, 0) / 5),
        players_used: group.length,
        derived_from: 'player_rows',
      });
    }
    const gamesWithPlayers = new Set(players.map((p) => p.GAME_ID));
    for (const t of teams) {
      if (gamesWithPlayers.has(t.GAME_ID)) continue;
      const side = parseMatchup(t.MATCHUP) as Side;
      rows.push({
        ...gameColumns(ctx, t.GAME_ID),
        team_id: t.TEAM_ID,
        team_abbr: t.TEAM_ABBREVIATION,
        opponent_team_abbr: opponentOf(side, t.TEAM_ABBREVIATION),
        is_home: side.home === t.TEAM_ABBREVIATION,
        win: t.WL === 'W',
        ...teamStatColumns(t),
        game_minutes: gameMinutes(t.MIN),
        players_used: 0,
        derived_from: 'team_game_log',
      });
    }
    return {
      rows,
      location,
      details: { fromTeamLog: rows.filter((r) => r.derived_from === 'team_game_log').length },
    };
  },
  GAME_TEAMS,
);

/**
 * Rosters of the teams playing the date, as of the date. Every team of the date's team log needs a roster
 * with players: an empty answer is bad input, not a date without rosters.
 */
export const rosterProcessor = tableProcessor(
  'espn_team_roster',
  async (ctx) => {
    const { location, body } = await readRawFile(ctx, 'teamRosters');
    const parsed = RosterFile.safeParse(body);
    if (!parsed.success) {
      throw invalid(
        location,
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      );
    }
    const problems: string[] = [];
    const rows: Row[] = [];
    for (const roster of parsed.data.rosters) {
      const abbr = roster.team.abbreviation as TeamAbbr;
      if (roster.asOf !== ctx.date)
        problems.push(`roster of ${abbr}: asOf ${roster.asOf} disagrees with its folder game_date=${ctx.date}`);
      if (TEAMS[abbr].id !== roster.team.id)
        problems.push(`roster of ${abbr}: unknown team: id ${roster.team.id} is not ${abbr}`);
      for (const a of roster.athletes) {
        if (a.lastAppearance > ctx.date)
          problems.push(`roster of ${abbr}: athlete ${a.id} appears on ${a.lastAppearance}, after ${ctx.date}`);
        rows.push({
          roster_date: ctx.date,
          season: ctx.season.label,
          team_id: roster.team.id,
          team_abbr: abbr,
          player_id: a.id,
          player_name: a.fullName,
          games_with_team: a.gamesWithTeam,
          last_appearance_date: a.lastAppearance,
        });
      }
    }
    const { records } = await readGameLogRecords(ctx, 'teamGameLogs');
    const playing = new Set([...gamesOf(records).values()].flatMap((g) => [...g.playing]));
    const withPlayers = new Set(rows.map((r) => r.team_abbr));
    for (const team of [...playing].sort()) {
      if (!withPlayers.has(team)) problems.push(`no players on the roster of ${team}, which plays on ${ctx.date}`);
    }
    if (problems.length > 0) throw invalid(location, problems);
    return { rows, location, details: { teams: parsed.data.rosters.length } };
  },
  ['team_abbr'],
);

export const PHASE2_PROCESSORS: readonly Processor[] = [
  scheduleProcessor,
  playerBoxscoreProcessor,
  gamebookProcessor,
  teamBoxscoreProcessor,
  rosterProcessor,
];
