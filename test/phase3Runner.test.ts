// The Stage 3 pod's program (jobs/phase3-runner): its season from the environment, its summary written to
// the termination message path, the exit code Kubernetes sees, and its JSON lines (one per date) on stdout.

import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStage3Job, LOG_DIR_ENV, LOG_FILE_ENV } from '../core/jobs/spec.js';
import { SEVERITY } from '../core/log.js';
import { formatPlan, readPlan } from '../core/plan.js';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const RUNNER = join(REPO_ROOT, 'build', 'jobs', 'phase3-runner', 'main.js');

function runRunner(
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BACKFILL_')));
    const child = spawn(process.execPath, [RUNNER], {
      cwd,
      env: { ...clean, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
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

describe('the Stage 3 pod logs, with the env of the Job the controller creates', () => {
  type Line = Record<string, unknown>;
  let ws: Workspace;
  let out: { code: number | null; stdout: string; stderr: string };
  let lines: Line[];
  let human: string[];
  let jobName: string;
  // Six real dates are loaded; the plan Stage 3 runs leaves out the fourth, whose player rows then vanish: the
  // gate (over the plan's dates) passes, and the fifth date's lookback window has a gap, so Stage 3 runs three
  // dates and stops at the fourth of its plan.
  const LOADED = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22', '2021-10-23', '2021-10-24'];
  const PLANNED = LOADED.filter((d) => d !== '2021-10-22');

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspace();
    const full = await readPlan(join(REPO_ROOT, 'plans'), '2021-22');
    const writePlan = (dates: readonly string[]) => {
      const kept = full.dates.filter((d) => dates.includes(d.date));
      const totals = { dates: kept.length, games: kept.reduce((n, d) => n + d.games, 0) };
      writeFileSync(join(ws.dir, 'plans', '2021-22.json'), formatPlan({ ...full, totals, dates: kept }));
    };
    cpSync(join(REPO_ROOT, 'plans'), join(ws.dir, 'plans'), { recursive: true });
    writePlan(LOADED);
    const selection = ['--season', '2021-22', '--season-type', 'regular'];
    expect((await ws.cli(['stage1', ...selection, '--retry-delay-ms', '0'])).code).toBe(0);
    writePlan(PLANNED);
    const gap = "DELETE FROM nba_raw.nbac_player_boxscore WHERE game_date = DATE '2021-10-22'";
    expect((await ws.cli(['query', gap, '--write'])).code).toBe(0);

    // The pod's environment as the Job sets it; only the paths of the pod's filesystem point into the workspace.
    const job = buildStage3Job({ season: '2021-22', dates: PLANNED });
    jobName = job.metadata.name;
    // The downward API: the only field the Job's env takes from the pod is its job-name label.
    const fromPod = (path: string) => {
      expect(path).toBe("metadata.labels['job-name']");
      return jobName;
    };
    const container = job.spec.template.spec.containers[0];
    const env = Object.fromEntries(
      (container?.env ?? []).map((e) => [e.name, e.valueFrom ? fromPod(e.valueFrom.fieldRef.fieldPath) : e.value]),
    );
    expect(env[LOG_FILE_ENV]).toBe('/dev/stdout');
    out = await runRunner(ws.dir, {
      ...env,
      [LOG_DIR_ENV]: join(ws.dir, 'pod-logs'),
      BACKFILL_SUMMARY_FILE: join(ws.dir, 'termination-log'),
    });
    const all = out.stdout.split('\n').filter(Boolean);
    lines = all.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
    human = all.filter((l) => !l.startsWith('{'));
  }, 240_000);
  afterAll(() => ws?.remove());

  it('exits 1, its progress for people still on stdout between the JSON lines', () => {
    expect(out.code).toBe(1);
    expect(human.join('\n')).toMatch(/Stage 3 for 2021-22 STOPPED at 2021-10-23: player_game_summary/);
    expect(human.at(-1)).toBe(`summary: ${join(ws.dir, 'termination-log')}`);
  });

  it("grades every JSON line with Cloud Logging's severity", () => {
    expect(lines.length).toBeGreaterThan(PLANNED.length);
    for (const l of lines) {
      expect(l.service).toBe('nba-backfill');
      expect(l.severity).toBe({ 30: 'INFO', 40: 'WARNING', 50: 'ERROR' }[l.level as number]);
      expect(Object.values(SEVERITY)).toContain(l.severity);
    }
  });

  it.each([
    { name: 'the first date', index: 0, outcome: 'succeeded', severity: 'INFO' },
    { name: 'the second date', index: 1, outcome: 'succeeded', severity: 'INFO' },
    { name: 'the third date', index: 2, outcome: 'succeeded', severity: 'INFO' },
    { name: 'the date with a gap in its window', index: 3, outcome: 'failed', severity: 'ERROR' },
  ])('one line for $name: season, stage, job, index, date, attempt, duration, rows, outcome', (c) => {
    const dated = lines.filter((l) => l.outcome !== undefined);
    expect(dated.map((l) => l.date)).toEqual(PLANNED.slice(0, 4));
    const line = dated[c.index] as Line;
    expect(line).toMatchObject({
      season: '2021-22',
      stage: 'stage3',
      job: jobName,
      index: c.index,
      date: PLANNED[c.index],
      attempt: 1,
      outcome: c.outcome,
      severity: c.severity,
    });
    expect(Number.isInteger(line.durationMs) && (line.durationMs as number) >= 0).toBe(true);
    expect(Number.isInteger(line.rows)).toBe(true);
    if (c.outcome === 'succeeded') expect(line.rows as number).toBeGreaterThan(0);
    else expect(line).toMatchObject({ retryLimitReached: true, processor: 'player_game_summary' });
  });

  it('still writes each date to its own file, which `backfill logs` reads', () => {
    for (const i of [0, 1, 2, 3]) {
      expect(existsSync(join(ws.dir, 'pod-logs', 'jobs', jobName, `index-${i}.log`))).toBe(true);
    }
    expect(existsSync(join(ws.dir, 'pod-logs', 'backfill.log'))).toBe(false);
  });
});
