// The retry and pod failure policy rules of the Stage 1 Job at their limits, in the local job runtime: one
// retry per index (backoffLimitPerIndex 1), exit 2 fails the index at once, and disruptions ignored up to
// the runtime's maximum (3 by default) and counted after it. Each index of one Job plays one case's script.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import { LocalJobRuntime } from '../core/adapters/local/jobRuntime.js';
import { buildStage1Job, type IndexedJob } from '../core/jobs/spec.js';
import type { IndexEvent, IndexedJobStatus, IndexRecord } from '../core/ports/jobRuntime.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const POD = join(REPO_ROOT, 'test', 'fixtures', 'scriptedPod.mjs');

const T = 'SIGTERM';
/** A pod terminated by SIGTERM and not ignored reports 128 + 15, as a container does. */
const SIGTERM_EXIT = 143;

type Outcome = number | typeof T;

interface Case {
  readonly name: string;
  /** What each attempt of the index does; an attempt past the script exits 0. */
  readonly script: readonly Outcome[];
  readonly state: IndexRecord['state'];
  readonly exitCodes: readonly (number | null)[];
  readonly failures: number;
  readonly reason?: string;
}

// Every failing script ends with a success the rule must never reach: one attempt too many shows as success.
const CASES: readonly Case[] = [
  { name: 'succeeds at the first attempt', script: [0], state: 'succeeded', exitCodes: [0], failures: 0 },
  {
    name: 'fails once, then succeeds at the retry',
    script: [1, 0],
    state: 'succeeded',
    exitCodes: [1, 0],
    failures: 1,
  },
  {
    name: 'fails twice: failed after exactly two attempts, no third',
    script: [1, 1, 0],
    state: 'failed',
    exitCodes: [1, 1],
    failures: 2,
    reason: 'BackoffLimitExceeded',
  },
  {
    name: 'exit 2 at the first attempt: failed at once, the retry unused',
    script: [2, 0],
    state: 'failed',
    exitCodes: [2],
    failures: 1,
    reason: 'PodFailurePolicy',
  },
  {
    name: 'exit 2 at the retry: failed by the policy',
    script: [1, 2, 0],
    state: 'failed',
    exitCodes: [1, 2],
    failures: 2,
    reason: 'PodFailurePolicy',
  },
  {
    name: 'exit 3 is an ordinary failure: retried',
    script: [3, 0],
    state: 'succeeded',
    exitCodes: [3, 0],
    failures: 1,
  },
  {
    name: 'three disruptions (the maximum) are ignored: the retry is left whole',
    script: [T, T, T, 1, 0],
    state: 'succeeded',
    exitCodes: [null, null, null, 1, 0],
    failures: 1,
  },
  {
    name: 'a fourth disruption counts as a failure (exit 143)',
    script: [T, T, T, T, 0],
    state: 'succeeded',
    exitCodes: [null, null, null, SIGTERM_EXIT, 0],
    failures: 1,
  },
  {
    name: 'a fourth disruption and one failure use up the retry',
    script: [T, T, T, T, 1, 0],
    state: 'failed',
    exitCodes: [null, null, null, SIGTERM_EXIT, 1],
    failures: 2,
    reason: 'BackoffLimitExceeded',
  },
  {
    name: 'three disruptions, then two failures: failed',
    script: [T, T, T, 1, 1, 0],
    state: 'failed',
    exitCodes: [null, null, null, 1, 1],
    failures: 2,
    reason: 'BackoffLimitExceeded',
  },
  {
    name: 'a disruption between two failures does not count: failed at the second failure',
    script: [1, T, 1, 0],
    state: 'failed',
    exitCodes: [1, null, 1],
    failures: 2,
    reason: 'BackoffLimitExceeded',
  },
  {
    name: 'three disruptions, then exit 2: failed by the policy at once',
    script: [T, T, T, 2, 0],
    state: 'failed',
    exitCodes: [null, null, null, 2],
    failures: 1,
    reason: 'PodFailurePolicy',
  },
];

/** The Stage 1 job with one index per case, its container running the scripted pod. */
function scriptedJob(stateDir: string, parallelism: number): IndexedJob {
  const dates = CASES.map((_c, i) => new Date(Date.UTC(2021, 9, 19 + i)).toISOString().slice(0, 10));
  const script = Object.fromEntries(CASES.map((c, i) => [i, c.script]));
  const job = buildStage1Job({
    season: '2021-22',
    dates,
    parallelism,
    env: { POD_SCRIPT: JSON.stringify(script), POD_STATE_DIR: stateDir },
  });
  const [container, ...others] = job.spec.template.spec.containers;
  if (!container) throw new Error('buildStage1Job made no container');
  return {
    ...job,
    spec: {
      ...job.spec,
      template: {
        ...job.spec.template,
        spec: { ...job.spec.template.spec, containers: [{ ...container, command: ['node', POD] }, ...others] },
      },
    },
  };
}

describe.each([
  { mode: 'a process per attempt', podPerIndex: true },
  { mode: 'warm workers', podPerIndex: false },
])('Stage 1 retry and pod failure policy at their limits, with $mode', ({ podPerIndex }) => {
  let dir: string;
  let job: IndexedJob;
  let status: IndexedJobStatus;
  let events: IndexEvent[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'boundaries-job-runtime-'));
    job = scriptedJob(join(dir, 'state'), 3);
    const warehouse = await DuckDbWarehouse.open(':memory:');
    try {
      // retryDelayMs 0: the pause is not a rule, and no test here waits on the clock.
      const runtime = new LocalJobRuntime({
        cwd: REPO_ROOT,
        logDir: join(dir, 'logs'),
        warehouse,
        retryDelayMs: 0,
        podPerIndex,
      });
      events = [];
      status = await runtime.run(job, (e) => events.push(e));
    } finally {
      await warehouse.close();
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the rules this file pins: one retry per index and exit 2 as the permanent failure', () => {
    expect(job.spec.backoffLimitPerIndex).toBe(1);
    expect(job.spec.podFailurePolicy.rules.map((r) => [r.action, r.onExitCodes?.values ?? null])).toEqual([
      ['Ignore', null],
      ['FailIndex', [2]],
    ]);
  });

  it.each(CASES.map((c, index) => ({ ...c, index })))('$name', (c) => {
    const record = status.indexes.find((r) => r.index === c.index);
    expect(
      record && { state: record.state, exitCodes: record.exitCodes, failures: record.failures, reason: record.reason },
    ).toEqual({ state: c.state, exitCodes: c.exitCodes, failures: c.failures, reason: c.reason });
    // The pod's own count of its attempts: none hidden, none beyond the rule's last.
    expect(readFileSync(join(dir, 'state', `attempts-${c.index}`), 'utf8')).toHaveLength(c.exitCodes.length);
    const outcomes = events.filter((e) => e.index === c.index).map((e) => e.outcome);
    expect(outcomes.at(-1)).toBe(c.state);
    expect(outcomes.slice(0, -1)).toEqual(
      c.exitCodes.slice(0, -1).map((code) => (code === null ? 'disrupted' : 'retrying')),
    );
  });

  it('sums the counted failures of every index as the failed pods, and lists the indexes in compressed form', () => {
    expect(status.failed).toBe(CASES.reduce((n, c) => n + c.failures, 0));
    // By hand from CASES, in Kubernetes' form: "5-7" for a run of three or more.
    expect(status.completedIndexes).toBe('0,1,5-7');
    expect(status.failedIndexes).toBe('2-4,8-11');
    expect(status.succeeded).toBe(CASES.filter((c) => c.state === 'succeeded').length);
  });
});
