// The local job runtime: a real pod program run with Indexed Job semantics, a process per attempt and warm workers.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import { LocalJobRuntime } from '../core/adapters/local/jobRuntime.js';
import { buildStage1Job, type IndexedJob } from '../core/jobs/spec.js';
import type { IndexEvent, IndexedJobStatus } from '../core/ports/jobRuntime.js';
import { ManualClock } from './support/manualClock.js';
import { POD, podRuns } from './support/podRuns.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What the pod logs at the start and end of each attempt. */
interface PodLine {
  readonly pod: 'start' | 'end';
  readonly index: number;
  readonly attempt: number;
  readonly failures: number;
  readonly pid: number;
  readonly t: number;
  readonly outcome?: number | string;
  /** Attempts running when this one started, itself included. */
  readonly running?: number;
  readonly env?: Record<string, string>;
  /** The index log file the line was found in. */
  readonly file: string;
}

interface JobRun {
  readonly status: IndexedJobStatus;
  readonly events: IndexEvent[];
  readonly lines: PodLine[];
  readonly rows: { idx: number; attempt: number }[];
  readonly jobDir: string;
  readonly runtime: LocalJobRuntime;
}

interface JobOptions {
  readonly podPerIndex: boolean;
  readonly completions: number;
  readonly parallelism: number;
  readonly behaviour?: Readonly<Record<number, string>>;
  readonly sleepMs?: number;
  /** Attempts hold until this many have started (test/fixtures/pod.mjs POD_BARRIER). */
  readonly barrier?: number;
  readonly activeDeadlineSeconds?: number;
  /** Asks the job to stop (aborts its signal, reason SIGTERM) on the first event this returns true for. */
  readonly stopOn?: (event: IndexEvent) => boolean;
  /** The runtime's clock and timer; the real ones without it. */
  readonly clock?: ManualClock;
  /** Called with each event as it comes (after stopOn). */
  readonly onEvent?: (event: IndexEvent) => void;
  /** Runs while the job runs, given the pods' state folder; the job's status is awaited after it. */
  readonly whileRunning?: (stateDir: string) => Promise<void>;
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fakeDates(n: number): string[] {
  return Array.from({ length: n }, (_v, i) => new Date(Date.UTC(2021, 9, 19 + i)).toISOString().slice(0, 10));
}

/** The Stage 1 job of `completions` fake dates, its container running test/fixtures/pod.mjs. */
function podJob(o: JobOptions, stateDir: string): IndexedJob {
  const job = buildStage1Job({
    season: '2021-22',
    dates: fakeDates(o.completions),
    parallelism: o.parallelism,
    env: {
      POD_BEHAVIOUR: JSON.stringify(o.behaviour ?? {}),
      POD_SLEEP_MS: String(o.sleepMs ?? 0),
      POD_BARRIER: String(o.barrier ?? 0),
      POD_STATE_DIR: stateDir,
    },
  });
  const [container, ...others] = job.spec.template.spec.containers;
  if (!container) throw new Error('buildStage1Job made no container');
  return {
    ...job,
    spec: {
      ...job.spec,
      activeDeadlineSeconds: o.activeDeadlineSeconds ?? job.spec.activeDeadlineSeconds,
      template: {
        ...job.spec.template,
        spec: { ...job.spec.template.spec, containers: [{ ...container, command: ['node', POD] }, ...others] },
      },
    },
  };
}

function readPodLines(jobDir: string): PodLine[] {
  const lines: PodLine[] = [];
  for (const file of readdirSync(jobDir).filter((f) => /^index-\d+\.log$/.test(f))) {
    for (const text of readFileSync(join(jobDir, file), 'utf8').split('\n')) {
      if (!text.startsWith('{"pod":')) continue;
      lines.push({ ...(JSON.parse(text) as Omit<PodLine, 'file'>), file });
    }
  }
  return lines;
}

async function runJob(o: JobOptions): Promise<JobRun> {
  const dir = mkdtempSync(join(tmpdir(), 'local-job-runtime-'));
  tmpDirs.push(dir);
  const warehouse = await DuckDbWarehouse.open(':memory:');
  try {
    await warehouse.ensureTables([podRuns]);
    const runtime = new LocalJobRuntime({
      cwd: REPO_ROOT,
      logDir: join(dir, 'logs'),
      warehouse,
      retryDelayMs: 0,
      podPerIndex: o.podPerIndex,
      ...(o.clock ? { now: o.clock.now, setTimer: o.clock.setTimer } : {}),
    });
    const job = podJob(o, join(dir, 'state'));
    const events: IndexEvent[] = [];
    const stop = new AbortController();
    const running = runtime.run(
      job,
      (e) => {
        events.push(e);
        if (o.stopOn?.(e)) stop.abort('SIGTERM');
        o.onEvent?.(e);
      },
      { signal: stop.signal },
    );
    await o.whileRunning?.(join(dir, 'state'));
    const status = await running;
    const jobDir = runtime.jobDir(job.metadata.name);
    const rows = (await warehouse.query('SELECT idx, attempt FROM nba_test.pod_runs ORDER BY idx, attempt')) as {
      idx: number;
      attempt: number;
    }[];
    return { status, events, lines: readPodLines(jobDir), rows, jobDir, runtime };
  } finally {
    await warehouse.close();
  }
}

/** The most attempts running at once, as each attempt counted them when it started (no clocks involved). */
function maxConcurrent(lines: readonly PodLine[]): number {
  return Math.max(0, ...lines.filter((l) => l.pod === 'start').map((l) => l.running ?? 0));
}

/** Waits until a condition holds, checking it every 10 ms: no deadline of its own (the test's timeout is one). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

/** The Job's start on the tests' manual clock. */
const T0 = Date.UTC(2024, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function byIndex<T extends { index: number }>(items: readonly T[]): Record<number, T[]> {
  const out: Record<number, T[]> = {};
  for (const item of items) (out[item.index] ??= []).push(item);
  return out;
}

const MIXED: Record<number, string> = {
  0: 'ok',
  1: 'fail-once',
  2: 'permanent',
  3: 'always-fail',
  4: 'sigterm-once',
  5: 'crash-kill',
};

describe.each([
  { mode: 'a process per attempt', podPerIndex: true },
  { mode: 'warm workers', podPerIndex: false },
])('LocalJobRuntime with $mode', ({ podPerIndex }) => {
  describe('a job whose indexes succeed, fail, retry and get disrupted', () => {
    let run: JobRun;
    beforeAll(async () => {
      const leaked = process.env.BACKFILL_SOURCE;
      process.env.BACKFILL_SOURCE = 'leak';
      try {
        run = await runJob({ podPerIndex, completions: 6, parallelism: 3, behaviour: MIXED });
      } finally {
        if (leaked === undefined) delete process.env.BACKFILL_SOURCE;
        else process.env.BACKFILL_SOURCE = leaked;
      }
    });

    it('lists completed and failed indexes in compressed form and counts the failed pods', () => {
      expect(run.status.completedIndexes).toBe('0,1,4');
      expect(run.status.failedIndexes).toBe('2,3,5');
      expect(run.status.succeeded).toBe(3);
      // fail-once 1, permanent 1, always-fail 2, crash-kill 2; the ignored disruption is not a failure.
      expect(run.status.failed).toBe(6);
    });

    it('records every index attempt by attempt', () => {
      const records = run.status.indexes.map(({ index, exitCodes, failures, state, reason }) => ({
        index,
        // A SIGKILLed pod's exit code is checked on its own below.
        exitCodes: index === 5 ? exitCodes.length : exitCodes,
        failures,
        state,
        reason,
      }));
      expect(records).toEqual([
        { index: 0, exitCodes: [0], failures: 0, state: 'succeeded', reason: undefined },
        { index: 1, exitCodes: [1, 0], failures: 1, state: 'succeeded', reason: undefined },
        // The pod failure policy fails the index at once on exit 2: no retry.
        { index: 2, exitCodes: [2], failures: 1, state: 'failed', reason: 'PodFailurePolicy' },
        { index: 3, exitCodes: [1, 1], failures: 2, state: 'failed', reason: 'BackoffLimitExceeded' },
        // SIGTERM is a disruption the policy ignores: the retry is not used up.
        { index: 4, exitCodes: [null, 0], failures: 0, state: 'succeeded', reason: undefined },
        { index: 5, exitCodes: 2, failures: 2, state: 'failed', reason: 'BackoffLimitExceeded' },
      ]);
      for (const r of run.status.indexes) expect(r.logs).toBe(run.runtime.logsOf(run.status.jobName, r.index));
    });

    it('reports a pod killed by SIGKILL with exit code 137 (128 + 9), as Kubernetes does, not as a disruption', () => {
      expect(run.status.indexes.find((r) => r.index === 5)?.exitCodes).toEqual([137, 137]);
      expect(run.events.filter((e) => e.index === 5).map((e) => e.exitCode)).toEqual([137, 137]);
    });

    it('tells onIndex about each attempt', () => {
      const outcomes = Object.fromEntries(
        Object.entries(byIndex(run.events)).map(([i, es]) => [i, es.map((e) => e.outcome)]),
      );
      expect(outcomes).toEqual({
        0: ['succeeded'],
        1: ['retrying', 'succeeded'],
        2: ['failed'],
        3: ['retrying', 'failed'],
        4: ['disrupted', 'succeeded'],
        5: ['retrying', 'failed'],
      });
      const codes = byIndex(run.events);
      expect(codes[1]?.map((e) => e.exitCode)).toEqual([1, 0]);
      expect(codes[2]?.map((e) => e.exitCode)).toEqual([2]);
      expect(codes[3]?.map((e) => e.exitCode)).toEqual([1, 1]);
      expect(codes[4]?.map((e) => e.exitCode)).toEqual([null, 0]);
    });

    it('ends Failed, with FailureTarget, because indexes failed', () => {
      expect(run.status.conditions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'FailureTarget', status: 'True', reason: 'FailedIndexes' }),
          expect.objectContaining({ type: 'Failed', status: 'True', reason: 'FailedIndexes' }),
        ]),
      );
      expect(run.status.conditions.map((c) => c.type)).not.toContain('Complete');
    });

    it("runs each attempt with the container's env, its index and the job plan, and none of this shell's BACKFILL_*", () => {
      const starts = run.lines.filter((l) => l.pod === 'start');
      // 0: 1 attempt, 1: 2, 2: 1, 3: 2, 4: 2 (one disrupted), 5: 2.
      expect(starts).toHaveLength(10);
      for (const l of starts) {
        expect(l.file).toBe(`index-${l.index}.log`);
        expect(l.env).toMatchObject({
          JOB_COMPLETION_INDEX: String(l.index),
          BACKFILL_JOB_PLAN: join(run.jobDir, 'job-plan.json'),
          BACKFILL_LOG_LEVEL: 'info',
          POD_BEHAVIOUR: JSON.stringify(MIXED),
        });
        expect(l.env).not.toHaveProperty('BACKFILL_SOURCE');
      }
      const failureCounts = Object.fromEntries(
        Object.entries(byIndex(starts)).map(([i, ls]) => [i, ls.map((l) => l.env?.BACKFILL_INDEX_FAILURE_COUNT)]),
      );
      expect(failureCounts).toEqual({
        0: ['0'],
        1: ['0', '1'],
        2: ['0'],
        3: ['0', '1'],
        4: ['0', '0'],
        5: ['0', '1'],
      });
    });

    it('keeps the rows the pods wrote through IPC in the parent warehouse, one per attempt that reached the write', () => {
      expect(run.rows).toEqual([
        { idx: 0, attempt: 1 },
        { idx: 1, attempt: 1 },
        { idx: 1, attempt: 2 },
        { idx: 2, attempt: 1 },
        { idx: 3, attempt: 1 },
        { idx: 3, attempt: 2 },
        // Attempt 1 of index 4 and both of index 5 killed themselves before writing.
        { idx: 4, attempt: 2 },
      ]);
    });
  });

  it('ends Complete when every index succeeds, never running more than parallelism 2 pods at once', async () => {
    // The barrier holds the first pods until two have started: they overlap, whatever the machine's speed.
    const run = await runJob({ podPerIndex, completions: 5, parallelism: 2, barrier: 2 });
    expect(run.status.completedIndexes).toBe('0-4');
    expect(run.status.failedIndexes).toBe('');
    expect(run.status.succeeded).toBe(5);
    expect(run.status.failed).toBe(0);
    expect(run.status.conditions.map((c) => c.type)).toEqual(['SuccessCriteriaMet', 'Complete']);
    expect(run.status.conditions.map((c) => c.type)).not.toContain('Failed');
    expect(run.events.map((e) => e.outcome)).toEqual(Array(5).fill('succeeded'));
    expect(run.lines.filter((l) => l.pod === 'start')).toHaveLength(5);
    expect(maxConcurrent(run.lines)).toBe(2);
    expect(run.rows).toHaveLength(5);
  });

  it('never overlaps two pods at parallelism 1', async () => {
    const run = await runJob({ podPerIndex, completions: 3, parallelism: 1 });
    expect(run.status.completedIndexes).toBe('0-2');
    expect(run.lines).toHaveLength(6);
    expect(maxConcurrent(run.lines)).toBe(1);
  });

  it('asked to stop, starts no new index, ends the running pod with SIGTERM and reports it interrupted, not failed', async () => {
    // Index 1 runs until it is ended; the stop comes when index 0 succeeds, so index 1 is surely in progress.
    const run = await runJob({
      podPerIndex,
      completions: 5,
      parallelism: 2,
      behaviour: { 1: 'hang' },
      stopOn: (e) => e.index === 0 && e.outcome === 'succeeded',
    });
    expect(run.status.completedIndexes).toBe('0');
    expect(run.status.failedIndexes).toBe('');
    expect(run.status.conditions).toEqual([
      expect.objectContaining({ type: 'Suspended', reason: 'Interrupted', message: expect.stringMatching(/SIGTERM/) }),
    ]);
    expect(run.status.indexes).toEqual([
      expect.objectContaining({ index: 0, state: 'succeeded' }),
      expect.objectContaining({ index: 1, state: 'interrupted', exitCodes: [143], failures: 0 }),
    ]);
    expect(run.events).toContainEqual({ index: 1, exitCode: 143, outcome: 'interrupted' });
    expect(run.events.filter((e) => e.outcome === 'retrying' || e.outcome === 'disrupted')).toEqual([]);
    // Index 1's pod may end before it logs a line (a warm worker still starting); no later index ever starts.
    expect(run.lines.filter((l) => l.index > 1)).toEqual([]);
    expect(run.lines.some((l) => l.index === 0)).toBe(true);
    // A warm worker is let go (disconnected) as the job returns and exits on its own a moment later: every
    // pod process ends, none is left behind.
    for (const l of run.lines) await until(() => !alive(l.pid));
  });

  it('stops the job at activeDeadlineSeconds: its running pod killed, Failed with reason DeadlineExceeded', async () => {
    // Index 0 hangs until it is ended; the test moves the clock to the deadline once its pod has started.
    const clock = new ManualClock(T0);
    const run = await runJob({
      podPerIndex,
      completions: 2,
      parallelism: 1,
      behaviour: { 0: 'hang' },
      activeDeadlineSeconds: 60,
      clock,
      whileRunning: async (stateDir) => {
        await until(() => existsSync(join(stateDir, 'started', '0-1')));
        expect(clock.pending()).toEqual([T0 + 60_000]);
        clock.advance(59_999);
        expect(clock.pending()).toEqual([T0 + 60_000]);
        clock.advance(1);
      },
    });
    expect(run.status.conditions).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' })]),
    );
    expect(run.status.conditions.map((c) => c.type)).not.toContain('Complete');
    expect(run.status.completedIndexes).toBe('');
    expect(run.status.failedIndexes).toBe('0,1');
    expect(run.status.succeeded).toBe(0);
    expect(run.status.indexes).toEqual([
      expect.objectContaining({ index: 0, state: 'failed', reason: 'DeadlineExceeded', exitCodes: [137] }),
      expect.objectContaining({ index: 1, state: 'failed', reason: 'DeadlineExceeded', exitCodes: [] }),
    ]);
    expect({ startTime: run.status.startTime, completionTime: run.status.completionTime }).toEqual({
      startTime: iso(T0),
      completionTime: iso(T0 + 60_000),
    });
    // The hanging pod never ends by itself, index 1 never starts, and no pod outlives the job.
    expect(run.lines.filter((l) => l.pod === 'end')).toEqual([]);
    expect(run.lines.filter((l) => l.index === 1)).toEqual([]);
    for (const l of run.lines) expect(alive(l.pid), `pod ${l.pid} still running`).toBe(false);
  });

  it.each([
    { name: 'one ms before the deadline: index 1 runs', atMs: 59_999, completed: '0,1', failed: '' },
    { name: 'at the deadline: index 1 fails without running', atMs: 60_000, completed: '0', failed: '1' },
  ])('an index about to start $name', async ({ atMs, completed, failed }) => {
    // Time moves while index 0 ends, its timer not yet run (a busy event loop): the check before each index decides.
    const clock = new ManualClock(T0);
    const run = await runJob({
      podPerIndex,
      completions: 2,
      parallelism: 1,
      activeDeadlineSeconds: 60,
      clock,
      onEvent: (e) => {
        if (e.index === 0) clock.jump(atMs);
      },
    });
    expect({ completed: run.status.completedIndexes, failed: run.status.failedIndexes }).toEqual({ completed, failed });
    expect(run.lines.some((l) => l.index === 1)).toBe(failed === '');
    if (failed) {
      expect(run.status.indexes[1]).toMatchObject({ state: 'failed', reason: 'DeadlineExceeded', exitCodes: [] });
    }
  });
});
