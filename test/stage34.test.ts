// Stage 3 and Stage 4 on the real data: the gate stops the run, a later gap stops Stage 3 at its date,
// resume after a fix or a kill gives the tables of an uninterrupted run, validation names what is wrong.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { nbacPlayerBoxscore } from '../core/schema/raw.js';
import { qualifiedName } from '../core/schema/table.js';
import { runStage3 } from '../core/stages/stage3.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';
import {
  copyWorkspace,
  createWorkspaceWithPlans,
  ensureBuilt,
  REPO_ROOT,
  type Workspace,
} from './support/workspace.js';

const range = [
  '--season',
  '2021-22',
  '--season-type',
  'regular',
  '--start-date',
  '2021-10-19',
  '--end-date',
  '2021-11-12',
];
const fast = ['--retry-delay-ms', '0'];

/** Every Phase 3-4 table, ordered, for comparing two runs (one open of the warehouse for all of them). */
async function derivedTables(ws: Workspace): Promise<Record<string, unknown[]>> {
  return ws.withAdapters(async (a) => {
    const out: Record<string, unknown[]> = {};
    for (const t of [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]) {
      out[qualifiedName(t)] = await a.warehouse.query(`SELECT * FROM ${qualifiedName(t)} ORDER BY ALL`);
    }
    return out;
  });
}

/**
 * The range after Stage 1 (`loaded`) and after Stage 3 too (`whole`), each run once through the CLI for the
 * tests below, which work on copies.
 */
let shared: Promise<{ loaded: Workspace; whole: Workspace }> | undefined;
const made: Workspace[] = [];
function loadedRange(): Promise<{ loaded: Workspace; whole: Workspace }> {
  shared ??= (async () => {
    await ensureBuilt();
    const loaded = createWorkspaceWithPlans();
    made.push(loaded);
    const s1 = await loaded.cli(['stage1', ...range, ...fast]);
    expect(s1.code, s1.stdout + s1.stderr).toBe(0);
    const whole = copyWorkspace(loaded);
    made.push(whole);
    const s3 = await whole.cli(['stage3', ...range]);
    expect(s3.code, s3.stdout + s3.stderr).toBe(0);
    return { loaded, whole };
  })();
  return shared;
}
afterAll(() => {
  for (const ws of made) ws.remove();
});

describe('backfill run', () => {
  it('stops at the gate on a Phase 2 gap, listing what is missing and the command to load it', async () => {
    await ensureBuilt();
    const ws = createWorkspaceWithPlans();
    try {
      writeFileSync(join(ws.dir, 'faults.json'), JSON.stringify({ permanent: ['2021-10-27'] }));
      const out = await ws.cli(['run', ...range, ...fast, '--faults', 'faults.json']);
      expect(out.code).toBe(1);
      expect(out.stdout).toMatch(/== quality gate/);
      expect(out.stdout).toMatch(/GATE FAILED/);
      expect(out.stdout).toMatch(/nba_raw\.nbac_player_boxscore .* 2021-10-27/);
      expect(out.stdout).toMatch(/backfill retry --season 2021-22/);
      expect(out.stdout).not.toMatch(/== stage 3/);
      const p34 = await ws.query('SELECT COUNT(*) AS n FROM nba_reference.processor_run_history WHERE phase >= 3');
      expect(p34).toEqual([{ n: 0 }]);

      // After the fix: the retry, then the whole run again, which now goes through every stage.
      expect((await ws.cli(['retry', '--season', '2021-22', ...fast])).code).toBe(0);
      const again = await ws.cli(['run', ...range, ...fast]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/GATE PASSED/);
      expect(again.stdout).toMatch(/== stage 3 2021-22/);
      expect(again.stdout).toMatch(/VALIDATION PASSED/);
      const html = readFileSync(join(ws.dir, '.backfill/logs/reports/validation-2021-22.html'), 'utf8');
      expect(html).toMatch(/PASSED/);
    } finally {
      ws.remove();
    }
  });
});

describe('Stage 3 after the gate', () => {
  let t: TestPipeline;
  const season = getSeason('2021-22');
  let dates: Awaited<ReturnType<typeof selectDates>>;

  beforeAll(async () => {
    t = await openTestPipeline();
    const plan = await readPlan(join(REPO_ROOT, 'plans'), '2021-22');
    dates = selectDates(plan, season, { seasonType: 'regular', startDate: '2021-10-19', endDate: '2021-11-08' });
    for (const d of dates)
      expect((await runPhases1And2(t.adapters, silentLogger(), d.date, { trigger: { command: 't' } })).ok).toBe(true);
  });
  afterAll(async () => t.dispose());

  it('stops at the first blocked date of a gap that appears after the gate, then resumes there and completes', async () => {
    const summaryFile = join(t.dir, 'summary.json');
    const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
    // The gate passes at the start; while Stage 3 runs, the player rows of 2021-10-29 disappear. Date by date,
    // so that the rows go after 2021-10-25 commits (a gap inside a batch: stage3Batches.test.ts).
    const first = await runStage3(ports, silentLogger(), {
      season: '2021-22',
      dates,
      summaryFile,
      batchSize: 1,
      onDate: async (date) => {
        if (date === '2021-10-25') {
          await ports.warehouse.commit({
            replace: [{ table: nbacPlayerBoxscore, date: '2021-10-29', rows: [] }],
            append: [],
          });
        }
      },
    });
    expect(first.gate.passed).toBe(true);
    expect(first.summary).toMatchObject({
      status: 'failed',
      failedDate: '2021-10-29',
      processor: 'player_game_summary',
      check: 'gap_detection',
      completedThrough: '2021-10-28',
    });
    expect(first.summary.error).toMatch(
      /^Analytics BLOCKED: Gap Detected - missing dates in lookback window: 2021-10-29/,
    );
    expect(JSON.parse(readFileSync(summaryFile, 'utf8'))).toEqual(first.summary);

    // The fix: reload the date. Stage 3 resumes at it and never redoes the complete dates before it.
    expect((await runPhases1And2(t.adapters, silentLogger(), '2021-10-29', { trigger: { command: 't' } })).ok).toBe(
      true,
    );
    const second = await runStage3(
      { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) },
      silentLogger(),
      {
        season: '2021-22',
        dates,
        summaryFile,
      },
    );
    expect(second.summary).toMatchObject({
      status: 'succeeded',
      resumedFrom: '2021-10-29',
      completedThrough: '2021-11-08',
    });
    const redone = await t.adapters.warehouse.query(
      `SELECT COUNT(*) AS n FROM nba_reference.processor_run_history
        WHERE phase >= 3 AND data_date < DATE '2021-10-29' GROUP BY processor_name, data_date HAVING COUNT(*) > 1`,
    );
    expect(redone).toEqual([]);
  });

  it('refuses to start when the gate fails, and says why in its summary', async () => {
    await t.adapters.warehouse.commit({
      replace: [{ table: nbacPlayerBoxscore, date: '2021-11-01', rows: [] }],
      append: [],
    });
    const out = await runStage3(t.adapters, silentLogger(), { season: '2021-22', dates });
    expect(out.summary).toMatchObject({ status: 'gate_failed', processed: 0, check: 'phase2_gate' });
    expect(out.summary.error).toMatch(/2021-11-01/);
    expect((await runPhases1And2(t.adapters, silentLogger(), '2021-11-01', { trigger: { command: 't' } })).ok).toBe(
      true,
    );
  });
});

describe('a killed Stage 3', () => {
  it('resumed, leaves the same tables as an uninterrupted run', async () => {
    const { loaded, whole } = await loadedRange();
    const killed = copyWorkspace(loaded);
    try {
      // Kill the process once it has done some dates, mid-way through the range.
      const { spawn } = await import('node:child_process');
      const { CLI } = await import('./support/workspace.js');
      await new Promise<void>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'stage3', ...range], {
          cwd: killed.dir,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          if (/\[stage3 2021-22\] (8|9|1\d)\/\d+ done/.test(d)) child.kill('SIGKILL');
        });
        child.on('close', () => resolve());
      });
      const partial = await killed.query(
        `SELECT COUNT(DISTINCT data_date) AS n FROM nba_reference.processor_run_history WHERE phase >= 3`,
      );
      expect(Number(partial[0]?.n)).toBeGreaterThan(0);
      expect(Number(partial[0]?.n)).toBeLessThan(20);

      const resumed = await killed.cli(['stage3', ...range]);
      expect(resumed.code).toBe(0);
      expect(resumed.stdout).toMatch(/resumed at 2021-1/);
      expect(await derivedTables(killed)).toEqual(await derivedTables(whole));
    } finally {
      killed.remove();
    }
  });
});

describe('validation', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = copyWorkspace((await loadedRange()).whole);
    expect((await ws.cli(['validate', ...range])).code).toBe(0);
  });
  afterAll(() => ws.remove());

  it('fails on a planted NULL, a planted out-of-range value and a planted missing row, naming each', async () => {
    await ws.withAdapters(async ({ warehouse }) => {
      await warehouse.query(
        `UPDATE nba_analytics.player_game_summary SET pts_avg_last_5 = NULL
          WHERE player_id = 201939 AND game_date = DATE '2021-11-08'`,
      );
      await warehouse.query(
        `UPDATE nba_precompute.player_composite_factors SET fatigue_score = 150
          WHERE player_id = 201939 AND cache_date = DATE '2021-11-08'`,
      );
      await warehouse.query(
        `DELETE FROM nba_analytics.team_offense_game_summary WHERE team_abbr = 'BOS' AND game_date = DATE '2021-11-10'`,
      );
    });
    const out = await ws.cli(['validate', ...range, '--report-dir', 'reports']);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/VALIDATION FAILED/);
    const report = JSON.parse(readFileSync(join(ws.dir, 'reports', 'validation-2021-22.json'), 'utf8'));
    const failed = Object.fromEntries(
      report.checks
        .filter((c: { passed: boolean }) => !c.passed)
        .map((c: { name: string; failures: unknown[] }) => [c.name, c.failures]),
    );
    expect(failed.player_summary_critical_fields).toEqual([
      expect.objectContaining({ date: '2021-11-08', key: expect.stringContaining('player_id=201939') }),
    ]);
    expect(failed.fatigue_score_in_range).toEqual([
      expect.objectContaining({ date: '2021-11-08', key: 'player_id=201939', detail: 'fatigue_score = 150.0' }),
    ]);
    expect(failed.two_team_rows_per_game).toEqual([
      expect.objectContaining({ table: 'nba_analytics.team_offense_game_summary', date: '2021-11-10' }),
    ]);
    expect(failed.rows_present).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ table: 'nba_analytics.team_offense_game_summary', date: '2021-11-10' }),
      ]),
    );
    expect(Object.keys(failed).sort()).toEqual(
      [
        'fatigue_score_in_range',
        'player_summary_critical_fields',
        'rows_present',
        'schedule_scores_agree',
        'two_team_rows_per_game',
      ].sort(),
    );
    const md = readFileSync(join(ws.dir, 'reports', 'validation-2021-22.md'), 'utf8');
    expect(md).toMatch(/fatigue_score_in_range/);
    const html = readFileSync(join(ws.dir, 'reports', 'validation-2021-22.html'), 'utf8');
    expect(html).toMatch(/FAILED/);
  });
});
