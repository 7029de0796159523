// Data versions read from run history (core/runs/versions.ts): the latest run of each processor and date and
// what it recorded, the book kept up to date with the runs written since, the latest Phase 2 runs of a date
// with the load behind them, and each player's or team's game dates; on an empty in-memory warehouse.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IsoDate } from '../core/dates.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import { type RunStatus, runRow } from '../core/runs/history.js';
import { latestPhase2Runs, readEntityDates, VersionBook } from '../core/runs/versions.js';
import { nbacPlayerBoxscore, processorRunHistory } from '../core/schema/raw.js';
import type { Row, SqlValue, TableSchema } from '../core/schema/table.js';
import { openMemoryWarehouse } from './support/memoryWarehouse.js';

const SEASON = '2021-22';
const D1: IsoDate = '2021-10-19';
const D2: IsoDate = '2021-10-20';
const D3: IsoDate = '2021-10-21';

let seq = 0;
/** A run-history row: `finished` a time on D3's morning ("01:00:00"), details as given. */
function history(
  processorName: string,
  dataDate: IsoDate,
  status: RunStatus,
  finished: string,
  details: Record<string, unknown> = {},
  extra: { phase?: number; season?: string; runId?: string; rowsProcessed?: number } = {},
): Row {
  const at = new Date(`2021-10-22T${finished}Z`);
  return runRow({
    runId: extra.runId ?? `run-${String(++seq).padStart(3, '0')}`,
    processorName,
    phase: extra.phase ?? 2,
    dataDate,
    season: extra.season ?? SEASON,
    status,
    errorMessage: status === 'success' ? null : 'boom',
    rowsProcessed: extra.rowsProcessed ?? 0,
    decision: status === 'success' ? 'processed' : status,
    attempt: 1,
    startedAt: at,
    finishedAt: at,
    trigger: { command: 'test' },
    strictMode: true,
    details,
  });
}

/** Counts the queries that reach the warehouse; `failNext` makes the next one throw. */
class Counting {
  queries = 0;
  failNext = false;
  constructor(readonly inner: Warehouse) {}
  readonly warehouse = new Proxy(this, {
    get: (target, prop) =>
      prop === 'query'
        ? async (sql: string, params?: Readonly<Record<string, SqlValue>>) => {
            target.queries++;
            if (target.failNext) {
              target.failNext = false;
              throw new Error('unavailable');
            }
            return target.inner.query(sql, params);
          }
        : (target.inner as unknown as Record<string | symbol, unknown>)[prop],
  }) as unknown as Warehouse;
}

let w: Warehouse;
let counting: Counting;

beforeEach(async () => {
  w = await openMemoryWarehouse();
  await w.ensureTables([processorRunHistory, nbacPlayerBoxscore]);
  counting = new Counting(w);
});
afterEach(async () => w.close());

const append = (rows: Row[]) => w.commit({ replace: [], append: [{ table: processorRunHistory, rows }] });

describe('VersionBook', () => {
  it('holds the latest run of each processor and date of the season, and what it recorded', async () => {
    const inputs = [{ table: 'nba_raw.nbac_player_boxscore', part: 'rows', start: D1, end: D2, hash: 'h' }];
    await append([
      history('nbac_player_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 'old', keys: 'k' } }),
      history('nbac_player_boxscore', D1, 'success', '02:00:00', { fingerprint: { rows: 'new', keys: 'k' } }),
      history('nbac_player_boxscore', D1, 'failed', '00:30:00', { fingerprint: { rows: 'older' } }),
      history('nbac_player_boxscore', D2, 'success', '03:00:00', { fingerprint: { rows: 'r2' } }),
      history('nbac_player_boxscore', D2, 'failed', '04:00:00', { fingerprint: { rows: 'r3' }, inputs }),
      history(
        'player_game_summary',
        D2,
        'success',
        '03:00:00',
        { fingerprint: { rows: 'p', keys: 5 }, inputs },
        { phase: 3 },
      ),
      history('player_daily_cache', D2, 'success', '03:00:00', { fingerprint: { rows: 7 }, inputs: 'x' }, { phase: 4 }),
      // Not of the book: a Phase 1 run, another season's, a date outside the season.
      history('nbac_schedule', D1, 'success', '01:00:00', { fingerprint: { rows: 's' } }, { phase: 1 }),
      history('nbac_team_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 't' } }, { season: '2022-23' }),
      history('nbac_team_boxscore', '2021-09-01', 'success', '01:00:00', { fingerprint: { rows: 't' } }),
    ]);
    const versions = await new VersionBook(w).versions(SEASON);
    expect(Object.fromEntries([...versions].map(([name, byDate]) => [name, Object.fromEntries(byDate)]))).toEqual({
      nbac_player_boxscore: {
        [D1]: { status: 'success', fingerprint: { rows: 'new', keys: 'k' }, inputs: null },
        [D2]: { status: 'failed', fingerprint: null, inputs: null },
      },
      player_game_summary: { [D2]: { status: 'success', fingerprint: { rows: 'p' }, inputs } },
      player_daily_cache: { [D2]: { status: 'success', fingerprint: null, inputs: null } },
    });
  });

  it('two runs finished at the same time: the later run id is the latest, whatever the order they were written', async () => {
    await append([
      history('nbac_player_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 'b' } }, { runId: 'b' }),
      history('nbac_player_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 'a' } }, { runId: 'a' }),
      history('nbac_player_boxscore', D2, 'success', '01:00:00', { fingerprint: { rows: 'a' } }, { runId: 'a' }),
      history('nbac_player_boxscore', D2, 'success', '01:00:00', { fingerprint: { rows: 'b' } }, { runId: 'b' }),
      // A finished time with a fraction is later than the same second without one.
      history('nbac_team_boxscore', D1, 'success', '01:00:00.250', { fingerprint: { rows: 'late' } }, { runId: 'a' }),
      history('nbac_team_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 'early' } }, { runId: 'b' }),
    ]);
    const versions = await new VersionBook(w).versions(SEASON);
    expect(versions.get('nbac_player_boxscore')?.get(D1)?.fingerprint).toEqual({ rows: 'b' });
    expect(versions.get('nbac_player_boxscore')?.get(D2)?.fingerprint).toEqual({ rows: 'b' });
    expect(versions.get('nbac_team_boxscore')?.get(D1)?.fingerprint).toEqual({ rows: 'late' });
  });

  it('reads a season once; a failed read is tried again; forget makes it read again', async () => {
    await append([history('nbac_player_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 'a' } })]);
    const book = new VersionBook(counting.warehouse);
    counting.failNext = true;
    await expect(book.versions(SEASON)).rejects.toThrow('unavailable');
    const first = await book.versions(SEASON);
    expect(first.get('nbac_player_boxscore')?.get(D1)?.fingerprint).toEqual({ rows: 'a' });
    expect(await book.versions(SEASON)).toBe(first);
    expect(counting.queries).toBe(2);
    expect((await book.versions('2022-23')).size).toBe(0);
    expect(counting.queries).toBe(3);
    book.forget([{ season: SEASON }]);
    await book.versions(SEASON);
    expect(counting.queries).toBe(4);
  });

  it('learns the runs written since it read a season, without reading again; other seasons are read when asked', async () => {
    await append([history('nbac_player_boxscore', D1, 'success', '01:00:00', { fingerprint: { rows: 'a' } })]);
    const book = new VersionBook(counting.warehouse);
    await book.versions(SEASON);
    const learned = (details: unknown, status: RunStatus = 'success', date = `${D2}T00:00:00`) => ({
      ...history('nbac_player_boxscore', D2, status, '05:00:00'),
      data_date: date,
      details: details as SqlValue,
    });
    book.learn([
      history('nbac_player_boxscore', D1, 'success', '05:00:00', { fingerprint: { rows: 'b', keys: 'k' } }),
      history('player_game_summary', D1, 'success', '05:00:00', { fingerprint: { rows: 'p' }, inputs: [] }),
    ]);
    let v = await book.versions(SEASON);
    expect(v.get('nbac_player_boxscore')?.get(D1)).toEqual({
      status: 'success',
      fingerprint: { rows: 'b', keys: 'k' },
      inputs: null,
    });
    expect(v.get('player_game_summary')?.get(D1)).toEqual({
      status: 'success',
      fingerprint: { rows: 'p' },
      inputs: [],
    });
    // Details as an object, as text, as text that is not JSON or not an object, or none at all.
    for (const [details, fingerprint] of [
      [{ fingerprint: { rows: 'o' } }, { rows: 'o' }],
      [JSON.stringify({ fingerprint: { rows: 't' } }), { rows: 't' }],
      ['not json', null],
      ['3', null],
      ['null', null],
      [null, null],
    ] as const) {
      book.learn([learned(details)]);
      v = await book.versions(SEASON);
      expect(v.get('nbac_player_boxscore')?.get(D2)?.fingerprint).toEqual(fingerprint);
    }
    // Learning a date of a processor keeps its other dates.
    expect(v.get('nbac_player_boxscore')?.get(D1)?.fingerprint).toEqual({ rows: 'b', keys: 'k' });
    book.learn([learned({ fingerprint: { rows: 'f' } }, 'failed')]);
    v = await book.versions(SEASON);
    expect(v.get('nbac_player_boxscore')?.get(D2)).toEqual({ status: 'failed', fingerprint: null, inputs: null });
    expect(counting.queries).toBe(1);

    // A season not read yet learns nothing: it is read, whole, when asked.
    book.learn([history('nbac_player_boxscore', '2022-10-20', 'success', '05:00:00', {}, { season: '2022-23' })]);
    expect((await book.versions('2022-23')).size).toBe(0);
    expect(counting.queries).toBe(2);
  });
});

describe('latestPhase2Runs', () => {
  it('the latest Phase 2 run of each processor on the date, and the last load behind it when a later run wrote since', async () => {
    await append([
      // Loaded, then the schedule load (no source) wrote the table since.
      history('nbac_schedule', D2, 'success', '01:00:00', { source: 'first' }),
      history('nbac_schedule', D2, 'success', '02:00:00', { source: 'second' }, { rowsProcessed: 12 }),
      history('nbac_schedule', D2, 'success', '03:00:00', { scheduleLoad: true }, { rowsProcessed: 15 }),
      // The latest run is the load: no lastLoad.
      history('nbac_player_boxscore', D2, 'success', '01:00:00', { source: 'old' }),
      history('nbac_player_boxscore', D2, 'success', '02:00:00', { source: 'new' }),
      // A failed run with a source is no load.
      history('nbac_team_boxscore', D2, 'success', '01:00:00', { source: 'ok' }),
      history('nbac_team_boxscore', D2, 'failed', '02:00:00', { source: 'broken' }),
      // Never loaded from files.
      history('espn_team_roster', D2, 'success', '01:00:00', {}),
      // The latest run written first; and details that are JSON but no object.
      history('nbac_gamebook_player_stats', D2, 'success', '03:00:00', 3 as unknown as Record<string, unknown>),
      history('nbac_gamebook_player_stats', D2, 'success', '02:00:00', { source: 'g' }),
      // Not of the answer: Phase 3, and another date.
      history('player_game_summary', D2, 'success', '04:00:00', { source: 'x' }, { phase: 3 }),
      history('nbac_gamebook_player_stats', D1, 'success', '04:00:00', { source: 'x' }),
    ]);
    const runs = await latestPhase2Runs(w, D2);
    const byName = Object.fromEntries(runs.map((r) => [r.processorName, r]));
    expect(Object.keys(byName).sort()).toEqual([
      'espn_team_roster',
      'nbac_gamebook_player_stats',
      'nbac_player_boxscore',
      'nbac_schedule',
      'nbac_team_boxscore',
    ]);
    expect(byName.nbac_schedule).toEqual({
      processorName: 'nbac_schedule',
      status: 'success',
      rowsProcessed: 15,
      details: { scheduleLoad: true },
      lastLoad: { details: { source: 'second' } },
    });
    expect(byName.nbac_player_boxscore).toEqual({
      processorName: 'nbac_player_boxscore',
      status: 'success',
      rowsProcessed: 0,
      details: { source: 'new' },
    });
    expect(byName.nbac_team_boxscore).toEqual({
      processorName: 'nbac_team_boxscore',
      status: 'failed',
      rowsProcessed: 0,
      details: { source: 'broken' },
      lastLoad: { details: { source: 'ok' } },
    });
    expect(byName.nbac_gamebook_player_stats).toEqual({
      processorName: 'nbac_gamebook_player_stats',
      status: 'success',
      rowsProcessed: 0,
      details: {},
      lastLoad: { details: { source: 'g' } },
    });
    expect(byName.espn_team_roster).toEqual({
      processorName: 'espn_team_roster',
      status: 'success',
      rowsProcessed: 0,
      details: {},
    });
  });

  it('orders runs finished at the same time by run id, loads as well', async () => {
    await append([
      history('nbac_schedule', D2, 'success', '01:00:00', { source: 'b' }, { runId: 'b' }),
      history('nbac_schedule', D2, 'success', '01:00:00', { source: 'a' }, { runId: 'a' }),
      history('nbac_schedule', D2, 'success', '01:00:00', {}, { runId: 'c' }),
      history('nbac_player_boxscore', D2, 'success', '01:00:00', { source: 'a' }, { runId: 'a' }),
      history('nbac_player_boxscore', D2, 'success', '01:00:00', { source: 'b' }, { runId: 'b' }),
    ]);
    const runs = await latestPhase2Runs(w, D2);
    const byName = Object.fromEntries(runs.map((r) => [r.processorName, r]));
    expect(byName.nbac_schedule?.details).toEqual({});
    expect(byName.nbac_schedule?.lastLoad).toEqual({ details: { source: 'b' } });
    expect(byName.nbac_player_boxscore?.details).toEqual({ source: 'b' });
    expect(byName.nbac_player_boxscore && 'lastLoad' in byName.nbac_player_boxscore).toBe(false);
  });

  it('no runs on the date: none', async () => {
    expect(await latestPhase2Runs(w, D3)).toEqual([]);
  });
});

const PLAIN: Record<string, SqlValue> = { STRING: 'x', INT64: 0, FLOAT64: 0, BOOL: false, DATE: D1 };

/** A box score row of a player of a team, every other column a plain value of its type. */
function box(date: IsoDate, team: string, player: number, season = SEASON): Row {
  const row = Object.fromEntries(nbacPlayerBoxscore.columns.map((c) => [c.name, PLAIN[c.type] ?? null]));
  return { ...row, game_id: `G-${date}-${team}`, game_date: date, season, team_abbr: team, player_id: player };
}

describe('readEntityDates', () => {
  it('each value’s game dates of the season, sorted, once each', async () => {
    const rows = (date: IsoDate, rs: Row[]) => ({ table: nbacPlayerBoxscore as TableSchema, date, rows: rs });
    await w.commit({
      replace: [
        rows(D3, [box(D3, 'AAA', 1), box(D3, 'AAA', 2)]),
        rows(D1, [box(D1, 'AAA', 1), box(D1, 'BBB', 3)]),
        rows(D2, [box(D2, 'BBB', 3)]),
        // Another season's rows on a date of this one, and a date outside the season.
        rows('2021-10-22', [box('2021-10-22', 'CCC', 4, '2022-23')]),
        rows('2021-09-01', [box('2021-09-01', 'DDD', 5)]),
      ],
      append: [],
    });
    const byTeam = await readEntityDates(w, nbacPlayerBoxscore, 'team_abbr', SEASON);
    expect(Object.fromEntries(byTeam)).toEqual({ AAA: [D1, D3], BBB: [D1, D2] });
    const byPlayer = await readEntityDates(w, nbacPlayerBoxscore, 'player_id', SEASON);
    expect(Object.fromEntries(byPlayer)).toEqual({ '1': [D1, D3], '2': [D3], '3': [D1, D2] });
  });
});
