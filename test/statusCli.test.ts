// `backfill status` through the CLI on the bundled data: a partial backfill (Stage 1 part done with a failed date,
// Stage 3 part way) in both formats, while a Stage 3 holds the warehouse (from its snapshot), and when it cannot.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspaceWithPlans, ensureBuilt, startCli, type Workspace } from './support/workspace.js';

const SEASON = '2021-22';
const RANGE = [
  '--season',
  SEASON,
  '--season-type',
  'regular',
  '--start-date',
  '2021-10-19',
  '--end-date',
  '2021-11-01',
];
const FLAGS = RANGE.join(' ');
const FAILED = '2021-10-25';

interface StatusJson {
  seasons: {
    season: string;
    stage1: Record<string, unknown>;
    gate: Record<string, unknown>;
    stage3: Record<string, unknown>;
    validation: Record<string, unknown>;
    next: string | null;
    reason: string;
    snapshot: { file: string; writtenAt: string; pid: number; command: string } | null;
  }[];
}

describe('backfill status', () => {
  let ws: Workspace;
  const status = async (args: readonly string[] = RANGE) => {
    const out = await ws.cli(['status', ...args, '--format', 'json']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    return JSON.parse(out.stdout) as StatusJson;
  };

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
  });
  afterAll(() => ws?.remove());

  it('on a fresh workspace: every season with a plan, nothing run, and no warehouse created', async () => {
    const out = await status([]);
    expect(out.seasons.map((s) => s.season)).toEqual(['2021-22', '2022-23', '2023-24', '2024-25']);
    expect(out.seasons[0]).toMatchObject({
      stage1: { loaded: 0, failed: 0, neverRun: out.seasons[0]?.stage1.dates },
      gate: { passed: null },
      next: `backfill stage1 --season ${SEASON} --season-type all`,
      snapshot: null,
    });
    expect(existsSync(join(ws.dir, '.backfill', 'warehouse.duckdb'))).toBe(false);
  });

  it('refuses a format other than table or json (exit 2, naming the choices)', async () => {
    const out = await ws.cli(['status', '--format', 'yaml']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/'yaml' is invalid.*choices are table, json/);
  });

  it('a partial backfill: a failed date in Stage 1, Stage 3 part way and blocked past the gap, as JSON', async () => {
    writeFileSync(join(ws.dir, 'faults.json'), JSON.stringify({ permanent: [FAILED] }));
    const s1 = await ws.cli(['--faults', join(ws.dir, 'faults.json'), 'stage1', ...RANGE, '--retry-delay-ms', '0']);
    expect(s1.code).toBe(1);
    // Past the failed date the gate of the selection passes, but Phase 4's lookback finds the gap: blocked.
    const blocked = await ws.cli(['stage3', ...RANGE, '--start-date', '2021-10-26']);
    expect(blocked.stdout).toContain('STOPPED at 2021-10-26: player_daily_cache (gap_detection)');
    const s3 = await ws.cli(['stage3', ...RANGE, '--end-date', '2021-10-24']);
    expect(s3.code).toBe(0);

    const [season, ...others] = (await status()).seasons;
    expect(others).toEqual([]);
    expect(season).toEqual({
      season: SEASON,
      selection: { seasonType: 'regular', startDate: '2021-10-19', endDate: '2021-11-01' },
      stage1: { dates: 14, loaded: 13, failed: 1, failedDates: [FAILED], neverRun: 0, running: false },
      gate: { passed: false, missingDates: [FAILED] },
      stage3: {
        completeThrough: '2021-10-24',
        remaining: 8,
        running: false,
        stale: [],
        lastFailure: {
          date: '2021-10-26',
          processor: 'player_daily_cache',
          check: 'gap_detection',
          error: expect.stringMatching(/^Precompute BLOCKED: Gap Detected - missing dates in lookback window: /),
        },
      },
      validation: { passed: null, report: null },
      next: `backfill retry --season ${SEASON}`,
      reason: `1 date failed in Stage 1 (${FAILED}): fix the cause, then retry them`,
      snapshot: null,
    });
  });

  it('the same partial backfill as a table', async () => {
    const error = (await status()).seasons[0]?.stage3.lastFailure as { error: string };
    const out = await ws.cli(['status', ...RANGE]);
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(
      [
        `${SEASON} (regular, 2021-10-19..2021-11-01)`,
        `  stage 1     14 dates: 13 loaded, 1 failed (${FAILED}), 0 never run`,
        `  gate        FAILED: 1 date(s) incomplete (${FAILED})`,
        '  stage 3     complete through 2021-10-24, 8 remaining',
        `              last failure 2021-10-26: player_daily_cache (gap_detection): ${error.error}`,
        '  validation  not run',
        `  next        backfill retry --season ${SEASON}`,
        `              1 date failed in Stage 1 (${FAILED}): fix the cause, then retry them`,
        '',
      ].join('\n'),
    );
  });

  it('while another process holds the warehouse and wrote no snapshot: an error naming the file and the lock', async () => {
    await ws.withAdapters(async () => {
      const out = await ws.cli(['status', ...RANGE]);
      expect(out.code).toBe(1);
      expect(out.stdout).toBe('');
      expect(out.stderr).toContain(
        `the warehouse ${join(ws.dir, '.backfill', 'warehouse.duckdb')} is locked by another process (PID ${process.pid}) and .backfill/logs/status/${SEASON}.json was written by PID `,
      );
      expect(out.stderr).toContain('not by the process holding the lock');
    });
  });

  it('while stage3 runs: from its snapshot, which says it is running; from the warehouse once it ends, the blocked date done', async () => {
    const retry = await ws.cli(['retry', '--season', SEASON, '--retry-delay-ms', '0']);
    expect(retry.code).toBe(0);
    expect((await status()).seasons[0]).toMatchObject({
      gate: { passed: true },
      next: `backfill stage3 ${FLAGS}`,
    });

    const stage3 = startCli(ws.dir, ['stage3', ...RANGE]);
    await stage3.waitForStderr(/\[stage3 2021-22\] \d+\/14 done/);
    // Frozen while it holds the warehouse, so that status meets the lock whatever the machine's speed.
    stage3.child.kill('SIGSTOP');
    let during: StatusJson;
    let table: Awaited<ReturnType<Workspace['cli']>>;
    try {
      during = await status();
      table = await ws.cli(['status', ...RANGE]);
    } finally {
      stage3.child.kill('SIGCONT');
    }
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(
      `The warehouse is held by a running command (PID ${stage3.child.pid}: backfill stage3 ${FLAGS}); showing the status snapshot it wrote.`,
    );
    expect(table.stdout).toMatch(/stage 3 {5}complete through .*; RUNNING now/);
    const [season] = during.seasons;
    expect(season?.snapshot).toMatchObject({
      file: `.backfill/logs/status/${SEASON}.json`,
      pid: stage3.child.pid,
      command: `backfill stage3 ${FLAGS}`,
    });
    expect(season).toMatchObject({
      stage1: { loaded: 14, failed: 0 },
      gate: { passed: true },
      stage3: { running: true },
      next: null,
      reason: `\`backfill stage3 ${FLAGS}\` (pid ${stage3.child.pid}) is running Stage 3 for ${SEASON}: wait for it to end`,
    });
    expect(season?.stage3.remaining).toBeGreaterThan(0);
    expect((await stage3.done).code).toBe(0);

    const after = (await status()).seasons[0];
    expect(after).toMatchObject({
      stage3: { completeThrough: '2021-11-01', remaining: 0, running: false, stale: [], lastFailure: null },
      next: `backfill validate ${FLAGS}`,
      snapshot: null,
    });
  });

  it('after validation: the report, and nothing to do', async () => {
    expect((await ws.cli(['validate', ...RANGE])).code).toBe(0);
    expect((await status()).seasons[0]).toMatchObject({
      validation: { passed: true, report: `.backfill/logs/reports/validation-${SEASON}.json` },
      next: null,
      reason: `nothing to do: every stage of ${SEASON} is done and validation passed`,
    });
  });
});
