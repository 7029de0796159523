// Data versions (core/runs/versions.ts): fingerprints of rows, the inputs a Phase 3-4 run records, and which
// runs a change makes stale, at the edges of each lookback window.

import { describe, expect, it } from 'vitest';
import type { IsoDate } from '../core/dates.js';
import { getProcessorDefinition } from '../core/pipeline/definition.js';
import {
  type EntityDates,
  type Fingerprint,
  fingerprinted,
  fingerprintRows,
  type LatestVersion,
  recordInputs,
  staleRuns,
} from '../core/runs/versions.js';
import { mlFeatureStore, playerDailyCache, playerGameSummary } from '../core/schema/derived.js';
import { nbacGamebookPlayerStats, nbacPlayerBoxscore } from '../core/schema/raw.js';

describe('fingerprintRows', () => {
  const row = {
    game_id: '0022100001',
    game_date: '2021-10-19',
    season: '2021-22',
    season_type: 'Regular Season',
    player_id: 201939,
    player_name: 'Stephen Curry',
    team_abbr: 'GSW',
    points: 21,
  };

  it('does not depend on the order of the rows', () => {
    const other = { ...row, player_id: 1, player_name: 'X' };
    expect(fingerprintRows(nbacPlayerBoxscore, [row, other])).toEqual(
      fingerprintRows(nbacPlayerBoxscore, [other, row]),
    );
  });

  it('does not depend on how a warehouse types a value (INT64 as text, DATE as a timestamp)', () => {
    const typed = { ...row, player_id: '201939', points: '21', game_date: '2021-10-19T00:00:00' };
    expect(fingerprintRows(nbacPlayerBoxscore, [typed])).toEqual(fingerprintRows(nbacPlayerBoxscore, [row]));
  });

  it('a changed value changes the rows hash only; a changed key changes both', () => {
    const base = fingerprintRows(nbacPlayerBoxscore, [row]);
    const value = fingerprintRows(nbacPlayerBoxscore, [{ ...row, points: 23 }]);
    expect(value.rows).not.toBe(base.rows);
    expect(value.keys).toBe(base.keys);
    const key = fingerprintRows(nbacPlayerBoxscore, [{ ...row, player_id: 2 }]);
    expect(key.rows).not.toBe(base.rows);
    expect(key.keys).not.toBe(base.keys);
  });

  it('hashes the keys only of a table whose keys a run reads, and fingerprints only tables some run reads', () => {
    expect(Object.keys(fingerprintRows(nbacPlayerBoxscore, [row]))).toEqual(['rows', 'keys']);
    expect(Object.keys(fingerprintRows(playerGameSummary, []))).toEqual(['rows']);
    expect(fingerprinted(mlFeatureStore, 4)).toBe(false);
    expect(fingerprinted(playerDailyCache, 4)).toBe(true);
    // Phase 2 always: a reload of the same files compares them.
    expect(fingerprinted(nbacGamebookPlayerStats, 2)).toBe(true);
  });

  it('no rows is a fingerprint of its own, the same every time', () => {
    expect(fingerprintRows(playerGameSummary, [])).toEqual(fingerprintRows(playerGameSummary, []));
    expect(fingerprintRows(playerGameSummary, []).rows).not.toBe(fingerprintRows(nbacPlayerBoxscore, [row]).rows);
  });
});

/** 20 game dates, d01..d20 in October 2021; one player and two teams play every one of them. */
const DATES: IsoDate[] = Array.from({ length: 20 }, (_, i) => `2021-10-${String(i + 1).padStart(2, '0')}`);
const d = (n: number) => DATES[n - 1] as IsoDate;
const EVERY_DATE: EntityDates = new Map([['p1', DATES]]);
const TEAMS: EntityDates = new Map([
  ['AAA', DATES],
  ['BBB', DATES],
]);

type Book = Map<string, Map<IsoDate, LatestVersion>>;

const fp = (rows: string, keys = 'k'): Fingerprint => ({ rows, keys });

/** Raw tables with one version per date, and the Phase 3-4 runs recorded against them. */
function book(): Book {
  const b: Book = new Map();
  for (const name of ['nbac_player_boxscore', 'nbac_team_boxscore', 'espn_team_roster', 'nbac_schedule']) {
    b.set(
      name,
      new Map(DATES.map((date) => [date, { status: 'success', fingerprint: fp(`v1-${date}`), inputs: null }])),
    );
  }
  return b;
}

function setVersion(b: Book, processor: string, date: IsoDate, version: LatestVersion): void {
  let byDate = b.get(processor);
  if (!byDate) b.set(processor, (byDate = new Map()));
  byDate.set(date, version);
}

/** Records a successful run of `processor` on `date`, its inputs hashed from the book as it is now. */
async function run(b: Book, processor: string, date: IsoDate): Promise<void> {
  const def = getProcessorDefinition(processor);
  const inputs = await recordInputs(def, date, {
    versions: b,
    gameDates: DATES,
    entities: async (_table, per) => (per === 'player_id' ? EVERY_DATE : TEAMS),
  });
  setVersion(b, processor, date, { status: 'success', fingerprint: fp(`out-${processor}-${date}`), inputs });
}

const correct = (b: Book, table: string, date: IsoDate, version: Fingerprint) =>
  setVersion(b, table, date, { status: 'success', fingerprint: version, inputs: null });

const staleOf = (b: Book) => staleRuns(b, DATES).map((s) => `${s.processor}@${s.date}`);

describe('staleness at the edges of the windows', () => {
  it('player_game_summary reads each player’s 10 previous games: a value corrected on the 10th is read, the 11th is not', async () => {
    const at10 = book();
    await run(at10, 'player_game_summary', d(16));
    correct(at10, 'nbac_player_boxscore', d(6), fp('v2', 'k'));
    expect(staleOf(at10)).toEqual([`player_game_summary@${d(16)}`]);

    const at11 = book();
    await run(at11, 'player_game_summary', d(16));
    correct(at11, 'nbac_player_boxscore', d(5), fp('v2', 'k'));
    expect(staleOf(at11)).toEqual([]);
  });

  it('but a row added or removed anywhere before changes its counts of games: the keys of every earlier date are read', async () => {
    const b = book();
    await run(b, 'player_game_summary', d(16));
    correct(b, 'nbac_player_boxscore', d(1), fp('v2', 'k2'));
    expect(staleOf(b)).toEqual([`player_game_summary@${d(16)}`]);
  });

  it('team offense reads 10 previous games, team defense 15', async () => {
    const at11 = book();
    await run(at11, 'team_offense_game_summary', d(16));
    await run(at11, 'team_defense_game_summary', d(16));
    correct(at11, 'nbac_team_boxscore', d(5), fp('v2'));
    expect(staleOf(at11)).toEqual([`team_defense_game_summary@${d(16)}`]);

    const at15 = book();
    await run(at15, 'team_defense_game_summary', d(16));
    correct(at15, 'nbac_team_boxscore', d(1), fp('v2'));
    expect(staleOf(at15)).toEqual([`team_defense_game_summary@${d(16)}`]);

    const at16 = book();
    await run(at16, 'team_defense_game_summary', d(17));
    correct(at16, 'nbac_team_boxscore', d(1), fp('v2'));
    expect(staleOf(at16)).toEqual([]);
  });

  it('a date’s own rows are read; a later date’s are not', async () => {
    const b = book();
    await run(b, 'team_offense_game_summary', d(16));
    correct(b, 'nbac_team_boxscore', d(17), fp('v2'));
    expect(staleOf(b)).toEqual([]);
    correct(b, 'nbac_team_boxscore', d(16), fp('v2'));
    expect(staleOf(b)).toEqual([`team_offense_game_summary@${d(16)}`]);
  });

  it('Phase 4 reads the season before its date: a stale Phase 3 run makes every later precompute stale', async () => {
    const b = book();
    for (const date of [d(3), d(4), d(5)]) {
      await run(b, 'player_game_summary', date);
      await run(b, 'player_daily_cache', date);
    }
    correct(b, 'nbac_player_boxscore', d(4), fp('v2'));
    expect(staleOf(b)).toEqual([
      `player_game_summary@${d(4)}`,
      `player_game_summary@${d(5)}`,
      `player_daily_cache@${d(5)}`,
    ]);
    expect(staleRuns(b, DATES).map((s) => s.cause)).toEqual(['input', 'input', 'upstream']);
    const reasons = staleRuns(b, DATES).map((s) => s.reason);
    expect(reasons[0]).toBe(`nba_raw.nbac_player_boxscore changed between ${d(1)} and ${d(4)} (rows)`);
    expect(reasons[2]).toBe(`it read player_game_summary of ${d(4)}, which is stale`);
  });

  it('the same content loaded again makes nothing stale; a failed reload does', async () => {
    const b = book();
    await run(b, 'player_game_summary', d(16));
    correct(b, 'nbac_player_boxscore', d(16), fp(`v1-${d(16)}`));
    expect(staleOf(b)).toEqual([]);
    setVersion(b, 'nbac_player_boxscore', d(16), { status: 'failed', fingerprint: null, inputs: null });
    expect(staleOf(b)).toEqual([`player_game_summary@${d(16)}`]);
  });

  it('a run recorded without inputs (before data versions) is never stale', () => {
    const b = book();
    setVersion(b, 'player_game_summary', d(16), { status: 'success', fingerprint: null, inputs: null });
    correct(b, 'nbac_player_boxscore', d(16), fp('v2'));
    expect(staleOf(b)).toEqual([]);
  });
});
