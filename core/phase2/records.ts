// Phase 2's record rules: zod schemas for the raw game-log and roster records, and readable violations.

import { z } from 'zod';
import { BadInputError } from '../errors.js';
import { isTeamAbbr, parseMatchup, TEAMS, type TeamAbbr } from '../nba/teams.js';

const count = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(0, `${name} must be >= 0`);
const pct = z.number().min(0, 'must be in [0,1]').max(1, 'must be in [0,1]').nullable();
const gameId = z
  .string({ error: 'GAME_ID is missing' })
  .regex(/^00[245]\d{7}$/, 'GAME_ID must be a 10-character id like 0022100001');
const teamAbbr = z
  .string({ error: 'TEAM_ABBREVIATION is missing' })
  .refine(isTeamAbbr, { message: 'unknown team: TEAM_ABBREVIATION is not one of the 30 NBA team codes' });
const matchup = z
  .string({ error: 'MATCHUP is missing' })
  .refine((m) => parseMatchup(m) !== undefined, { message: 'MATCHUP must read "AAA vs. BBB" or "AAA @ BBB"' });

const boxStats = {
  FGM: count('FGM'),
  FGA: count('FGA'),
  FG_PCT: pct,
  FG3M: count('FG3M'),
  FG3A: count('FG3A'),
  FG3_PCT: pct,
  FTM: count('FTM'),
  FTA: count('FTA'),
  FT_PCT: pct,
  OREB: count('OREB'),
  DREB: count('DREB'),
  REB: count('REB'),
  AST: count('AST'),
  STL: count('STL'),
  BLK: count('BLK'),
  TOV: count('TOV'),
  PF: count('PF'),
  PTS: count('PTS'),
};

export const PlayerLogRecord = z.object({
  SEASON_ID: z.string({ error: 'SEASON_ID is missing' }),
  PLAYER_ID: z.number({ error: 'PLAYER_ID is missing' }).int().positive('PLAYER_ID must be > 0'),
  PLAYER_NAME: z.string({ error: 'PLAYER_NAME is missing' }).min(1, 'PLAYER_NAME must not be empty'),
  TEAM_ID: z.number({ error: 'TEAM_ID is missing' }).int(),
  TEAM_ABBREVIATION: teamAbbr,
  GAME_ID: gameId,
  GAME_DATE: z.string({ error: 'GAME_DATE is missing' }).regex(/^\d{4}-\d{2}-\d{2}$/, 'GAME_DATE must be YYYY-MM-DD'),
  MATCHUP: matchup,
  WL: z.enum(['W', 'L'], { error: 'WL must be W or L' }),
  // A player's minutes in one game, overtimes included, stay well under 70.
  MIN: z
    .number({ error: 'MIN must be a number' })
    .int('MIN must be a whole number')
    .min(0, 'MIN must be >= 0')
    .max(70, 'MIN must be <= 70'),
  ...boxStats,
  PLUS_MINUS: z.number({ error: 'PLUS_MINUS must be a number' }).int('PLUS_MINUS must be a whole number'),
});
export type PlayerLogRecord = z.infer<typeof PlayerLogRecord>;

/**
 * Team rows come from NBA.com's league game log (SEASON_ID, YYYY-MM-DD) or, for playoffs in the bundled
 * data, its team game logs export (SEASON_YEAR, YYYY-MM-DDT00:00:00, MIN in game minutes, float TOV).
 */
export const TeamLogRecord = z.object({
  SEASON_ID: z.string().optional(),
  SEASON_YEAR: z.string().optional(),
  TEAM_ID: z.number({ error: 'TEAM_ID is missing' }).int(),
  TEAM_ABBREVIATION: teamAbbr,
  GAME_ID: gameId,
  GAME_DATE: z
    .string({ error: 'GAME_DATE is missing' })
    .regex(/^\d{4}-\d{2}-\d{2}(T00:00:00)?$/, 'GAME_DATE must be YYYY-MM-DD'),
  MATCHUP: matchup,
  WL: z.enum(['W', 'L'], { error: 'WL must be W or L' }),
  MIN: z.number({ error: 'MIN must be a number' }).min(0, 'MIN must be >= 0'),
  // JSON has no float/int distinction: source N's 11.0 arrives as 11 and passes the whole-number rule.
  ...boxStats,
  PLUS_MINUS: z.number({ error: 'PLUS_MINUS must be a number' }),
});
export type TeamLogRecord = z.infer<typeof TeamLogRecord>;

export const RosterFile = z.object({
  gameDate: z.string(),
  season: z.string(),
  rosters: z.array(
    z.object({
      team: z.object({ id: z.number().int(), abbreviation: teamAbbr }),
      season: z.string(),
      asOf: z.string(),
      athletes: z.array(
        z.object({
          id: z.number().int().positive('athlete id must be > 0'),
          fullName: z.string().min(1, 'fullName must not be empty'),
          gamesWithTeam: z.number().int().min(1, 'gamesWithTeam must be >= 1'),
          lastAppearance: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'lastAppearance must be YYYY-MM-DD'),
        }),
      ),
    }),
  ),
});
export type RosterFile = z.infer<typeof RosterFile>;

/** Identifies a record in messages: its position and its ids. */
function describe(rec: Record<string, unknown>, index: number): string {
  const ids = ['GAME_ID', 'PLAYER_ID', 'TEAM_ABBREVIATION']
    .filter((k) => rec[k] !== undefined)
    .map((k) => `${k}=${String(rec[k])}`);
  return `record ${index + 1}${ids.length ? ` (${ids.join(', ')})` : ''}`;
}

/** The date part of GAME_DATE, whichever of the two formats it is in (SOURCE.md, quirk 7). */
export function gameDateOf(value: string): string {
  return value.slice(0, 10);
}

/**
 * Validates every record; on any violation throws one BadInputError listing the first few,
 * each with the file, the record and the rule, so nothing of the date is loaded.
 */
export function validateGameLog<
  T extends { TEAM_ID: number; TEAM_ABBREVIATION: string; GAME_DATE: string; MATCHUP: string },
>(schema: z.ZodType<T>, records: readonly Record<string, unknown>[], location: string, folderDate: string): T[] {
  const problems: string[] = [];
  const valid: T[] = [];
  records.forEach((rec, i) => {
    const parsed = schema.safeParse(rec);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.join('.');
        const value = field ? rec[field] : undefined;
        problems.push(
          `${describe(rec, i)}: ${issue.message}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ''}`,
        );
      }
      return;
    }
    const r = parsed.data;
    const team = TEAMS[r.TEAM_ABBREVIATION as TeamAbbr];
    if (team.id !== r.TEAM_ID) {
      problems.push(
        `${describe(rec, i)}: unknown team: TEAM_ID ${r.TEAM_ID} is not ${r.TEAM_ABBREVIATION} (${team.id})`,
      );
    }
    const m = parseMatchup(r.MATCHUP);
    if (m && m.home !== r.TEAM_ABBREVIATION && m.away !== r.TEAM_ABBREVIATION) {
      problems.push(`${describe(rec, i)}: MATCHUP "${r.MATCHUP}" does not name the row's team ${r.TEAM_ABBREVIATION}`);
    }
    if (gameDateOf(r.GAME_DATE) !== folderDate) {
      problems.push(
        `${describe(rec, i)}: GAME_DATE ${gameDateOf(r.GAME_DATE)} disagrees with its folder game_date=${folderDate}`,
      );
    }
    valid.push(r);
  });
  if (problems.length > 0) throw invalid(location, problems);
  return valid;
}

export function invalid(location: string, problems: readonly string[]): BadInputError {
  const shown = problems.slice(0, 5);
  const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
  return new BadInputError(`${location}: ${problems.length} invalid record(s):\n  ${shown.join('\n  ')}${more}`, {
    where: location,
  });
}
