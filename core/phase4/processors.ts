// Phase 4: for each game date, the state before that date's games for every rostered player of the teams
// playing it: the daily cache, the composite factors, and the ML feature vector. Reads only earlier dates
// of nba_analytics (game_date < the date) and the date's roster, so nothing of the date's games leaks in.

import { daysBetween } from '../dates.js';
import { queryProcessor } from '../phase3/processors.js';
import { getProcessorDefinition } from '../pipeline/definition.js';
import type { Processor, ProcessorContext, ProcessorResult } from '../pipeline/processor.js';
import type { Row, TableSchema } from '../schema/table.js';
import { clamp } from './factors.js';
import { FEATURE_VERSION, FEATURES_V1, featureColumn } from './features.js';

/** The teams playing the date, each with its opponent, and their players as of the date. */
const rosterCte = `
  playing AS (
    SELECT home_team_abbr AS team, away_team_abbr AS opp FROM nba_raw.nbac_schedule
     WHERE game_date = @date AND game_status = 'Final'
    UNION ALL
    SELECT away_team_abbr AS team, home_team_abbr AS opp FROM nba_raw.nbac_schedule
     WHERE game_date = @date AND game_status = 'Final'
  ),
  roster AS (
    SELECT r.player_id, r.team_abbr, p.opp FROM nba_raw.espn_team_roster AS r
      JOIN playing AS p ON p.team = r.team_abbr
     WHERE r.roster_date = @date
  )`;

const windows = (stat: string, column: string) =>
  [
    `AVG(h.${column}) AS ${stat}_avg_season`,
    ...[5, 10, 30].map((n) => `AVG(CASE WHEN h.rn <= ${n} THEN h.${column} END) AS ${stat}_avg_last_${n}`),
  ].join(',\n           ');

export const playerDailyCacheProcessor = queryProcessor(
  'player_daily_cache',
  () => `
    WITH ${rosterCte},
    hist AS (
      SELECT s.player_id, s.points, s.minutes, s.reb, s.ast,
             ROW_NUMBER() OVER (PARTITION BY s.player_id ORDER BY s.game_date DESC, s.game_id DESC) AS rn
        FROM nba_analytics.player_game_summary AS s
       WHERE s.season = @season AND s.game_date < @date AND s.player_id IN (SELECT player_id FROM roster)
    )
    SELECT @date AS cache_date, @season AS season, r.player_id, r.team_abbr,
           COUNT(h.player_id) AS games_played,
           ${windows('pts', 'points')},
           ${windows('min', 'minutes')},
           ${windows('reb', 'reb')},
           ${windows('ast', 'ast')},
           STDDEV_SAMP(CASE WHEN h.rn <= 30 THEN h.points END) AS pts_std_last_30
      FROM roster AS r LEFT JOIN hist AS h ON h.player_id = r.player_id
     GROUP BY r.player_id, r.team_abbr`,
);

/** A processor that queries its inputs and computes its rows in code (formulas read better in TypeScript). */
function computedProcessor(
  name: string,
  sql: (ctx: ProcessorContext) => string,
  compute: (input: readonly Row[], ctx: ProcessorContext) => { rows: Row[]; details?: Record<string, unknown> },
): Processor {
  const definition = getProcessorDefinition(name);
  const table = (definition.output as { table: TableSchema }).table;
  return {
    definition,
    async run(ctx): Promise<ProcessorResult> {
      const input = await ctx.warehouse.query(sql(ctx), { season: ctx.season.label, date: ctx.date });
      const { rows, details } = compute(input, ctx);
      return {
        rows: rows.length,
        decision: rows.length > 0 ? 'processed' : 'no_games',
        details: details ?? {},
        write: { table, rows },
      };
    },
  };
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Factor formulas and ranges: core/phase4/factors.ts (FACTOR_RANGES). */
export const compositeFactorsProcessor = computedProcessor(
  'player_composite_factors',
  (ctx) => {
    const d = ctx.warehouse.dialect;
    return `
    WITH ${rosterCte},
    hist AS (
      SELECT s.player_id, s.game_date, s.minutes, s.fga + 0.44 * s.fta + s.tov AS usage,
             ROW_NUMBER() OVER (PARTITION BY s.player_id ORDER BY s.game_date DESC, s.game_id DESC) AS rn
        FROM nba_analytics.player_game_summary AS s
       WHERE s.season = @season AND s.game_date < @date AND s.player_id IN (SELECT player_id FROM roster)
    ),
    ph AS (
      SELECT player_id, CAST(MAX(game_date) AS STRING) AS last_game,
             SUM(CASE WHEN game_date >= ${d.dateAddDays(d.asDate('@date'), -7)} THEN minutes ELSE 0 END) AS min7,
             AVG(usage) AS usage_season, AVG(CASE WHEN rn <= 5 THEN usage END) AS usage_last5
        FROM hist GROUP BY player_id
    ),
    def_games AS (
      SELECT team_abbr, def_rating,
             ROW_NUMBER() OVER (PARTITION BY team_abbr ORDER BY game_date DESC, game_id DESC) AS rn
        FROM nba_analytics.team_defense_game_summary WHERE season = @season AND game_date < @date
    ),
    opp_def AS (SELECT team_abbr, AVG(def_rating) AS def15 FROM def_games WHERE rn <= 15 GROUP BY team_abbr),
    league AS (
      SELECT AVG(def_rating) AS league_def FROM nba_analytics.team_defense_game_summary
       WHERE season = @season AND game_date < @date
    ),
    pace AS (
      SELECT team_abbr, AVG(pace) AS pace FROM nba_analytics.team_offense_game_summary
       WHERE season = @season AND game_date < @date GROUP BY team_abbr
    ),
    league_pace AS (
      SELECT AVG(pace) AS league_pace FROM nba_analytics.team_offense_game_summary
       WHERE season = @season AND game_date < @date
    )
    SELECT r.player_id, r.team_abbr, r.opp, ph.last_game, ph.min7, ph.usage_season, ph.usage_last5,
           od.def15, l.league_def, tp.pace AS team_pace, op.pace AS opp_pace, lp.league_pace
      FROM roster AS r
      LEFT JOIN ph ON ph.player_id = r.player_id
      LEFT JOIN opp_def AS od ON od.team_abbr = r.opp
      LEFT JOIN pace AS tp ON tp.team_abbr = r.team_abbr
      LEFT JOIN pace AS op ON op.team_abbr = r.opp
      CROSS JOIN league AS l
      CROSS JOIN league_pace AS lp`;
  },
  (input, ctx) => ({
    rows: input.map((r) => {
      const daysRest = r.last_game ? daysBetween(String(r.last_game), ctx.date) : null;
      const backToBack = daysRest === 1;
      const min7 = Math.round(num(r.min7) ?? 0);
      const def15 = num(r.def15);
      const leagueDef = num(r.league_def);
      const teamPace = num(r.team_pace);
      const oppPace = num(r.opp_pace);
      const leaguePace = num(r.league_pace);
      const usageSeason = num(r.usage_season);
      const usageLast5 = num(r.usage_last5);
      return {
        cache_date: ctx.date,
        season: ctx.season.label,
        player_id: Number(r.player_id),
        team_abbr: String(r.team_abbr),
        opponent_team_abbr: String(r.opp),
        days_rest: daysRest,
        back_to_back: backToBack,
        minutes_last_7_days: min7,
        fatigue_score: clamp(min7 / 2 + (backToBack ? 20 : 0) - (daysRest !== null && daysRest >= 3 ? 10 : 0), 0, 100),
        matchup_score: def15 !== null && leagueDef !== null ? clamp(def15 - leagueDef, -30, 30) : 0,
        pace_factor:
          teamPace !== null && oppPace !== null && leaguePace
            ? clamp((teamPace + oppPace) / 2 / leaguePace, 0.8, 1.2)
            : 1,
        usage_trend: usageSeason && usageLast5 !== null ? clamp((usageLast5 - usageSeason) / usageSeason, -1, 1) : 0,
      };
    }),
  }),
);

/** The v1 feature vector: each feature from the cache and factors, or its documented default. */
export const mlFeatureStoreProcessor = computedProcessor(
  'ml_feature_store',
  () => `
    SELECT c.player_id, c.team_abbr, c.games_played, c.pts_avg_last_5, c.pts_avg_last_10, c.pts_avg_season,
           c.pts_std_last_30, c.min_avg_last_10, c.reb_avg_last_10, c.ast_avg_last_10,
           f.days_rest, f.back_to_back, f.minutes_last_7_days, f.fatigue_score, f.matchup_score, f.pace_factor,
           f.usage_trend, CASE WHEN s.home_team_abbr = c.team_abbr THEN 1 ELSE 0 END AS is_home
      FROM nba_precompute.player_daily_cache AS c
      JOIN nba_precompute.player_composite_factors AS f ON f.cache_date = c.cache_date AND f.player_id = c.player_id
      JOIN nba_raw.nbac_schedule AS s
        ON s.game_date = c.cache_date AND s.game_status = 'Final' AND c.team_abbr IN (s.home_team_abbr, s.away_team_abbr)
     WHERE c.cache_date = @date`,
  (input, ctx) => {
    let defaulted = 0;
    const rows = input.map((r) => {
      const row: Row = {
        cache_date: ctx.date,
        season: ctx.season.label,
        player_id: Number(r.player_id),
        team_abbr: String(r.team_abbr),
        feature_version: FEATURE_VERSION,
        history_games: Number(r.games_played ?? 0),
      };
      for (const f of FEATURES_V1) {
        let v = r[f.name] === true ? 1 : r[f.name] === false ? 0 : num(r[f.name]);
        if (f.name === 'days_rest' && v !== null) v = Math.min(v, 30);
        if (v === null || !Number.isFinite(v)) {
          v = f.defaultValue;
          defaulted++;
        }
        row[featureColumn(f.name)] = v;
      }
      return row;
    });
    return { rows, details: { featureVersion: FEATURE_VERSION, defaultedValues: defaulted } };
  },
);

export const PHASE4_PROCESSORS: readonly Processor[] = [
  playerDailyCacheProcessor,
  compositeFactorsProcessor,
  mlFeatureStoreProcessor,
];
