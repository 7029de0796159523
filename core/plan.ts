// The plan: a season's game dates from the loaded schedule (final games only), kept as a reviewable file.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { eachDate, type IsoDate, isIsoDate } from './dates.js';
import { BadInputError, ProcessingError } from './errors.js';
import { writeFileAtomic } from './files.js';
import type { PipelinePorts } from './pipeline/processor.js';
import { getProcessor } from './pipeline/registry.js';
import {
  type NbaSeasonType,
  SEASON_TYPE_PLAY_IN,
  SEASON_TYPE_PLAYOFFS,
  SEASON_TYPE_REGULAR,
  type Season,
  type SeasonTypeChoice,
  seasonRange,
} from './pipeline/seasons.js';
import { runProcessor } from './runner.js';
import type { Trigger } from './runs/history.js';

export const PlanDateSchema = z.object({
  date: z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD'),
  seasonType: z.enum([SEASON_TYPE_REGULAR, SEASON_TYPE_PLAY_IN, SEASON_TYPE_PLAYOFFS]),
  games: z.number().int().positive(),
  gameIds: z.array(z.string().regex(/^00[245]\d{7}$/, 'must be a 10-character game id')),
});

export const PlanSchema = z.object({
  season: z.string(),
  source: z.literal('nba_raw.nbac_schedule'),
  totals: z.object({ dates: z.number().int(), games: z.number().int() }),
  dates: z.array(PlanDateSchema),
});

export type PlanDate = z.infer<typeof PlanDateSchema>;
export type Plan = z.infer<typeof PlanSchema>;

/**
 * Loads the season's schedule: the team game log of every date of the season (one small request each),
 * then nbac_schedule for the dates that have games. Re-running gives the same schedule.
 */
export async function loadSeasonSchedule(
  ports: PipelinePorts,
  log: Logger,
  season: Season,
  trigger: Trigger,
): Promise<{ gameDates: IsoDate[] }> {
  const scraper = getProcessor('nbac_team_game_log_scraper');
  const schedule = getProcessor('nbac_schedule');
  const { start, end } = seasonRange(season);
  const gameDates: IsoDate[] = [];
  for (const date of eachDate(start, end)) {
    // Off days between the regular season, play-in and playoffs belong to no range: nothing to fetch.
    if (date > season.regularSeason.end && date < season.playIn.start) continue;
    const scraped = await runProcessor(ports, log, scraper, date, { trigger, skipDownstreamTrigger: true });
    if (!scraped.ok)
      throw new ProcessingError(`schedule load for ${season.label} stopped at ${date}: ${scraped.error.message}`, {
        cause: scraped.error,
      });
    if (scraped.result.rows === 0) continue;
    const loaded = await runProcessor(ports, log, schedule, date, { trigger, skipDownstreamTrigger: true });
    if (!loaded.ok) throw loaded.error;
    gameDates.push(date);
  }
  return { gameDates };
}

export async function buildPlan(ports: PipelinePorts, season: Season): Promise<Plan> {
  const rows = await ports.warehouse.query(
    `SELECT CAST(game_date AS STRING) AS game_date, season_type, game_id
       FROM nba_raw.nbac_schedule
      WHERE season = @season AND game_status = 'Final'
      ORDER BY game_date, season_type, game_id`,
    { season: season.label },
  );
  const dates: PlanDate[] = [];
  for (const r of rows) {
    const last = dates.at(-1);
    if (last && last.date === r.game_date && last.seasonType === r.season_type) {
      last.gameIds.push(String(r.game_id));
      last.games++;
    } else {
      dates.push({
        date: String(r.game_date),
        seasonType: r.season_type as NbaSeasonType,
        games: 1,
        gameIds: [String(r.game_id)],
      });
    }
  }
  return {
    season: season.label,
    source: 'nba_raw.nbac_schedule',
    totals: { dates: new Set(dates.map((d) => d.date)).size, games: dates.reduce((n, d) => n + d.games, 0) },
    dates,
  };
}

export function planPath(planDir: string, season: string): string {
  return join(planDir, `${season}.json`);
}

/** One date per line, so that a pull request shows exactly which dates changed. */
export function formatPlan(plan: Plan): string {
  const lines = plan.dates.map((d) => `    ${JSON.stringify(d)}`);
  return `{\n  "season": ${JSON.stringify(plan.season)},\n  "source": ${JSON.stringify(plan.source)},\n  "totals": ${JSON.stringify(plan.totals)},\n  "dates": [\n${lines.join(',\n')}\n  ]\n}\n`;
}

/** Written whole or not at all: a failed write leaves the old plan as it was and names the file. */
export async function writePlan(planDir: string, plan: Plan): Promise<string> {
  const path = planPath(planDir, plan.season);
  writeFileAtomic(path, formatPlan(plan));
  return path;
}

export async function readPlan(planDir: string, season: string): Promise<Plan> {
  const path = planPath(planDir, season);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new BadInputError(`no plan for ${season} at ${path}: run backfill plan --season ${season} first`, {
      where: path,
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`${path}: not valid JSON: ${(err as Error).message}`, { where: path });
  }
  const parsed = PlanSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadInputError(`${path}: not a plan: ${issue?.path.join('.')}: ${issue?.message}`, { where: path });
  }
  if (parsed.data.season !== season) {
    throw new BadInputError(`${path}: holds the plan of ${parsed.data.season}, not ${season}`, { where: path });
  }
  return parsed.data;
}

export interface DateSelection {
  readonly seasonType: SeasonTypeChoice;
  readonly startDate?: IsoDate | undefined;
  readonly endDate?: IsoDate | undefined;
}

const TYPES_OF: Record<SeasonTypeChoice, readonly NbaSeasonType[]> = {
  regular: [SEASON_TYPE_REGULAR],
  playoffs: [SEASON_TYPE_PLAY_IN, SEASON_TYPE_PLAYOFFS],
  all: [SEASON_TYPE_REGULAR, SEASON_TYPE_PLAY_IN, SEASON_TYPE_PLAYOFFS],
};

/** Checks --start-date/--end-date against the season before anything runs. */
export function validateSelection(season: Season, sel: DateSelection): void {
  const range = seasonRange(season);
  for (const [flag, d] of [
    ['--start-date', sel.startDate],
    ['--end-date', sel.endDate],
  ] as const) {
    if (d === undefined) continue;
    if (!isIsoDate(d)) throw new BadInputError(`${flag} ${d}: not a date (YYYY-MM-DD)`, { where: flag });
    if (d < range.start || d > range.end) {
      throw new BadInputError(`${flag} ${d} is outside season ${season.label} (${range.start}..${range.end})`, {
        where: flag,
      });
    }
  }
  if (sel.startDate && sel.endDate && sel.endDate < sel.startDate) {
    throw new BadInputError(`--end-date ${sel.endDate} is before --start-date ${sel.startDate}`, {
      where: '--end-date',
    });
  }
}

/** The plan's dates that a stage command selects, checked against the season. */
export function selectDates(plan: Plan, season: Season, sel: DateSelection): PlanDate[] {
  validateSelection(season, sel);
  const types = TYPES_OF[sel.seasonType];
  const seen = new Set<string>();
  return plan.dates.filter((d) => {
    const keep =
      types.includes(d.seasonType) &&
      (!sel.startDate || d.date >= sel.startDate) &&
      (!sel.endDate || d.date <= sel.endDate) &&
      !seen.has(d.date);
    if (keep) seen.add(d.date);
    return keep;
  });
}
