// Phase 3: per player and per team game summaries with 10-15 game lookbacks, for a range of dates in one pass.
// Every lookback reads the season's games before the row's own date only (`e.game_date < t.game_date`): it never includes the
// current game or a later one, and it resets with the season because it reads one season.

import type { IsoDate } from '../dates.js';
import { getProcessorDefinition } from '../pipeline/definition.js';
import {
  datesOf,
  type Processor,
  type ProcessorContext,
  type ProcessorResult,
  type RangeContext,
  rangeProcessor,
} from '../pipeline/processor.js';
import type { Row, SqlValue, TableSchema } from '../schema/table.js';
import type { SqlDialect } from '../sql/dialect.js';

type AnyContext = ProcessorContext | RangeContext;

/**
 * The dates of a run in SQL: `list` for `IN (...)` and `days` as a one-column relation (`day`), each date a
 * parameter (@d0, @d1, ...). A range is its explicit dates, never a BETWEEN: a date of the season between two
 * of them that the run does not cover (another season type, a skipped date) is left alone, as a run of each
 * date alone would.
 */
export function batchDates(d: SqlDialect, dates: readonly IsoDate[]): { list: string; days: string } {
  const each = dates.map((_, i) => d.asDate(`@d${i}`));
  return { list: each.join(', '), days: each.map((e) => `SELECT ${e} AS day`).join(' UNION ALL ') };
}

/**
 * The rows of a query for the context's dates and season. With a `key`, processors of the same dates and
 * transaction that read the same inputs share one query (see PendingWrites.shared).
 */
export function inputRows(ctx: AnyContext, sql: string, key?: string): Promise<readonly Row[]> {
  const dates = datesOf(ctx);
  // season_start bounds the lookbacks from below too, so that on BigQuery a date reads its season's
  // partitions only, not every earlier season's.
  const params: Record<string, SqlValue> = {
    season: ctx.season.label,
    season_start: ctx.season.regularSeason.start,
    to: dates.at(-1) as IsoDate,
  };
  for (const [i, d] of dates.entries()) params[`d${i}`] = d;
  const load = () => ctx.warehouse.query(sql, params);
  // Stryker disable next-line StringLiteral: equivalent, ISO dates have one width, so the key is unique with any separator.
  return key && ctx.pending ? ctx.pending.shared(`${key}|${dates.join(',')}`, load) : load();
}

const BLANK_ROWS = new WeakMap<TableSchema, Row>();

/**
 * A new row holding every column of a table, null, in the table's order. Filling a copy of it keeps the row
 * in V8's fast object layout; adding a dozen or more columns one by one by name turns a row into a dictionary,
 * several times slower to build and to read (a season's rows are read again by the commit and the checks).
 */
export function blankRow(table: TableSchema): Row {
  let blank = BLANK_ROWS.get(table);
  // Stryker disable next-line ConditionalExpression: equivalent for `true`, building the blank row again gives an equal one (the cache only saves time).
  if (!blank) BLANK_ROWS.set(table, (blank = Object.fromEntries(table.columns.map((c) => [c.name, null]))));
  return { ...blank };
}

/** A row with exactly a table's columns. */
export function project(table: TableSchema, row: Row): Row {
  const out = blankRow(table);
  for (const c of table.columns) out[c.name] = row[c.name] ?? null;
  return out;
}

/** Rows by their date (a column holding an ISO date string), with an entry, maybe empty, for every date. */
export function byDate(dates: readonly IsoDate[], rows: readonly Row[], column: string): Map<IsoDate, Row[]> {
  const out = new Map<IsoDate, Row[]>(dates.map((d) => [d, []]));
  // Stryker disable next-line OptionalChaining: equivalent, the queries read only the run's dates.
  for (const r of rows) out.get(String(r[column]))?.push(r);
  return out;
}

/** A date's result from its rows: processed, or no_games without any. */
export function resultOf(table: TableSchema, rows: Row[], details?: Record<string, unknown>): ProcessorResult {
  return {
    rows: rows.length,
    decision: rows.length > 0 ? 'processed' : 'no_games',
    ...(details ? { details } : {}),
    write: { table, rows },
  };
}

/**
 * A processor whose rows for its dates come from one query (each row's date in `dateColumn`); the runner
 * replaces each date with its rows. With a `shareAs` key the query may hold more columns, shared with another
 * processor, and each takes its own.
 */
export function queryProcessor(
  name: string,
  sql: (ctx: AnyContext) => string,
  shareAs?: string,
  dateColumn = 'game_date',
): Processor {
  const definition = getProcessorDefinition(name);
  if (definition.output.kind !== 'table') throw new Error(`${name} does not write a table`);
  const table: TableSchema = definition.output.table;
  return rangeProcessor(
    definition,
    async (ctx) => {
      const rows = (await inputRows(ctx, sql(ctx), shareAs)).map((r) => project(table, r));
      return new Map([...byDate(ctx.dates, rows, dateColumn)].map(([d, rs]) => [d, resultOf(table, rs)]));
    },
    shareAs ? (ctx) => void inputRows(ctx, sql(ctx), shareAs) : undefined,
  );
}

/**
 * Each date's box rows, each with the player's earlier games of the season before its date: how many, the last
 * date, and the latest 10 points and minutes (newest first), as one GROUP BY over the earlier rows.
 */
export const playerGameSummaryProcessor = queryProcessor(
  'player_game_summary',
  (ctx) => {
    const d = ctx.warehouse.dialect;
    const { list } = batchDates(d, datesOf(ctx));
    return `
    WITH today AS (
      SELECT * FROM nba_raw.nbac_player_boxscore WHERE game_date IN (${list}) AND season = @season
    ),
    earlier AS (
      SELECT t.player_id, t.game_date AS day, COUNT(*) AS games, MAX(e.game_date) AS last_date,
             ${d.latestValues('e.points', 'e.game_date', 10)} AS points10,
             ${d.latestValues('e.minutes', 'e.game_date', 10)} AS minutes10
        FROM today AS t
        JOIN (SELECT player_id, game_date, points, minutes FROM nba_raw.nbac_player_boxscore
               WHERE season = @season AND game_date >= @season_start AND game_date < @to) AS e
          ON e.player_id = t.player_id AND e.game_date < t.game_date
       GROUP BY t.player_id, t.game_date
    )
    SELECT t.game_id, CAST(t.game_date AS STRING) AS game_date, t.season, t.season_type,
           t.player_id, t.player_name, t.team_abbr, t.opponent_team_abbr, t.is_home, t.win,
           t.minutes, t.points, t.fgm, t.fga, t.fg3m, t.fg3a, t.ftm, t.fta, t.reb, t.ast, t.tov,
           CASE WHEN t.fga + t.fta = 0 THEN NULL ELSE t.points / (2 * (t.fga + 0.44 * t.fta)) END AS ts_pct,
           ${d.avgOfFirst('e.points10', 5)} AS pts_avg_last_5,
           ${d.avgOfFirst('e.points10', 10)} AS pts_avg_last_10,
           ${d.avgOfFirst('e.minutes10', 5)} AS min_avg_last_5,
           ${d.avgOfFirst('e.minutes10', 10)} AS min_avg_last_10,
           COALESCE(e.games, 0) + 1 AS season_games_played,
           ${d.dateDiffDays('t.game_date', 'e.last_date')} AS days_rest,
           COALESCE(${d.dateDiffDays('t.game_date', 'e.last_date')} = 1, FALSE) AS back_to_back
      FROM today AS t LEFT JOIN earlier AS e ON e.player_id = t.player_id AND e.day = t.game_date`;
  },
  'player_game_summary',
);

/**
 * Both team summaries of each date, from one query that the two processors share: each team's row beside
 * its opponent's row of the same game, with the team's previous 10 offensive ratings (its own earlier rows
 * of the season) and previous 15 defensive ratings (the earlier rows whose opponent it was: a team's
 * defensive rating in a game is its opponent's offensive rating).
 *
 * Pace is possessions per 48 minutes, the mean of both teams' possessions over the game's length. Player
 * minutes are rounded, so the game length is snapped to 48 plus 5 per overtime (nbac_team_boxscore.game_minutes).
 */
export function teamGameSummariesSql(ctx: AnyContext): string {
  const d = ctx.warehouse.dialect;
  const { list } = batchDates(d, datesOf(ctx));
  const rating = '100 * e.points / (e.fga - e.oreb + e.tov + 0.44 * e.fta)';
  const season = `(SELECT game_date, team_abbr, opponent_team_abbr, points, fga, oreb, tov, fta FROM nba_raw.nbac_team_boxscore
               WHERE season = @season AND game_date >= @season_start AND game_date < @to)`;
  return `
    WITH t AS (
      SELECT game_id, game_date, season, season_type, team_abbr, opponent_team_abbr, points, fgm, fga, game_minutes,
             fga - oreb + tov + 0.44 * fta AS possessions
        FROM nba_raw.nbac_team_boxscore
       WHERE game_date IN (${list}) AND season = @season
    ),
    g AS (
      SELECT t.*, o.points AS opp_points, o.fgm AS opp_fgm, o.fga AS opp_fga, o.possessions AS opp_possessions
        FROM t JOIN t AS o ON o.game_id = t.game_id AND o.team_abbr = t.opponent_team_abbr
    ),
    offense AS (
      SELECT t.team_abbr, t.game_date AS day, ${d.latestValues(rating, 'e.game_date', 10)} AS ratings
        FROM t JOIN ${season} AS e ON e.team_abbr = t.team_abbr AND e.game_date < t.game_date
       GROUP BY t.team_abbr, t.game_date
    ),
    defense AS (
      SELECT t.team_abbr, t.game_date AS day, ${d.latestValues(rating, 'e.game_date', 15)} AS ratings
        FROM t JOIN ${season} AS e ON e.opponent_team_abbr = t.team_abbr AND e.game_date < t.game_date
       GROUP BY t.team_abbr, t.game_date
    )
    SELECT g.game_id, CAST(g.game_date AS STRING) AS game_date, g.season, g.season_type, g.team_abbr,
           g.opponent_team_abbr, g.points, g.possessions,
           100 * g.points / g.possessions AS off_rating,
           48 * (g.possessions + g.opp_possessions) / 2 / g.game_minutes AS pace,
           CAST((g.game_minutes - 48) / 5 AS BIGINT) AS overtime_periods,
           ${d.avgOfFirst('o.ratings', 10)} AS off_rating_prev_10_avg,
           g.opp_points AS opponent_points,
           100 * g.opp_points / g.opp_possessions AS def_rating,
           CASE WHEN g.opp_fga = 0 THEN 0 ELSE g.opp_fgm / g.opp_fga END AS opponent_fg_pct,
           ${d.avgOfFirst('x.ratings', 15)} AS def_rating_prev_15_avg
      FROM g LEFT JOIN offense AS o ON o.team_abbr = g.team_abbr AND o.day = g.game_date
             LEFT JOIN defense AS x ON x.team_abbr = g.team_abbr AND x.day = g.game_date`;
}

export const teamOffenseProcessor = queryProcessor(
  'team_offense_game_summary',
  teamGameSummariesSql,
  'team_game_summaries',
);

export const teamDefenseProcessor = queryProcessor(
  'team_defense_game_summary',
  teamGameSummariesSql,
  'team_game_summaries',
);

export const PHASE3_PROCESSORS: readonly Processor[] = [
  playerGameSummaryProcessor,
  teamOffenseProcessor,
  teamDefenseProcessor,
];
