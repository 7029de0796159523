// The ML feature vector: fixed, versioned and named. Every feature has a default for players with little
// history, so the stored vector never holds a null or a non-finite number. It lives beside the schema whose
// ml_feature_store columns it names (derived.ts); Phase 4 fills them and validation checks them.

export const FEATURE_VERSION = 'v1';

export interface FeatureDefinition {
  readonly name: string;
  readonly description: string;
  /** Used when the player has no history for it (a debut, the first days of a season). */
  readonly defaultValue: number;
}

export const FEATURES_V1: readonly FeatureDefinition[] = [
  { name: 'pts_avg_last_5', description: 'Points, last 5 games', defaultValue: 0 },
  { name: 'pts_avg_last_10', description: 'Points, last 10 games', defaultValue: 0 },
  { name: 'pts_avg_season', description: 'Points, season to date', defaultValue: 0 },
  { name: 'pts_std_last_30', description: 'Standard deviation of points, last 30 games', defaultValue: 0 },
  { name: 'min_avg_last_10', description: 'Minutes, last 10 games', defaultValue: 0 },
  { name: 'reb_avg_last_10', description: 'Rebounds, last 10 games', defaultValue: 0 },
  { name: 'ast_avg_last_10', description: 'Assists, last 10 games', defaultValue: 0 },
  { name: 'games_played', description: 'Games played in the season before the date', defaultValue: 0 },
  { name: 'days_rest', description: 'Days since the last game, capped at 30', defaultValue: 30 },
  { name: 'back_to_back', description: '1 when the player played the day before', defaultValue: 0 },
  { name: 'minutes_last_7_days', description: 'Minutes in the 7 days before the date', defaultValue: 0 },
  { name: 'fatigue_score', description: 'Fatigue in [0, 100]', defaultValue: 0 },
  {
    name: 'matchup_score',
    description: "Opponent's defensive rating against the league's, [-30, 30]",
    defaultValue: 0,
  },
  { name: 'pace_factor', description: 'Expected pace against the league, [0.8, 1.2]', defaultValue: 1 },
  { name: 'usage_trend', description: 'Usage, last 5 against season, [-1, 1]', defaultValue: 0 },
  { name: 'is_home', description: "1 when the player's team is the nominal home team", defaultValue: 0 },
];

export const featureColumn = (name: string) => `f_${name}`;
