// Stage 4: validate a backfill: every phase complete for every date, row counts consistent across phases,
// no NULL in critical fields, values in range, and the tables agreeing with each other.

import { checkDataOf } from '../checks/data.js';
import type { IsoDate } from '../dates.js';
import { FACTOR_RANGES } from '../phase4/factors.js';
import { PROCESSORS } from '../pipeline/definition.js';
import type { PlanDate } from '../plan.js';
import type { Warehouse } from '../ports/warehouse.js';
import { latestRuns } from '../runs/history.js';
import { FEATURES_V1, featureColumn } from '../schema/features.js';
import type { Row, SqlValue } from '../schema/table.js';
import {
  type CoverageCell,
  FAILURES_KEPT,
  type ValidationCategory,
  type ValidationCheck,
  type ValidationFailure,
  type ValidationReport,
} from './validation.js';
import { withFixes } from './validationFixes.js';

interface Rule {
  readonly name: string;
  readonly category: ValidationCategory;
  readonly description: string;
  readonly table: string;
  /** The table's date column. */
  readonly date: string;
  /** SQL for the row's identity. */
  readonly key: string;
  /** A condition true for a bad row. */
  readonly bad: string;
  /** What to say about a bad row (an SQL expression giving text). */
  readonly detail: string;
}

const cat = (...parts: string[]) => `CONCAT(${parts.join(', ')})`;
const str = (e: string) => `CAST(${e} AS STRING)`;

function rules(finite: (e: string) => string): Rule[] {
  const out: Rule[] = [];
  const pgs = 'nba_analytics.player_game_summary';
  const pgsKey = cat("'game_id='", 'game_id', "', player_id='", str('player_id'));
  // Critical fields that may be NULL only for a reason: no attempts, no earlier game.
  out.push({
    name: 'player_summary_critical_fields',
    category: 'nulls',
    description:
      'player_game_summary: points, minutes, games played set; averages and rest NULL only before the first game; TS% only without attempts',
    table: pgs,
    date: 'game_date',
    key: pgsKey,
    bad: `points IS NULL OR minutes IS NULL OR season_games_played IS NULL
          OR (season_games_played > 1 AND (pts_avg_last_5 IS NULL OR pts_avg_last_10 IS NULL OR min_avg_last_5 IS NULL OR days_rest IS NULL))
          OR (fga + fta > 0 AND ts_pct IS NULL)`,
    detail: `'a critical field is NULL without a reason'`,
  });
  for (const [table, cols] of [
    ['nba_analytics.team_offense_game_summary', ['points', 'possessions', 'off_rating', 'pace']],
    ['nba_analytics.team_defense_game_summary', ['opponent_points', 'def_rating', 'opponent_fg_pct']],
  ] as const) {
    out.push({
      name: `${table.split('.')[1]}_critical_fields`,
      category: 'nulls',
      description: `${table.split('.')[1]}: ${cols.join(', ')} set`,
      table,
      date: 'game_date',
      key: cat("'game_id='", 'game_id', "', team='", 'team_abbr'),
      bad: cols.map((c) => `${c} IS NULL`).join(' OR '),
      detail: `'a critical field is NULL'`,
    });
  }
  out.push({
    name: 'ts_pct_in_range',
    category: 'ranges',
    description: 'true shooting in [0, 1.5] (free throws alone can pass 1)',
    table: pgs,
    date: 'game_date',
    key: pgsKey,
    bad: 'ts_pct < 0 OR ts_pct > 1.5',
    detail: cat("'ts_pct = '", str('ts_pct')),
  });
  out.push({
    name: 'raw_percentages_in_range',
    category: 'ranges',
    description: 'nbac_player_boxscore: FG%, 3P%, FT% in [0, 1]',
    table: 'nba_raw.nbac_player_boxscore',
    date: 'game_date',
    key: cat("'game_id='", 'game_id', "', player_id='", str('player_id')),
    bad: ['fg_pct', 'fg3_pct', 'ft_pct'].map((c) => `${c} < 0 OR ${c} > 1`).join(' OR '),
    detail: `'a percentage outside [0, 1]'`,
  });
  out.push({
    name: 'minutes_in_range',
    category: 'ranges',
    description: 'player minutes in [0, 70]',
    table: pgs,
    date: 'game_date',
    key: pgsKey,
    bad: 'minutes < 0 OR minutes > 70',
    detail: cat("'minutes = '", str('minutes')),
  });
  for (const f of FACTOR_RANGES) {
    out.push({
      name: `${f.column}_in_range`,
      category: 'ranges',
      description: `player_composite_factors.${f.column} in [${f.min}, ${f.max}]`,
      table: 'nba_precompute.player_composite_factors',
      date: 'cache_date',
      key: cat("'player_id='", str('player_id')),
      bad: `${f.column} IS NULL OR ${f.column} < ${f.min} OR ${f.column} > ${f.max}`,
      detail: cat(`'${f.column} = '`, `COALESCE(${str(f.column)}, 'NULL')`),
    });
  }
  out.push({
    name: 'features_finite',
    category: 'ranges',
    description: `ml_feature_store: every ${FEATURES_V1.length} v1 feature set and finite`,
    table: 'nba_precompute.ml_feature_store',
    date: 'cache_date',
    key: cat("'player_id='", str('player_id')),
    bad: FEATURES_V1.map((f) => `${featureColumn(f.name)} IS NULL OR NOT ${finite(featureColumn(f.name))}`).join(
      ' OR ',
    ),
    detail: `'a feature is NULL or not finite'`,
  });
  return out;
}

/** What the checks read through: queries (restricted to the selected seasons) and the SQL dialect. */
type Reader = Pick<Warehouse, 'query' | 'dialect'>;

async function ruleCheck(
  warehouse: Reader,
  rule: Rule,
  range: { start: IsoDate; end: IsoDate },
  keep: number,
): Promise<ValidationCheck> {
  const where = `${rule.date} BETWEEN @start AND @end AND (${rule.bad})`;
  // One query: the bad rows (all of them up to `keep`), each with the count of them all (the window counts
  // before the LIMIT).
  const rows = await warehouse.query(
    `SELECT CAST(${rule.date} AS STRING) AS d, ${rule.key} AS k, ${rule.detail} AS detail, COUNT(*) OVER () AS n
       FROM ${rule.table} WHERE ${where} ORDER BY d, k LIMIT ${Math.max(1, Math.trunc(keep))}`,
    range,
  );
  const n = Number(rows[0]?.n ?? 0);
  return {
    name: rule.name,
    category: rule.category,
    description: rule.description,
    passed: n === 0,
    failureCount: n,
    failures: rows.map((r) => ({ table: rule.table, date: String(r.d), key: String(r.k), detail: String(r.detail) })),
  };
}

function check(
  name: string,
  category: ValidationCategory,
  description: string,
  failures: ValidationFailure[],
  keep: number,
): ValidationCheck {
  return {
    name,
    category,
    description,
    passed: failures.length === 0,
    failureCount: failures.length,
    failures: failures.slice(0, keep),
  };
}

/** Per-date counts of a query grouped by date: date -> number. */
async function perDate(
  warehouse: Reader,
  sql: string,
  params: Record<string, SqlValue>,
): Promise<Map<IsoDate, number>> {
  const rows: Row[] = await warehouse.query(sql, params);
  return new Map(rows.map((r) => [String(r.d), Number(r.n)]));
}

/**
 * A warehouse whose queries read only the selected date ranges: `col BETWEEN @start AND @end` becomes
 * `(col BETWEEN @s0 AND @e0 OR ...)`, one range per season, so that games between two selected seasons
 * (their playoffs, when only regular seasons are selected) are not validated against a plan without them.
 */
function restrictedTo(warehouse: Warehouse, ranges: readonly { start: IsoDate; end: IsoDate }[]): Reader {
  const params: Record<string, SqlValue> = {};
  ranges.forEach((r, i) => {
    params[`s${i}`] = r.start;
    params[`e${i}`] = r.end;
  });
  const rewrite = (sql: string) =>
    sql.replace(
      // After whitespace, as every such column in this file's SQL is.
      /(?<=\s)([A-Za-z_][A-Za-z0-9_.]*) BETWEEN @start AND @end/g,
      (_m, col: string) => `(${ranges.map((_r, i) => `${col} BETWEEN @s${i} AND @e${i}`).join(' OR ')})`,
    );
  return {
    dialect: warehouse.dialect,
    query: (sql, extra) => warehouse.query(rewrite(sql), { ...extra, ...params }),
  };
}

/** The table a processor writes, as `dataset.name`, or its name when it writes none. */
function qualifiedOutput(processor: string): string {
  const def = PROCESSORS.find((p) => p.name === processor);
  return def?.output.kind === 'table' ? `${def.output.table.dataset}.${def.output.table.name}` : processor;
}

export interface ValidateOptions {
  /** Most failures a check lists (its count stays exact). @default FAILURES_KEPT */
  readonly failuresKept?: number;
}

export async function validate(
  unrestricted: Warehouse,
  selections: readonly { readonly season: string; readonly dates: readonly PlanDate[] }[],
  now: () => Date = () => new Date(),
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  const keep = options.failuresKept ?? FAILURES_KEPT;
  const plan = selections.flatMap((s) => s.dates);
  const dates = [...new Set(plan.map((d) => d.date))].sort();
  const games = new Map<IsoDate, number>();
  for (const d of plan) games.set(d.date, (games.get(d.date) ?? 0) + d.gameIds.length);
  const range = dates.length > 0 ? { start: dates[0] as IsoDate, end: dates.at(-1) as IsoDate } : null;
  const ranges = selections
    .map((s) => s.dates.map((d) => d.date).sort())
    .filter((ds) => ds.length > 0)
    .map((ds) => ({ start: ds[0] as IsoDate, end: ds.at(-1) as IsoDate }));
  const warehouse = restrictedTo(unrestricted, ranges);
  const checks: ValidationCheck[] = [];
  const coverage: CoverageCell[] = [];
  const tables = [
    'nba_raw.nbac_schedule',
    'nba_raw.nbac_player_boxscore',
    'nba_raw.nbac_gamebook_player_stats',
    'nba_raw.nbac_team_boxscore',
    'nba_raw.espn_team_roster',
    'nba_analytics.player_game_summary',
    'nba_analytics.team_offense_game_summary',
    'nba_analytics.team_defense_game_summary',
    'nba_precompute.player_daily_cache',
    'nba_precompute.player_composite_factors',
    'nba_precompute.ml_feature_store',
  ];
  if (!range) {
    return {
      seasons: selections.map((s) => s.season),
      range,
      dates,
      generatedAt: now().toISOString(),
      passed: false,
      checks,
      tables,
      coverage,
    };
  }
  // Every query's @start/@end below becomes the seasons' @sN/@eN (restrictedTo); p is there for one that would not.
  // Stryker disable next-line ObjectLiteral: equivalent, restrictedTo rewrites every use of these parameters
  const p = { start: range.start, end: range.end };

  // Run history: every Phase 1-4 processor's latest run on every date succeeded.
  const runs = await latestRuns(unrestricted, range);
  const latest = new Map(runs.map((r) => [`${r.processorName}|${r.dataDate}`, r]));
  const runFailures: ValidationFailure[] = [];
  for (const date of dates) {
    for (const proc of PROCESSORS) {
      const run = latest.get(`${proc.name}|${date}`);
      if (run?.status !== 'success') {
        runFailures.push({
          table: proc.output.kind === 'table' ? `${proc.output.table.dataset}.${proc.output.table.name}` : proc.name,
          date,
          key: proc.name,
          detail: run ? `latest run ${run.status}: ${(run.errorMessage ?? '').split('\n')[0]}` : 'never ran',
        });
      }
    }
  }
  checks.push(
    check(
      'runs_complete',
      'completeness',
      'every Phase 1-4 processor’s latest run on every date succeeded',
      runFailures,
      keep,
    ),
  );

  // Data versions: no Phase 3-4 result read an input that has been corrected since (core/runs/versions.ts).
  const selected = new Set(dates);
  const staleFailures: ValidationFailure[] = [];
  const data = checkDataOf(unrestricted);
  for (const season of [...new Set(selections.map((s) => s.season))]) {
    for (const r of await data.staleRuns(season)) {
      if (!selected.has(r.date)) continue;
      staleFailures.push({
        table: qualifiedOutput(r.processor),
        date: r.date,
        key: r.processor,
        detail: `stale: ${r.reason}; recompute with backfill stage3 --season ${season}`,
      });
    }
  }
  checks.push(
    check(
      'runs_current',
      'completeness',
      'no Phase 3-4 result read an input that was corrected after it ran (no stale date)',
      staleFailures,
      keep,
    ),
  );

  // Rows per date, for coverage and the cross-phase counts.
  const byGameBothTeams = (table: string) =>
    perDate(
      warehouse,
      `SELECT d, COUNT(*) AS n FROM (SELECT CAST(game_date AS STRING) AS d, game_id FROM ${table}
         WHERE game_date BETWEEN @start AND @end GROUP BY game_date, game_id HAVING COUNT(DISTINCT team_abbr) = 2) AS g GROUP BY d`,
      p,
    );
  const rowsPerDate = (table: string, col: string) =>
    perDate(
      warehouse,
      `SELECT CAST(${col} AS STRING) AS d, COUNT(*) AS n FROM ${table} WHERE ${col} BETWEEN @start AND @end GROUP BY ${col}`,
      p,
    );
  const scheduleGames = await perDate(
    warehouse,
    `SELECT CAST(game_date AS STRING) AS d, COUNT(*) AS n FROM nba_raw.nbac_schedule
      WHERE game_date BETWEEN @start AND @end AND game_status = 'Final' GROUP BY game_date`,
    p,
  );
  const rosterOfPlaying = await perDate(
    warehouse,
    `SELECT CAST(r.roster_date AS STRING) AS d, COUNT(*) AS n FROM nba_raw.espn_team_roster AS r
      WHERE r.roster_date BETWEEN @start AND @end AND EXISTS (
        SELECT 1 FROM nba_raw.nbac_schedule AS s WHERE s.game_date = r.roster_date AND s.game_date BETWEEN @start AND @end
           AND s.game_status = 'Final'
           AND r.team_abbr IN (s.home_team_abbr, s.away_team_abbr))
      GROUP BY r.roster_date`,
    p,
  );
  const teamsWithRoster = await perDate(
    warehouse,
    `SELECT CAST(roster_date AS STRING) AS d, COUNT(DISTINCT team_abbr) AS n FROM nba_raw.espn_team_roster
      WHERE roster_date BETWEEN @start AND @end GROUP BY roster_date`,
    p,
  );
  const counts = {
    box: await rowsPerDate('nba_raw.nbac_player_boxscore', 'game_date'),
    gamebook: await rowsPerDate('nba_raw.nbac_gamebook_player_stats', 'game_date'),
    teamBox: await rowsPerDate('nba_raw.nbac_team_boxscore', 'game_date'),
    pgs: await rowsPerDate('nba_analytics.player_game_summary', 'game_date'),
    off: await rowsPerDate('nba_analytics.team_offense_game_summary', 'game_date'),
    def: await rowsPerDate('nba_analytics.team_defense_game_summary', 'game_date'),
    cache: await rowsPerDate('nba_precompute.player_daily_cache', 'cache_date'),
    factors: await rowsPerDate('nba_precompute.player_composite_factors', 'cache_date'),
    ml: await rowsPerDate('nba_precompute.ml_feature_store', 'cache_date'),
  };
  const gamesBoth = {
    box: await byGameBothTeams('nba_raw.nbac_player_boxscore'),
    gamebook: await byGameBothTeams('nba_raw.nbac_gamebook_player_stats'),
    teamBox: await byGameBothTeams('nba_raw.nbac_team_boxscore'),
  };
  const get = (m: Map<IsoDate, number>, d: IsoDate) => m.get(d) ?? 0;
  for (const date of dates) {
    const g = games.get(date) ?? 0;
    const cell = (table: string, expected: number, present: number) => {
      const writer = PROCESSORS.find((p) => p.output.kind === 'table' && qualifiedOutput(p.name) === table);
      const notRun = writer !== undefined && !latest.has(`${writer.name}|${date}`);
      coverage.push({
        table,
        date,
        expected,
        present: Math.min(present, expected),
        // Nothing expected is no data, not 100%: a playoff date's player tables expect no rows.
        pct: expected === 0 ? null : Math.floor((1000 * Math.min(present, expected)) / expected) / 10,
        ...(notRun ? { notRun } : {}),
      });
    };
    cell('nba_raw.nbac_schedule', g, get(scheduleGames, date));
    cell('nba_raw.nbac_player_boxscore', g, get(gamesBoth.box, date));
    cell('nba_raw.nbac_gamebook_player_stats', g, get(gamesBoth.gamebook, date));
    cell('nba_raw.nbac_team_boxscore', g, get(gamesBoth.teamBox, date));
    cell('nba_raw.espn_team_roster', 2 * g, get(teamsWithRoster, date));
    cell('nba_analytics.player_game_summary', get(counts.box, date), get(counts.pgs, date));
    cell('nba_analytics.team_offense_game_summary', 2 * g, get(counts.off, date));
    cell('nba_analytics.team_defense_game_summary', 2 * g, get(counts.def, date));
    cell('nba_precompute.player_daily_cache', get(rosterOfPlaying, date), get(counts.cache, date));
    cell('nba_precompute.player_composite_factors', get(rosterOfPlaying, date), get(counts.factors, date));
    cell('nba_precompute.ml_feature_store', get(rosterOfPlaying, date), get(counts.ml, date));
  }
  checks.push(
    check(
      'rows_present',
      'completeness',
      'every table holds every game (or every expected row) of every date',
      coverage
        .filter((c) => c.pct !== null && c.pct < 100)
        .map((c) => ({
          table: c.table,
          date: c.date,
          key: null,
          detail: `${c.present} of ${c.expected} present (${c.pct}%)`,
        })),
      keep,
    ),
  );

  // Row counts agree across phases.
  const mismatch = (
    name: string,
    description: string,
    pairs: [string, Map<IsoDate, number>, Map<IsoDate, number> | ((d: IsoDate) => number)][],
  ) => {
    const failures: ValidationFailure[] = [];
    for (const date of dates) {
      for (const [table, actual, expected] of pairs) {
        const want = typeof expected === 'function' ? expected(date) : get(expected, date);
        const have = get(actual, date);
        if (have !== want) failures.push({ table, date, key: null, detail: `${have} rows, expected ${want}` });
      }
    }
    checks.push(check(name, 'row_counts', description, failures, keep));
  };
  mismatch('one_summary_per_box_row', 'one player_game_summary row per player box score row', [
    ['nba_analytics.player_game_summary', counts.pgs, counts.box],
    ['nba_raw.nbac_gamebook_player_stats', counts.gamebook, counts.box],
  ]);
  mismatch('two_team_rows_per_game', 'two rows per game in the team tables', [
    ['nba_raw.nbac_team_boxscore', counts.teamBox, (d) => 2 * (games.get(d) ?? 0)],
    ['nba_analytics.team_offense_game_summary', counts.off, (d) => 2 * (games.get(d) ?? 0)],
    ['nba_analytics.team_defense_game_summary', counts.def, (d) => 2 * (games.get(d) ?? 0)],
  ]);
  mismatch(
    'cache_rows_per_rostered_player',
    'a cache, factors and feature row for every player of every team playing the date',
    [
      ['nba_precompute.player_daily_cache', counts.cache, rosterOfPlaying],
      ['nba_precompute.player_composite_factors', counts.factors, rosterOfPlaying],
      ['nba_precompute.ml_feature_store', counts.ml, rosterOfPlaying],
    ],
  );

  for (const rule of rules(warehouse.dialect.isFinite)) checks.push(await ruleCheck(warehouse, rule, p, keep));

  // Cross-table consistency.
  const teamPoints = await warehouse.query(
    `SELECT CAST(t.game_date AS STRING) AS d, CONCAT('game_id=', t.game_id, ', team=', t.team_abbr) AS k,
            CONCAT('team ', CAST(t.points AS STRING), ', players ', CAST(COALESCE(p.pts, 0) AS STRING)) AS detail
       FROM nba_raw.nbac_team_boxscore AS t
       LEFT JOIN (SELECT game_id, team_abbr, SUM(points) AS pts FROM nba_raw.nbac_player_boxscore
                   WHERE game_date BETWEEN @start AND @end GROUP BY game_id, team_abbr) AS p
         ON p.game_id = t.game_id AND p.team_abbr = t.team_abbr
      WHERE t.game_date BETWEEN @start AND @end AND t.derived_from = 'player_rows' AND t.points <> COALESCE(p.pts, 0)
      ORDER BY d, k`,
    p,
  );
  checks.push(
    check(
      'team_points_equal_player_sums',
      'consistency',
      "a team's points equal the sum of its players' points",
      teamPoints.map((r) => ({
        table: 'nba_raw.nbac_team_boxscore',
        date: String(r.d),
        key: String(r.k),
        detail: String(r.detail),
      })),
      keep,
    ),
  );
  const scores = await warehouse.query(
    `SELECT CAST(s.game_date AS STRING) AS d, CONCAT('game_id=', s.game_id) AS k,
            CONCAT('schedule ', CAST(s.home_score AS STRING), '-', CAST(s.away_score AS STRING), ', box scores ',
                   COALESCE(CAST(h.points AS STRING), '?'), '-', COALESCE(CAST(a.points AS STRING), '?'),
                   ', offense summaries ', COALESCE(CAST(ho.points AS STRING), '?'), '-', COALESCE(CAST(ao.points AS STRING), '?')) AS detail
       FROM nba_raw.nbac_schedule AS s
       LEFT JOIN nba_raw.nbac_team_boxscore AS h ON h.game_id = s.game_id AND h.team_abbr = s.home_team_abbr
                                                   AND h.game_date BETWEEN @start AND @end
       LEFT JOIN nba_raw.nbac_team_boxscore AS a ON a.game_id = s.game_id AND a.team_abbr = s.away_team_abbr
                                                   AND a.game_date BETWEEN @start AND @end
       LEFT JOIN nba_analytics.team_offense_game_summary AS ho ON ho.game_id = s.game_id AND ho.team_abbr = s.home_team_abbr
                                                   AND ho.game_date BETWEEN @start AND @end
       LEFT JOIN nba_analytics.team_offense_game_summary AS ao ON ao.game_id = s.game_id AND ao.team_abbr = s.away_team_abbr
                                                   AND ao.game_date BETWEEN @start AND @end
      WHERE s.game_date BETWEEN @start AND @end AND s.game_status = 'Final'
        AND (h.points IS DISTINCT FROM s.home_score OR a.points IS DISTINCT FROM s.away_score
             OR ho.points IS DISTINCT FROM s.home_score OR ao.points IS DISTINCT FROM s.away_score)
      ORDER BY d, k`,
    p,
  );
  checks.push(
    check(
      'schedule_scores_agree',
      'consistency',
      'schedule final scores equal the team box scores and the offense summaries',
      scores.map((r) => ({
        table: 'nba_raw.nbac_schedule',
        date: String(r.d),
        key: String(r.k),
        detail: String(r.detail),
      })),
      keep,
    ),
  );

  const seasonOf = new Map(selections.flatMap((s) => s.dates.map((d) => [d.date, s.season] as const)));
  const fixed = withFixes(checks, {
    seasonOf: (date) => seasonOf.get(date),
    runStatus: (processor, date) => latest.get(`${processor}|${date}`)?.status,
  });

  return {
    seasons: selections.map((s) => s.season),
    range,
    dates,
    generatedAt: now().toISOString(),
    passed: checks.every((c) => c.passed),
    checks: fixed,
    tables,
    coverage,
    stale: staleFailures.map((f) => ({ table: f.table, date: f.date as IsoDate })),
  };
}
