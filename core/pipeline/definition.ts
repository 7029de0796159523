// The pipeline definition every part reads: phases, and each processor's output, upstream and lookback.

import { BadInputError } from '../errors.js';
import {
  espnTeamRoster,
  nbacGamebookPlayerStats,
  nbacPlayerBoxscore,
  nbacSchedule,
  nbacTeamBoxscore,
} from '../schema/raw.js';
import type { TableSchema } from '../schema/table.js';

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
}

export const PROCESSORS: readonly ProcessorDefinition[] = [
  {
    name: 'nbac_team_game_log_scraper',
    phase: 1,
    description: 'NBA.com league game log, one row per team per game',
    output: { kind: 'objects', source: 'teamGameLogs' },
    upstream: [],
    lookbackGames: 0,
    critical: false,
  },
  {
    name: 'nbac_player_game_log_scraper',
    phase: 1,
    description: 'NBA.com league game log, one row per player per game',
    output: { kind: 'objects', source: 'playerGameLogs' },
    upstream: [],
    lookbackGames: 0,
    critical: false,
  },
  {
    name: 'espn_team_roster_scraper',
    phase: 1,
    description: "ESPN-style roster of every team playing on the date (teams read from the date's team log)",
    output: { kind: 'objects', source: 'teamRosters' },
    upstream: [RAW_SOURCES.teamGameLogs.prefix],
    lookbackGames: 0,
    critical: false,
  },
  {
    name: 'nbac_schedule',
    phase: 2,
    description: 'games of the date: home/away from MATCHUP order, final scores, winner',
    output: { kind: 'table', table: nbacSchedule },
    upstream: [RAW_SOURCES.teamGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
  },
  {
    name: 'nbac_player_boxscore',
    phase: 2,
    description: 'player box scores of the date',
    output: { kind: 'table', table: nbacPlayerBoxscore },
    upstream: [RAW_SOURCES.playerGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
  },
  {
    name: 'nbac_gamebook_player_stats',
    phase: 2,
    description: "the gamebook's player list with each player's status",
    output: { kind: 'table', table: nbacGamebookPlayerStats },
    upstream: [RAW_SOURCES.playerGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
  },
  {
    name: 'nbac_team_boxscore',
    phase: 2,
    description: 'team box scores: player sums, or the team log where a game has no player rows',
    output: { kind: 'table', table: nbacTeamBoxscore },
    upstream: [RAW_SOURCES.playerGameLogs.prefix, RAW_SOURCES.teamGameLogs.prefix],
    lookbackGames: 0,
    critical: true,
  },
  {
    name: 'espn_team_roster',
    phase: 2,
    description: 'rosters as of the date of the teams playing it',
    output: { kind: 'table', table: espnTeamRoster },
    upstream: [RAW_SOURCES.teamRosters.prefix],
    lookbackGames: 0,
    critical: true,
  },
];

export const PROCESSOR_NAMES = PROCESSORS.map((p) => p.name);

export function getProcessorDefinition(name: string): ProcessorDefinition {
  const def = PROCESSORS.find((p) => p.name === name);
  if (!def) {
    throw new BadInputError(`unknown processor "${name}": expected one of ${PROCESSOR_NAMES.join(', ')}`, {
      where: 'processor',
    });
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

export const CRITICAL_TABLES = PROCESSORS.filter((p) => p.critical && p.output.kind === 'table').map(
  (p) => (p.output as { table: TableSchema }).table,
);
