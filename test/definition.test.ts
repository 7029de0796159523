// The pipeline definition: seasons, phases and processors, and the errors for what it does not hold.

import { describe, expect, it } from 'vitest';
import { addDays, daysBetween, eachDate, isIsoDate } from '../core/dates.js';
import { BadInputError } from '../core/errors.js';
import {
  CRITICAL_TABLES,
  getProcessorDefinition,
  PROCESSORS,
  processorsOfPhase,
  requireBackfillPhase,
} from '../core/pipeline/definition.js';
import { getSeason, locateDate, requireDateInSeason, resolveSeasons, SEASONS } from '../core/pipeline/seasons.js';
import { getProcessor } from '../core/processors.js';

describe('seasons', () => {
  it('holds the four seasons with their real first and last regular-season days', () => {
    expect(SEASONS.map((s) => [s.label, s.regularSeason.start, s.regularSeason.end])).toEqual([
      ['2021-22', '2021-10-19', '2022-04-10'],
      ['2022-23', '2022-10-18', '2023-04-09'],
      ['2023-24', '2023-10-24', '2024-04-14'],
      ['2024-25', '2024-10-22', '2025-04-13'],
    ]);
    expect(resolveSeasons('all')).toHaveLength(4);
  });

  it.each([
    ['2021-10-19', '2021-22', 'Regular Season'],
    ['2022-04-13', '2021-22', 'PlayIn'],
    ['2022-06-16', '2021-22', 'Playoffs'],
    ['2025-04-13', '2024-25', 'Regular Season'],
  ])('locates %s in %s (%s)', (date, season, type) => {
    expect(locateDate(date)).toMatchObject({ season: { label: season }, seasonType: type });
  });

  it('rejects an unknown season and a date outside every season, saying why', () => {
    expect(() => getSeason('2019-20')).toThrow(/unknown season "2019-20": expected one of 2021-22, 2022-23/);
    expect(() => requireDateInSeason('2021-07-01')).toThrow(BadInputError);
    expect(() => requireDateInSeason('2021-07-01')).toThrow(/unknown date 2021-07-01/);
  });
});

describe('phases and processors', () => {
  it('refuses phase 5 as forward-looking, and unknown phases', () => {
    expect(() => requireBackfillPhase('5')).toThrow(/forward-looking and can never be part of a backfill/);
    expect(() => requireBackfillPhase('7')).toThrow(/unknown phase "7"/);
    expect(requireBackfillPhase('2')).toBe(2);
  });

  it('names the five critical raw tables of the gate', () => {
    expect(CRITICAL_TABLES.map((t) => `${t.dataset}.${t.name}`).sort()).toEqual([
      'nba_raw.espn_team_roster',
      'nba_raw.nbac_gamebook_player_stats',
      'nba_raw.nbac_player_boxscore',
      'nba_raw.nbac_schedule',
      'nba_raw.nbac_team_boxscore',
    ]);
  });

  it('has an implementation for every phase 1-2 processor, found by name', () => {
    for (const def of PROCESSORS) expect(getProcessor(def.name).definition).toBe(def);
    expect(processorsOfPhase(1).map((p) => p.name)[0]).toBe('nbac_team_game_log_scraper');
    expect(() => getProcessorDefinition('nope')).toThrow(/unknown processor "nope": Expected one of/);
  });
});

describe('dates', () => {
  it('knows real calendar dates', () => {
    expect(isIsoDate('2024-02-29')).toBe(true);
    expect(isIsoDate('2023-02-29')).toBe(false);
    expect(isIsoDate('2021-13-45')).toBe(false);
    expect(addDays('2021-12-31', 1)).toBe('2022-01-01');
    expect(daysBetween('2021-10-19', '2021-10-21')).toBe(2);
    expect(eachDate('2021-10-30', '2021-11-02')).toEqual(['2021-10-30', '2021-10-31', '2021-11-01', '2021-11-02']);
  });
});
