// `backfill status --cluster` through the built CLI (KUBECONFIG pointing at the API server double) on a partial
// backfill: a Stage 1 Job whose pods ran real Phase 1-2 into a real DuckDB warehouse, with one date bad input and
// one pod killed before it wrote anything (only the Job knows it failed), then Stage 3 part way. Both formats,
// the controller's validation ConfigMap, and the refusals.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Adapters, openAdapters } from '../core/adapters/index.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { loadConfig } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError } from '../core/errors.js';
import { CorruptingObjectStore, type Faults } from '../core/faults.js';
import { EXIT_INDEX_PERMANENT, EXIT_INDEX_RETRIABLE, planConfigMapName } from '../core/jobs/spec.js';
import { silentLogger } from '../core/log.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import { runStage3 } from '../core/stages/stage3.js';
import { type KubeApiServer, type KubeObject, startKubeApiServer } from './support/kubeApiServer.js';
import { ADMIN_TOKEN, applyStage1, clientFor, NAMESPACE, TOKENS, waitFor } from './support/kubeFixtures.js';
import { createWorkspaceWithPlans, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const SEASON = '2021-22';
const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22', '2021-10-23', '2021-10-24'] as const;
const RANGE = ['--season', SEASON, '--season-type', 'regular', '--start-date', DATES[0], '--end-date', DATES[5]];
/** Bad input: the index fails at once (FailIndex). */
const CORRUPT = '2021-10-21';
/** Its pods are killed before they write anything: run history never hears of it, the Job does. */
const KILLED = '2021-10-24';
const FAULTS: Faults = {
  transient: [],
  permanent: [],
  corrupt: [{ date: CORRUPT, file: 'playerGameLogs', how: 'invalid-json' }],
};

let server: KubeApiServer;
let ws: Workspace;
let env: Record<string, string>;
let stage1: string;

interface Entry {
  season: string;
  stage1: Record<string, unknown>;
  gate: Record<string, unknown>;
  stage3: Record<string, unknown>;
  validation: Record<string, unknown>;
  next: string | null;
  reason: string;
  cluster?: unknown;
}

async function statusJson(args: readonly string[]): Promise<Entry> {
  const out = await ws.cli(['status', ...RANGE, ...args, '--format', 'json'], env);
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  const { seasons } = JSON.parse(out.stdout) as { seasons: Entry[] };
  expect(seasons).toHaveLength(1);
  return seasons[0] as Entry;
}

beforeAll(async () => {
  await ensureBuilt();
  ws = createWorkspaceWithPlans();
  const config = loadConfig({
    env: {},
    flags: {
      warehouse: `duckdb:${join(ws.dir, '.backfill', 'warehouse.duckdb')}`,
      objects: `file:${join(ws.dir, '.backfill', 'objects')}`,
    },
  });
  const adapters: Adapters = await openAdapters(config);
  try {
    server = await startKubeApiServer({ tokens: TOKENS });
    // Each Stage 1 pod as jobs/phase2-date runs it: its date from the plan ConfigMap, exit 2 on bad input.
    server.setPodScript(async (a) => {
      const cm = server.get('configmaps', NAMESPACE, planConfigMapName(a.jobName)) as KubeObject;
      const plan = JSON.parse(String((cm.data as Record<string, string>)['job-plan.json'])) as { dates: string[] };
      const date = plan.dates[a.index] as string;
      if (date === KILLED) return { result: 'fail', exitCode: EXIT_INDEX_RETRIABLE };
      const ports = { ...adapters, objects: new CorruptingObjectStore(adapters.objects, FAULTS) };
      const result = await runPhases1And2(ports, silentLogger(), date, {
        trigger: { command: 'jobs/phase2-date', stage: 'stage1', jobName: a.jobName, jobIndex: a.index },
        attempt: a.failureCount + 1,
        skipDownstreamTrigger: true,
      });
      if (result.ok) return { result: 'succeed' };
      const permanent = result.failures.every((f) => f.error instanceof BadInputError);
      return { result: 'fail', exitCode: permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE };
    });
    ({ job: stage1 } = await applyStage1(clientFor(server, ADMIN_TOKEN), SEASON, DATES));
    await waitFor(
      'the Stage 1 job to end',
      () =>
        (
          (server.get('jobs', NAMESPACE, stage1)?.status as { conditions?: { type: string }[] } | undefined)
            ?.conditions ?? []
        ).some((c) => c.type === 'Complete' || c.type === 'Failed'),
      60_000,
    );
    await server.podsIdle();
    // Stage 3 part way: the two dates before the bad one (the gate of those dates passes).
    const plan = await readPlan(join(REPO_ROOT, 'plans'), SEASON);
    const first = selectDates(plan, getSeason(SEASON), {
      seasonType: 'regular',
      startDate: DATES[0],
      endDate: DATES[1],
    });
    const ports = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
    const s3 = await runStage3(ports, silentLogger(), {
      season: SEASON,
      dates: first,
      summaryFile: join(ws.dir, 'summary.json'),
    });
    expect(s3.summary.status).toBe('succeeded');
  } finally {
    // The CLI opens the same DuckDB file: one process at a time.
    await adapters.close();
  }
  env = { KUBECONFIG: join(ws.dir, 'kubeconfig') };
  writeFileSync(join(ws.dir, 'kubeconfig'), server.kubeconfigText(ADMIN_TOKEN, NAMESPACE));
}, 240_000);

afterAll(async () => {
  await server?.podsIdle();
  await server?.close();
  ws?.remove();
});

describe('backfill status --cluster', () => {
  it('as JSON: the failed dates of the Job with those of run history, Stage 3 part way, a retry Job next', async () => {
    const s = await statusJson(['--cluster']);
    expect(s).toEqual({
      season: SEASON,
      selection: { seasonType: 'regular', startDate: DATES[0], endDate: DATES[5] },
      stage1: { dates: 6, loaded: 4, failed: 2, failedDates: [CORRUPT, KILLED], neverRun: 0, running: false },
      gate: { passed: false, missingDates: [CORRUPT, KILLED] },
      stage3: { completeThrough: DATES[1], remaining: 4, running: false, stale: [], lastFailure: null },
      validation: { passed: null, report: null },
      next: `backfill retry --season ${SEASON} --cluster --namespace ${NAMESPACE}`,
      reason: `2 dates failed in Stage 1 (${CORRUPT}, ${KILLED}): fix the cause, then a retry Job loads them (the controller runs the gate again when it ends)`,
      snapshot: null,
      cluster: { namespace: NAMESPACE, runningJobs: [], stage3Job: null },
    });
    // The Jobs and the plan ConfigMap were read through the API server, with the controller's selector.
    const jobLists = server.requests.filter((r) => r.resource === 'jobs' && r.verb === 'list');
    expect(jobLists.at(-1)?.query.labelSelector).toBe(
      'app.kubernetes.io/component in (stage1,stage3),nba-backfill/season',
    );
  });

  it('without --cluster the warehouse alone cannot know the killed date failed: it shows it never run', async () => {
    const s = await statusJson([]);
    expect(s.stage1).toEqual({
      dates: 6,
      loaded: 4,
      failed: 1,
      failedDates: [CORRUPT],
      neverRun: 1,
      running: false,
    });
    expect(s.next).toBe(`backfill retry --season ${SEASON}`);
    expect(s).not.toHaveProperty('cluster');
  });

  it('as a table', async () => {
    const out = await ws.cli(['status', ...RANGE, '--cluster'], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(
      [
        `${SEASON} (regular, ${DATES[0]}..${DATES[5]})  [cluster: namespace ${NAMESPACE}, and the warehouse]`,
        `  stage 1     6 dates: 4 loaded, 2 failed (${CORRUPT}, ${KILLED}), 0 never run`,
        `  gate        FAILED: 2 date(s) incomplete (${CORRUPT}, ${KILLED})`,
        `  stage 3     complete through ${DATES[1]}, 4 remaining`,
        '  validation  not run',
        '  jobs        none running; no Stage 3 Job',
        `  next        backfill retry --season ${SEASON} --cluster --namespace ${NAMESPACE}`,
        `              2 dates failed in Stage 1 (${CORRUPT}, ${KILLED}): fix the cause, then a retry Job loads them (the controller runs the gate again when it ends)`,
        '',
      ].join('\n'),
    );
  });

  it("takes the validation from the controller's ConfigMap, when its range covers the selection", async () => {
    const admin = clientFor(server, ADMIN_TOKEN);
    const name = 'nba-stage3-202122-0a1b2c3d-validation';
    const upsert = (end: string) =>
      admin.upsertConfigMap({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          labels: {
            'app.kubernetes.io/managed-by': 'nba-backfill-controller',
            'nba-backfill/report': 'validation',
            'nba-backfill/season': SEASON,
          },
        },
        data: {
          'summary.json': JSON.stringify({
            seasons: [SEASON],
            range: { start: DATES[0], end },
            dates: 6,
            generatedAt: '2026-12-01T10:00:00.000Z',
            passed: false,
          }),
        },
      });
    await upsert(DATES[5]);
    expect((await statusJson(['--cluster'])).validation).toEqual({ passed: false, report: `configmap/${name}` });
    // A range that ends before the selection's last date does not cover it.
    await upsert(DATES[4]);
    expect((await statusJson(['--cluster'])).validation).toEqual({ passed: null, report: null });
  });

  it('fails naming a validation ConfigMap without its summary (exit 1)', async () => {
    const admin = clientFor(server, ADMIN_TOKEN);
    await admin.upsertConfigMap({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'broken-validation',
        labels: {
          'app.kubernetes.io/managed-by': 'nba-backfill-controller',
          'nba-backfill/report': 'validation',
          'nba-backfill/season': SEASON,
        },
      },
      data: {},
    });
    const out = await ws.cli(['status', ...RANGE, '--cluster'], env);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/validation ConfigMap broken-validation: no key summary\.json/);
  });

  it('refuses --namespace without --cluster (exit 2)', async () => {
    const out = await ws.cli(['status', '--namespace', NAMESPACE], env);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/--namespace goes with --cluster/);
  });
});
