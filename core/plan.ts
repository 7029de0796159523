// The plan: a season's game dates from the loaded schedule (final games only), kept as a reviewable file.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { eachDate, type IsoDate, isIsoDate } from './dates.js';
import { BadInputError, ProcessingError } from './errors.js';
import { parseJsonFile, writeFileAtomic } from './files.js';
import { rawKey } from './phase1/scrapers.js';
import type { PipelinePorts } from './pipeline/processor.js';
import {
  getSeason,
  locateDate,
  type NbaSeasonType,
  SEASON_TYPE_PLAY_IN,
  SEASON_TYPE_PLAYOFFS,
  SEASON_TYPE_REGULAR,
  type Season,
  type SeasonTypeChoice,
  seasonRange,
} from './pipeline/seasons.js';
import { getProcessor } from './processors.js';
import { runProcessor } from './runner.js';
import { RunBatch, type Trigger } from './runs/history.js';

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

/** A game of the committed plan that the freshly scraped team log no longer has, or a new one. */
export interface PlanGame {
  readonly date: IsoDate;
  readonly gameId: string;
}

export interface ScheduleOptions {
  /** The plan committed before this load: its games must not disappear. Absent for a first plan. */
  readonly committed?: { readonly plan: Plan; readonly path: string } | undefined;
  /** Load the schedule even when games of the committed plan disappear (--accept-plan-changes). */
  readonly acceptPlanChanges?: boolean | undefined;
}

export interface ScheduleLoad {
  readonly gameDates: IsoDate[];
  /** Games of the committed plan the source no longer reports (accepted, or the load was refused). */
  readonly vanished: readonly PlanGame[];
  /** Games the committed plan did not have. */
  readonly added: readonly PlanGame[];
}

/** The game ids of the raw team log a scraper just wrote; undefined when it does not parse (Phase 2 says why). */
async function scrapedGameIds(ports: PipelinePorts, date: IsoDate): Promise<Set<string> | undefined> {
  const text = await ports.objects.get(rawKey('teamGameLogs', date));
  try {
    const body = JSON.parse(text ?? '') as { resultSets?: { headers: string[]; rowSet: unknown[][] }[] };
    const ids = new Set<string>();
    for (const set of body.resultSets ?? []) {
      const g = set.headers.indexOf('GAME_ID');
      for (const row of set.rowSet) if (typeof row[g] === 'string') ids.add(row[g] as string);
    }
    return ids;
  } catch {
    return undefined;
  }
}

/**
 * Loads the season's schedule: the team game log of every date of the season (one small request each),
 * then nbac_schedule for the dates that have games. Re-running gives the same schedule.
 * The season's dates commit together at the end, in one transaction (a commit per date made planning cost
 * seconds a season in commits alone); a date's scrape and schedule are in it together, or neither is.
 * Against a committed plan, a game the source no longer reports is refused (a source that loses a game
 * must not shrink the plan the gate checks against): the date's scrape and schedule are not committed, every
 * date is still scanned so that the error lists every vanished game, and the caller writes no plan file.
 * A date that fails stops the load: the dates before it commit, with its failed run.
 */
export async function loadSeasonSchedule(
  ports: PipelinePorts,
  log: Logger,
  season: Season,
  trigger: Trigger,
  options: ScheduleOptions = {},
): Promise<ScheduleLoad> {
  const scraper = getProcessor('nbac_team_game_log_scraper');
  const schedule = getProcessor('nbac_schedule');
  const { start, end } = seasonRange(season);
  const planned = new Map<string, Set<string>>();
  for (const d of options.committed?.plan.dates ?? []) {
    planned.set(d.date, new Set([...(planned.get(d.date) ?? []), ...d.gameIds]));
  }
  const gameDates: IsoDate[] = [];
  const vanished: PlanGame[] = [];
  const added: PlanGame[] = [];
  const accepted = new RunBatch();
  for (const date of eachDate(start, end)) {
    // Off days between the regular season, play-in and playoffs belong to no range: nothing to fetch.
    if (date > season.regularSeason.end && date < season.playIn.start) continue;
    // The date's scrape and schedule join the season's commit together, or not at all when the date is refused.
    const batch = new RunBatch();
    const opts = { trigger, skipDownstreamTrigger: true, batch };
    const scraped = await runProcessor(ports, log, scraper, date, opts);
    if (!scraped.ok) {
      accepted.absorb(batch);
      await accepted.commit(ports.warehouse);
      throw new ProcessingError(`schedule load for ${season.label} stopped at ${date}: ${scraped.error.message}`, {
        cause: scraped.error,
      });
    }
    const before = planned.get(date) ?? new Set<string>();
    const now = scraped.result.rows > 0 ? await scrapedGameIds(ports, date) : new Set<string>();
    if (now && options.committed) {
      const gone = [...before].filter((g) => !now.has(g)).sort();
      added.push(...[...now].filter((g) => !before.has(g)).map((gameId) => ({ date, gameId })));
      vanished.push(...gone.map((gameId) => ({ date, gameId })));
      if (gone.length > 0 && !options.acceptPlanChanges) continue;
    }
    // A date the plan had and the source no longer has is loaded as empty, so that it leaves the schedule.
    if (scraped.result.rows === 0 && before.size === 0) {
      accepted.absorb(batch);
      continue;
    }
    const loaded = await runProcessor(ports, log, schedule, date, opts);
    accepted.absorb(batch);
    if (!loaded.ok) {
      await accepted.commit(ports.warehouse);
      throw loaded.error;
    }
    if (loaded.result.rows > 0) gameDates.push(date);
  }
  await accepted.commit(ports.warehouse);
  if (vanished.length > 0 && !options.acceptPlanChanges) {
    const list = vanished.map((g) => `${g.date} ${g.gameId}`).join(', ');
    throw new BadInputError(
      `${season.label}: the source no longer reports ${vanished.length} game(s) of the committed plan ${options.committed?.path}: ${list}. Nothing was loaded for their dates and the plan file is unchanged. If the games are really gone, run again with --accept-plan-changes.`,
      { where: options.committed?.path },
    );
  }
  return { gameDates, vanished, added };
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
  const plan = parseJsonFile(text, path, 'plan', PlanSchema);
  if (plan.season !== season) {
    throw new BadInputError(`${path}: holds the plan of ${plan.season}, not ${season}`, { where: path });
  }
  const problems = planDateProblems(plan, getSeason(season));
  if (problems.length > 0) {
    throw new BadInputError(`${path}: not a plan of ${season}: ${problems.join('; ')}`, { where: path });
  }
  return plan;
}

/**
 * Dates a plan must not hold: outside its season's ranges (a job would run them and record a failure for
 * ever), or in another range than its season type says.
 */
export function planDateProblems(plan: Plan, season: Season): string[] {
  const ranges = `regular season ${season.regularSeason.start}..${season.regularSeason.end}, play-in ${season.playIn.start}..${season.playIn.end}, playoffs ${season.playoffs.start}..${season.playoffs.end}`;
  const problems: string[] = [];
  for (const d of plan.dates) {
    const found = locateDate(d.date);
    if (found?.season.label !== season.label)
      problems.push(`date ${d.date} is outside season ${season.label} (${ranges})`);
    else if (found.seasonType !== d.seasonType)
      problems.push(
        `date ${d.date} is a ${found.seasonType} date of ${season.label}, but the plan says ${d.seasonType}`,
      );
  }
  return problems;
}

/** The committed plan of a season, or undefined when none was written yet; a bad plan file is an error. */
export async function readCommittedPlan(
  planDir: string,
  season: string,
): Promise<{ plan: Plan; path: string } | undefined> {
  const path = planPath(planDir, season);
  if (!existsSync(path)) return undefined;
  return { plan: await readPlan(planDir, season), path };
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
