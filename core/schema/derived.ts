// The nba_analytics (Phase 3) and nba_precompute (Phase 4) tables.

import { FEATURES_V1, featureColumn } from './features.js';
import { col, type TableSchema } from './table.js';

const gameKey = [
  col('game_id', 'STRING', 'NBA.com game id'),
  col('game_date', 'DATE', 'Game date'),
  col('season', 'STRING', 'Season label'),
  col('season_type', 'STRING', 'Regular Season, PlayIn or Playoffs'),
];

export const playerGameSummary: TableSchema = {
  dataset: 'nba_analytics',
  name: 'player_game_summary',
  description:
    "One row per player per game: the box score, true shooting, and the player's previous games of the season (never this game or a later one).",
  columns: [
    ...gameKey,
    col('player_id', 'INT64', 'NBA.com person id'),
    col('player_name', 'STRING', 'Full name'),
    col('team_abbr', 'STRING', 'Team in this game'),
    col('opponent_team_abbr', 'STRING', 'Opponent'),
    col('is_home', 'BOOL', 'Nominal home team'),
    col('win', 'BOOL', 'Team won'),
    col('minutes', 'INT64', 'Minutes (rounded by the source)'),
    col('points', 'INT64', 'Points'),
    col('fgm', 'INT64', 'Field goals made'),
    col('fga', 'INT64', 'Field goals attempted'),
    col('fg3m', 'INT64', 'Threes made'),
    col('fg3a', 'INT64', 'Threes attempted'),
    col('ftm', 'INT64', 'Free throws made'),
    col('fta', 'INT64', 'Free throws attempted'),
    col('reb', 'INT64', 'Rebounds'),
    col('ast', 'INT64', 'Assists'),
    col('tov', 'INT64', 'Turnovers'),
    col('ts_pct', 'FLOAT64', 'True shooting: PTS / (2 (FGA + 0.44 FTA)); null with no attempts', true),
    col('pts_avg_last_5', 'FLOAT64', 'Points averaged over the previous 5 games of the season; null before any', true),
    col('pts_avg_last_10', 'FLOAT64', 'Points over the previous 10 games; null before any', true),
    col('min_avg_last_5', 'FLOAT64', 'Minutes over the previous 5 games; null before any', true),
    col('min_avg_last_10', 'FLOAT64', 'Minutes over the previous 10 games; null before any', true),
    col('season_games_played', 'INT64', 'Games played in the season so far, this one included'),
    col('days_rest', 'INT64', 'Days since the previous game of the season; null for the first', true),
    col('back_to_back', 'BOOL', 'Played the day before'),
  ],
  partitionColumn: 'game_date',
  key: ['game_id', 'player_id'],
  clusterBy: ['season', 'player_id'],
};

export const teamOffenseGameSummary: TableSchema = {
  dataset: 'nba_analytics',
  name: 'team_offense_game_summary',
  description: 'One row per team per game: points, possessions, offensive rating, pace.',
  columns: [
    ...gameKey,
    col('team_abbr', 'STRING', 'Team'),
    col('opponent_team_abbr', 'STRING', 'Opponent'),
    col('points', 'INT64', 'Points scored'),
    col('possessions', 'FLOAT64', 'FGA - OREB + TOV + 0.44 FTA'),
    col('off_rating', 'FLOAT64', 'Points per 100 possessions'),
    col('pace', 'FLOAT64', 'Possessions per 48 minutes, averaged over both teams'),
    col('overtime_periods', 'INT64', 'Overtimes, from the players’ summed (rounded) minutes'),
    col(
      'off_rating_prev_10_avg',
      'FLOAT64',
      "Offensive rating averaged over the team's previous 10 games; null before any",
      true,
    ),
  ],
  partitionColumn: 'game_date',
  key: ['game_id', 'team_abbr'],
  clusterBy: ['season', 'team_abbr'],
};

export const teamDefenseGameSummary: TableSchema = {
  dataset: 'nba_analytics',
  name: 'team_defense_game_summary',
  description: 'One row per team per game: what the opponent scored and how efficiently.',
  columns: [
    ...gameKey,
    col('team_abbr', 'STRING', 'Team'),
    col('opponent_team_abbr', 'STRING', 'Opponent'),
    col('opponent_points', 'INT64', 'Points allowed'),
    col('def_rating', 'FLOAT64', 'Points allowed per 100 opponent possessions'),
    col('opponent_fg_pct', 'FLOAT64', 'Opponent FGM / FGA'),
    col(
      'def_rating_prev_15_avg',
      'FLOAT64',
      "Defensive rating over the team's previous 15 games; null before any",
      true,
    ),
  ],
  partitionColumn: 'game_date',
  key: ['game_id', 'team_abbr'],
  clusterBy: ['season', 'team_abbr'],
};

const cacheKey = [
  col('cache_date', 'DATE', "The game date: the state before that date's games"),
  col('season', 'STRING', 'Season label'),
  col('player_id', 'INT64', 'NBA.com person id'),
  col('team_abbr', 'STRING', 'Team playing on the date'),
];

const window = (stat: string, what: string) => [
  col(`${stat}_avg_season`, 'FLOAT64', `${what}, season to date; null before any game`, true),
  col(`${stat}_avg_last_5`, 'FLOAT64', `${what}, last 5 games; null before any`, true),
  col(`${stat}_avg_last_10`, 'FLOAT64', `${what}, last 10 games; null before any`, true),
  col(`${stat}_avg_last_30`, 'FLOAT64', `${what}, last 30 games; null before any`, true),
];

export const playerDailyCache: TableSchema = {
  dataset: 'nba_precompute',
  name: 'player_daily_cache',
  description:
    "For each player on the roster of a team playing the date: season-to-date and rolling averages before that date's games.",
  columns: [
    ...cacheKey,
    col('games_played', 'INT64', 'Games played in the season before the date'),
    ...window('pts', 'Points'),
    ...window('min', 'Minutes'),
    ...window('reb', 'Rebounds'),
    ...window('ast', 'Assists'),
    col(
      'pts_std_last_30',
      'FLOAT64',
      'Standard deviation of points over the last 30 games; null with fewer than 2',
      true,
    ),
  ],
  partitionColumn: 'cache_date',
  key: ['player_id'],
  clusterBy: ['season', 'player_id'],
};

export const playerCompositeFactors: TableSchema = {
  dataset: 'nba_precompute',
  name: 'player_composite_factors',
  description: 'Fatigue, matchup, pace and usage trend per player and date, each inside a documented range.',
  columns: [
    ...cacheKey,
    col('opponent_team_abbr', 'STRING', 'Opponent on the date'),
    col('days_rest', 'INT64', 'Days since the last game; null before the first', true),
    col('back_to_back', 'BOOL', 'Played the day before'),
    col('minutes_last_7_days', 'INT64', 'Minutes in the 7 days before the date'),
    col('fatigue_score', 'FLOAT64', 'Fatigue in [0, 100]'),
    col('matchup_score', 'FLOAT64', "Opponent's rolling defensive rating minus the league's, in [-30, 30]"),
    col('pace_factor', 'FLOAT64', 'Expected pace against the league average, in [0.8, 1.2]'),
    col('usage_trend', 'FLOAT64', 'Usage over the last 5 games against the season, in [-1, 1]'),
  ],
  partitionColumn: 'cache_date',
  key: ['player_id'],
  clusterBy: ['season', 'player_id'],
};

export const mlFeatureStore: TableSchema = {
  dataset: 'nba_precompute',
  name: 'ml_feature_store',
  description: 'A fixed, versioned, named feature vector per player and date: no nulls, only finite numbers.',
  columns: [
    ...cacheKey,
    col('feature_version', 'STRING', 'Version of the feature list (core/schema/features.ts)'),
    col('history_games', 'INT64', 'Games behind the features; 0 means the history features are their defaults'),
    ...FEATURES_V1.map((f) => col(featureColumn(f.name), 'FLOAT64', `${f.description} (default ${f.defaultValue})`)),
  ],
  partitionColumn: 'cache_date',
  key: ['player_id'],
  clusterBy: ['season', 'player_id'],
};

export const ANALYTICS_TABLES: readonly TableSchema[] = [
  playerGameSummary,
  teamOffenseGameSummary,
  teamDefenseGameSummary,
];
export const PRECOMPUTE_TABLES: readonly TableSchema[] = [playerDailyCache, playerCompositeFactors, mlFeatureStore];
