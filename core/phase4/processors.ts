// Phase 4: for each game date (a range of them in one pass), the state before that date's games for every rostered player of the teams
// playing it: the daily cache, the composite factors, and the ML feature vector. Reads only earlier dates
// of nba_analytics (game_date < the date) and the date's roster, so nothing of the date's games leaks in.

import { daysBetween, type IsoDate } from '../dates.js';
import {
  batchDates,
  blankRow,
  byDate,
  inputRows,
  queryProcessor,
  resultOf,
  teamGameSummariesSql,
} from '../phase3/processors.js';
import { getProcessorDefinition } from '../pipeline/definition.js';
import {
  datesOf,
  type Processor,
  type ProcessorContext,
  type ProcessorResult,
  type RangeContext,
  rangeProcessor,
} from '../pipeline/processor.js';
import { mlFeatureStore, playerCompositeFactors, playerDailyCache } from '../schema/derived.js';
import { FEATURE_VERSION, FEATURES_V1, featureColumn } from '../schema/features.js';
import { qualifiedName, type Row, type TableSchema } from '../schema/table.js';
import { clamp } from './factors.js';

/** The teams playing each date of the run, each with its opponent, and their players as of that date. */
function rosterCte(list: string): string {
  return `
  playing AS (
    SELECT game_date AS day, home_team_abbr AS team, away_team_abbr AS opp, TRUE AS is_home FROM nba_raw.nbac_schedule
     WHERE game_date IN (${list}) AND game_status = 'Final'
    UNION ALL
    SELECT game_date AS day, away_team_abbr AS team, home_team_abbr AS opp, FALSE AS is_home FROM nba_raw.nbac_schedule
     WHERE game_date IN (${list}) AND game_status = 'Final'
  ),
  roster AS (
    SELECT p.day, r.player_id, r.team_abbr, p.opp, p.is_home FROM nba_raw.espn_team_roster AS r
      JOIN playing AS p ON p.team = r.team_abbr AND p.day = r.roster_date
     WHERE r.roster_date IN (${list})
  )`;
}

const STATS = [
  ['pts', 'points'],
  ['min', 'minutes'],
  ['reb', 'reb'],
  ['ast', 'ast'],
] as const;

/**
 * What the cache and the factors read, in one query the two share: per rostered player of the date, his
 * season before the date (count, means over the season and over his latest 5, 10 and 30 games, the last
 * game, minutes in the last 7 days, usage), and his team's and opponent's team-level inputs.
 *
 * "His latest N games" are the games on or after the date of his N-th latest game (a player plays at most
 * once a date): one list of his latest 30 dates gives the three cut-offs, and plain conditional aggregates
 * do the rest, which is cheaper than a list of values per stat.
 */
/**
 * Aggregates whose bits do not depend on the order rows are read in: a float sum does (addition of doubles is
 * not associative), and the order of a scan is not fixed (a re-run date's rows move to the end, a vacuum or a
 * parallel scan reorders them), so a resumed or re-split Stage 3 would differ from an uninterrupted one in the
 * last bits. Integer sums are exact in any order; the one division (and square root) comes after.
 */
function orderFreeAggregates(d: ProcessorContext['warehouse']['dialect']) {
  const float = (e: string) => d.cast(e, 'FLOAT64');
  return {
    /** The mean of a FLOAT64 expression, summed as whole billionths (values here are below 10^4). */
    mean: (e: string) =>
      `(${float(`SUM(CAST(ROUND((${e}) * 1e9) AS ${d.typeName('INT64')}))`)} / 1e9 / NULLIF(COUNT(${e}), 0))`,
    /** The mean of an INT64 expression divided by `scale` (usage is integer hundredths). */
    intMean: (e: string, scale = 1) => `(${float(`SUM(${e})`)} / ${scale} / NULLIF(COUNT(${e}), 0))`,
    /** The sample standard deviation of an INT64 expression: sqrt((n*sum(x^2) - sum(x)^2) / (n(n-1))), exact to the division. */
    stddevSamp: (e: string) =>
      `(CASE WHEN COUNT(${e}) > 1 THEN SQRT(${float(`COUNT(${e}) * SUM((${e}) * (${e})) - SUM(${e}) * SUM(${e})`)} / (COUNT(${e}) * (COUNT(${e}) - 1))) END)`,
  };
}

function phase4InputsSql(ctx: ProcessorContext | RangeContext): string {
  const d = ctx.warehouse.dialect;
  const agg = orderFreeAggregates(d);
  const { list, days } = batchDates(d, datesOf(ctx));
  // Usage in whole hundredths (FGA + 0.44 FTA + TOV), so that its sums are exact.
  const usage = '(100 * s.fga + 44 * s.fta + 100 * s.tov)';
  const since = (n: number) => `(k.c${n} IS NULL OR s.game_date >= k.c${n})`;
  // The season's Phase 3 rows as each date of the run sees them: the committed ones of the dates the run does
  // not compute, and the run's own, which are not committed yet (a Stage 3 batch commits once): the columns
  // Phase 4 reads of player_game_summary are the box score's, and the team summaries are Phase 3's query over
  // the run's dates. Each date then reads only the rows before it (\`< day\`), as a run of the date alone reads
  // what the runs before it committed.
  const committed = `season = @season AND game_date >= @season_start AND game_date < @to AND game_date NOT IN (${list})`;
  return `
    WITH days AS (${days}),
    ${rosterCte(list)},
    pgs AS (
      SELECT player_id, game_date, points, minutes, reb, ast, fga, fta, tov FROM nba_analytics.player_game_summary
       WHERE ${committed}
      UNION ALL
      SELECT player_id, game_date, points, minutes, reb, ast, fga, fta, tov FROM nba_raw.nbac_player_boxscore
       WHERE season = @season AND game_date IN (${list}) AND game_date < @to
    ),
    batch_teams AS (
      SELECT team_abbr, ${d.asDate('b.game_date')} AS game_date, ${d.cast('b.def_rating', 'FLOAT64')} AS def_rating,
             ${d.cast('b.pace', 'FLOAT64')} AS pace
        FROM (${teamGameSummariesSql(ctx)}) AS b
    ),
    tdef AS (
      SELECT team_abbr, game_date, def_rating FROM nba_analytics.team_defense_game_summary WHERE ${committed}
      UNION ALL
      SELECT team_abbr, game_date, def_rating FROM batch_teams
    ),
    toff AS (
      SELECT team_abbr, game_date, pace FROM nba_analytics.team_offense_game_summary WHERE ${committed}
      UNION ALL
      SELECT team_abbr, game_date, pace FROM batch_teams
    ),
    rdays AS (SELECT DISTINCT player_id, day FROM roster),
    latest AS (
      SELECT r.player_id, r.day, ${d.latestValues('s.game_date', 's.game_date', 30)} AS dates
        FROM rdays AS r JOIN pgs AS s ON s.player_id = r.player_id AND s.game_date < r.day
       GROUP BY r.player_id, r.day
    ),
    k AS (
      SELECT player_id, day, ${d.nthOf('dates', 5)} AS c5, ${d.nthOf('dates', 10)} AS c10, ${d.nthOf('dates', 30)} AS c30
        FROM latest
    ),
    h AS (
      SELECT k.player_id, k.day, COUNT(*) AS games,
             ${STATS.map(([stat, column]) => [`AVG(s.${column}) AS ${stat}_avg_season`, ...[5, 10, 30].map((n) => `AVG(CASE WHEN ${since(n)} THEN s.${column} END) AS ${stat}_avg_last_${n}`)].join(', ')).join(',\n             ')},
             ${agg.stddevSamp(`CASE WHEN ${since(30)} THEN s.points END`)} AS pts_std_last_30,
             CAST(MAX(s.game_date) AS STRING) AS last_game,
             SUM(CASE WHEN s.game_date >= ${d.dateAddDays('k.day', -7)} THEN s.minutes ELSE 0 END) AS min7,
             ${agg.intMean(usage, 100)} AS usage_season,
             ${agg.intMean(`CASE WHEN ${since(5)} THEN ${usage} END`, 100)} AS usage_last5
        FROM k JOIN pgs AS s ON s.player_id = k.player_id AND s.game_date < k.day
       GROUP BY k.player_id, k.day
    ),
    opp_def AS (
      SELECT dd.day, x.team_abbr, ${d.latestValues('x.def_rating', 'x.game_date', 15)} AS ratings15
        FROM days AS dd JOIN tdef AS x ON x.game_date < dd.day
       GROUP BY dd.day, x.team_abbr
    ),
    league AS (
      SELECT dd.day, ${agg.mean('x.def_rating')} AS league_def
        FROM days AS dd JOIN tdef AS x ON x.game_date < dd.day GROUP BY dd.day
    ),
    pace AS (
      SELECT dd.day, x.team_abbr, ${agg.mean('x.pace')} AS pace
        FROM days AS dd JOIN toff AS x ON x.game_date < dd.day GROUP BY dd.day, x.team_abbr
    ),
    league_pace AS (
      SELECT dd.day, ${agg.mean('x.pace')} AS league_pace
        FROM days AS dd JOIN toff AS x ON x.game_date < dd.day GROUP BY dd.day
    )
    SELECT CAST(r.day AS STRING) AS cache_date, @season AS season, r.player_id, r.team_abbr, r.opp, r.is_home,
           COALESCE(h.games, 0) AS games_played,
           ${STATS.flatMap(([stat]) => ['season', 'last_5', 'last_10', 'last_30'].map((w) => `h.${stat}_avg_${w}`)).join(', ')},
           h.pts_std_last_30, h.last_game, h.min7, h.usage_season, h.usage_last5,
           ${d.avgOfFirst('od.ratings15', 15)} AS def15, l.league_def,
           tp.pace AS team_pace, op.pace AS opp_pace, lp.league_pace
      FROM roster AS r
      LEFT JOIN h ON h.player_id = r.player_id AND h.day = r.day
      LEFT JOIN opp_def AS od ON od.team_abbr = r.opp AND od.day = r.day
      LEFT JOIN pace AS tp ON tp.team_abbr = r.team_abbr AND tp.day = r.day
      LEFT JOIN pace AS op ON op.team_abbr = r.opp AND op.day = r.day
      LEFT JOIN league AS l ON l.day = r.day
      LEFT JOIN league_pace AS lp ON lp.day = r.day`;
}

// Stryker disable next-line StringLiteral: equivalent, the share key is only a name and no other share uses an empty one.
const PHASE4_INPUTS = 'phase4_inputs';

export const playerDailyCacheProcessor = queryProcessor(
  'player_daily_cache',
  phase4InputsSql,
  PHASE4_INPUTS,
  'cache_date',
);

/**
 * A processor that queries its inputs for its dates and computes each date's rows in code (formulas read
 * better in TypeScript).
 */
function computedProcessor(
  name: string,
  sql: (ctx: ProcessorContext | RangeContext) => string,
  compute: (
    input: readonly Row[],
    date: IsoDate,
    ctx: RangeContext,
  ) => { rows: Row[]; details?: Record<string, unknown> },
  shareAs?: string,
): Processor {
  const definition = getProcessorDefinition(name);
  const table = (definition.output as { table: TableSchema }).table;
  return rangeProcessor(
    definition,
    async (ctx) => {
      const input = byDate(ctx.dates, await inputRows(ctx, sql(ctx), shareAs), 'cache_date');
      const out = new Map<IsoDate, ProcessorResult>();
      for (const [date, rows] of input) {
        const computed = compute(rows, date, ctx);
        // Stryker disable next-line LogicalOperator: equivalent, resultOf records no details the same way for undefined and {}.
        out.set(date, resultOf(table, computed.rows, computed.details ?? {}));
      }
      return out;
    },
    // Stryker disable next-line ArrowFunction: equivalent, a prefetch only starts early the query the processor runs anyway.
    shareAs ? (ctx) => void inputRows(ctx, sql(ctx), shareAs) : undefined,
  );
}

// Stryker disable next-line ConditionalExpression: equivalent for `v === undefined`, whose Number() is NaN, which every use treats as missing too.
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * A player's composite factors on a date from his Phase 4 inputs (one row of `phase4InputsSql`). Formulas and
 * ranges: core/phase4/factors.ts (FACTOR_RANGES). A factor whose inputs are missing (no earlier game of the
 * player, his team or the opponent this season) takes its neutral value: 0, or 1 for pace.
 */
export function factorsRow(r: Row, date: IsoDate, season: string): Row {
  const daysRest = r.last_game ? daysBetween(String(r.last_game), date) : null;
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
    cache_date: date,
    season,
    player_id: Number(r.player_id),
    team_abbr: String(r.team_abbr),
    opponent_team_abbr: String(r.opp),
    days_rest: daysRest,
    back_to_back: backToBack,
    minutes_last_7_days: min7,
    // Stryker disable next-line ConditionalExpression: equivalent for `daysRest !== null`, null >= 3 is false.
    fatigue_score: clamp(min7 / 2 + (backToBack ? 20 : 0) - (daysRest !== null && daysRest >= 3 ? 10 : 0), 0, 100),
    matchup_score: def15 !== null && leagueDef !== null ? clamp(def15 - leagueDef, -30, 30) : 0,
    pace_factor:
      teamPace !== null && oppPace !== null && leaguePace ? clamp((teamPace + oppPace) / 2 / leaguePace, 0.8, 1.2) : 1,
    usage_trend: usageSeason && usageLast5 !== null ? clamp((usageLast5 - usageSeason) / usageSeason, -1, 1) : 0,
  };
}

export const compositeFactorsProcessor = computedProcessor(
  'player_composite_factors',
  phase4InputsSql,
  (input, date, ctx) => ({ rows: input.map((r) => factorsRow(r, date, ctx.season.label)) }),
  PHASE4_INPUTS,
);

/**
 * A table's rows for each date: those the run's own transaction just computed when there are some (Stage 3
 * runs the cache, the factors and the features in one commit), otherwise the committed ones.
 */
async function rowsForDates(ctx: RangeContext, table: TableSchema): Promise<Map<IsoDate, readonly Row[]>> {
  const out = new Map<IsoDate, readonly Row[]>();
  const unknown: IsoDate[] = [];
  for (const date of ctx.dates) {
    const pending = ctx.pending?.rowsOf(table, date);
    if (pending) out.set(date, pending);
    else unknown.push(date);
  }
  if (unknown.length > 0) {
    const { list } = batchDates(ctx.warehouse.dialect, unknown);
    const params = Object.fromEntries(unknown.map((d, i) => [`d${i}`, d]));
    const rows = await ctx.warehouse.query(
      `SELECT * FROM ${qualifiedName(table)} WHERE ${table.partitionColumn} IN (${list})`,
      params,
    );
    for (const [d, rs] of byDate(
      unknown,
      // Stryker disable next-line MethodExpression: equivalent on both warehouses, whose DATE values print as YYYY-MM-DD already.
      rows.map((r) => ({ ...r, [table.partitionColumn]: String(r[table.partitionColumn]).slice(0, 10) })),
      table.partitionColumn,
    ))
      out.set(d, rs);
  }
  return out;
}

/** Where each v1 feature comes from: the cache row, the factors row, or the date's schedule (is_home). */
const FEATURE_INPUTS = FEATURES_V1.map((f) => ({
  ...f,
  column: featureColumn(f.name),
  // Stryker disable next-line StringLiteral: equivalent for 'factors', which only the load-time check below reads (any other source is read from the factors row).
  from: f.name === 'is_home' ? 'home' : playerDailyCache.columns.some((c) => c.name === f.name) ? 'cache' : 'factors',
}));
// Stryker disable all: equivalent, a check at load time of a constant list that is right; a wrong list fails here.
for (const f of FEATURE_INPUTS) {
  if (f.from === 'factors' && !playerCompositeFactors.columns.some((c) => c.name === f.name)) {
    throw new Error(`feature ${f.name} is neither a player_daily_cache nor a player_composite_factors column`);
  }
}
// Stryker restore all

/**
 * Whether each team playing each date is the home team: from the run's shared Phase 4 inputs when the cache
 * and factors ran in the same transaction (no query), otherwise from the schedule.
 */
async function homeTeams(ctx: RangeContext): Promise<Map<IsoDate, Map<string, boolean>>> {
  const homeOf = new Map<IsoDate, Map<string, boolean>>(ctx.dates.map((d) => [d, new Map()]));
  // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent, both sources say the same (the shared inputs come from the schedule); the first only saves a query.
  if (ctx.pending) {
    for (const r of await inputRows(ctx, phase4InputsSql(ctx), PHASE4_INPUTS)) {
      // Stryker disable next-line OptionalChaining: equivalent, every row is of one of the run's dates, whose maps exist.
      homeOf.get(String(r.cache_date))?.set(String(r.team_abbr), r.is_home === true);
    }
    return homeOf;
  }
  const { list } = batchDates(ctx.warehouse.dialect, ctx.dates);
  const games = await ctx.warehouse.query(
    `SELECT CAST(game_date AS STRING) AS d, home_team_abbr, away_team_abbr FROM nba_raw.nbac_schedule
      WHERE game_date IN (${list}) AND game_status = 'Final'`,
    Object.fromEntries(ctx.dates.map((d, i) => [`d${i}`, d])),
  );
  for (const g of games) {
    // Stryker disable next-line OptionalChaining: equivalent, the query reads only the run's dates, whose maps exist.
    homeOf.get(String(g.d))?.set(String(g.home_team_abbr), true);
    // Stryker disable next-line OptionalChaining: as above.
    homeOf.get(String(g.d))?.set(String(g.away_team_abbr), false);
  }
  return homeOf;
}

/**
 * A player's v1 feature vector on a date from his cache row, his factors row and whether his team is at home:
 * booleans as 1 and 0, days of rest capped at 30, and a missing or non-finite value replaced by the feature's
 * documented default (counted in `defaulted`).
 */
export function featureRow(
  c: Row,
  f: Row,
  home: boolean,
  date: IsoDate,
  season: string,
): { row: Row; defaulted: number } {
  const row = blankRow(mlFeatureStore);
  row.cache_date = date;
  row.season = season;
  row.player_id = Number(c.player_id);
  row.team_abbr = String(c.team_abbr);
  row.feature_version = FEATURE_VERSION;
  row.history_games = Number(c.games_played ?? 0);
  let defaulted = 0;
  for (const feature of FEATURE_INPUTS) {
    const raw = feature.from === 'home' ? (home ? 1 : 0) : feature.from === 'cache' ? c[feature.name] : f[feature.name];
    let v = num(raw); // true and false count as 1 and 0
    if (feature.name === 'days_rest' && v !== null) v = Math.min(v, 30);
    // Stryker disable next-line ConditionalExpression: equivalent for `v === null`, which Number.isFinite also refuses.
    if (v === null || !Number.isFinite(v)) {
      v = feature.defaultValue;
      defaulted++;
    }
    row[feature.column] = v;
  }
  return { row, defaulted };
}

/** The v1 feature vector: each feature from the cache and factors, or its documented default. */
export const mlFeatureStoreProcessor: Processor = rangeProcessor(
  getProcessorDefinition('ml_feature_store'),
  async (ctx) => {
    const caches = await rowsForDates(ctx, playerDailyCache);
    const factorRows = await rowsForDates(ctx, playerCompositeFactors);
    const homes = await homeTeams(ctx);
    const out = new Map<IsoDate, ProcessorResult>();
    for (const date of ctx.dates) {
      // Stryker disable next-line ArrayDeclaration: equivalent, rowsForDates gives every date of the run a list.
      const factors = new Map((factorRows.get(date) ?? []).map((f) => [Number(f.player_id), f]));
      const homeOf = homes.get(date) ?? new Map<string, boolean>();
      let defaulted = 0;
      const rows: Row[] = [];
      // A player needs his cache row, his factors and his team's game of the date (an inner join of the three).
      // Stryker disable next-line ArrayDeclaration: as above.
      for (const c of caches.get(date) ?? []) {
        const f = factors.get(Number(c.player_id));
        const home = homeOf.get(String(c.team_abbr));
        // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent today, the cache and the factors come from the same inputs, one row per rostered player of a team playing the date.
        if (!f || home === undefined) continue;
        const { row, defaulted: n } = featureRow(c, f, home, date, ctx.season.label);
        defaulted += n;
        rows.push(row);
      }
      out.set(date, resultOf(mlFeatureStore, rows, { featureVersion: FEATURE_VERSION, defaultedValues: defaulted }));
    }
    return out;
  },
);

export const PHASE4_PROCESSORS: readonly Processor[] = [
  playerDailyCacheProcessor,
  compositeFactorsProcessor,
  mlFeatureStoreProcessor,
];
