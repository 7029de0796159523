// The default Phase 1 source: the vendored real NBA.com box scores, answering as the stats API would.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseCsvRecords } from '../../csv.js';
import type { IsoDate } from '../../dates.js';
import { BadInputError } from '../../errors.js';
import { COUNTING_STATS } from '../../nba/boxStats.js';
import { isTeamAbbr, TEAMS } from '../../nba/teams.js';
import { bundledDataDir } from '../../paths.js';
import { getSeason, type NbaSeasonType, SEASON_TYPE_REGULAR } from '../../pipeline/seasons.js';
import type {
  LeagueGameLogQuery,
  RosterAthlete,
  RosterQuery,
  RosterResponse,
  StatsResponse,
  StatsResultSet,
  StatsSource,
} from '../../ports/source.js';

type Cell = string | number | null;

/** Columns kept as text: ids with leading zeros, labels, dates. Everything else numeric. */
const TEXT_COLUMNS = new Set([
  'SEASON_ID',
  'SEASON_YEAR',
  'SEASON_LABEL',
  'PLAYER_NAME',
  'TEAM_ABBREVIATION',
  'TEAM_NAME',
  'GAME_ID',
  'GAME_DATE',
  'MATCHUP',
  'WL',
]);

const TEAM_LOG_HEADERS = [
  'SEASON_ID',
  'TEAM_ID',
  'TEAM_ABBREVIATION',
  'TEAM_NAME',
  'GAME_ID',
  'GAME_DATE',
  'MATCHUP',
  'WL',
  'MIN',
  'FGM',
  'FGA',
  'FG_PCT',
  'FG3M',
  'FG3A',
  'FG3_PCT',
  'FTM',
  'FTA',
  'FT_PCT',
  'OREB',
  'DREB',
  'REB',
  'AST',
  'STL',
  'BLK',
  'TOV',
  'PF',
  'PTS',
  'PLUS_MINUS',
];

function cell(header: string, value: string): Cell {
  if (value === '') return null;
  if (TEXT_COLUMNS.has(header)) return value;
  const n = Number(value);
  return Number.isFinite(n) ? n : value;
}

interface Table {
  headers: string[];
  rows: Cell[][];
  /** Rows by the date part of GAME_DATE, built on first use. */
  byDate?: Map<IsoDate, Cell[][]>;
}

function rowsBetween(table: Table, from: IsoDate, to: IsoDate): Cell[][] {
  if (!table.byDate) {
    const d = table.headers.indexOf('GAME_DATE');
    table.byDate = new Map();
    for (const r of table.rows) {
      const date = dateOf(r[d] ?? '');
      const list = table.byDate.get(date);
      if (list) list.push(r);
      else table.byDate.set(date, [r]);
    }
  }
  if (from === to) return table.byDate.get(from) ?? [];
  return [...table.byDate].filter(([date]) => date >= from && date <= to).flatMap(([, rows]) => rows);
}

interface SeasonData {
  /** The files' sizes and modification times when read: a changed file is read again. */
  fingerprint: string;
  players: Table;
  /** Regular-season team rows, summed from the player rows as NBA.com's team log sums them. */
  teams: Table;
  /** Playoff team rows from source N, *_RANK and AVAILABLE_FLAG columns dropped, duplicates kept. */
  playoffTeams: Table | undefined;
  /** Per player, for rosters; built on the first roster asked (planning asks none). */
  appearances?: Map<number, Appearances>;
}

/**
 * A player's appearances sorted by date, as columns; `withTeam[i]` counts the appearances up to and including
 * i for the team of i, so a roster as of a date is a binary search per player, not a scan of his season.
 */
interface Appearances {
  dates: IsoDate[];
  teams: string[];
  names: string[];
  withTeam: number[];
}

/** A season's file of the data set: gzip-compressed (`.csv.gz`) or plain (`.csv`), the compressed one first. */
function dataFile(dir: string, sub: string, name: string): string {
  const gz = join(dir, sub, `${name}.csv.gz`);
  const plain = join(dir, sub, `${name}.csv`);
  return !existsSync(gz) && existsSync(plain) ? plain : gz;
}

function seasonFiles(dir: string, label: string): { players: string; playoffTeams: string } {
  return {
    players: dataFile(dir, 'player_box', `player_game_logs_${label}_regular`),
    playoffTeams: dataFile(dir, 'team_box', `team_game_totals_${label}_playoffs`),
  };
}

/** Size and modification time of the season's files (a missing playoff file is part of it). */
function fingerprintOf(dir: string, label: string): string {
  const files = seasonFiles(dir, label);
  return [files.players, files.playoffTeams]
    .map((f) => {
      const st = statSync(f, { throwIfNoEntry: false });
      return st ? `${f}:${st.size}:${st.mtimeMs}` : 'none';
    })
    .join('|');
}

/** The columns each file must have: what the source reads of it. */
const REQUIRED = {
  players: [
    'PLAYER_ID',
    'PLAYER_NAME',
    'TEAM_ID',
    'TEAM_ABBREVIATION',
    'TEAM_NAME',
    'GAME_ID',
    'GAME_DATE',
    'MATCHUP',
    'WL',
    'MIN',
    ...COUNTING_STATS,
  ],
  playoffTeams: ['TEAM_ID', 'TEAM_ABBREVIATION', 'GAME_ID', 'GAME_DATE', 'MATCHUP', 'WL', 'PTS'],
} as const;

/**
 * A file of the data set, checked as it is read: a damaged file, a missing column, a number that is not one
 * or a date that is not one is bad input, named with its path, line and column (zlib's own message, "unexpected
 * end of file", names nothing, and retrying cannot repair a file). A missing file keeps its ENOENT (see
 * loadSeason).
 */
function readCsvFile(
  path: string,
  what: string,
  required: readonly string[],
  drop: (h: string) => boolean = () => false,
): Table {
  const bytes = readFileSync(path);
  let parsed: { headers: string[]; records: string[][] };
  try {
    parsed = parseCsvRecords((path.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8'), path);
  } catch (err) {
    const reason = (err as Error).message.replace(`${path}: `, '');
    throw new BadInputError(`${what} ${path} is damaged: ${reason}`, { where: path, cause: err });
  }
  const { headers, records } = parsed;
  const missing = required.filter((h) => !headers.includes(h));
  if (missing.length > 0) {
    throw new BadInputError(`${what} ${path}: line 1 lacks the column(s) ${missing.join(', ')}`, { where: path });
  }
  const keep = headers.map((h, i) => [h, i] as const).filter(([h]) => !drop(h));
  // What each kept column must hold: a date (GAME_DATE), a number (the other required columns not kept as
  // text), or anything.
  const must = keep.map(([h]) =>
    h === 'GAME_DATE' ? 'date' : !TEXT_COLUMNS.has(h) && required.includes(h) ? 'number' : null,
  );
  const rows = records.map((r, n) =>
    keep.map(([h, i], k) => {
      const raw = r[i] as string;
      const value = cell(h, raw);
      const kind = must[k];
      if (kind && (kind === 'date' ? !/^\d{4}-\d{2}-\d{2}/.test(raw) : typeof value === 'string')) {
        throw new BadInputError(
          `${what} ${path}: line ${n + 2}, column ${h}: "${raw}" is not ${kind === 'date' ? 'a date YYYY-MM-DD' : 'a number'}`,
          { where: `${path}:${n + 2}` },
        );
      }
      return value;
    }),
  );
  return { headers: keep.map(([h]) => h), rows };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function sumTeams(players: Table): Table {
  const at = new Map(players.headers.map((h, i) => [h, i]));
  const ix = (h: string) => at.get(h) ?? -1;
  const groups = new Map<string, Cell[][]>();
  for (const r of players.rows) {
    const key = `${r[ix('GAME_ID')]}|${r[ix('TEAM_ID')]}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  const rows: Cell[][] = [];
  const totals = new Map<string, Record<string, number>>();
  const pointsByGame = new Map<string, number[]>();
  const summed = [...COUNTING_STATS, 'MIN'].map((h) => [h, ix(h)] as const);
  for (const [key, g] of groups) {
    const sum: Record<string, number> = {};
    for (const [h, i] of summed) sum[h] = g.reduce((a, r) => a + Number(r[i] ?? 0), 0);
    totals.set(key, sum);
    const gameId = key.split('|')[0] as string;
    pointsByGame.set(gameId, [...(pointsByGame.get(gameId) ?? []), sum.PTS ?? 0]);
  }
  for (const [key, g] of groups) {
    const first = g[0] as Cell[];
    const sum = totals.get(key) as Record<string, number>;
    const gamePoints = pointsByGame.get(key.split('|')[0] as string) ?? [];
    // Both teams' totals add to the game's; the team's margin is its points minus the rest.
    const margin = gamePoints.length === 2 ? 2 * (sum.PTS ?? 0) - (gamePoints[0] ?? 0) - (gamePoints[1] ?? 0) : null;
    const pct = (m: string, a: string) => ((sum[a] ?? 0) > 0 ? round3((sum[m] ?? 0) / (sum[a] ?? 1)) : null);
    const values: Record<string, Cell> = {
      SEASON_ID: first[ix('SEASON_ID')] ?? null,
      TEAM_ID: first[ix('TEAM_ID')] ?? null,
      TEAM_ABBREVIATION: first[ix('TEAM_ABBREVIATION')] ?? null,
      TEAM_NAME: first[ix('TEAM_NAME')] ?? null,
      GAME_ID: first[ix('GAME_ID')] ?? null,
      GAME_DATE: first[ix('GAME_DATE')] ?? null,
      MATCHUP: first[ix('MATCHUP')] ?? null,
      WL: first[ix('WL')] ?? null,
      ...sum,
      FG_PCT: pct('FGM', 'FGA'),
      FG3_PCT: pct('FG3M', 'FG3A'),
      FT_PCT: pct('FTM', 'FTA'),
      PLUS_MINUS: margin,
    };
    rows.push(TEAM_LOG_HEADERS.map((h) => values[h] ?? null));
  }
  return { headers: TEAM_LOG_HEADERS, rows };
}

function loadSeason(dir: string, what: string, label: string, fingerprint: string): SeasonData {
  const files = seasonFiles(dir, label);
  if (!existsSync(files.players)) {
    throw new BadInputError(
      `${what} ${files.players} (or .csv) is missing: the player box scores of ${label}'s regular season`,
      { where: files.players },
    );
  }
  const players = readCsvFile(files.players, what, REQUIRED.players, (h) => h === 'SEASON_LABEL');
  let playoffTeams: Table | undefined;
  try {
    playoffTeams = readCsvFile(
      files.playoffTeams,
      what,
      REQUIRED.playoffTeams,
      (h) => h.endsWith('_RANK') || h === 'AVAILABLE_FLAG',
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return { fingerprint, players, teams: sumTeams(players), playoffTeams };
}

function appearancesOf(players: Table): Map<number, Appearances> {
  const ix = (h: string) => players.headers.indexOf(h);
  const [id, date, team, name] = [ix('PLAYER_ID'), ix('GAME_DATE'), ix('TEAM_ABBREVIATION'), ix('PLAYER_NAME')];
  const lists = new Map<number, { date: IsoDate; team: string; name: string }[]>();
  for (const r of players.rows) {
    const player = r[id] as number;
    let list = lists.get(player);
    if (!list) lists.set(player, (list = []));
    list.push({ date: r[date] as string, team: r[team] as string, name: r[name] as string });
  }
  const out = new Map<number, Appearances>();
  for (const [player, list] of lists) {
    list.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
    const seen = new Map<string, number>();
    const withTeam = list.map((a) => {
      const n = (seen.get(a.team) ?? 0) + 1;
      seen.set(a.team, n);
      return n;
    });
    out.set(player, {
      dates: list.map((a) => a.date),
      teams: list.map((a) => a.team),
      names: list.map((a) => a.name),
      withTeam,
    });
  }
  return out;
}

/** The index of the last date <= asOf in sorted dates, or -1. */
function lastAtOrBefore(dates: readonly IsoDate[], asOf: IsoDate): number {
  let lo = 0;
  let hi = dates.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((dates[mid] as IsoDate) <= asOf) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** The date part of GAME_DATE, which source N writes as YYYY-MM-DDT00:00:00. */
const dateOf = (v: Cell) => String(v).slice(0, 10);

export class BundledStatsSource implements StatsSource {
  readonly description: string;
  /** Player rows exist for the regular season only (README, "The data"): playoff games have team totals. */
  readonly playerLogSeasonTypes: readonly NbaSeasonType[] = [SEASON_TYPE_REGULAR];
  private readonly seasons = new Map<string, SeasonData>();
  /** The roster scraper asks for every team of one date in turn: all rosters of that date, once. */
  private rosterCache: { key: string; data: SeasonData; byTeam: Map<string, RosterAthlete[]> } | undefined;

  /** What the messages call a file of the data set. */
  private readonly what: string;

  /**
   * @param dir the data set's folder; @default the repository's data/nba
   * @param folder true for a user's folder (`--source dir:`): it must exist, and messages name it
   */
  constructor(
    private readonly dir: string = bundledDataDir(),
    folder = false,
  ) {
    if (folder && !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new BadInputError(
        `source folder ${dir} does not exist or is not a folder (--source dir:<folder>, laid out like data/nba: player_box/ and team_box/)`,
        { where: '--source' },
      );
    }
    this.description = folder ? `NBA.com box scores in ${dir}` : 'bundled real NBA.com data (data/nba)';
    this.what = folder ? 'data file' : 'bundled data file';
  }

  /**
   * A season's data, parsed once per process (a warm pod runs many dates of it) and read again when its files
   * changed since (another size or modification time).
   */
  private season(label: string): SeasonData {
    getSeason(label);
    const fingerprint = fingerprintOf(this.dir, label);
    let data = this.seasons.get(label);
    if (data?.fingerprint !== fingerprint) {
      data = loadSeason(this.dir, this.what, label, fingerprint);
      this.seasons.set(label, data);
      if (this.rosterCache?.key.startsWith(`${label}|`)) this.rosterCache = undefined;
    }
    return data;
  }

  async leagueGameLog(q: LeagueGameLogQuery): Promise<StatsResponse> {
    const data = this.season(q.season);
    let table: Table | undefined;
    if (q.seasonType === SEASON_TYPE_REGULAR) table = q.playerOrTeam === 'P' ? data.players : data.teams;
    // The bundled set has player rows for the regular season only, and playoff team totals; no play-in.
    else if (q.seasonType === 'Playoffs' && q.playerOrTeam === 'T') table = data.playoffTeams;
    const headers = table?.headers ?? (q.playerOrTeam === 'P' ? data.players.headers : TEAM_LOG_HEADERS);
    const rows = table ? rowsBetween(table, q.dateFrom, q.dateTo) : [];
    const resultSet: StatsResultSet = { name: 'LeagueGameLog', headers, rowSet: rows };
    return {
      resource: 'leaguegamelog',
      parameters: {
        Season: q.season,
        SeasonType: q.seasonType,
        PlayerOrTeam: q.playerOrTeam,
        DateFrom: q.dateFrom,
        DateTo: q.dateTo,
      },
      resultSets: [resultSet],
    };
  }

  /**
   * The bundled set has no rosters, so a team's roster as of a date is derived from appearances:
   * the players whose latest appearance of the season, up to and including the date, was for it.
   */
  async teamRoster(q: RosterQuery): Promise<RosterResponse> {
    if (!isTeamAbbr(q.teamAbbr)) throw new Error(`unknown team ${q.teamAbbr}`);
    const key = `${q.season}|${q.asOf}`;
    const data = this.season(q.season);
    if (this.rosterCache?.key !== key || this.rosterCache.data !== data) {
      this.rosterCache = { key, data, byTeam: rostersAsOf(data, q.asOf) };
    }
    return {
      team: { id: TEAMS[q.teamAbbr].id, abbreviation: q.teamAbbr },
      season: q.season,
      asOf: q.asOf,
      athletes: this.rosterCache.byTeam.get(q.teamAbbr) ?? [],
    };
  }
}

function rostersAsOf(data: SeasonData, asOf: IsoDate): Map<string, RosterAthlete[]> {
  data.appearances ??= appearancesOf(data.players);
  const byTeam = new Map<string, RosterAthlete[]>();
  for (const [id, a] of data.appearances) {
    const latest = lastAtOrBefore(a.dates, asOf);
    if (latest < 0) continue;
    const team = a.teams[latest] as string;
    // Appearances for the latest team, counting any earlier stint with it too.
    const athletes = byTeam.get(team) ?? [];
    athletes.push({
      id,
      fullName: a.names[latest] as string,
      gamesWithTeam: a.withTeam[latest] as number,
      lastAppearance: a.dates[latest] as IsoDate,
    });
    byTeam.set(team, athletes);
  }
  for (const athletes of byTeam.values()) athletes.sort((a, b) => a.id - b.id);
  return byTeam;
}
