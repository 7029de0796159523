// The Stage 1 pod program (build/jobs/phase2-date/main.js) as a pod runs it: one JSON line per date with the
// season, stage, job, index, date, attempt, duration, rows and outcome, Cloud Logging's severity on every line,
// each error's stack once, and on the last attempt backoffLimitPerIndex allows, that the retry limit was reached.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_FAILURE_COUNT_ENV, JOB_PLAN_ENV } from '../core/jobs/spec.js';
import { SEVERITY } from '../core/log.js';
import { PROCESSORS } from '../core/pipeline/definition.js';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const POD = join(REPO_ROOT, 'build', 'jobs', 'phase2-date', 'main.js');
const JOB = 'nba-stage1-202122-test0001';
const DATES = ['2021-10-19', '2021-10-20'];

type Line = Record<string, unknown>;
const PHASE12 = PROCESSORS.filter((p) => p.phase === 1 || p.phase === 2);

function runPod(cwd: string, env: Record<string, string>): Promise<{ code: number | null; lines: Line[] }> {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BACKFILL_')));
    const child = spawn(process.execPath, [POD], { cwd, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        lines: out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Line),
      }),
    );
  });
}

describe('the Stage 1 pod logs', () => {
  let ws: Workspace;
  let env: Record<string, string>;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspace();
    const plan = join(ws.dir, 'job-plan.json');
    writeFileSync(plan, JSON.stringify({ jobName: JOB, season: '2021-22', dates: DATES }));
    // The second date's player log fails on every attempt (a source outage): retriable, exit 1.
    writeFileSync(join(ws.dir, 'faults.json'), JSON.stringify({ permanent: [DATES[1]] }));
    env = {
      [JOB_PLAN_ENV]: plan,
      BACKFILL_WAREHOUSE: `duckdb:${join(ws.dir, 'warehouse.duckdb')}`,
      BACKFILL_OBJECTS: `file:${join(ws.dir, 'objects')}`,
      BACKFILL_LOG_DIR: join(ws.dir, 'logs'),
      BACKFILL_FAULTS: join(ws.dir, 'faults.json'),
      BACKFILL_HTTP_BACKOFF_BASE_MS: '0',
    };
  }, 120_000);
  afterAll(() => ws?.remove());

  const dateFields = (index: number, attempt: number) => ({
    service: 'nba-backfill',
    season: '2021-22',
    stage: 'stage1',
    job: JOB,
    index,
    date: DATES[index],
    attempt,
  });

  it('on success: every line graded, and one line for the date with its rows and duration', async () => {
    const { code, lines } = await runPod(ws.dir, { ...env, JOB_COMPLETION_INDEX: '0', [INDEX_FAILURE_COUNT_ENV]: '0' });
    expect(code).toBe(0);
    for (const l of lines) {
      expect(l).toMatchObject(dateFields(0, 1));
      expect(l.severity).toBe({ 30: 'INFO', 40: 'WARNING', 50: 'ERROR' }[l.level as number]);
    }
    const dated = lines.filter((l) => l.outcome !== undefined);
    expect(dated).toHaveLength(1);
    const line = dated[0] as Line;
    expect(line).toMatchObject({
      ...dateFields(0, 1),
      level: 30,
      severity: 'INFO',
      outcome: 'succeeded',
      msg: 'date loaded',
    });
    expect(Number.isInteger(line.durationMs) && (line.durationMs as number) >= 0).toBe(true);
    const byProcessor = line.rowsByProcessor as Record<string, number>;
    expect(Object.keys(byProcessor).sort()).toEqual(PHASE12.map((p) => p.name).sort());
    expect(line.rows).toBe(Object.values(byProcessor).reduce((a, b) => a + b, 0));
    expect(line.rows as number).toBeGreaterThan(0);
  });

  it.each([
    {
      name: 'the first attempt: a retry comes',
      failureCount: '0',
      attempt: 1,
      retryLimitReached: false,
      msg: 'date failed: retriable (attempt 1 of 2), it runs again',
    },
    {
      name: 'the last allowed attempt: the retry limit was reached',
      failureCount: '1',
      attempt: 2,
      retryLimitReached: true,
      msg: 'date failed: retry limit reached (attempt 2 of 2, backoffLimitPerIndex 1); the date is recorded as failed',
    },
  ])('on failure, $name: the stack once, the outcome on the date line', async (c) => {
    const { code, lines } = await runPod(ws.dir, {
      ...env,
      JOB_COMPLETION_INDEX: '1',
      [INDEX_FAILURE_COUNT_ENV]: c.failureCount,
    });
    expect(code).toBe(1);
    for (const l of lines) {
      expect(l).toMatchObject(dateFields(1, c.attempt));
      expect(Object.values(SEVERITY)).toContain(l.severity);
      expect(l.severity).toBe({ 30: 'INFO', 40: 'WARNING', 50: 'ERROR' }[l.level as number]);
    }
    // Each error with its stack exactly once: the failing processor's own line.
    const stacks = lines.filter((l) => (l.err as { stack?: string } | undefined)?.stack);
    expect(stacks).toHaveLength(1);
    const failedProcessor = stacks[0] as Line;
    expect(failedProcessor).toMatchObject({
      msg: 'processor failed',
      severity: 'ERROR',
      processor: expect.any(String),
    });
    expect((failedProcessor.err as { stack: string }).stack).toMatch(/^\w*Error: .*\n\s+at /);
    const dated = lines.filter((l) => l.outcome !== undefined);
    expect(dated).toHaveLength(1);
    const line = dated[0] as Line;
    expect(line).toMatchObject({
      ...dateFields(1, c.attempt),
      level: 50,
      severity: 'ERROR',
      outcome: 'failed',
      permanent: false,
      retryLimitReached: c.retryLimitReached,
      msg: c.msg,
    });
    // Rows of the processors that succeeded before the failure (Phase 1 files); the failed one has none.
    const byProcessor = line.rowsByProcessor as Record<string, number>;
    expect(line.rows).toBe(Object.values(byProcessor).reduce((a, b) => a + b, 0));
    expect(byProcessor).not.toHaveProperty(String(failedProcessor.processor));
    expect(line.err).toBeUndefined();
    expect(Number.isInteger(line.durationMs) && (line.durationMs as number) >= 0).toBe(true);
    expect(line.failures).toEqual(
      expect.arrayContaining([{ processor: failedProcessor.processor, error: expect.any(String) }]),
    );
    expect(lines.filter((l) => l.retryLimitReached === true)).toHaveLength(c.retryLimitReached ? 1 : 0);
  });
});
