// The counting stats of an NBA.com box score: a team's are the sums of its players' (SOURCE.md, quirk 12).

export const COUNTING_STATS = [
  'PTS',
  'FGM',
  'FGA',
  'FG3M',
  'FG3A',
  'FTM',
  'FTA',
  'OREB',
  'DREB',
  'REB',
  'AST',
  'STL',
  'BLK',
  'TOV',
  'PF',
] as const;

export type CountingStat = (typeof COUNTING_STATS)[number];
