// Stage 3 in batches keeps date-by-date semantics: the default batch size and --batch-size 1 give the same
// Phase 3-4 tables and run history, stop on the same date with the same message at a check failure or an
// injected processor error inside a batch, and resume there to the same tables.

import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapters } from '../core/adapters/index.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runPhases1And2 } from '../core/dateRun.js';
import type { IsoDate } from '../core/dates.js';
import { silentLogger } from '../core/log.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import type { WarehouseChange } from '../core/ports/warehouse.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES, playerGameSummary } from '../core/schema/derived.js';
import { nbacPlayerBoxscore, processorRunHistory } from '../core/schema/raw.js';
import { qualifiedName } from '../core/schema/table.js';
import { runStage3, STAGE3_BATCH_SIZE, type Stage3Summary } from '../core/stages/stage3.js';
import { tableHashes } from './support/hashes.js';
import { LOADED_FIXTURE, loadedFolder } from './support/loaded.js';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const START = '2021-10-19';
const END = '2021-12-06';
const selection = ['--season', '2021-22', '--season-type', 'regular', '--start-date', START, '--end-date', END];
const DERIVED = [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES];
/** The two ways compared: date by date, and the default batches. */
const SIZES = [1, STAGE3_BATCH_SIZE] as const;

function copyOf(base: Workspace): Workspace {
  const ws = createWorkspace();
  cpSync(join(base.dir, 'plans'), join(ws.dir, 'plans'), { recursive: true });
  cpSync(join(base.dir, '.backfill'), join(ws.dir, '.backfill'), { recursive: true });
  return ws;
}

/** Every Phase 3-4 table's hash, and the Phase 3-4 run history without what differs by run (ids, times). */
async function snapshot(a: Adapters): Promise<{ tables: Record<string, string>; runs: unknown[] }> {
  const runs = await a.warehouse.query(
    `SELECT * EXCLUDE (run_id, started_at, finished_at, data_date), CAST(data_date AS VARCHAR) AS data_date
       FROM nba_reference.processor_run_history
      WHERE phase >= 3 ORDER BY data_date, phase, processor_name, status`,
  );
  return { tables: await tableHashes(a, DERIVED), runs };
}

describe('Stage 3 in batches', () => {
  let base: Workspace;
  let dates: IsoDate[];
  /** Date by date over the whole selection: the tables every other run must end with. */
  let whole: Awaited<ReturnType<typeof snapshot>>;
  const made: Workspace[] = [];
  const copy = () => {
    const ws = copyOf(base);
    made.push(ws);
    return ws;
  };
  /**
   * The fourth date of the first batch of the default size (batches grow 1, 2, 4, ... up to it): inside a
   * batch, neither its first nor its last, after earlier batches.
   */
  const insideBatch = () => {
    let start = 0;
    for (let size = 1; size < STAGE3_BATCH_SIZE; size = Math.min(STAGE3_BATCH_SIZE, 2 * size)) start += size;
    return dates[start + 3] as IsoDate;
  };

  /**
   * A copy of the base where Stage 3 ran date by date through the day before `insideBatch()`: where a run of
   * `--batch-size 1` is when it reaches that date, shared by the stop cases (built on first use).
   */
  let beforeStop: Workspace | undefined;
  const copyBeforeStop = async () => {
    if (!beforeStop) {
      const ws = copy();
      const plan = await readPlan(join(ws.dir, 'plans'), '2021-22');
      const planDates = selectDates(plan, getSeason('2021-22'), { seasonType: 'regular', startDate: START });
      const r = await ws.withAdapters((a) =>
        runStage3(a, silentLogger(), {
          season: '2021-22',
          dates: planDates.slice(0, dates.indexOf(insideBatch())),
          batchSize: 1,
        }),
      );
      expect(r.summary).toMatchObject({
        status: 'succeeded',
        completedThrough: dates[dates.indexOf(insideBatch()) - 1],
      });
      beforeStop = ws;
    }
    const ws = copyOf(beforeStop);
    made.push(ws);
    return ws;
  };

  beforeAll(async () => {
    await ensureBuilt();
    base = createWorkspace();
    cpSync(join(REPO_ROOT, 'plans'), join(base.dir, 'plans'), { recursive: true });
    // Phases 1-2 from the fixture the boundary tests share (built once per version of core/ and data/, kept
    // between runs), without its Phase 3: what `backfill stage1` leaves for Stage 3 over the selection.
    cpSync(await loadedFolder(LOADED_FIXTURE), join(base.dir, '.backfill'), { recursive: true });
    await base.withAdapters(async (a) => {
      for (const table of [processorRunHistory, ...ANALYTICS_TABLES]) {
        await a.warehouse.query(
          `DELETE FROM ${qualifiedName(table)}${table === processorRunHistory ? ' WHERE phase >= 3' : ''}`,
        );
      }
      const [left] = await a.warehouse.query(
        `SELECT (SELECT COUNT(*) FROM nba_reference.processor_run_history WHERE phase >= 3)
              + (SELECT COUNT(*) FROM nba_analytics.player_game_summary) AS n`,
      );
      expect(left?.n).toBe(0);
    });
    const plan = await readPlan(join(base.dir, 'plans'), '2021-22');
    dates = selectDates(plan, getSeason('2021-22'), { seasonType: 'regular', startDate: START, endDate: END }).map(
      (d) => d.date,
    );
  }, 240_000);

  afterAll(() => {
    for (const ws of made) ws.remove();
    base?.remove();
  });

  it('the default batch size and --batch-size 1 give the same Phase 3-4 tables and run history', async () => {
    // Several batches, the last one short, and the stop cases below fall inside one.
    expect(STAGE3_BATCH_SIZE).toBeGreaterThan(4);
    expect(dates.indexOf(insideBatch())).toBeGreaterThan(STAGE3_BATCH_SIZE / 2);
    expect(dates.indexOf(insideBatch())).toBeLessThan(dates.length - 4);
    const got: Record<number, Awaited<ReturnType<typeof snapshot>>> = {};
    for (const size of SIZES) {
      const ws = copy();
      const out = await ws.cli(['stage3', ...selection, '--batch-size', String(size)]);
      expect(out.code, out.stdout + out.stderr).toBe(0);
      // Progress and the summary still count dates.
      expect(out.stderr).toContain(`[stage3 2021-22] ${dates.length}/${dates.length} done`);
      expect(out.stdout).toContain(`${dates.length} date(s) processed`);
      got[size] = await ws.withAdapters(snapshot);
    }
    whole = got[1] as Awaited<ReturnType<typeof snapshot>>;
    expect(whole.runs).toHaveLength(6 * dates.length);
    expect(got[STAGE3_BATCH_SIZE]).toEqual(whole);
  }, 240_000);

  it('a check failure inside a batch: both sizes stop on the same date with the same message, write nothing after it, and resume there', async () => {
    const gapDate = insideBatch();
    const stopped: { summary: Stage3Summary; after: unknown[]; snap: Awaited<ReturnType<typeof snapshot>> }[] = [];
    for (const batchSize of SIZES) {
      // Date by date, the dates before the stop are those of every run: shared (see beforeStop).
      const ws = batchSize === 1 ? await copyBeforeStop() : copy();
      const plan = await readPlan(join(ws.dir, 'plans'), '2021-22');
      const planDates = selectDates(plan, getSeason('2021-22'), {
        seasonType: 'regular',
        startDate: START,
        endDate: END,
      });
      stopped.push(
        await ws.withAdapters(async (a) => {
          const ports = { ...a, warehouse: new CheckedWarehouse(a.warehouse) };
          // The gate passes; then, before any date runs, the player rows of one date disappear.
          const first = await runStage3(ports, silentLogger(), {
            season: '2021-22',
            dates: planDates,
            batchSize,
            onGate: async () => {
              await ports.warehouse.commit({
                replace: [{ table: nbacPlayerBoxscore, date: gapDate, rows: [] }],
                append: [],
              });
            },
          });
          const after = await a.warehouse.query(
            `SELECT processor_name, CAST(data_date AS VARCHAR) AS d FROM nba_reference.processor_run_history
              WHERE phase >= 3 AND data_date > DATE '${gapDate}'
             UNION ALL
             SELECT 'player_daily_cache', CAST(cache_date AS VARCHAR) FROM nba_precompute.player_daily_cache
              WHERE cache_date > DATE '${gapDate}'`,
          );
          const snap = await snapshot(a);
          // The fix: the date loaded again; the same Stage 3 resumes at it and completes.
          expect((await runPhases1And2(a, silentLogger(), gapDate, { trigger: { command: 't' } })).ok).toBe(true);
          const second = await runStage3({ ...a, warehouse: new CheckedWarehouse(a.warehouse) }, silentLogger(), {
            season: '2021-22',
            dates: planDates,
            batchSize,
          });
          expect(second.summary).toMatchObject({ status: 'succeeded', resumedFrom: gapDate, completedThrough: END });
          expect((await snapshot(a)).tables).toEqual(whole.tables);
          return { summary: first.summary, after, snap };
        }),
      );
    }
    for (const s of stopped) {
      expect(s.summary).toMatchObject({
        status: 'failed',
        failedDate: gapDate,
        processor: 'player_game_summary',
        check: 'gap_detection',
        completedThrough: dates[dates.indexOf(gapDate) - 1],
        datesComplete: dates.indexOf(gapDate),
      });
      expect(s.summary.error).toMatch(
        new RegExp(`^Analytics BLOCKED: Gap Detected - missing dates in lookback window: ${gapDate}`),
      );
      expect(s.after).toEqual([]);
    }
    const [byDate, batched] = stopped;
    expect(batched?.summary.error).toBe(byDate?.summary.error);
    expect(batched?.snap).toEqual(byDate?.snap);
  }, 240_000);

  it('an injected processor error inside a batch: both sizes stop on the same date with the same message and rows, and resume there once it is removed', async () => {
    const faultDate = insideBatch();
    const stopped: { summary: Stage3Summary; snap: Awaited<ReturnType<typeof snapshot>> }[] = [];
    for (const size of SIZES) {
      const ws = size === 1 ? await copyBeforeStop() : copy();
      writeFileSync(
        join(ws.dir, 'faults.json'),
        JSON.stringify({ processorErrors: [{ date: faultDate, processor: 'player_daily_cache' }] }),
      );
      const args = ['stage3', ...selection, '--batch-size', String(size)];
      const out = await ws.cli([...args, '--faults', 'faults.json']);
      expect(out.code, out.stdout + out.stderr).toBe(1);
      expect(out.stdout).toContain(`Stage 3 for 2021-22 STOPPED at ${faultDate}: player_daily_cache (error)`);
      expect(out.stdout).toContain(`injected fault: player_daily_cache throws on ${faultDate}`);
      const summaryPath = join(ws.dir, /^summary: (\S+)$/m.exec(out.stdout)?.[1] ?? 'no summary line');
      const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Stage3Summary;
      stopped.push({ summary, snap: await ws.withAdapters(snapshot) });

      const resumed = await ws.cli(args);
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain(`resumed at ${faultDate}`);
      expect((await ws.withAdapters(snapshot)).tables).toEqual(whole.tables);
    }
    for (const { summary, snap } of stopped) {
      expect(summary).toMatchObject({
        status: 'failed',
        failedDate: faultDate,
        processor: 'player_daily_cache',
        check: 'error',
        error: `injected fault: player_daily_cache throws on ${faultDate}`,
        completedThrough: dates[dates.indexOf(faultDate) - 1],
      });
      // The date's Phase 3 runs committed, its cache run failed, nothing after it ran.
      const onDate = snap.runs.filter((r) => (r as { data_date: string }).data_date === faultDate);
      expect(
        onDate.map((r) => [(r as { processor_name: string }).processor_name, (r as { status: string }).status]),
      ).toEqual([
        ['player_game_summary', 'success'],
        ['team_defense_game_summary', 'success'],
        ['team_offense_game_summary', 'success'],
        ['player_daily_cache', 'failed'],
      ]);
      expect(snap.runs.some((r) => (r as { data_date: string }).data_date > faultDate)).toBe(false);
    }
    expect(stopped[1]?.snap).toEqual(stopped[0]?.snap);
  }, 300_000);

  it.each([
    { batchSize: 1, sizes: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] },
    { batchSize: 2, sizes: [1, 2, 2, 2, 2, 1] },
    { batchSize: 4, sizes: [1, 2, 4, 3] },
    { batchSize: 32, sizes: [1, 2, 4, 3] },
  ])(
    'batches grow 1, 2, 4, ... up to --batch-size $batchSize: ten dates commit as $sizes',
    async ({ batchSize, sizes }) => {
      const ws = copy();
      const plan = await readPlan(join(ws.dir, 'plans'), '2021-22');
      const planDates = selectDates(plan, getSeason('2021-22'), { seasonType: 'regular', startDate: START }).slice(
        0,
        10,
      );
      const commits: number[] = [];
      await ws.withAdapters(async (a) => {
        const counted = new Proxy(a.warehouse, {
          get(target, prop) {
            if (prop === 'commit')
              return (change: WarehouseChange) => {
                commits.push(change.replace.filter((r) => r.table === playerGameSummary).length);
                return target.commit(change);
              };
            const value = Reflect.get(target, prop);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        const r = await runStage3({ ...a, warehouse: counted }, silentLogger(), {
          season: '2021-22',
          dates: planDates,
          batchSize,
        });
        expect(r.summary).toMatchObject({ status: 'succeeded', processed: 10, datesComplete: 10 });
        expect(r.perDateMs).toHaveLength(10);
      });
      expect(commits).toEqual(sizes);
    },
  );

  it.each([
    { name: 'zero', value: '0' },
    { name: 'not a number', value: 'many' },
    { name: 'a fraction', value: '2.5' },
    { name: 'above a season', value: '401' },
  ])('--batch-size $name is refused with exit 2, naming the flag', async ({ value }) => {
    const out = await base.cli(['stage3', ...selection, '--batch-size', value]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`--batch-size ${value}: must be a whole number from 1 to 400`);
  });

  it('a fault file naming a processor that is not a Stage 3 one is refused with exit 2', async () => {
    writeFileSync(
      join(base.dir, 'bad-faults.json'),
      JSON.stringify({ processorErrors: [{ date: dates[3], processor: 'nbac_schedule' }] }),
    );
    const out = await base.cli(['stage3', ...selection, '--faults', 'bad-faults.json']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/fault file bad-faults\.json: processorErrors\.0\.processor: /);
  });
});
