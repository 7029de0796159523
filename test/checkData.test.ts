// What the defensive checks read, on a hand-made season in an empty warehouse: game coverage (both teams,
// one, none) and row counts per table, the batch's uncommitted rows and runs in place of committed ones, the
// latest run of each processor and date, and the cache between dates: what it reads in one query, what it
// never reads twice, and what a commit makes it learn or forget. Queries are counted, because "a date's
// checks cost a few small queries" is the rule the cache exists for.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckData, CheckedWarehouse, checkDataOf, type ScheduledGame } from '../core/checks/data.js';
import type { IsoDate } from '../core/dates.js';
import type { CommitOutcome, Warehouse, WarehouseChange } from '../core/ports/warehouse.js';
import { RunBatch, type RunRecord, type RunStatus, runRow } from '../core/runs/history.js';
import {
  espnTeamRoster,
  nbacPlayerBoxscore,
  nbacSchedule,
  nbacTeamBoxscore,
  processorRunHistory,
} from '../core/schema/raw.js';
import type { Row, SqlValue, TableSchema } from '../core/schema/table.js';
import { openMemoryWarehouse } from './support/memoryWarehouse.js';

const SEASON = '2021-22';
const D1: IsoDate = '2021-10-19';
const D2: IsoDate = '2021-10-20';
const D3: IsoDate = '2021-10-21';

/** A row of the table with every column filled: the given values, else a plain value of the column's type. */
function rowOf(table: TableSchema, values: Record<string, SqlValue>): Row {
  const plain: Record<string, SqlValue> = {
    STRING: 'x',
    INT64: 0,
    FLOAT64: 0,
    BOOL: false,
    DATE: D1,
    TIMESTAMP: '2021-10-19 00:00:00',
    JSON: '{}',
  };
  return Object.fromEntries(
    table.columns.map((c) => [c.name, (c.name in values ? values[c.name] : plain[c.type]) ?? null]),
  );
}

const game = (date: IsoDate, id: string, home: string, away: string, status = 'Final') =>
  rowOf(nbacSchedule, {
    game_date: date,
    game_id: id,
    season: SEASON,
    home_team_abbr: home,
    away_team_abbr: away,
    game_status: status,
  });

/** `n` box score rows of a team in a game. */
const box = (date: IsoDate, id: string, team: string, n: number) =>
  Array.from({ length: n }, (_v, i) =>
    rowOf(nbacPlayerBoxscore, { game_date: date, game_id: id, season: SEASON, team_abbr: team, player_id: i + 1 }),
  );

const roster = (date: IsoDate, team: string, n: number) =>
  Array.from({ length: n }, (_v, i) =>
    rowOf(espnTeamRoster, { roster_date: date, season: SEASON, team_abbr: team, player_id: i + 1 }),
  );

/**
 * D1: G1 AAA-BBB (3 and 2 box rows), G2 CCC-DDD (CCC 1 row, DDD none). D2: G3 AAA-CCC (2 and 2), and G4 not
 * final. D3: G5 BBB-DDD, no rows. Rosters on D2: AAA 2 players, CCC none.
 */
const SCHEDULE = [
  game(D1, 'G1', 'AAA', 'BBB'),
  game(D1, 'G2', 'CCC', 'DDD'),
  game(D2, 'G3', 'AAA', 'CCC'),
  game(D2, 'G4', 'BBB', 'DDD', 'Scheduled'),
  game(D3, 'G5', 'BBB', 'DDD'),
];
const BOX: Record<IsoDate, Row[]> = {
  [D1]: [...box(D1, 'G1', 'AAA', 3), ...box(D1, 'G1', 'BBB', 2), ...box(D1, 'G2', 'CCC', 1)],
  [D2]: [...box(D2, 'G3', 'AAA', 2), ...box(D2, 'G3', 'CCC', 2)],
  [D3]: [],
};

let runSeq = 0;
function run(processorName: string, dataDate: IsoDate, status: RunStatus, finishedAt: string): RunRecord {
  return {
    runId: `run-${++runSeq}`,
    processorName,
    phase: 2,
    dataDate,
    season: SEASON,
    status,
    errorMessage: status === 'success' ? null : `${processorName} ${status}`,
    rowsProcessed: 0,
    decision: status === 'success' ? 'processed' : status,
    attempt: 1,
    startedAt: new Date(finishedAt),
    finishedAt: new Date(finishedAt),
    trigger: { command: 'test' },
    strictMode: true,
    details: {},
  };
}

/** The warehouse, counting the queries that reach it; `failCommits` makes commits and appends throw after writing nothing. */
class Counting implements Warehouse {
  readonly queries: { sql: string; params: Readonly<Record<string, SqlValue>> }[] = [];
  failCommits = false;
  /** What the port says of its commits (BigQuery's adapter: false). */
  commitsAtomically: boolean | undefined = undefined;
  checkpoints = 0;
  closed = 0;

  constructor(readonly inner: Warehouse) {}

  get description() {
    return this.inner.description;
  }
  get dialect() {
    return this.inner.dialect;
  }
  ensureTables(tables: readonly TableSchema[]) {
    return this.inner.ensureTables(tables);
  }
  query(sql: string, params: Readonly<Record<string, SqlValue>> = {}) {
    this.queries.push({ sql, params });
    return this.inner.query(sql, params);
  }
  /** What commits report, as BigQuery's adapter does (the embedded warehouse reports nothing). */
  outcome: CommitOutcome | undefined = undefined;
  async commit(change: WarehouseChange) {
    if (this.failCommits) throw new Error('commit refused');
    await this.inner.commit(change);
    return this.outcome;
  }
  async append(table: TableSchema, rows: readonly Row[]) {
    if (this.failCommits) throw new Error('append refused');
    return this.inner.append(table, rows);
  }
  checkpoint() {
    this.checkpoints++;
    return this.inner.checkpoint();
  }
  close() {
    this.closed++;
    return this.inner.close();
  }
  /** Queries made while `f` runs. */
  async count(f: () => Promise<unknown>): Promise<number> {
    const before = this.queries.length;
    await f();
    return this.queries.length - before;
  }
}

let w: Counting;
let data: CheckData;
let games: ScheduledGame[];

beforeEach(async () => {
  w = new Counting(await openMemoryWarehouse());
  await w.ensureTables([nbacSchedule, nbacPlayerBoxscore, espnTeamRoster, processorRunHistory]);
  await w.inner.commit({
    replace: [
      ...[D1, D2, D3].map((date) => ({
        table: nbacSchedule,
        date,
        rows: SCHEDULE.filter((g) => g.game_date === date),
      })),
      ...[D1, D2, D3].map((date) => ({ table: nbacPlayerBoxscore, date, rows: BOX[date] ?? [] })),
      { table: espnTeamRoster, date: D2, rows: roster(D2, 'AAA', 2) },
    ],
    append: [
      {
        table: processorRunHistory,
        rows: [
          run('nbac_player_boxscore', D1, 'failed', '2021-10-20T01:00:00Z'),
          run('nbac_player_boxscore', D1, 'success', '2021-10-20T02:00:00Z'),
          run('nbac_player_boxscore', D2, 'failed', '2021-10-21T01:00:00Z'),
          run('espn_team_roster', D2, 'success', '2021-10-21T01:00:00Z'),
        ].map(runRow),
      },
    ],
  });
  data = new CheckData(w);
  games = await data.schedule(SEASON);
});
afterEach(async () => w.close());

const on = (date: IsoDate) => games.filter((g) => g.date === date);
const coverageOf = async (table: TableSchema, date: IsoDate, pending?: RunBatch) =>
  Object.fromEntries(await data.coverage(table, on(date), pending));

/**
 * After a failed write of a D2 run and D2 box rows: D1's runs still known, D2's runs, the season's versions and
 * D2's box rows read again (one query each).
 */
async function expectD2ReadAgain(d: CheckData): Promise<void> {
  expect(await w.count(() => d.latestRunsOn([D1]))).toBe(0);
  expect(await w.count(() => d.latestRunsOn([D2]))).toBe(1);
  expect(await w.count(() => d.versions.versions(SEASON))).toBe(1);
  expect(await w.count(() => d.rowCount(nbacPlayerBoxscore, [D2]))).toBe(1);
}

describe('the schedule', () => {
  it('holds the final games of the season in date and game order, read once', async () => {
    expect(games).toEqual([
      { date: D1, gameId: 'G1', home: 'AAA', away: 'BBB' },
      { date: D1, gameId: 'G2', home: 'CCC', away: 'DDD' },
      { date: D2, gameId: 'G3', home: 'AAA', away: 'CCC' },
      { date: D3, gameId: 'G5', home: 'BBB', away: 'DDD' },
    ]);
    expect(await w.count(() => data.schedule(SEASON))).toBe(0);
    expect(await data.schedule('2022-23')).toEqual([]);
  });

  it('game dates: the final games’ dates of each season, kept per season', async () => {
    expect(await data.gameDates(SEASON)).toEqual([D1, D2, D3]);
    expect(await data.gameDates('2022-23')).toEqual([]);
    expect(await data.gameDates(SEASON)).toEqual([D1, D2, D3]);
  });

  it('memo computes a value once per key', () => {
    let calls = 0;
    const f = () => ++calls;
    expect([data.memo('a', f), data.memo('a', f), data.memo('b', f)]).toEqual([1, 1, 2]);
  });
});

describe('coverage and row counts', () => {
  it('counts the teams present and the rows of each game, per game and team', async () => {
    expect(await coverageOf(nbacPlayerBoxscore, D1)).toEqual({ G1: { teams: 2, rows: 5 }, G2: { teams: 1, rows: 1 } });
    expect(await coverageOf(nbacPlayerBoxscore, D3)).toEqual({ G5: { teams: 0, rows: 0 } });
  });

  it('keys a table without game ids by team', async () => {
    expect(await coverageOf(espnTeamRoster, D2)).toEqual({ G3: { teams: 1, rows: 2 } });
  });

  it('sums a table’s rows over dates', async () => {
    expect(await data.rowCount(nbacPlayerBoxscore, [D1, D2, D3])).toBe(10);
    expect(await data.rowCount(nbacPlayerBoxscore, [D2])).toBe(4);
    expect(await data.rowCount(espnTeamRoster, [D1])).toBe(0);
  });

  it('takes the rows a batch wrote for a date in place of the committed ones, and only for that date', async () => {
    const batch = new RunBatch();
    batch.add(run('nbac_player_boxscore', D1, 'success', '2030-01-01T00:00:00Z'), {
      table: nbacPlayerBoxscore,
      rows: [...box(D1, 'G2', 'CCC', 4), ...box(D1, 'G2', 'DDD', 1)],
    });
    expect(await coverageOf(nbacPlayerBoxscore, D1, batch)).toEqual({
      G1: { teams: 0, rows: 0 },
      G2: { teams: 2, rows: 5 },
    });
    expect(await data.rowCount(nbacPlayerBoxscore, [D1, D2], batch)).toBe(9);
    // Without the batch, the committed rows again.
    expect(await data.rowCount(nbacPlayerBoxscore, [D1])).toBe(6);
  });
});

describe('gaps and rows over a window', () => {
  const ids = (gs: readonly ScheduledGame[]) => gs.map((g) => g.gameId);

  it('lists the games lacking a team, in schedule order, and sums the rows of every game', async () => {
    const { missing, rows } = await data.gapsAndRows(nbacPlayerBoxscore, games);
    expect(ids(missing)).toEqual(['G2', 'G5']);
    expect(rows).toBe(10);
  });

  it('keys a table without game ids by team', async () => {
    const { missing, rows } = await data.gapsAndRows(espnTeamRoster, on(D2));
    expect(ids(missing)).toEqual(['G3']);
    expect(rows).toBe(2);
  });

  it('answers each slice of a date’s games for itself, however the slices were asked before', async () => {
    const [g1, g2] = on(D1) as [ScheduledGame, ScheduledGame];
    expect(await data.gapsAndRows(nbacPlayerBoxscore, [g1])).toEqual({ missing: [], rows: 5 });
    expect(await data.gapsAndRows(nbacPlayerBoxscore, [g1, g2])).toEqual({ missing: [g2], rows: 6 });
    expect(await data.gapsAndRows(nbacPlayerBoxscore, [g2])).toEqual({ missing: [g2], rows: 1 });
    expect(await data.gapsAndRows(nbacPlayerBoxscore, [g1])).toEqual({ missing: [], rows: 5 });
  });

  it('takes a batch’s rows for the dates it wrote', async () => {
    const batch = new RunBatch();
    batch.add(run('nbac_player_boxscore', D3, 'success', '2030-01-01T00:00:00Z'), {
      table: nbacPlayerBoxscore,
      rows: [...box(D3, 'G5', 'BBB', 2), ...box(D3, 'G5', 'DDD', 2)],
    });
    const { missing, rows } = await data.gapsAndRows(nbacPlayerBoxscore, games, batch);
    expect(ids(missing)).toEqual(['G2']);
    expect(rows).toBe(14);
    // The committed view is unchanged.
    expect(ids((await data.gapsAndRows(nbacPlayerBoxscore, games)).missing)).toEqual(['G2', 'G5']);
  });
});

describe('a processor’s failed latest runs', () => {
  const failed = async (dates: IsoDate[], batch?: RunBatch, name = 'nbac_player_boxscore') =>
    (await data.failedRunsOf(name, dates, batch)).map((r) => `${r.dataDate} ${r.status}`);

  it('only its runs whose latest did not succeed', async () => {
    expect(await failed([D1, D2])).toEqual([`${D2} failed`]);
    expect(await failed([D1])).toEqual([]);
    expect(await failed([D2], undefined, 'espn_team_roster')).toEqual([]);
  });

  it.each([
    { name: 'a batch’s success replaces a committed failure', status: 'success' as const, date: D2, want: [] },
    {
      name: 'a batch’s failure replaces a committed success',
      status: 'failed' as const,
      date: D1,
      want: [`${D2} failed`, `${D1} failed`],
    },
    {
      name: 'a batch’s block counts as failed',
      status: 'blocked' as const,
      date: D3,
      want: [`${D2} failed`, `${D3} blocked`],
    },
  ])('$name', async ({ status, date, want }) => {
    const batch = new RunBatch();
    batch.add(run('nbac_player_boxscore', date, status, '2030-01-01T00:00:00Z'));
    expect(await failed([D1, D2, D3], batch)).toEqual(want);
  });

  it('another processor’s run in the batch hides nothing', async () => {
    const batch = new RunBatch();
    batch.add(run('espn_team_roster', D2, 'success', '2030-01-01T00:00:00Z'));
    expect(await failed([D1, D2], batch)).toEqual([`${D2} failed`]);
  });
});

describe('reads: one query for what a date needs, nothing read twice', () => {
  it('reads several tables over their dates in one query', async () => {
    const n = await w.count(() =>
      data.prefetch([
        { table: nbacPlayerBoxscore, dates: [D1, D2] },
        { table: espnTeamRoster, dates: [D2] },
      ]),
    );
    expect(n).toBe(1);
    expect(
      await w.count(async () => {
        expect(await coverageOf(nbacPlayerBoxscore, D2)).toEqual({ G3: { teams: 2, rows: 4 } });
        expect(await data.rowCount(espnTeamRoster, [D2])).toBe(2);
      }),
    ).toBe(0);
  });

  it('asks only for the dates it has not read', async () => {
    await data.prefetch([{ table: nbacPlayerBoxscore, dates: [D1] }]);
    expect(await w.count(() => data.prefetch([{ table: nbacPlayerBoxscore, dates: [D1, D3] }]))).toBe(1);
    expect(Object.values(w.queries.at(-1)?.params ?? {})).toEqual([D3]);
    expect(await w.count(() => data.rowCount(nbacPlayerBoxscore, [D1, D3]))).toBe(0);
  });

  it('remembers a date without rows as read', async () => {
    expect(await data.rowCount(nbacPlayerBoxscore, [D3])).toBe(0);
    expect(await w.count(() => data.rowCount(nbacPlayerBoxscore, [D3]))).toBe(0);
  });

  it('never reads the dates a batch wrote', async () => {
    const batch = new RunBatch();
    batch.add(run('nbac_player_boxscore', D1, 'success', '2030-01-01T00:00:00Z'), {
      table: nbacPlayerBoxscore,
      rows: box(D1, 'G1', 'AAA', 1),
    });
    expect(await w.count(() => data.rowCount(nbacPlayerBoxscore, [D1], batch))).toBe(0);
    expect(await w.count(() => data.rowCount(nbacPlayerBoxscore, [D1, D2], batch))).toBe(1);
    expect(Object.values(w.queries.at(-1)?.params ?? {})).toEqual([D2]);
  });

  it('makes no query when everything asked for is known', async () => {
    await data.prefetch([{ table: nbacPlayerBoxscore, dates: [D1] }]);
    expect(await w.count(() => data.prefetch([{ table: nbacPlayerBoxscore, dates: [D1] }]))).toBe(0);
    expect(await w.count(() => data.prefetch([]))).toBe(0);
  });
});

describe('latest runs', () => {
  const summary = (runs: readonly { processorName: string; dataDate: string; status: string }[]) =>
    runs.map((r) => `${r.processorName} ${r.dataDate} ${r.status}`).sort();

  it('the latest run of each processor and date, read once per date', async () => {
    expect(summary(await data.latestRunsOn([D1, D2]))).toEqual([
      `espn_team_roster ${D2} success`,
      `nbac_player_boxscore ${D1} success`,
      `nbac_player_boxscore ${D2} failed`,
    ]);
    expect(await w.count(() => data.latestRunsOn([D2, D1]))).toBe(0);
    expect(summary(await data.latestRunsOn([D3]))).toEqual([]);
    expect(await w.count(() => data.latestRunsOn([D3]))).toBe(0);
  });

  it('a batch’s run takes the place of its processor’s committed run on that date, others stay', async () => {
    const batch = new RunBatch();
    batch.add(run('nbac_player_boxscore', D2, 'success', '2030-01-01T00:00:00Z'));
    batch.add(run('nbac_team_boxscore', D2, 'failed', '2030-01-01T00:00:00Z'));
    expect(summary(await data.latestRunsOn([D1, D2], batch))).toEqual([
      `espn_team_roster ${D2} success`,
      `nbac_player_boxscore ${D1} success`,
      `nbac_player_boxscore ${D2} success`,
      `nbac_team_boxscore ${D2} failed`,
    ]);
    // A batch without runs on the dates asked for changes nothing.
    expect(summary(await data.latestRunsOn([D1], new RunBatch()))).toEqual([`nbac_player_boxscore ${D1} success`]);
  });
});

describe('what a commit teaches the cache', () => {
  let checked: CheckedWarehouse;
  beforeEach(() => {
    checked = new CheckedWarehouse(w);
  });

  it('a committed date holds exactly the rows handed to it, known without a read', async () => {
    const d = checked.data;
    await d.rowCount(nbacPlayerBoxscore, [D1]);
    await checked.commit({
      replace: [{ table: nbacPlayerBoxscore, date: D1, rows: box(D1, 'G2', 'DDD', 3) }],
      append: [],
    });
    expect(
      await w.count(async () => {
        expect(Object.fromEntries(await d.coverage(nbacPlayerBoxscore, on(D1)))).toEqual({
          G1: { teams: 0, rows: 0 },
          G2: { teams: 1, rows: 3 },
        });
      }),
    ).toBe(0);
  });

  it('a failed commit makes it forget the dates it touched, and read them again', async () => {
    const d = checked.data;
    await d.rowCount(nbacPlayerBoxscore, [D1, D2]);
    w.failCommits = true;
    await expect(
      checked.commit({ replace: [{ table: nbacPlayerBoxscore, date: D1, rows: [] }], append: [] }),
    ).rejects.toThrow('commit refused');
    expect(await w.count(async () => expect(await d.rowCount(nbacPlayerBoxscore, [D1])).toBe(6))).toBe(1);
    expect(await w.count(() => d.rowCount(nbacPlayerBoxscore, [D2]))).toBe(0);
  });

  it('new run history makes it read the runs of those dates again', async () => {
    const d = checked.data;
    await d.latestRunsOn([D1, D2]);
    await checked.append(processorRunHistory, [
      runRow(run('nbac_player_boxscore', D2, 'success', '2030-01-01T00:00:00Z')),
    ]);
    expect(await w.count(() => d.latestRunsOn([D1]))).toBe(0);
    const n = await w.count(async () => {
      const runs = await d.latestRunsOn([D2]);
      expect(runs.find((r) => r.processorName === 'nbac_player_boxscore')?.status).toBe('success');
    });
    expect(n).toBe(1);
  });

  it('appended rows of a table make it read that table again', async () => {
    const d = checked.data;
    await d.rowCount(nbacPlayerBoxscore, [D2]);
    await checked.append(nbacPlayerBoxscore, box(D2, 'G3', 'AAA', 1));
    expect(await w.count(async () => expect(await d.rowCount(nbacPlayerBoxscore, [D2])).toBe(5))).toBe(1);
  });

  it('a new schedule makes it read the schedule again and drop what it computed from it', async () => {
    const d = checked.data;
    await d.schedule(SEASON);
    expect(d.memo('k', () => 'old')).toBe('old');
    await checked.commit({ replace: [{ table: nbacSchedule, date: D3, rows: [] }], append: [] });
    expect(d.memo('k', () => 'new')).toBe('new');
    expect(
      await w.count(async () => expect((await d.schedule(SEASON)).map((g) => g.gameId)).toEqual(['G1', 'G2', 'G3'])),
    ).toBe(1);
  });

  it('checkDataOf gives the checked warehouse’s own cache, and a fresh one for any other warehouse', () => {
    expect(checkDataOf(checked)).toBe(checked.data);
    expect(checkDataOf(w)).not.toBe(checkDataOf(w));
  });

  it('a commit of other tables keeps the schedule and what was computed from it', async () => {
    const d = checked.data;
    await d.schedule(SEASON);
    expect(d.memo('k', () => 'old')).toBe('old');
    await checked.commit({ replace: [{ table: nbacPlayerBoxscore, date: D3, rows: [] }], append: [] });
    expect(d.memo('k', () => 'new')).toBe('old');
    expect(await w.count(() => d.schedule(SEASON))).toBe(0);
  });

  it('appends inside a commit: run history makes it read those dates’ runs again, other rows their table', async () => {
    const d = checked.data;
    await d.latestRunsOn([D1, D2]);
    await d.rowCount(nbacPlayerBoxscore, [D1, D2]);
    await checked.commit({
      replace: [],
      append: [
        {
          table: processorRunHistory,
          rows: [runRow(run('nbac_player_boxscore', D2, 'success', '2030-01-01T00:00:00Z'))],
        },
        { table: nbacPlayerBoxscore, rows: box(D2, 'G3', 'AAA', 1) },
      ],
    });
    expect(await w.count(() => d.latestRunsOn([D1]))).toBe(0);
    expect(await w.count(() => d.latestRunsOn([D2]))).toBe(1);
    expect(await d.failedRunsOf('nbac_player_boxscore', [D2])).toEqual([]);
    expect(await w.count(async () => expect(await d.rowCount(nbacPlayerBoxscore, [D2])).toBe(5))).toBe(1);
  });

  it('a failed commit, whose appends may have landed: it reads those dates’ runs, the versions and that table again', async () => {
    const d = checked.data;
    await d.latestRunsOn([D1, D2]);
    await d.rowCount(nbacPlayerBoxscore, [D1, D2]);
    await d.versions.versions(SEASON);
    w.failCommits = true;
    await expect(
      checked.commit({
        replace: [],
        append: [
          {
            table: processorRunHistory,
            rows: [runRow(run('nbac_player_boxscore', D2, 'success', '2030-01-01T00:00:00Z'))],
          },
          { table: nbacPlayerBoxscore, rows: box(D2, 'G3', 'AAA', 1) },
        ],
      }),
    ).rejects.toThrow('commit refused');
    w.failCommits = false;
    await expectD2ReadAgain(d);
  });

  it('entity dates: read once per table, column and season; a change of the table reads them again, of another not', async () => {
    const d = checked.data;
    const first = await d.entityDates(nbacPlayerBoxscore, 'team_abbr', SEASON);
    expect(Object.fromEntries(first)).toEqual({ AAA: [D1, D2], BBB: [D1], CCC: [D1, D2] });
    expect(await w.count(() => d.entityDates(nbacPlayerBoxscore, 'team_abbr', SEASON))).toBe(0);
    expect(await w.count(() => d.entityDates(nbacPlayerBoxscore, 'player_id', SEASON))).toBe(1);
    await checked.commit({ replace: [{ table: espnTeamRoster, date: D2, rows: [] }], append: [] });
    expect(await w.count(() => d.entityDates(nbacPlayerBoxscore, 'team_abbr', SEASON))).toBe(0);
    await checked.commit({
      replace: [{ table: nbacPlayerBoxscore, date: D3, rows: box(D3, 'G5', 'DDD', 1) }],
      append: [],
    });
    const again = await w.count(async () =>
      expect((await d.entityDates(nbacPlayerBoxscore, 'team_abbr', SEASON)).get('DDD')).toEqual([D3]),
    );
    expect(again).toBe(1);
    expect(await w.count(() => d.entityDates(nbacPlayerBoxscore, 'player_id', SEASON))).toBe(1);
  });

  it('a failed append forgets what it touched: the dates of its runs, the versions, the table it appended to', async () => {
    const d = checked.data;
    await d.latestRunsOn([D1, D2]);
    await d.versions.versions(SEASON);
    await d.rowCount(nbacPlayerBoxscore, [D2]);
    w.failCommits = true;
    await expect(
      checked.append(processorRunHistory, [runRow(run('nbac_player_boxscore', D2, 'success', '2030-01-01T00:00:00Z'))]),
    ).rejects.toThrow('append refused');
    await expect(checked.append(nbacPlayerBoxscore, box(D2, 'G3', 'AAA', 1))).rejects.toThrow('append refused');
    w.failCommits = false;
    await expectD2ReadAgain(d);
  });

  it('a failed read of entity dates is not kept: the next asks again', async () => {
    const d = checked.data;
    await expect(d.entityDates(nbacPlayerBoxscore, 'no_such_column', SEASON)).rejects.toThrow();
    expect(
      await w.count(() => d.entityDates(nbacPlayerBoxscore, 'no_such_column', SEASON).catch(() => undefined)),
    ).toBe(1);
  });

  it('a failed commit of a table never read keeps the schedule; one of the schedule forgets it', async () => {
    const d = checked.data;
    await d.schedule(SEASON);
    expect(d.memo('k', () => 'old')).toBe('old');
    w.failCommits = true;
    const refused = (table: TableSchema) =>
      expect(
        checked.commit({
          replace: [{ table, date: D3, rows: [] }],
          append: [{ table: processorRunHistory, rows: [] }],
        }),
      ).rejects.toThrow('commit refused');
    await refused(espnTeamRoster);
    expect(d.memo('k', () => 'new')).toBe('old');
    expect(await w.count(() => d.schedule(SEASON))).toBe(0);
    await refused(nbacSchedule);
    expect(d.memo('k', () => 'new')).toBe('new');
    expect(await w.count(() => d.schedule(SEASON))).toBe(1);
  });

  it('the first read of runs takes the dates in any order', async () => {
    const fresh = new CheckData(w);
    const runs = await fresh.latestRunsOn([D2, D1]);
    expect(runs.map((r) => `${r.processorName} ${r.dataDate}`).sort()).toEqual([
      `espn_team_roster ${D2}`,
      `nbac_player_boxscore ${D1}`,
      `nbac_player_boxscore ${D2}`,
    ]);
  });

  it('passes the rest of the port through: description, tables, checkpoints and close', async () => {
    expect(checked.description).toBe(w.description);
    expect(checked.dialect).toBe(w.dialect);
    expect(checked.commitsAtomically).toBeUndefined();
    w.commitsAtomically = false;
    expect(checked.commitsAtomically).toBe(false);
    w.outcome = { tries: 3 };
    expect(await checked.commit({ replace: [], append: [] })).toEqual({ tries: 3 });
    await checked.ensureTables([nbacTeamBoxscore]);
    expect(await checked.query('SELECT COUNT(*) AS n FROM nba_raw.nbac_team_boxscore')).toEqual([{ n: 0 }]);
    await checked.checkpoint();
    expect(w.checkpoints).toBe(1);
    await checked.close();
    expect(w.closed).toBe(1);
  });
});
