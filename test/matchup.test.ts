// Reading home and away from MATCHUP strings, neutral-site quirk included.

import { describe, expect, it } from 'vitest';
import { parseMatchup } from '../core/nba/teams.js';

describe('parseMatchup', () => {
  const cases: [string, string, { home: string; away: string } | undefined][] = [
    ['home row', 'DAL vs. SAS', { home: 'DAL', away: 'SAS' }],
    ['away row', 'SAS @ DAL', { home: 'DAL', away: 'SAS' }],
    // 2024-11-02 Mexico City: both teams' rows read "MIA @ WAS"; WAS is the nominal home team.
    ['neutral site, either row', 'MIA @ WAS', { home: 'WAS', away: 'MIA' }],
    ['lowercase code', 'dal vs. SAS', undefined],
    ['missing dot', 'DAL vs SAS', undefined],
    ['empty', '', undefined],
  ];
  it.each(cases)('%s: %s', (_name, input, expected) => {
    expect(parseMatchup(input)).toEqual(expected);
  });
});
