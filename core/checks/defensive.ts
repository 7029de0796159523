// Defensive checks before each Phase 3-4 processor and date, so that bad data never cascades: gaps in the
// lookback window, upstream failures, and completeness below 90%. In strict mode a failing check blocks
// the date with a DependencyError; --strict-mode false runs anyway and records the decision as forced.

import type { IsoDate } from '../dates.js';
import { type ProcessorDefinition, writerOf } from '../pipeline/definition.js';
import type { Season } from '../pipeline/seasons.js';
import type { Warehouse } from '../ports/warehouse.js';
import { type LatestRun, latestRuns, type PendingWrites } from '../runs/history.js';
import { qualifiedName } from '../schema/table.js';
import { checkDataOf, type ScheduledGame } from './data.js';

export const CHECKS = ['gap_detection', 'upstream_failure', 'completeness', 'freshness'] as const;
export type CheckName = (typeof CHECKS)[number];

/** Backfills load history, so checks that only make sense for live daily runs are skipped in them. */
export type RunMode = 'backfill' | 'daily';

export const COMPLETENESS_THRESHOLD = 0.9;

const CHECK_TITLES: Record<CheckName, string> = {
  gap_detection: 'Gap Detected',
  upstream_failure: 'Upstream Failure',
  completeness: 'Incomplete Upstream',
  freshness: 'Stale Upstream',
};

export interface CheckFailure {
  readonly check: CheckName;
  readonly message: string;
  readonly missingDates: readonly IsoDate[];
  readonly missingGames: readonly string[];
}

/** A blocked dependency: which processor, which date, which check, and what is missing. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  readonly processor: string;
  readonly date: IsoDate;
  readonly check: CheckName;
  readonly missingDates: readonly IsoDate[];
  readonly missingGames: readonly string[];
  readonly failures: readonly CheckFailure[];

  constructor(processor: string, date: IsoDate, phase: number, failures: readonly CheckFailure[]) {
    const first = failures[0] as CheckFailure;
    const label = phase === 3 ? 'Analytics' : 'Precompute';
    super(
      `${label} BLOCKED: ${CHECK_TITLES[first.check]} - ${first.message}${failures.length > 1 ? ` (and ${failures.length - 1} more failing check(s))` : ''}`,
    );
    this.processor = processor;
    this.date = date;
    this.check = first.check;
    this.missingDates = [...new Set(failures.flatMap((f) => f.missingDates))].sort();
    this.missingGames = [...new Set(failures.flatMap((f) => f.missingGames))].sort();
    this.failures = failures;
  }
}

export interface LookbackWindow {
  readonly start: IsoDate;
  /** The last date read: the date itself for Phase 3 (its own games), the day before for Phase 4. */
  readonly end: IsoDate;
  /** True when a team playing the date has fewer earlier games in the season than the lookback. */
  readonly bootstrap: boolean;
  readonly teams: readonly string[];
}

export interface CheckReport {
  readonly window: LookbackWindow;
  readonly failures: readonly CheckFailure[];
  readonly skipped: readonly { readonly check: CheckName; readonly reason: string }[];
}

/**
 * The window of a processor's lookback on a date: from the earliest date among the teams playing that date
 * of their N-th previous game of the season. A team with fewer than N earlier games reaches back to its
 * first game: the bootstrap period, which is processed (and marked), not blocked.
 */
export function lookbackWindow(
  schedule: readonly ScheduledGame[],
  date: IsoDate,
  lookbackGames: number,
  includeDate: boolean,
): LookbackWindow {
  const byTeam = teamDates(schedule);
  const teams = [...new Set(schedule.filter((g) => g.date === date).flatMap((g) => [g.home, g.away]))].sort();
  let start = date;
  let bootstrap = false;
  for (const team of teams) {
    // Stryker disable next-line ArrayDeclaration: equivalent, every team playing the date has a list (that game is in it).
    const dates = byTeam.get(team) ?? [];
    // The team's games before the date: its dates are sorted, so the count is the first index at the date.
    let earlier = 0;
    for (let hi = dates.length; earlier < hi; ) {
      const mid = (earlier + hi) >> 1;
      if ((dates[mid] as IsoDate) < date) earlier = mid + 1;
      else hi = mid;
    }
    if (earlier < lookbackGames) bootstrap = true;
    // A team without earlier games reaches its first game, the date itself or later: no earlier start.
    const reach = dates[Math.max(0, earlier - lookbackGames)] as IsoDate;
    // Stryker disable next-line EqualityOperator: equivalent, `<=` assigns an equal start.
    if (reach < start) start = reach;
  }
  const end = includeDate ? date : previousDay(date);
  // ISO dates compare as strings: the earlier of the two.
  return { start: [start, end].sort()[0] as IsoDate, end, bootstrap, teams };
}

const TEAM_DATES = new WeakMap<readonly ScheduledGame[], Map<string, IsoDate[]>>();

/** Each team's game dates in a schedule, sorted; built once per schedule. */
function teamDates(schedule: readonly ScheduledGame[]): Map<string, IsoDate[]> {
  let byTeam = TEAM_DATES.get(schedule);
  // Stryker disable next-line ConditionalExpression: equivalent, building the lists again gives equal lists (the cache only saves time).
  if (!byTeam) {
    byTeam = new Map();
    for (const g of schedule) {
      for (const team of [g.home, g.away]) {
        let dates = byTeam.get(team);
        // Stryker disable next-line ArrayDeclaration: equivalent, a stray text sorts after every ISO date, beyond any index the window reads.
        if (!dates) byTeam.set(team, (dates = []));
        dates.push(g.date);
      }
    }
    for (const dates of byTeam.values()) dates.sort();
    TEAM_DATES.set(schedule, byTeam);
  }
  return byTeam;
}

function previousDay(date: IsoDate): IsoDate {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

/**
 * Runs the checks of one processor and date and reports what failed; it never throws for a failed check.
 * `pending` is the uncommitted part of the run's transaction: what it wrote counts as present. `now` is the
 * run's clock, which only the daily freshness check reads.
 */
export async function runDefensiveChecks(
  warehouse: Warehouse,
  def: ProcessorDefinition,
  season: Season,
  date: IsoDate,
  mode: RunMode,
  pending?: PendingWrites,
  now: () => Date = () => new Date(),
): Promise<CheckReport> {
  const data = checkDataOf(warehouse);
  const schedule = await data.schedule(season.label);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent in the key, no two processors share a lookback length across phases.
  const window = data.memo(`window|${season.label}|${date}|${def.lookbackGames}|${def.phase === 3}`, () =>
    lookbackWindow(schedule, date, def.lookbackGames, def.phase === 3),
  );
  const failures: CheckFailure[] = [];
  const skipped: { check: CheckName; reason: string }[] = [];
  const failedRuns: LatestRun[] = [];
  const writers: string[] = [];

  const rangeOf = (scope: 'date' | 'lookback') =>
    scope === 'date' ? { start: date, end: date } : { start: window.start, end: window.end };
  // A season's checks ask for the same windows many times (each processor, each date of a batch): the games
  // and dates of a range are kept with the schedule.
  const gamesIn = (r: { start: IsoDate; end: IsoDate }) =>
    data.memo(`games|${season.label}|${r.start}|${r.end}`, () =>
      schedule.filter((g) => g.date >= r.start && g.date <= r.end),
    );
  const datesIn = (r: { start: IsoDate; end: IsoDate }) =>
    data.memo(`dates|${season.label}|${r.start}|${r.end}`, () => [...new Set(gamesIn(r).map((g) => g.date))]);
  await data.prefetch(
    def.dependencies.flatMap((dep) => {
      const dates = datesIn(rangeOf(dep.scope));
      // Stryker disable next-line ArrayDeclaration: equivalent, a prefetch only reads early what the checks below read anyway.
      return [{ table: dep.table, dates }, ...(dep.expectedFrom ? [{ table: dep.expectedFrom, dates }] : [])];
    }),
    pending,
  );

  for (const dep of def.dependencies) {
    const range = rangeOf(dep.scope);
    const games = gamesIn(range);
    const dates = datesIn(range);
    const { missing, rows: present } = await data.gapsAndRows(dep.table, games, pending);
    if (missing.length > 0) {
      // Stryker disable next-line MethodExpression: equivalent, the schedule is read in date order, so the dates already are.
      const missingDates = [...new Set(missing.map((g) => g.date))].sort();
      failures.push({
        check: 'gap_detection',
        message: `missing dates in lookback window: ${missingDates.join(', ')} (${qualifiedName(dep.table)}: ${missing.length} of ${games.length} games missing, window ${range.start}..${range.end})`,
        missingDates,
        missingGames: missing.map((g) => g.gameId),
      });
    }
    const expected = dep.expectedFrom ? await data.rowCount(dep.expectedFrom, dates, pending) : 2 * games.length;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, 0 of 0 expected is NaN, which no threshold is above.
    if (expected > 0 && present / expected < COMPLETENESS_THRESHOLD) {
      failures.push({
        check: 'completeness',
        message: `${qualifiedName(dep.table)} holds ${((100 * present) / expected).toFixed(1)}% of the rows expected in the lookback window ${range.start}..${range.end} (${present} of ${expected}), below ${100 * COMPLETENESS_THRESHOLD}%`,
        missingDates: [],
        missingGames: [],
      });
    }
    // The dependency's writer must not have failed on any date it is read on.
    const writer = writerOf(dep.table);
    // Stryker disable next-line ConditionalExpression: equivalent today, every table a check reads has a writer; the guard is for a dependency on a table loaded from outside.
    if (!writer) continue;
    writers.push(writer.name);
    failedRuns.push(...(await data.failedRunsOf(writer.name, dates, pending)));
  }

  if (failedRuns.length > 0) {
    const dates = [...new Set(failedRuns.map((r) => r.dataDate))].sort();
    const first = failedRuns[0] as LatestRun;
    failures.push({
      check: 'upstream_failure',
      message: `${failedRuns.map((r) => `${r.processorName} ${r.status} on ${r.dataDate}`).join(', ')} (latest run${first.errorMessage ? `: ${first.errorMessage.split('\n')[0]}` : ''})`,
      missingDates: dates,
      missingGames: [],
    });
  }

  if (mode === 'backfill') {
    skipped.push({
      check: 'freshness',
      reason: 'backfill mode loads history: freshness only applies to live daily runs',
    });
  } else {
    const stale = await staleUpstream(warehouse, writers, date, now());
    if (stale.length > 0) {
      failures.push({
        check: 'freshness',
        message: `upstream not refreshed in the last 24 hours: ${stale.join(', ')}`,
        missingDates: [],
        missingGames: [],
      });
    }
  }
  return { window, failures, skipped };
}

/** A daily run's upstream is fresh when its latest success on the date finished at most this long ago. */
export const FRESHNESS_WINDOW_MS = 24 * 60 * 60 * 1000;

/** For daily runs: upstream processors whose latest run on the date failed or succeeded more than a day ago. */
async function staleUpstream(
  warehouse: Warehouse,
  writers: readonly string[],
  date: IsoDate,
  now: Date,
): Promise<string[]> {
  const runs = await latestRuns(warehouse, { start: date, end: date });
  const dayAgo = now.getTime() - FRESHNESS_WINDOW_MS;
  return writers.filter((w) => {
    const run = runs.find((r) => r.processorName === w);
    if (run?.status !== 'success') return true;
    return Date.parse(`${run.finishedAt.replace(' ', 'T')}Z`) < dayAgo;
  });
}
