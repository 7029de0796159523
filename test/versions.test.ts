// Data versions (core/runs/versions.ts): fingerprints of rows, the inputs a Phase 3-4 run records, and which
// runs a change makes stale, at the edges of each lookback window.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { IsoDate } from '../core/dates.js';
import { getProcessorDefinition } from '../core/pipeline/definition.js';
import type { PendingWrites, RunRecord, RunStatus } from '../core/runs/history.js';
import {
  type EntityDates,
  type Fingerprint,
  fingerprinted,
  fingerprintRows,
  type InputContext,
  type LatestVersion,
  recordInputs,
  type StaleRun,
  sourceHash,
  staleDates,
  staleRuns,
} from '../core/runs/versions.js';
import { mlFeatureStore, playerDailyCache, playerGameSummary } from '../core/schema/derived.js';
import { nbacGamebookPlayerStats, nbacPlayerBoxscore } from '../core/schema/raw.js';
import { col, type SqlValue, type TableSchema } from '../core/schema/table.js';

/** The hash the fingerprints and input hashes are made of: SHA-256 over newline-ended lines, 16 hex digits. */
const sha = (lines: readonly string[]) =>
  createHash('sha256')
    .update(lines.map((l) => `${l}\n`).join(''))
    .digest('hex')
    .slice(0, 16);

/**
 * A table of every column type that no run reads: its fingerprint has the rows hash only. A new one each time:
 * a table's layout (its normalizers) is made on its first fingerprint, so each test makes its own.
 */
const typed = (): TableSchema => ({
  dataset: 'nba_test',
  name: 'typed',
  description: 'every column type',
  columns: [
    col('game_date', 'DATE', 'date'),
    col('n', 'INT64', 'int'),
    col('x', 'FLOAT64', 'float'),
    col('b', 'BOOL', 'bool'),
    col('s', 'STRING', 'string'),
  ],
  partitionColumn: 'game_date',
  key: ['n'],
  clusterBy: [],
});
const typedRow = { game_date: '2021-10-19', n: 7, x: 1.5, b: true, s: 'a' };
const rowsHash = (values: Record<string, SqlValue>) => fingerprintRows(typed(), [{ ...typedRow, ...values }]).rows;

describe('the fingerprint’s format (run history holds it: a change would make every recorded run stale)', () => {
  it('keys: the partition column and then the key columns, once each', () => {
    const row = { game_id: 'G1', game_date: '2021-10-19', player_id: 5, points: 3 };
    expect(fingerprintRows(nbacPlayerBoxscore, [row]).keys).toBe(sha(['["2021-10-19","G1",5]']));
  });

  it('is one JSON array per row, in column order, the lines sorted and hashed', () => {
    const other = { ...typedRow, n: 8, s: 'b' };
    expect(fingerprintRows(typed(), [other, typedRow])).toEqual({
      rows: sha(['["2021-10-19",7,1.5,true,"a"]', '["2021-10-19",8,1.5,true,"b"]']),
    });
    expect(fingerprintRows(typed(), [])).toEqual({ rows: sha([]) });
  });

  it('a table no run reads the keys of, or no run reads at all, has no keys hash', () => {
    expect(Object.keys(fingerprintRows(typed(), [typedRow]))).toEqual(['rows']);
    expect(Object.keys(fingerprintRows(nbacGamebookPlayerStats, []))).toEqual(['rows']);
  });

  it('the keys hash follows the partition column and each key column, and only them', () => {
    const row = { game_id: 'G1', game_date: '2021-10-19', player_id: 5, points: 3 };
    const keys = (r: Record<string, SqlValue>) => fingerprintRows(nbacPlayerBoxscore, [{ ...row, ...r }]).keys;
    expect(keys({ game_date: '2021-10-20' })).not.toBe(keys({}));
    expect(keys({ game_id: 'G2' })).not.toBe(keys({}));
    expect(keys({ player_id: 6 })).not.toBe(keys({}));
    expect(keys({ points: 4 })).toBe(keys({}));
    // Two rows in either order: the key lines are sorted too.
    const two = [row, { ...row, player_id: 1 }];
    expect(fingerprintRows(nbacPlayerBoxscore, two).keys).toBe(
      fingerprintRows(nbacPlayerBoxscore, [...two].reverse()).keys,
    );
  });
});

describe('values normalized by column type', () => {
  it.each<[string, Record<string, SqlValue>, Record<string, SqlValue>]>([
    ['INT64 as text', { n: '7' }, { n: 7 }],
    ['INT64 as text with a fraction', { n: '7.0' }, { n: 7 }],
    ['FLOAT64 as text', { x: '1.50' }, { x: 1.5 }],
    ['BOOL true as text', { b: 'true' }, { b: true }],
    ['BOOL false as text', { b: 'false' }, { b: false }],
    ['DATE as a timestamp', { game_date: '2021-10-19T00:00:00.000Z' }, { game_date: '2021-10-19' }],
    ['STRING of a number', { s: '12' }, { s: 12 }],
  ])('%s is the same value', (_name, a, b) => {
    expect(rowsHash(a)).toBe(rowsHash(b));
  });

  it.each<[string, Record<string, SqlValue>, Record<string, SqlValue>]>([
    ['INT64 null and 0', { n: null }, { n: 0 }],
    ['FLOAT64 null and 0', { x: null }, { x: 0 }],
    ['BOOL null and false', { b: null }, { b: false }],
    ['BOOL true and false', { b: true }, { b: false }],
    ['BOOL true and "false"', { b: true }, { b: 'false' }],
    ['BOOL "true" and false', { b: 'true' }, { b: false }],
    ['DATE null and "null"', { game_date: null }, { game_date: 'null' }],
    ['DATE on two days', { game_date: '2021-10-19' }, { game_date: '2021-10-20' }],
    ['STRING null and "null"', { s: null }, { s: 'null' }],
    ['STRING "a" and "A"', { s: 'a' }, { s: 'A' }],
  ])('%s differ', (_name, a, b) => {
    expect(rowsHash(a)).not.toBe(rowsHash(b));
  });

  it('a column missing from a row is null, whatever its type', () => {
    const row = { ...typedRow, n: null, x: null, b: null, game_date: null, s: null };
    const missing: Record<string, SqlValue> = {};
    const table = typed();
    expect(fingerprintRows(table, [missing]).rows).toBe(fingerprintRows(table, [row]).rows);
    expect(fingerprintRows(typed(), [missing]).rows).toBe(sha(['[null,null,null,null,null]']));
  });
});

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

describe('sourceHash and staleDates', () => {
  it('sourceHash is the hash of the file hashes in their order', () => {
    expect(sourceHash(['a', 'b'])).toBe(sha(['a', 'b']));
    expect(sourceHash(['b', 'a'])).not.toBe(sourceHash(['a', 'b']));
  });

  it('staleDates: each date once, sorted', () => {
    const s = (date: IsoDate): StaleRun => ({ processor: 'p', date, cause: 'input', reason: '' });
    expect(staleDates([s(d(3)), s(d(1)), s(d(3)), s(d(2))])).toEqual([d(1), d(2), d(3)]);
    expect(staleDates([])).toEqual([]);
  });
});

/** The inputs a run of `processor` on `date` records against the book, with `ctx` overriding the context. */
const inputsOf = (b: Book, processor: string, date: IsoDate, ctx: Partial<InputContext> = {}) =>
  recordInputs(getProcessorDefinition(processor), date, {
    versions: b,
    gameDates: DATES,
    entities: async (_table, per) => (per === 'player_id' ? EVERY_DATE : TEAMS),
    ...ctx,
  });

const fpLine = (date: IsoDate, part: 'rows' | 'keys' = 'rows') => `${date}=${part === 'rows' ? `v1-${date}` : 'k'}`;

describe('recordInputs: the window each reach reads', () => {
  it('games: the date and each value’s 10 previous game dates; before: every earlier game date', async () => {
    expect(await inputsOf(book(), 'player_game_summary', d(16))).toEqual([
      {
        table: 'nba_raw.nbac_player_boxscore',
        part: 'rows',
        start: d(6),
        end: d(16),
        hash: sha(DATES.slice(5, 16).map((x) => fpLine(x))),
      },
      {
        table: 'nba_raw.nbac_player_boxscore',
        part: 'keys',
        start: d(1),
        end: d(15),
        hash: sha(DATES.slice(0, 15).map((x) => fpLine(x, 'keys'))),
      },
    ]);
  });

  it('a games window of the 10th game of a value starts at its first; the first date reads itself alone', async () => {
    const [rows11] = await inputsOf(book(), 'player_game_summary', d(11));
    expect([rows11?.start, rows11?.end]).toEqual([d(1), d(11)]);
    const [rows3] = await inputsOf(book(), 'player_game_summary', d(3));
    expect([rows3?.start, rows3?.end]).toEqual([d(1), d(3)]);
    const [rows1, keys1] = await inputsOf(book(), 'player_game_summary', d(1));
    expect([rows1?.start, rows1?.end, rows1?.hash]).toEqual([d(1), d(1), sha([fpLine(d(1))])]);
    // Before the first date there is nothing: recorded as the date itself, with no dates hashed.
    expect([keys1?.start, keys1?.end, keys1?.hash]).toEqual([d(1), d(1), sha([])]);
  });

  it('a processor that reads no table records no inputs', async () => {
    expect(await inputsOf(book(), 'nbac_schedule', d(16))).toEqual([]);
  });

  it('team defense reads 15 games per opponent', async () => {
    const [rows] = await inputsOf(book(), 'team_defense_game_summary', d(17));
    expect([rows?.start, rows?.end]).toEqual([d(2), d(17)]);
    const [offense] = await inputsOf(book(), 'team_offense_game_summary', d(17));
    expect([offense?.start, offense?.end]).toEqual([d(7), d(17)]);
  });

  it('the earliest start of any value playing on the date, whichever value comes first', async () => {
    const late = DATES.slice(9); // d10..d20
    for (const entities of [
      new Map([
        ['late', late],
        ['always', DATES],
      ]),
      new Map([
        ['always', DATES],
        ['late', late],
      ]),
    ]) {
      const [rows] = await inputsOf(book(), 'player_game_summary', d(16), { entities: async () => entities });
      expect(rows?.start).toBe(d(6));
    }
    // A value that played every other date reaches further back in dates for its 10 games.
    const odd = DATES.filter((_x, i) => i % 2 === 0); // d1, d3, ..., d19
    const [rows] = await inputsOf(book(), 'player_game_summary', d(19), {
      entities: async () => new Map([['odd', odd]]),
    });
    expect(rows?.start).toBe(d(1));
    expect(rows?.hash).toBe(sha(DATES.slice(0, 19).map((x) => fpLine(x))));
  });

  it('a date no value played on reads itself alone', async () => {
    const [rows] = await inputsOf(book(), 'player_game_summary', d(16), {
      entities: async () => new Map([['p', DATES.slice(0, 15)]]),
    });
    expect([rows?.start, rows?.end, rows?.hash]).toEqual([d(16), d(16), sha([fpLine(d(16))])]);
  });

  it('Phase 4: the season before the date, and the date’s roster and schedule', async () => {
    const inputs = await inputsOf(book(), 'player_daily_cache', d(16));
    expect(inputs.map((i) => [i.table, i.part, i.start, i.end])).toEqual([
      ['nba_analytics.player_game_summary', 'rows', d(1), d(15)],
      ['nba_raw.espn_team_roster', 'rows', d(16), d(16)],
      ['nba_raw.nbac_schedule', 'rows', d(16), d(16)],
    ]);
    // No Phase 3 run yet: every date read hashes as none.
    expect(inputs[0]?.hash).toBe(sha(DATES.slice(0, 15).map((x) => `${x}=none`)));
    expect(inputs[1]?.hash).toBe(sha([fpLine(d(16))]));
  });
});

/** A batch holding runs of the date not yet committed. */
const pending = (runs: Partial<RunRecord>[]): PendingWrites =>
  ({ runsOn: (date: string) => (date === d(16) ? runs : []) }) as unknown as PendingWrites;
const pendingRun = (status: RunStatus, rows: string, processorName = 'nbac_player_boxscore'): Partial<RunRecord> => ({
  processorName,
  status,
  details: { fingerprint: { rows, keys: 'k' } },
});

describe('recordInputs: the batch’s uncommitted runs before the book', () => {
  const hashOf = async (b: Book, p?: PendingWrites) =>
    (await inputsOf(b, 'player_game_summary', d(16), { pending: p }))[0]?.hash;
  const withVersion = (version: LatestVersion) => {
    const b = book();
    setVersion(b, 'nbac_player_boxscore', d(16), version);
    return b;
  };

  it('the latest run of the writer in the batch gives the date’s fingerprint', async () => {
    const corrected = withVersion({ status: 'success', fingerprint: fp('v2'), inputs: null });
    expect(await hashOf(book(), pending([pendingRun('success', 'v2')]))).toBe(await hashOf(corrected));
    expect(await hashOf(book(), pending([pendingRun('failed', 'v3'), pendingRun('success', 'v2')]))).toBe(
      await hashOf(corrected),
    );
    expect(await hashOf(book(), pending([pendingRun('success', 'v2'), pendingRun('success', 'v4')]))).not.toBe(
      await hashOf(corrected),
    );
  });

  it('a failed run of the writer in the batch means no fingerprint', async () => {
    const none = withVersion({ status: 'failed', fingerprint: null, inputs: null });
    expect(await hashOf(book(), pending([pendingRun('success', 'v2'), pendingRun('failed', 'v2')]))).toBe(
      await hashOf(none),
    );
    expect(
      await hashOf(book(), pending([{ processorName: 'nbac_player_boxscore', status: 'success', details: {} }])),
    ).toBe(await hashOf(none));
  });

  it('runs of other processors, or no runs, leave the book’s fingerprint', async () => {
    expect(await hashOf(book(), pending([pendingRun('success', 'v2', 'nbac_team_boxscore')]))).toBe(
      await hashOf(book()),
    );
    expect(await hashOf(book(), pending([]))).toBe(await hashOf(book()));
  });
});

/** Every Phase 3-4 processor, in pipeline order. */
const PHASE34 = [
  'player_game_summary',
  'team_offense_game_summary',
  'team_defense_game_summary',
  'player_daily_cache',
  'player_composite_factors',
  'ml_feature_store',
];

describe('staleRuns: what is and is not stale', () => {
  it('nothing changed, nothing stale: every processor on the first date, the 11th and the 16th', async () => {
    const b = book();
    for (const date of [d(1), d(2), d(11), d(16)]) for (const p of PHASE34) await run(b, p, date);
    expect(staleOf(b)).toEqual([]);
  });

  it('a Phase 3 run of the first date changing does not make that date’s Phase 4 runs stale (they read before it)', async () => {
    const b = book();
    for (const p of PHASE34) await run(b, p, d(1));
    setVersion(b, 'player_game_summary', d(1), { status: 'success', fingerprint: fp('changed'), inputs: [] });
    expect(staleOf(b)).toEqual([]);
  });

  it('stale upstream runs propagate down the pipeline on the same date, with the run they read', async () => {
    const b = book();
    for (const date of [d(15), d(16)]) for (const p of PHASE34) await run(b, p, date);
    correct(b, 'nbac_player_boxscore', d(15), fp('v2'));
    const stale = staleRuns(b, DATES);
    expect(stale.map((s) => [s.processor, s.date, s.cause])).toEqual([
      ['player_game_summary', d(15), 'input'],
      ['player_game_summary', d(16), 'input'],
      ['player_daily_cache', d(16), 'upstream'],
      ['player_composite_factors', d(16), 'upstream'],
      ['ml_feature_store', d(16), 'upstream'],
    ]);
    expect(stale[4]?.reason).toBe(`it read player_daily_cache of ${d(16)}, which is stale`);
  });

  it('one entry per run, whatever number of its inputs changed; the first one is the reason', async () => {
    const b = book();
    await run(b, 'player_daily_cache', d(16));
    correct(b, 'espn_team_roster', d(16), fp('v2'));
    correct(b, 'nbac_schedule', d(16), fp('v2'));
    expect(staleRuns(b, DATES)).toEqual([
      {
        processor: 'player_daily_cache',
        date: d(16),
        cause: 'input',
        reason: `nba_raw.espn_team_roster changed between ${d(16)} and ${d(16)} (rows)`,
      },
    ]);
  });

  it('only the keys of earlier dates: a value corrected before the 10th game changes nothing, a key does', async () => {
    const b = book();
    await run(b, 'player_game_summary', d(16));
    correct(b, 'nbac_player_boxscore', d(2), fp('v2', 'k'));
    expect(staleOf(b)).toEqual([]);
    correct(b, 'nbac_player_boxscore', d(2), fp('v2', 'k2'));
    expect(staleRuns(b, DATES).map((s) => s.reason)).toEqual([
      `nba_raw.nbac_player_boxscore changed between ${d(1)} and ${d(15)} (keys)`,
    ]);
  });

  it('a failed run, a run with no inputs, a Phase 2 run and an input of an unknown table are never stale', async () => {
    const b = book();
    await run(b, 'player_game_summary', d(16));
    const recorded = b.get('player_game_summary')?.get(d(16));
    setVersion(b, 'player_game_summary', d(16), {
      status: 'failed',
      fingerprint: null,
      inputs: recorded?.inputs ?? null,
    });
    await run(b, 'team_offense_game_summary', d(16));
    const offense = b.get('team_offense_game_summary')?.get(d(16));
    setVersion(b, 'team_offense_game_summary', d(16), {
      status: 'success',
      fingerprint: null,
      inputs: (offense?.inputs ?? []).map((i) => ({ ...i, table: 'nba_raw.nope' })),
    });
    setVersion(b, 'nbac_team_boxscore', d(14), {
      status: 'success',
      fingerprint: fp('x'),
      inputs: [{ table: 'nba_raw.nbac_player_boxscore', part: 'rows', start: d(1), end: d(14), hash: 'old' }],
    });
    correct(b, 'nbac_player_boxscore', d(16), fp('v2'));
    correct(b, 'nbac_team_boxscore', d(16), fp('v2'));
    expect(staleOf(b)).toEqual([]);
  });

  it('an input the definition no longer declares is hashed over its recorded dates', async () => {
    const b = book();
    const keysOf = (date: IsoDate) =>
      setVersion(b, 'team_offense_game_summary', date, {
        status: 'success',
        fingerprint: fp('x'),
        inputs: [
          {
            table: 'nba_raw.nbac_team_boxscore',
            part: 'keys',
            start: d(1),
            end: date,
            hash: sha(DATES.slice(0, DATES.indexOf(date) + 1).map((x) => `${x}=k`)),
          },
        ],
      });
    keysOf(d(16));
    expect(staleOf(b)).toEqual([]);
    correct(b, 'nbac_team_boxscore', d(16), fp('v2', 'k2'));
    expect(staleOf(b)).toEqual([`team_offense_game_summary@${d(16)}`]);
  });
});
