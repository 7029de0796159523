// Stage 3 gives bit-identical Phase 3-4 tables however its dates were split across runs.

import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { qualifiedName } from '../core/schema/table.js';
import { runStage3, STAGE3_CHECKPOINT_DATES } from '../core/stages/stage3.js';
import { tableHashes } from './support/hashes.js';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const START = '2021-10-19';
const END = '2021-11-24';
/** Phase 4 of the dates from here is computed again over inputs stored in another order. */
const RECOMPUTE_FROM = '2021-11-12';
const selection = ['--season', '2021-22', '--season-type', 'regular', '--start-date', START];

/** A workspace holding a copy of `base`'s warehouse and plans after Stage 1. */
function copyOf(base: Workspace): Workspace {
  const ws = createWorkspace();
  cpSync(join(base.dir, 'plans'), join(ws.dir, 'plans'), { recursive: true });
  cpSync(join(base.dir, '.backfill'), join(ws.dir, '.backfill'), { recursive: true });
  return ws;
}

async function stage3Through(ws: Workspace, end: string): Promise<void> {
  const out = await ws.cli(['stage3', ...selection, '--end-date', end]);
  expect(out.code, out.stdout + out.stderr).toBe(0);
}

describe('Stage 3 split across runs', () => {
  let base: Workspace;
  /** `base` after one uninterrupted Stage 3 through END. */
  let whole: Workspace;
  let uninterrupted: Record<string, string>;

  beforeAll(async () => {
    await ensureBuilt();
    base = createWorkspace();
    cpSync(join(REPO_ROOT, 'plans'), join(base.dir, 'plans'), { recursive: true });
    const out = await base.cli(['stage1', ...selection, '--end-date', END, '--retry-delay-ms', '0']);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    whole = copyOf(base);
    await stage3Through(whole, END);
    uninterrupted = await whole.withAdapters((a) => tableHashes(a, [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]));
  });

  afterAll(() => {
    base?.remove();
    whole?.remove();
  });

  it.each([
    { name: 'one stop early in the season (bootstrap period)', stops: ['2021-10-24'] },
    { name: 'one stop mid-window', stops: ['2021-11-15'] },
    { name: 'three stops', stops: ['2021-10-30', '2021-11-09', '2021-11-19'] },
  ])('$name: every Phase 3-4 table hashes as in the uninterrupted run', async ({ stops }) => {
    const ws = copyOf(base);
    try {
      for (const stop of [...stops, END]) await stage3Through(ws, stop);
      const split = await ws.withAdapters((a) => tableHashes(a, [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]));
      expect(split).toEqual(uninterrupted);
    } finally {
      ws.remove();
    }
  });

  /** Stage 3 over the first `n` dates, counting the warehouse's checkpoints. */
  async function checkpointsOver(n: number, checkpointEvery?: number): Promise<number> {
    const ws = copyOf(base);
    try {
      const season = getSeason('2021-22');
      const plan = await readPlan(join(ws.dir, 'plans'), '2021-22');
      const dates = selectDates(plan, season, { seasonType: 'regular', startDate: START, endDate: END }).slice(0, n);
      expect(dates).toHaveLength(n);
      let checkpoints = 0;
      await ws.withAdapters(async (a) => {
        const counted = new Proxy(a.warehouse, {
          get(target, prop) {
            if (prop === 'checkpoint')
              return () => {
                checkpoints += 1;
                return target.checkpoint();
              };
            const value = Reflect.get(target, prop);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        const result = await runStage3({ ...a, warehouse: counted }, silentLogger(), {
          season: '2021-22',
          dates,
          ...(checkpointEvery === undefined ? {} : { checkpointEvery }),
        });
        expect(result.summary.status).toBe('succeeded');
      });
      return checkpoints;
    } finally {
      ws.remove();
    }
  }

  it.each([
    { dates: 9, checkpoints: 1 },
    { dates: 10, checkpoints: 2 },
    { dates: 11, checkpoints: 2 },
    { dates: 20, checkpoints: 3 },
  ])(
    'Stage 3 over $dates dates, checkpointing every 10, checkpoints $checkpoints time(s): at each 10th date and at its end',
    async (c) => {
      expect(await checkpointsOver(c.dates, 10)).toBe(c.checkpoints);
    },
  );

  it('checkpoints every 90 dates by default: over fewer, only at its end', async () => {
    // Half a season in the WAL at most; more often costs more (each checkpoint rewrites the tables' last row groups).
    expect(STAGE3_CHECKPOINT_DATES).toBe(90);
    expect(await checkpointsOver(12)).toBe(1);
  });

  it('Phase 4 does not depend on the physical order of its inputs', async () => {
    // The same Phase 3 rows stored in reverse order (as a re-run of earlier dates, a vacuum or a parallel scan
    // may leave them), then Phase 4 of the last dates computed again: order-dependent float aggregates
    // (STDDEV_SAMP, AVG of doubles) would change in the last bits.
    const ws = copyOf(whole);
    try {
      await ws.withAdapters(async (a) => {
        for (const t of ANALYTICS_TABLES) {
          const name = qualifiedName(t);
          await a.warehouse.query(`CREATE TABLE shuffled AS SELECT * FROM ${name} ORDER BY ALL DESC`);
          await a.warehouse.query(`DELETE FROM ${name}`);
          await a.warehouse.query(`INSERT INTO ${name} SELECT * FROM shuffled ORDER BY ALL DESC`);
          await a.warehouse.query('DROP TABLE shuffled');
        }
        await a.warehouse.query(
          `DELETE FROM nba_reference.processor_run_history WHERE phase = 4 AND data_date >= DATE '${RECOMPUTE_FROM}'`,
        );
      });
      const out = await ws.cli(['stage3', ...selection, '--end-date', END]);
      expect(out.stdout).toMatch(new RegExp(`resumed at ${RECOMPUTE_FROM}`));
      const again = await ws.withAdapters((a) => tableHashes(a, PRECOMPUTE_TABLES));
      expect(again).toEqual(
        Object.fromEntries(PRECOMPUTE_TABLES.map((t) => [qualifiedName(t), uninterrupted[qualifiedName(t)]])),
      );
    } finally {
      ws.remove();
    }
  });
});
