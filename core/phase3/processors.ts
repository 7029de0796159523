// Phase 3: per player and per team game summaries with 10-15 game lookbacks, one date at a time.
// Every lookback is a window over the season's earlier games (`... PRECEDING AND 1 PRECEDING`): it never
// includes the current game or a later one, and it resets with the season because it reads one season.

import { getProcessorDefinition } from '../pipeline/definition.js';
import type { Processor, ProcessorContext, ProcessorResult } from '../pipeline/processor.js';
import type { Row, TableSchema } from '../schema/table.js';

/** A processor whose rows for the date come from one query; the runner replaces the date with them. */
export function queryProcessor(
  name: string,
  sql: (ctx: ProcessorContext) => string,
  details?: (rows: readonly Row[]) => Record<string, unknown>,
): Processor {
  const definition = getProcessorDefinition(name);
  if (definition.output.kind !== 'table') throw new Error(`${name} does not write a table`);
  const table: TableSchema = definition.output.table;
  return {
    definition,
    async run(ctx): Promise<ProcessorResult> {
      const rows = await ctx.warehouse.query(sql(ctx), { season: ctx.season.label, date: ctx.date });
      return {
        rows: rows.length,
        decision: rows.length > 0 ? 'processed' : 'no_games',
        details: details?.(rows) ?? {},
        write: { table, rows },
      };
    },
  };
}

const prev = (n: number) => `ROWS BETWEEN ${n} PRECEDING AND 1 PRECEDING`;

export const playerGameSummaryProcessor = queryProcessor(
  'player_game_summary',
  (ctx) => {
    const d = ctx.warehouse.dialect;
    return `
    SELECT s.*, COALESCE(s.days_rest = 1, FALSE) AS back_to_back FROM (
      SELECT b.game_id, CAST(b.game_date AS STRING) AS game_date, b.season, b.season_type,
             b.player_id, b.player_name, b.team_abbr, b.opponent_team_abbr, b.is_home, b.win,
             b.minutes, b.points, b.fgm, b.fga, b.fg3m, b.fg3a, b.ftm, b.fta, b.reb, b.ast, b.tov,
             CASE WHEN b.fga + b.fta = 0 THEN NULL ELSE b.points / (2 * (b.fga + 0.44 * b.fta)) END AS ts_pct,
             AVG(b.points) OVER (w ${prev(5)}) AS pts_avg_last_5,
             AVG(b.points) OVER (w ${prev(10)}) AS pts_avg_last_10,
             AVG(b.minutes) OVER (w ${prev(5)}) AS min_avg_last_5,
             AVG(b.minutes) OVER (w ${prev(10)}) AS min_avg_last_10,
             ROW_NUMBER() OVER w AS season_games_played,
             ${d.dateDiffDays('b.game_date', 'LAG(b.game_date) OVER w')} AS days_rest
        FROM nba_raw.nbac_player_boxscore AS b
       WHERE b.season = @season AND b.game_date <= @date
         AND b.player_id IN (SELECT player_id FROM nba_raw.nbac_player_boxscore WHERE game_date = @date)
      WINDOW w AS (PARTITION BY b.player_id ORDER BY b.game_date, b.game_id)
    ) AS s
    WHERE s.game_date = CAST(@date AS STRING)`;
  },
  undefined,
);

/** Team rows of the season up to the date with possessions and game length, and the opponent's beside them. */
function teamGamesSql(): string {
  return `
    WITH t AS (
      SELECT game_id, game_date, season, season_type, team_abbr, opponent_team_abbr, points, fgm, fga, game_minutes,
             fga - oreb + tov + 0.44 * fta AS possessions
        FROM nba_raw.nbac_team_boxscore
       WHERE season = @season AND game_date <= @date
    ),
    g AS (
      SELECT t.*, o.points AS opp_points, o.fgm AS opp_fgm, o.fga AS opp_fga, o.possessions AS opp_possessions
        FROM t JOIN t AS o ON o.game_id = t.game_id AND o.team_abbr = t.opponent_team_abbr
    )`;
}

/**
 * Pace is possessions per 48 minutes, the mean of both teams' possessions over the game's length. Player
 * minutes are rounded, so the game length is snapped to 48 plus 5 per overtime (nbac_team_boxscore.game_minutes).
 */
export const teamOffenseProcessor = queryProcessor(
  'team_offense_game_summary',
  () => `
    ${teamGamesSql()}
    SELECT * FROM (
      SELECT game_id, CAST(game_date AS STRING) AS game_date, season, season_type, team_abbr, opponent_team_abbr,
             points, possessions,
             100 * points / possessions AS off_rating,
             48 * (possessions + opp_possessions) / 2 / game_minutes AS pace,
             CAST((game_minutes - 48) / 5 AS BIGINT) AS overtime_periods,
             AVG(100 * points / possessions) OVER (PARTITION BY team_abbr ORDER BY game_date, game_id ${prev(10)}) AS off_rating_prev_10_avg
        FROM g
    ) AS s
    WHERE s.game_date = CAST(@date AS STRING)`,
);

export const teamDefenseProcessor = queryProcessor(
  'team_defense_game_summary',
  () => `
    ${teamGamesSql()}
    SELECT * FROM (
      SELECT game_id, CAST(game_date AS STRING) AS game_date, season, season_type, team_abbr, opponent_team_abbr,
             opp_points AS opponent_points,
             100 * opp_points / opp_possessions AS def_rating,
             CASE WHEN opp_fga = 0 THEN 0 ELSE opp_fgm / opp_fga END AS opponent_fg_pct,
             AVG(100 * opp_points / opp_possessions) OVER (PARTITION BY team_abbr ORDER BY game_date, game_id ${prev(15)}) AS def_rating_prev_15_avg
        FROM g
    ) AS s
    WHERE s.game_date = CAST(@date AS STRING)`,
);

export const PHASE3_PROCESSORS: readonly Processor[] = [
  playerGameSummaryProcessor,
  teamOffenseProcessor,
  teamDefenseProcessor,
];
