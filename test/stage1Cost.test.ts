// What keeps a Stage 1 date and planning cheap: the bundled source parsed once per process (and again when its
// file changes), one read for a date's coverage guards, one commit for a season's planning.

import { cpSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { getSeason, SEASON_TYPE_REGULAR } from '../core/pipeline/seasons.js';
import { buildPlan, loadSeasonSchedule } from '../core/plan.js';
import type { Warehouse, WarehouseChange } from '../core/ports/warehouse.js';
import type { Row, SqlValue } from '../core/schema/table.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';
import { REPO_ROOT } from './support/workspace.js';

const log = silentLogger();
const trigger = { command: 'test', stage: 'stage1' };
const DATE = '2021-10-19';
const PLAYER_FILE = join('player_box', 'player_game_logs_2021-22_regular.csv.gz');

/** The real warehouse, with its queries and commits counted. */
function counting(inner: Warehouse): { warehouse: Warehouse; queries: string[]; commits: WarehouseChange[] } {
  const queries: string[] = [];
  const commits: WarehouseChange[] = [];
  const warehouse = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (sql: string, params?: Record<string, SqlValue>): Promise<Row[]> => {
          queries.push(sql);
          return target.query(sql, params);
        };
      if (prop === 'commit')
        return (change: WarehouseChange) => {
          commits.push(change);
          return target.commit(change);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { warehouse, queries, commits };
}

describe('the bundled source keeps a season parsed in the process', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'backfill-source-'));
    cpSync(join(REPO_ROOT, 'data', 'nba', 'player_box'), join(dir, 'player_box'), { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ask = (source: BundledStatsSource) =>
    source.leagueGameLog({
      season: '2021-22',
      seasonType: SEASON_TYPE_REGULAR,
      playerOrTeam: 'P',
      dateFrom: DATE,
      dateTo: DATE,
    });

  it('answers a second date from the rows parsed for the first, and reads a changed file again', async () => {
    const source = new BundledStatsSource(dir);
    const first = (await ask(source)).resultSets[0]?.rowSet;
    expect(first?.length).toBeGreaterThan(0);
    // The same parsed rows: nothing was read or parsed again.
    expect((await ask(source)).resultSets[0]?.rowSet).toBe(first);

    // The file now lacks the date's first row: the next answer is the new file's, not the kept one.
    const file = join(dir, PLAYER_FILE);
    const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    const firstOfDate = lines.findIndex((l) => l.includes(`,${DATE}`));
    writeFileSync(file, gzipSync(lines.filter((_l, i) => i !== firstOfDate).join('\n')));
    utimesSync(file, new Date(2000, 0, 1), new Date(2000, 0, 1));
    const again = (await ask(source)).resultSets[0]?.rowSet;
    expect(again).not.toBe(first);
    expect(again?.length).toBe((first?.length ?? 0) - 1);
  });

  it('derives a roster from the rows of the changed file too', async () => {
    const source = new BundledStatsSource(dir);
    const roster = (await source.teamRoster({ season: '2021-22', teamAbbr: 'MIL', asOf: DATE })).athletes;
    expect(roster.length).toBeGreaterThan(0);
    // Every athlete of the date's roster last appeared on the date (the season's first) with one game.
    expect(roster.every((a) => a.gamesWithTeam === 1 && a.lastAppearance.startsWith(DATE))).toBe(true);
  });
});

describe('a Stage 1 date and planning', () => {
  let t: TestPipeline;
  let planCommits: number;
  beforeAll(async () => {
    t = await openTestPipeline();
    const c = counting(t.adapters.warehouse);
    await loadSeasonSchedule({ ...t.adapters, warehouse: c.warehouse }, log, getSeason('2021-22'), trigger);
    planCommits = c.commits.length;
  });
  afterAll(() => t.dispose());

  it('planning commits a season once, with every date of it', async () => {
    expect(planCommits).toBe(1);
    const plan = await buildPlan(t.adapters, getSeason('2021-22'));
    expect(plan.totals).toEqual({ dates: 210, games: 1317 });
  });

  it.each([
    { name: 'a first load', loads: 1 },
    { name: 'a load over rows the tables hold', loads: 2 },
  ])('$name: the coverage guards of the date read the warehouse once', async ({ loads }) => {
    for (let i = 1; i <= loads; i++) {
      const c = counting(t.adapters.warehouse);
      const result = await runPhases1And2({ ...t.adapters, warehouse: c.warehouse }, log, DATE, {
        trigger,
        skipDownstreamTrigger: true,
      });
      expect(result.failures).toEqual([]);
      if (i < loads) continue;
      const guards = c.queries.filter((q) => /nbac_player_boxscore|espn_team_roster/.test(q));
      expect(guards).toHaveLength(1);
      expect(guards[0]).toMatch(/nbac_gamebook_player_stats[\s\S]*nbac_team_boxscore[\s\S]*espn_team_roster/);
      expect(c.commits).toHaveLength(1);
    }
  });
});
