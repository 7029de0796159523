// Defensive checks before each Phase 3-4 processor and date, so that bad data never cascades: gaps in the
// lookback window, upstream failures, and completeness below 90%. In strict mode a failing check blocks
// the date with a DependencyError; --strict-mode false runs anyway and records the decision as forced.

import type { IsoDate } from '../dates.js';
import { type Dependency, type ProcessorDefinition, writerOf } from '../pipeline/definition.js';
import type { Season } from '../pipeline/seasons.js';
import type { Warehouse } from '../ports/warehouse.js';
import { type LatestRun, latestRuns } from '../runs/history.js';
import { qualifiedName, type TableSchema } from '../schema/table.js';

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
export async function lookbackWindow(
  warehouse: Warehouse,
  season: Season,
  date: IsoDate,
  lookbackGames: number,
  includeDate: boolean,
): Promise<LookbackWindow> {
  const rows = await warehouse.query(
    `SELECT team, CAST(game_date AS STRING) AS d FROM (
       SELECT home_team_abbr AS team, game_date FROM nba_raw.nbac_schedule
        WHERE season = @season AND game_date <= @date AND game_status = 'Final'
       UNION ALL
       SELECT away_team_abbr AS team, game_date FROM nba_raw.nbac_schedule
        WHERE season = @season AND game_date <= @date AND game_status = 'Final'
     ) AS g ORDER BY team, d DESC`,
    { season: season.label, date },
  );
  const byTeam = new Map<string, IsoDate[]>();
  for (const r of rows) {
    const list = byTeam.get(String(r.team)) ?? [];
    list.push(String(r.d));
    byTeam.set(String(r.team), list);
  }
  const teams = [...byTeam]
    .filter(([, ds]) => ds[0] === date)
    .map(([t]) => t)
    .sort();
  let start = date;
  let bootstrap = false;
  for (const team of teams) {
    const earlier = (byTeam.get(team) ?? []).filter((d) => d < date);
    if (earlier.length < lookbackGames) bootstrap = true;
    const reach = earlier[Math.min(lookbackGames, earlier.length) - 1];
    if (reach && reach < start) start = reach;
  }
  const end = includeDate ? date : previousDay(date);
  // ISO dates compare as strings: the earlier of the two.
  return { start: [start, end].sort()[0] as IsoDate, end, bootstrap, teams };
}

function previousDay(date: IsoDate): IsoDate {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

/** The SQL listing, per game of a date range, whether a table holds both teams and how many rows. */
function gameCoverageSql(table: TableSchema): string {
  const name = qualifiedName(table);
  const byGame = table.columns.some((c) => c.name === 'game_id');
  const date = table.partitionColumn;
  const joinOn = byGame
    ? `t.game_id = s.game_id`
    : `t.${date} = s.game_date AND t.team_abbr IN (s.home_team_abbr, s.away_team_abbr)`;
  return `SELECT CAST(s.game_date AS STRING) AS d, s.game_id,
                 COUNT(DISTINCT t.team_abbr) AS teams, COUNT(t.team_abbr) AS row_count
            FROM nba_raw.nbac_schedule AS s
            LEFT JOIN ${name} AS t ON ${joinOn} AND t.${date} BETWEEN @start AND @end
           WHERE s.game_date BETWEEN @start AND @end AND s.game_status = 'Final'
           GROUP BY s.game_date, s.game_id`;
}

async function expectedRows(
  warehouse: Warehouse,
  dep: Dependency,
  range: { start: IsoDate; end: IsoDate },
  games: number,
) {
  if (!dep.expectedFrom) return 2 * games;
  const [row] = await warehouse.query(
    `SELECT COUNT(*) AS n FROM ${qualifiedName(dep.expectedFrom)} WHERE ${dep.expectedFrom.partitionColumn} BETWEEN @start AND @end`,
    range,
  );
  return Number(row?.n ?? 0);
}

/** Runs the checks of one processor and date and reports what failed; it never throws for a failed check. */
export async function runDefensiveChecks(
  warehouse: Warehouse,
  def: ProcessorDefinition,
  season: Season,
  date: IsoDate,
  mode: RunMode,
): Promise<CheckReport> {
  const window = await lookbackWindow(warehouse, season, date, def.lookbackGames, def.phase === 3);
  const failures: CheckFailure[] = [];
  const skipped: { check: CheckName; reason: string }[] = [];
  const label = (t: TableSchema) => qualifiedName(t);

  for (const dep of def.dependencies) {
    const range = dep.scope === 'date' ? { start: date, end: date } : { start: window.start, end: window.end };
    if (range.start > range.end) continue;
    const coverage = await warehouse.query(gameCoverageSql(dep.table), range);
    const missing = coverage.filter((g) => Number(g.teams) < 2);
    if (missing.length > 0) {
      const dates = [...new Set(missing.map((g) => String(g.d)))].sort();
      failures.push({
        check: 'gap_detection',
        message: `missing dates in lookback window: ${dates.join(', ')} (${label(dep.table)}: ${missing.length} of ${coverage.length} games missing, window ${range.start}..${range.end})`,
        missingDates: dates,
        missingGames: missing.map((g) => String(g.game_id)),
      });
    }
    const present = coverage.reduce((n, g) => n + Number(g.row_count), 0);
    const expected = await expectedRows(warehouse, dep, range, coverage.length);
    if (expected > 0 && present / expected < COMPLETENESS_THRESHOLD) {
      failures.push({
        check: 'completeness',
        message: `${label(dep.table)} holds ${((100 * present) / expected).toFixed(1)}% of the rows expected in the lookback window ${range.start}..${range.end} (${present} of ${expected}), below ${100 * COMPLETENESS_THRESHOLD}%`,
        missingDates: [],
        missingGames: [],
      });
    }
  }

  // Each dependency's writer, over the dates that dependency is read on.
  const failedRuns: LatestRun[] = [];
  const writers: string[] = [];
  for (const dep of def.dependencies) {
    const writer = writerOf(dep.table);
    if (!writer) continue;
    writers.push(writer.name);
    const range = dep.scope === 'date' ? { start: date, end: date } : { start: window.start, end: window.end };
    if (range.start > range.end) continue;
    const runs = await latestRuns(warehouse, range, [writer.phase]);
    failedRuns.push(...runs.filter((r) => r.processorName === writer.name && r.status !== 'success'));
  }
  if (failedRuns.length > 0) {
    const dates = [...new Set(failedRuns.map((r) => r.dataDate))].sort();
    const first = failedRuns[0];
    failures.push({
      check: 'upstream_failure',
      message: `${failedRuns.map((r) => `${r.processorName} ${r.status} on ${r.dataDate}`).join(', ')} (latest run${first?.errorMessage ? `: ${first.errorMessage.split('\n')[0]}` : ''})`,
      missingDates: dates,
      missingGames: [],
    });
  }

  if (mode === 'backfill')
    skipped.push({
      check: 'freshness',
      reason: 'backfill mode loads history: freshness only applies to live daily runs',
    });
  else {
    const stale = await staleUpstream(warehouse, writers, date);
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

/** For daily runs: upstream processors whose latest success on the date is older than a day. */
async function staleUpstream(warehouse: Warehouse, writers: readonly string[], date: IsoDate): Promise<string[]> {
  const runs = await latestRuns(warehouse, { start: date, end: date });
  const dayAgo = Date.now() - 86_400_000;
  return writers.filter((w) => {
    const run = runs.find((r) => r.processorName === w);
    if (run?.status !== 'success') return true;
    return Date.parse(`${run.finishedAt.replace(' ', 'T')}Z`) < dayAgo;
  });
}
