// The pipeline definition every part reads: phases, and each processor's output, upstream and lookback.

import { BadInputError } from '../errors.js';
import {
  mlFeatureStore,
  playerCompositeFactors,
  playerDailyCache,
  playerGameSummary,
  teamDefenseGameSummary,
  teamOffenseGameSummary,
} from '../schema/derived.js';
import {
  espnTeamRoster,
  nbacGamebookPlayerStats,
  nbacPlayerBoxscore,
  nbacSchedule,
  nbacTeamBoxscore,
} from '../schema/raw.js';
import { qualifiedName, type TableSchema } from '../schema/table.js';
import { didYouMean } from '../suggest.js';

export const PHASES = {
  1: { name: 'scrapers', backfill: true, description: "fetch a date's games from the source into the object store" },
  2: { name: 'raw', backfill: true, description: 'parse, validate and load one date into nba_raw' },
  3: { name: 'analytics', backfill: true, description: 'per player/team game summaries with 10-15 game lookbacks' },
  4: { name: 'precompute', backfill: true, description: 'daily caches, composite factors, ML features (30+ games)' },
  5: { name: 'predictions', backfill: false, description: 'forward-looking predictions; never part of a backfill' },
} as const;

export type PhaseNumber = keyof typeof PHASES;

/** Where raw files live in the object store, by source. */
export const RAW_SOURCES = {
  teamGameLogs: { prefix: 'nba-com/team-game-logs', file: 'leaguegamelog_T.json' },
  playerGameLogs: { prefix: 'nba-com/player-game-logs', file: 'leaguegamelog_P.json' },
  teamRosters: { prefix: 'espn/team-rosters', file: 'rosters.json' },
} as const;

export type RawSourceName = keyof typeof RAW_SOURCES;

export type ProcessorOutput =
  | { readonly kind: 'objects'; readonly source: RawSourceName }
  | { readonly kind: 'table'; readonly table: TableSchema };

/**
 * A table a Phase 3-4 processor reads, for the defensive checks. `lookback`: every game of the lookback
 * window must be present; `date`: the processor's own date only (a same-day input such as the roster).
 * Completeness compares its rows with `expectedFrom` (a table listing what should be there) or, without
 * one, with one row per team per game.
 */
export interface Dependency {
  readonly table: TableSchema;
  readonly scope: 'lookback' | 'date';
  readonly expectedFrom?: TableSchema;
}

/**
 * Which of a table's dates a Phase 3-4 run on date x reads, for its data versions (core/runs/versions.ts):
 * `date`: x alone; `before`: every game date of the season before x (season-to-date aggregates);
 * `games`: x and, for each value of `per` with a row on x (a player, a team), its `games` latest dates before x.
 */
export type Reach =
  | { readonly kind: 'date' }
  | { readonly kind: 'before' }
  | { readonly kind: 'games'; readonly games: number; readonly per: string };

/**
 * An input a Phase 3-4 run's values depend on. `rows`: the rows' values; `keys`: only which rows exist (their
 * key columns), for what counts games or finds the previous one.
 */
export interface InputRead {
  readonly table: TableSchema;
  readonly part: 'rows' | 'keys';
  readonly reach: Reach;
}

export interface ProcessorDefinition {
  readonly name: string;
  readonly phase: PhaseNumber;
  readonly description: string;
  readonly output: ProcessorOutput;
  /** Raw sources (Phase 2) or upstream tables (Phase 3+) it reads. */
  readonly upstream: readonly string[];
  /** How many earlier games of the season a date's work looks at; 0 for phases 1-2. */
  readonly lookbackGames: number;
  /** True when the Phase 2 quality gate requires its table complete before Stage 3. */
  readonly critical: boolean;
  /** What the defensive checks verify before a Phase 3-4 run; empty for phases 1-2. */
  readonly dependencies: readonly Dependency[];
  /** Phases 3-4: what its values depend on, for staleness after a correction; none for phases 1-2. */
  readonly reads?: readonly InputRead[];
}

const DATE: Reach = { kind: 'date' };
const BEFORE: Reach = { kind: 'before' };

export const PROCESSORS: readonly ProcessorDefinition[] = [
  {
    name: 'nbac_team_game_log_scraper',
    phase: 1,
    description: 'NBA.com league game log, one row per team per game',
    output: { kind: 'objects', source: 'teamGameLogs' },
    upstream: [],
    lookbackGames: 0,
    critical: false,
    dependencies: [],
  },
  {
    name: 'nbac_player_game_log_scraper',
    phase: 1,
    description: 'NBA.com league game log, one row per player per game',
    output: { kind: 'objects', source: 'playerGameLogs' },
    upstream: [],
    lookbackGames: 0,
    critical: false,
    dependencies: [],
  },
  {
    name: 'espn_team_roster_scraper',
    phase: 1,
    description: "ESPN-style roster of every team playing on the date (teams read from the date's team log)",
    output: { kind: 'objects', source: 'teamRosters' },
    upstream: [RAW_SOURCES.teamGameLogs.prefix],
    lookbackGames: 0,
    critical: false,
    dependencies: [],
  },
  {
    name: 'nbac_schedule',
    phase: 2,
    description: 'games of the date: home/away from MATCHUP order, final scores, winner',
    output: { kind: 'table', table: nbacSchedule },
    upstream: [RAW_SOURCES.teamGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
    dependencies: [],
  },
  {
    name: 'nbac_player_boxscore',
    phase: 2,
    description: 'player box scores of the date',
    output: { kind: 'table', table: nbacPlayerBoxscore },
    upstream: [RAW_SOURCES.playerGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
    dependencies: [],
  },
  {
    name: 'nbac_gamebook_player_stats',
    phase: 2,
    description: "the gamebook's player list with each player's status",
    output: { kind: 'table', table: nbacGamebookPlayerStats },
    upstream: [RAW_SOURCES.playerGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
    dependencies: [],
  },
  {
    name: 'nbac_team_boxscore',
    phase: 2,
    description: 'team box scores: player sums, or the team log where a game has no player rows',
    output: { kind: 'table', table: nbacTeamBoxscore },
    upstream: [RAW_SOURCES.playerGameLogs.prefix, RAW_SOURCES.teamGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
    dependencies: [],
  },
  {
    name: 'espn_team_roster',
    phase: 2,
    description: 'rosters as of the date of the teams playing it',
    output: { kind: 'table', table: espnTeamRoster },
    upstream: [RAW_SOURCES.teamRosters.prefix],
    lookbackGames: 0,
    critical: true,
    dependencies: [],
  },
  {
    name: 'player_game_summary',
    phase: 3,
    description: 'per player per game: box score, true shooting, previous 5/10-game averages, rest',
    output: { kind: 'table', table: playerGameSummary },
    upstream: [qualifiedName(nbacPlayerBoxscore)],
    lookbackGames: 10,
    critical: false,
    dependencies: [{ table: nbacPlayerBoxscore, scope: 'lookback', expectedFrom: nbacGamebookPlayerStats }],
    reads: [
      { table: nbacPlayerBoxscore, part: 'rows', reach: { kind: 'games', games: 10, per: 'player_id' } },
      { table: nbacPlayerBoxscore, part: 'keys', reach: BEFORE },
    ],
  },
  {
    name: 'team_offense_game_summary',
    phase: 3,
    description: 'per team per game: possessions, offensive rating, pace, previous-10-game rating',
    output: { kind: 'table', table: teamOffenseGameSummary },
    upstream: [qualifiedName(nbacTeamBoxscore)],
    lookbackGames: 10,
    critical: false,
    dependencies: [{ table: nbacTeamBoxscore, scope: 'lookback' }],
    reads: [{ table: nbacTeamBoxscore, part: 'rows', reach: { kind: 'games', games: 10, per: 'team_abbr' } }],
  },
  {
    name: 'team_defense_game_summary',
    phase: 3,
    description: 'per team per game: opponent points, defensive rating, opponent FG%, previous-15-game rating',
    output: { kind: 'table', table: teamDefenseGameSummary },
    upstream: [qualifiedName(nbacTeamBoxscore)],
    lookbackGames: 15,
    critical: false,
    dependencies: [{ table: nbacTeamBoxscore, scope: 'lookback' }],
    reads: [{ table: nbacTeamBoxscore, part: 'rows', reach: { kind: 'games', games: 15, per: 'opponent_team_abbr' } }],
  },
  {
    name: 'player_daily_cache',
    phase: 4,
    description: 'per rostered player of the teams playing the date: season, last 5/10/30 averages before it',
    output: { kind: 'table', table: playerDailyCache },
    upstream: [qualifiedName(playerGameSummary), qualifiedName(espnTeamRoster)],
    lookbackGames: 30,
    critical: false,
    dependencies: [
      { table: playerGameSummary, scope: 'lookback', expectedFrom: nbacPlayerBoxscore },
      { table: espnTeamRoster, scope: 'date' },
    ],
    reads: [
      { table: playerGameSummary, part: 'rows', reach: BEFORE },
      { table: espnTeamRoster, part: 'rows', reach: DATE },
      { table: nbacSchedule, part: 'rows', reach: DATE },
    ],
  },
  {
    name: 'player_composite_factors',
    phase: 4,
    description: 'fatigue, matchup, pace and usage trend per player and date',
    output: { kind: 'table', table: playerCompositeFactors },
    upstream: [
      qualifiedName(playerGameSummary),
      qualifiedName(teamOffenseGameSummary),
      qualifiedName(teamDefenseGameSummary),
      qualifiedName(espnTeamRoster),
    ],
    lookbackGames: 30,
    critical: false,
    dependencies: [
      { table: playerGameSummary, scope: 'lookback', expectedFrom: nbacPlayerBoxscore },
      { table: teamOffenseGameSummary, scope: 'lookback' },
      { table: teamDefenseGameSummary, scope: 'lookback' },
      { table: espnTeamRoster, scope: 'date' },
    ],
    reads: [
      { table: playerGameSummary, part: 'rows', reach: BEFORE },
      { table: teamOffenseGameSummary, part: 'rows', reach: BEFORE },
      { table: teamDefenseGameSummary, part: 'rows', reach: BEFORE },
      { table: espnTeamRoster, part: 'rows', reach: DATE },
      { table: nbacSchedule, part: 'rows', reach: DATE },
    ],
  },
  {
    name: 'ml_feature_store',
    phase: 4,
    description: 'the versioned feature vector per player and date, no nulls',
    output: { kind: 'table', table: mlFeatureStore },
    upstream: [qualifiedName(playerDailyCache), qualifiedName(playerCompositeFactors)],
    lookbackGames: 30,
    critical: false,
    dependencies: [
      { table: playerDailyCache, scope: 'date' },
      { table: playerCompositeFactors, scope: 'date' },
    ],
    reads: [
      { table: playerDailyCache, part: 'rows', reach: DATE },
      { table: playerCompositeFactors, part: 'rows', reach: DATE },
      { table: nbacSchedule, part: 'rows', reach: DATE },
    ],
  },
];

export const PROCESSOR_NAMES = PROCESSORS.map((p) => p.name);

export function getProcessorDefinition(name: string): ProcessorDefinition {
  const def = PROCESSORS.find((p) => p.name === name);
  if (!def) {
    throw new BadInputError(
      `unknown processor "${name}":${didYouMean(name, PROCESSOR_NAMES)} Expected one of ${PROCESSOR_NAMES.join(', ')}`,
      {
        where: 'processor',
      },
    );
  }
  return def;
}

/** A phase a backfill may run; 5 is forward-looking and never is. */
export function requireBackfillPhase(value: string | number): PhaseNumber {
  const n = Number(value);
  if (!Number.isInteger(n) || !(n in PHASES)) {
    throw new BadInputError(`unknown phase "${value}": phases are 1-5 (${phaseList()})`, { where: '--phase' });
  }
  const phase = n as PhaseNumber;
  if (!PHASES[phase].backfill) {
    throw new BadInputError(
      `phase ${phase} (${PHASES[phase].name}) is forward-looking and can never be part of a backfill; backfills run phases 1-4`,
      { where: '--phase' },
    );
  }
  return phase;
}

export function processorsOfPhase(phase: PhaseNumber): ProcessorDefinition[] {
  const list = PROCESSORS.filter((p) => p.phase === phase);
  if (list.length === 0) {
    throw new BadInputError(`phase ${phase} (${PHASES[phase].name}) has no processors in this version`, {
      where: '--phase',
    });
  }
  return list;
}

function phaseList(): string {
  return Object.entries(PHASES)
    .map(([n, p]) => `${n} ${p.name}`)
    .join(', ');
}

/** The processor that writes a table. */
export function writerOf(table: TableSchema): ProcessorDefinition | undefined {
  return PROCESSORS.find((p) => p.output.kind === 'table' && p.output.table === table);
}

export const CRITICAL_TABLES = PROCESSORS.filter((p) => p.critical && p.output.kind === 'table').map(
  (p) => (p.output as { table: TableSchema }).table,
);
