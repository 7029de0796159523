// The four seasons a backfill covers, with their real regular-season, play-in and playoff date ranges.

import type { IsoDate } from '../dates.js';
import { BadInputError } from '../errors.js';

export interface DateRange {
  readonly start: IsoDate;
  readonly end: IsoDate;
}

/** NBA.com's SeasonType values, as its stats API spells them. */
export const SEASON_TYPE_REGULAR = 'Regular Season';
export const SEASON_TYPE_PLAY_IN = 'PlayIn';
export const SEASON_TYPE_PLAYOFFS = 'Playoffs';
export type NbaSeasonType = typeof SEASON_TYPE_REGULAR | typeof SEASON_TYPE_PLAY_IN | typeof SEASON_TYPE_PLAYOFFS;

/** What a user selects with --season-type: `playoffs` is the whole postseason, play-in included. */
export const SEASON_TYPE_CHOICES = ['regular', 'playoffs', 'all'] as const;
export type SeasonTypeChoice = (typeof SEASON_TYPE_CHOICES)[number];

export interface Season {
  /** `2021-22`, as SEASON_LABEL and the platform write it. */
  readonly label: string;
  /** NBA.com's SEASON_ID for the regular season, e.g. `22021`. */
  readonly regularSeasonId: string;
  readonly regularSeason: DateRange;
  readonly playIn: DateRange;
  readonly playoffs: DateRange;
}

export const SEASONS: readonly Season[] = [
  {
    label: '2021-22',
    regularSeasonId: '22021',
    regularSeason: { start: '2021-10-19', end: '2022-04-10' },
    playIn: { start: '2022-04-12', end: '2022-04-15' },
    playoffs: { start: '2022-04-16', end: '2022-06-16' },
  },
  {
    label: '2022-23',
    regularSeasonId: '22022',
    regularSeason: { start: '2022-10-18', end: '2023-04-09' },
    playIn: { start: '2023-04-11', end: '2023-04-14' },
    playoffs: { start: '2023-04-15', end: '2023-06-12' },
  },
  {
    label: '2023-24',
    regularSeasonId: '22023',
    regularSeason: { start: '2023-10-24', end: '2024-04-14' },
    playIn: { start: '2024-04-16', end: '2024-04-19' },
    playoffs: { start: '2024-04-20', end: '2024-06-17' },
  },
  {
    label: '2024-25',
    regularSeasonId: '22024',
    regularSeason: { start: '2024-10-22', end: '2025-04-13' },
    playIn: { start: '2025-04-15', end: '2025-04-18' },
    playoffs: { start: '2025-04-19', end: '2025-06-22' },
  },
];

export const SEASON_LABELS = SEASONS.map((s) => s.label);

export function getSeason(label: string): Season {
  const season = SEASONS.find((s) => s.label === label);
  if (!season) {
    throw new BadInputError(
      `unknown season "${label}": expected one of ${SEASON_LABELS.join(', ')} (or "all" where a command allows it)`,
      { where: '--season' },
    );
  }
  return season;
}

/** `all` or one label, to the seasons it names. */
export function resolveSeasons(value: string): Season[] {
  return value === 'all' ? [...SEASONS] : [getSeason(value)];
}

/** The whole season, first regular-season day to the last playoff day. */
export function seasonRange(season: Season): DateRange {
  return { start: season.regularSeason.start, end: season.playoffs.end };
}

export function rangesFor(season: Season, choice: SeasonTypeChoice): DateRange[] {
  if (choice === 'regular') return [season.regularSeason];
  if (choice === 'playoffs') return [{ start: season.playIn.start, end: season.playoffs.end }];
  return [seasonRange(season)];
}

export function inRange(date: IsoDate, range: DateRange): boolean {
  return date >= range.start && date <= range.end;
}

/** The season and NBA.com season type a date belongs to, or undefined outside every season. */
export function locateDate(date: IsoDate): { season: Season; seasonType: NbaSeasonType } | undefined {
  for (const season of SEASONS) {
    if (inRange(date, season.regularSeason)) return { season, seasonType: SEASON_TYPE_REGULAR };
    if (inRange(date, season.playIn)) return { season, seasonType: SEASON_TYPE_PLAY_IN };
    if (inRange(date, season.playoffs)) return { season, seasonType: SEASON_TYPE_PLAYOFFS };
  }
  return undefined;
}

/** Like locateDate, but a date outside every season is bad input with a message that says why. */
export function requireDateInSeason(date: IsoDate): { season: Season; seasonType: NbaSeasonType } {
  const found = locateDate(date);
  if (!found) {
    const ranges = SEASONS.map((s) => `${s.label}: ${s.regularSeason.start}..${s.playoffs.end}`).join('; ');
    throw new BadInputError(
      `unknown date ${date}: it is in no season's regular season, play-in or playoffs (${ranges}); the gaps between ranges are off days`,
      { where: '--date' },
    );
  }
  return found;
}

/** Game-id prefixes (SOURCE.md, quirk 6). */
export function seasonTypeOfGameId(gameId: string): NbaSeasonType | undefined {
  if (gameId.startsWith('002')) return SEASON_TYPE_REGULAR;
  if (gameId.startsWith('004')) return SEASON_TYPE_PLAYOFFS;
  if (gameId.startsWith('005')) return SEASON_TYPE_PLAY_IN;
  return undefined;
}
