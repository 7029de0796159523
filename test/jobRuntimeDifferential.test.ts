// One Indexed Job scenario, two runtimes: the local job runtime running real pod processes, and the API
// server double's Job controller. Both must end with the same Job status, or one of them is not Kubernetes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1ConfigMap, V1Job } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import { LocalJobRuntime } from '../core/adapters/local/jobRuntime.js';
import { type IndexedJob, stage1JobWithPlan } from '../core/jobs/spec.js';
import { type KubeObject, type PodOutcome, startKubeApiServer } from './support/kubeApiServer.js';
import { ADMIN_TOKEN, clientFor, NAMESPACE, TOKENS, waitFor } from './support/kubeFixtures.js';
import { POD, podRuns } from './support/podRuns.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What each index does, in test/fixtures/pod.mjs's words. */
type Behaviour = 'ok' | 'fail-once' | 'permanent' | 'always-fail' | 'sigterm-once';

/** The same behaviours as the double's pod script: how attempt `attempt` (failures so far: `failures`) ends. */
function outcomeOf(behaviour: Behaviour, attempt: number, failures: number): PodOutcome {
  switch (behaviour) {
    case 'ok':
      return { result: 'succeed' };
    case 'fail-once':
      return failures === 0 ? { result: 'fail', exitCode: 1 } : { result: 'succeed' };
    case 'permanent':
      return { result: 'fail', exitCode: 2 };
    case 'always-fail':
      return { result: 'fail', exitCode: 1 };
    case 'sigterm-once':
      return attempt === 1 ? { result: 'disrupted' } : { result: 'succeed' };
  }
}

/** The fields of a Job's status that say how it ended. */
interface Ending {
  readonly completedIndexes: string;
  readonly failedIndexes: string;
  readonly failed: number;
  readonly terminal: string;
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function datesFor(n: number): string[] {
  return Array.from({ length: n }, (_v, i) => `2021-10-${String(19 + i).padStart(2, '0')}`);
}

async function runLocally(behaviours: readonly Behaviour[], podPerIndex: boolean): Promise<Ending> {
  const dir = mkdtempSync(join(tmpdir(), 'job-differential-'));
  tmpDirs.push(dir);
  const { job } = stage1JobWithPlan({ season: '2021-22', dates: datesFor(behaviours.length), parallelism: 2 });
  const [container, ...others] = job.spec.template.spec.containers;
  if (!container) throw new Error('no container');
  const local: IndexedJob = {
    ...job,
    spec: {
      ...job.spec,
      template: {
        ...job.spec.template,
        spec: {
          ...job.spec.template.spec,
          containers: [
            {
              ...container,
              command: ['node', POD],
              env: [
                ...container.env,
                { name: 'POD_BEHAVIOUR', value: JSON.stringify({ ...behaviours }) },
                { name: 'POD_STATE_DIR', value: join(dir, 'state') },
              ],
            },
            ...others,
          ],
        },
      },
    },
  };
  const warehouse = await DuckDbWarehouse.open(':memory:');
  try {
    await warehouse.ensureTables([podRuns]);
    const runtime = new LocalJobRuntime({
      cwd: REPO_ROOT,
      logDir: join(dir, 'logs'),
      warehouse,
      retryDelayMs: 0,
      podPerIndex,
    });
    const status = await runtime.run(local);
    const terminal = status.conditions.find((c) => c.type === 'Complete' || c.type === 'Failed');
    return {
      completedIndexes: status.completedIndexes,
      failedIndexes: status.failedIndexes,
      failed: status.failed,
      terminal: `${terminal?.type}/${terminal?.reason}`,
    };
  } finally {
    await warehouse.close();
  }
}

async function runOnTheDouble(behaviours: readonly Behaviour[]): Promise<Ending> {
  const server = await startKubeApiServer({
    tokens: TOKENS,
    podScript: (a) => outcomeOf(behaviours[a.index] ?? 'ok', a.attempt, a.failureCount),
  });
  try {
    const admin = clientFor(server, ADMIN_TOKEN);
    const { job, planConfigMap } = stage1JobWithPlan({
      season: '2021-22',
      dates: datesFor(behaviours.length),
      parallelism: 2,
    });
    await admin.createConfigMap(planConfigMap as unknown as V1ConfigMap);
    await admin.createJob(job as unknown as V1Job);
    const done = await waitFor('the Job to end', () => {
      const j = server.get('jobs', NAMESPACE, job.metadata.name) as KubeObject | undefined;
      const conditions = ((j?.status ?? {}) as { conditions?: { type: string; reason?: string }[] }).conditions ?? [];
      return conditions.some((c) => c.type === 'Complete' || c.type === 'Failed') ? j : undefined;
    });
    const status = done.status as {
      completedIndexes?: string;
      failedIndexes?: string;
      failed?: number;
      conditions: { type: string; reason?: string }[];
    };
    const terminal = status.conditions.find((c) => c.type === 'Complete' || c.type === 'Failed');
    return {
      completedIndexes: status.completedIndexes ?? '',
      failedIndexes: status.failedIndexes ?? '',
      failed: status.failed ?? 0,
      terminal: `${terminal?.type}/${terminal?.reason}`,
    };
  } finally {
    await server.close();
  }
}

describe('the local job runtime and the API server double end a Job alike', () => {
  it.each<{ name: string; behaviours: Behaviour[]; expected: Ending }>([
    {
      name: 'every index succeeds',
      behaviours: ['ok', 'ok', 'ok'],
      expected: { completedIndexes: '0-2', failedIndexes: '', failed: 0, terminal: 'Complete/CompletionsReached' },
    },
    {
      name: 'a transient failure is retried once and succeeds',
      behaviours: ['ok', 'fail-once', 'ok'],
      expected: { completedIndexes: '0-2', failedIndexes: '', failed: 1, terminal: 'Complete/CompletionsReached' },
    },
    {
      name: 'a mix: transient, bad input, failing twice, a disruption',
      behaviours: ['ok', 'fail-once', 'permanent', 'always-fail', 'sigterm-once', 'ok'],
      expected: { completedIndexes: '0,1,4,5', failedIndexes: '2,3', failed: 4, terminal: 'Failed/FailedIndexes' },
    },
  ])('$name', async ({ behaviours, expected }) => {
    const [warm, perPod, double] = [
      await runLocally(behaviours, false),
      await runLocally(behaviours, true),
      await runOnTheDouble(behaviours),
    ];
    expect(double).toEqual(expected);
    expect(warm).toEqual(expected);
    expect(perPod).toEqual(expected);
  });
});
