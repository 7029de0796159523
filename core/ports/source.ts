// The Phase 1 source port: an NBA.com-style stats API (league game log) and an ESPN-style roster API.

import type { IsoDate } from '../dates.js';
import {
  type NbaSeasonType,
  SEASON_TYPE_PLAY_IN,
  SEASON_TYPE_PLAYOFFS,
  SEASON_TYPE_REGULAR,
} from '../pipeline/seasons.js';

/** NBA.com stats API response: result sets of headers and positional rows. */
export interface StatsResultSet {
  readonly name: string;
  readonly headers: readonly string[];
  readonly rowSet: readonly (readonly (string | number | null)[])[];
}

export interface StatsResponse {
  readonly resource: string;
  readonly parameters: Readonly<Record<string, string | number | null>>;
  readonly resultSets: readonly StatsResultSet[];
}

export interface LeagueGameLogQuery {
  readonly season: string;
  readonly seasonType: NbaSeasonType;
  /** P: one row per player per game; T: one row per team per game. */
  readonly playerOrTeam: 'P' | 'T';
  readonly dateFrom: IsoDate;
  readonly dateTo: IsoDate;
}

export interface RosterQuery {
  readonly season: string;
  readonly teamAbbr: string;
  readonly asOf: IsoDate;
}

export interface RosterAthlete {
  readonly id: number;
  readonly fullName: string;
  readonly gamesWithTeam: number;
  readonly lastAppearance: IsoDate;
}

/** ESPN-style team roster response. */
export interface RosterResponse {
  readonly team: { readonly id: number; readonly abbreviation: string };
  readonly season: string;
  readonly asOf: IsoDate;
  readonly athletes: readonly RosterAthlete[];
}

export interface StatsSource {
  readonly description: string;
  /**
   * The season types whose games the source's player game log covers. Phase 2 requires player rows for every
   * team-log game of these types only: a source that has none for a type declares it here, so the gap stays
   * visible to the gate instead of failing every date of that type. @default every season type
   */
  readonly playerLogSeasonTypes?: readonly NbaSeasonType[];
  leagueGameLog(query: LeagueGameLogQuery): Promise<StatsResponse>;
  teamRoster(query: RosterQuery): Promise<RosterResponse>;
}

/** The season types whose player rows a source has (see StatsSource.playerLogSeasonTypes). */
export function playerLogSeasonTypesOf(source: StatsSource): readonly NbaSeasonType[] {
  return source.playerLogSeasonTypes ?? [SEASON_TYPE_REGULAR, SEASON_TYPE_PLAY_IN, SEASON_TYPE_PLAYOFFS];
}

/** Turns a result set into records keyed by header. */
export function resultSetRecords(set: StatsResultSet): Record<string, string | number | null>[] {
  return set.rowSet.map((row) => {
    const rec: Record<string, string | number | null> = {};
    set.headers.forEach((h, i) => {
      rec[h] = row[i] ?? null;
    });
    return rec;
  });
}
