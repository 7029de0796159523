// The Stage 3 pod's program (jobs/phase3-runner): its season from the environment, its summary written to
// the termination message path, and the exit code Kubernetes sees.

import { spawn } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const RUNNER = join(REPO_ROOT, 'build', 'jobs', 'phase3-runner', 'main.js');

function runRunner(cwd: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BACKFILL_')));
    const child = spawn(process.execPath, [RUNNER], {
      cwd,
      env: { ...clean, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('jobs/phase3-runner', () => {
  let ws: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspace();
    cpSync(join(REPO_ROOT, 'plans'), join(ws.dir, 'plans'), { recursive: true });
  });
  afterAll(() => ws?.remove());

  it('exits 2 and says why when BACKFILL_SEASON is not set', async () => {
    const out = await runRunner(ws.dir, {});
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/BACKFILL_SEASON is not set/);
  });

  it('runs stage3 for BACKFILL_SEASON and leaves its summary at BACKFILL_SUMMARY_FILE', async () => {
    const summaryFile = join(ws.dir, 'termination-log');
    // Nothing loaded yet: the gate fails, Stage 3 refuses to start and says so in its summary.
    const out = await runRunner(ws.dir, {
      BACKFILL_SEASON: '2021-22',
      BACKFILL_SEASON_TYPE: 'regular',
      BACKFILL_SUMMARY_FILE: summaryFile,
    });
    expect(out.code).toBe(1);
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ status: 'gate_failed', season: '2021-22', dates: 165, check: 'phase2_gate' });
  });
});
