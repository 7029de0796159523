// The composite factors and the ranges they are documented to stay in; validation checks them.

export interface FactorRange {
  readonly column: string;
  readonly min: number;
  readonly max: number;
  readonly meaning: string;
}

export const FACTOR_RANGES: readonly FactorRange[] = [
  {
    column: 'fatigue_score',
    min: 0,
    max: 100,
    meaning:
      'minutes over the last 7 days / 2 (a 36-minute starter on 4 games in 7 days is about 72), +20 on a back-to-back, -10 after 3+ days of rest, clamped',
  },
  {
    column: 'matchup_score',
    min: -30,
    max: 30,
    meaning:
      "the opponent's previous-15-game defensive rating minus the league's season-to-date one: above 0 the defence is worse than average, a good matchup; clamped",
  },
  {
    column: 'pace_factor',
    min: 0.8,
    max: 1.2,
    meaning: "the mean of both teams' season-to-date pace divided by the league's; 1 before any game; clamped",
  },
  {
    column: 'usage_trend',
    min: -1,
    max: 1,
    meaning:
      'usage (FGA + 0.44 FTA + TOV per game) over the last 5 games against the season, as a relative change; 0 before any game; clamped',
  },
];

export function clamp(x: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, x));
}
