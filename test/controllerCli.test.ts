// The CLI's cluster mode, run as a user runs it (the built `backfill`, KUBECONFIG pointing at the API server
// double): `backfill logs <date> --cluster` prints the logs of the date's pods, found by their Job and
// completion index labels; `backfill retry --cluster` creates the retry Job for the failed dates and its plan
// ConfigMap, modelled on the season's Stage 1 Job.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_INDEX_PERMANENT, stage1JobWithPlan } from '../core/jobs/spec.js';
import { RETRY_OWN_ENV } from '../core/kubernetes/cluster.js';
import { type KubeApiServer, type KubeObject, startKubeApiServer } from './support/kubeApiServer.js';
import { ADMIN_TOKEN, applyStage1, clientFor, NAMESPACE, TOKENS, waitFor } from './support/kubeFixtures.js';
import { createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const SEASON = '2021-22';
const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];

let server: KubeApiServer;
let ws: Workspace;
let env: Record<string, string>;
let stage1: string;

const ended = (name: string) =>
  (
    (server.get('jobs', NAMESPACE, name)?.status as { conditions?: { type: string }[] } | undefined)?.conditions ?? []
  ).some((c) => c.type === 'Complete' || c.type === 'Failed');

beforeAll(async () => {
  await ensureBuilt();
  server = await startKubeApiServer({ tokens: TOKENS });
  // 2021-10-21 is bad input on every attempt of the Stage 1 Job; the retry loads it.
  server.setPodScript(({ jobName, index, attempt }) => {
    const log = `{"level":30,"index":${index},"attempt":${attempt},"job":"${jobName}","msg":"index started"}\n`;
    if (jobName.startsWith('nba-stage1-') && index === 2) {
      return { result: 'fail', exitCode: EXIT_INDEX_PERMANENT, log: `${log}{"level":50,"msg":"bad input"}\n` };
    }
    return { result: 'succeed', log: `${log}{"level":30,"msg":"index succeeded"}\n` };
  });
  ({ job: stage1 } = await applyStage1(clientFor(server, ADMIN_TOKEN), SEASON, DATES));
  await waitFor('the Stage 1 job to end', () => ended(stage1));
  ws = createWorkspace();
  writeFileSync(join(ws.dir, 'kubeconfig'), server.kubeconfigText(ADMIN_TOKEN, NAMESPACE));
  env = { KUBECONFIG: join(ws.dir, 'kubeconfig') };
});
afterAll(async () => {
  await server?.podsIdle();
  await server?.close();
  ws?.remove();
});

describe('backfill logs --cluster', () => {
  it("prints the logs of the date's pods, found by job-name and completion index", async () => {
    const out = await ws.cli(['logs', '2021-10-21', '--season', SEASON, '--cluster'], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^== pod ${stage1}-2-[a-z0-9]{5} \\(job ${stage1}, index 2, Failed\\)\\n`));
    expect(out.stdout).toContain('{"level":50,"msg":"bad input"}');
    const listed = server.requests.filter((r) => r.resource === 'pods' && r.verb === 'list');
    expect(listed.at(-1)?.query.labelSelector).toBe(
      `batch.kubernetes.io/job-name=${stage1},batch.kubernetes.io/job-completion-index=2`,
    );
    expect(server.requests.filter((r) => r.resource === 'pods/log').length).toBeGreaterThan(0);
  });

  it('says so when no pod ran the date, naming the namespace', async () => {
    const out = await ws.cli(['logs', '2021-11-01', '--season', SEASON, '--cluster', '--namespace', NAMESPACE], env);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(
      /no pod of a Stage 1 job of 2021-22 in namespace nba-backfill \(http:\/\/127\.0\.0\.1:\d+\) has run 2021-11-01/,
    );
  });
});

describe('backfill retry --cluster', () => {
  it('creates the retry Job for the failed date and its plan ConfigMap, as the Stage 1 Job runs', async () => {
    const out = await ws.cli(['retry', '--season', SEASON, '--cluster', '--parallelism', '4'], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const retry =
      /retry job (nba-retry-202122-[0-9a-f]{8}) created in namespace nba-backfill for 1 date\(s\): 2021-10-21/.exec(
        out.stdout,
      )?.[1] as string;
    expect(retry).toBeDefined();
    const plan = server.get('configmaps', NAMESPACE, `${retry}-plan`) as KubeObject;
    expect(JSON.parse(String((plan.data as Record<string, string>)['job-plan.json']))).toEqual({
      jobName: retry,
      season: SEASON,
      dates: ['2021-10-21'],
    });
    const job = server.get('jobs', NAMESPACE, retry) as KubeObject & {
      spec: { completions: number; parallelism: number; template: { spec: Record<string, unknown> } };
    };
    const model = server.get('jobs', NAMESPACE, stage1) as typeof job;
    expect(job.metadata.labels).toMatchObject({
      'app.kubernetes.io/component': 'stage1',
      'nba-backfill/season': SEASON,
    });
    expect(job.metadata.annotations?.['nba-backfill/plan-configmap']).toBe(`${retry}-plan`);
    expect(job.spec.completions).toBe(1);
    expect(job.spec.parallelism).toBe(1);
    // The pods run as the Stage 1 Job's did: same container settings, only the plan differs.
    const container = (j: typeof job) => (j.spec.template.spec.containers as Record<string, unknown>[])[0];
    expect(container(job)?.env).toEqual(container(model)?.env);
    expect(container(job)?.image).toBe(container(model)?.image);
    expect(container(job)?.resources).toEqual(container(model)?.resources);
    expect(job.spec.template.spec.volumes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ configMap: expect.objectContaining({ name: `${retry}-plan` }) }),
      ]),
    );

    await waitFor('the retry job to end', () => ended(retry));
    const again = await ws.cli(['retry', '--season', SEASON, '--cluster'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`${SEASON}: no failed dates to retry in namespace nba-backfill\n`);

    // Both jobs ran the date: --all shows every pod, newest job first.
    const all = await ws.cli(['logs', '2021-10-21', '--season', SEASON, '--cluster', '--all'], env);
    expect(all.code).toBe(0);
    const heads = all.stdout.split('\n').filter((l) => l.startsWith('== pod'));
    expect(heads.map((h) => h.replace(/-[a-z0-9]{5} \(/, ' ('))).toEqual([
      `== pod ${retry}-0 (job ${retry}, index 0, Succeeded)`,
      `== pod ${stage1}-2 (job ${stage1}, index 2, Failed)`,
    ]);
  });

  it('--set-env and --unset-env change the settings the retry copies; typos are refused before the cluster is read', async () => {
    const model = server.get('jobs', NAMESPACE, stage1) as KubeObject & {
      spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
    };
    const envOf = (j: typeof model) =>
      Object.fromEntries((j.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    // A newer Stage 1 Job of the season, synthesized with a fault: the model of the next retry.
    const faulty = stage1JobWithPlan({
      season: SEASON,
      dates: ['2021-10-20'],
      parallelism: 1,
      purpose: 'stage1',
      env: { BACKFILL_FAULTS: '{"permanent":["2021-10-20"]}' },
    });
    const admin = clientFor(server, ADMIN_TOKEN);
    await admin.createConfigMap(faulty.planConfigMap as unknown as V1ConfigMap);
    await admin.createJob(faulty.job as unknown as V1Job);
    await waitFor('the faulty Stage 1 job to end', () => ended(faulty.job.metadata.name));
    const faultyModel = server.get('jobs', NAMESPACE, faulty.job.metadata.name) as typeof model;
    expect(envOf(faultyModel).BACKFILL_FAULTS).toBe('{"permanent":["2021-10-20"]}');
    const log = join(ws.dir, 'failures.json');
    writeFileSync(
      log,
      JSON.stringify({
        jobName: stage1,
        season: SEASON,
        completedIndexes: '0',
        failedIndexes: '1',
        failed: [{ date: '2021-10-20', index: 1, processor: null, error: null, attempts: 2, reason: 'x', logs: '-' }],
      }),
    );
    const before = server.requests.length;
    for (const [args, message] of [
      [['--set-env', 'BACKFILL_FORCE=true'], /--set-env changes the settings of a retry Job: it goes with --cluster/],
      [['--cluster', '--set-env', 'backfill_force=true'], /"backfill_force" is not a setting name/],
      [['--cluster', '--set-env', 'BACKFILL_FORCE'], /--set-env BACKFILL_FORCE: give NAME=value/],
      [['--cluster', '--set-env', 'BACKFILL_LOG_LEVEL=debug'], /BACKFILL_LOG_LEVEL is set by the Job itself/],
      [['--cluster', '--set-env', 'BACKFILL_FAULTS=faults.json'], /must be the fault JSON itself/],
      [['--cluster', '--set-env', 'BACKFILL_FAULTS={"permanent":["2021-13-01"]}'], /--set-env BACKFILL_FAULTS: /],
      [['--cluster', '--set-env', 'A=1', '--unset-env', 'A'], /A is both set \(--set-env\) and unset/],
      [['--cluster', '--unset-env', 'BACKFILL_LOG_DIR'], /every Stage 1 pod has its log folder/],
    ] as const) {
      const out = await ws.cli(['retry', '--from-log', log, ...args], env);
      expect(out.code, `${args.join(' ')}: ${out.stderr}`).toBe(2);
      expect(out.stderr).toMatch(message);
    }
    expect(server.requests.length).toBe(before);
    const typo = await ws.cli(['retry', '--from-log', log, '--cluster', '--unset-env', 'BACKFILL_FAULT'], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain(
      `--unset-env BACKFILL_FAULT: the model job ${faulty.job.metadata.name} has no setting BACKFILL_FAULT (it has BACKFILL_FAULTS, BACKFILL_LOG_DIR)`,
    );

    const out = await ws.cli(
      ['retry', '--from-log', log, '--cluster', '--set-env', 'BACKFILL_FORCE=true', '--unset-env', 'BACKFILL_FAULTS'],
      env,
    );
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(
      `(settings from ${faulty.job.metadata.name}, BACKFILL_FORCE set, BACKFILL_FAULTS left out;`,
    );
    const retry = /retry job (\S+) created/.exec(out.stdout)?.[1] as string;
    const made = envOf(server.get('jobs', NAMESPACE, retry) as typeof model);
    for (const own of RETRY_OWN_ENV) delete made[own];
    expect(made).toEqual({ BACKFILL_FORCE: 'true', BACKFILL_LOG_DIR: envOf(faultyModel).BACKFILL_LOG_DIR });
    await waitFor('the retry job to end', () => ended(retry));
  });

  it('refuses --failed-runs with --cluster, and --namespace without it', async () => {
    const a = await ws.cli(['retry', '--failed-runs', '--phase', '2', '--cluster'], env);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--failed-runs runs on this machine only/);
    const b = await ws.cli(['logs', '2021-10-21', '--season', SEASON, '--namespace', 'x'], env);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--namespace goes with --cluster/);
  });
});

describe('the controller program (node build/controller/main.js)', () => {
  it('serves /healthz once it has listed the Jobs, and stops cleanly on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [join(REPO_ROOT, 'build', 'controller', 'main.js')], {
      cwd: ws.dir,
      env: {
        PATH: process.env.PATH ?? '',
        KUBECONFIG: env.KUBECONFIG,
        METADATA_SERVER_DETECTION: 'none',
        BACKFILL_NAMESPACE: NAMESPACE,
        BACKFILL_HEALTH_PORT: '0',
        BACKFILL_WAREHOUSE: `duckdb:${join(ws.dir, 'controller.duckdb')}`,
        BACKFILL_PLAN_DIR: join(REPO_ROOT, 'plans'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const port = await waitFor('the controller to start', () => /"healthPort":(\d+)/.exec(stdout)?.[1], 30_000);
      // 200 at once: first as a standby waiting for the leader Lease, then as the leader.
      const answers: string[] = [];
      const health = await waitFor('/healthz to answer 200 as the leader', async () => {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
        if (r?.status !== 200) return undefined;
        const text = await r.text();
        answers.push(text);
        return /^(ok|starting)/.test(text) ? text : undefined;
      });
      expect(health).toMatch(/^(ok|starting)/);
      expect(answers.every((a) => /^(standby: waiting for the leader lease|ok|starting)/.test(a))).toBe(true);
      expect(server.get('leases', NAMESPACE, 'nba-backfill-controller')?.spec).toMatchObject({
        leaseDurationSeconds: 15,
      });
      // Prometheus metrics on the same port (their values: controllerMetrics.test.ts); anything else is 404.
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect([metrics.status, await metrics.text()]).toEqual([200, expect.stringContaining('nba_backfill_')]);
      expect((await fetch(`http://127.0.0.1:${port}/nothing`)).status).toBe(404);
      // The finished Stage 1 jobs of the other tests are in the cluster: its passes read them as the controller.
      await waitFor('a job listed', () => stdout.includes('jobs listed; watching'));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({
      level: 30,
      component: 'controller',
      namespace: NAMESPACE,
      msg: 'controller starting',
    });
    expect(lines.at(-1)).toMatchObject({ msg: 'controller stopped' });
  });
});

describe('refusals before any work', () => {
  const run = async (args: string[], childEnv: Record<string, string>) => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, args, {
      cwd: ws.dir,
      env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...childEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, stderr };
  };

  it('the controller refuses a Kubernetes older than 1.29, naming the version and what needs it', async () => {
    for (const [minor, gitVersion, refused] of [
      ['28', 'v1.28.15', true],
      ['29+', 'v1.29.4-gke.1043002', false],
    ] as const) {
      const old = await startKubeApiServer({ tokens: TOKENS, version: { major: '1', minor, gitVersion } });
      try {
        const kubeconfig = join(ws.dir, `kubeconfig-${minor}`);
        writeFileSync(kubeconfig, old.kubeconfigText(ADMIN_TOKEN, NAMESPACE));
        const childEnv = {
          KUBECONFIG: kubeconfig,
          BACKFILL_NAMESPACE: NAMESPACE,
          BACKFILL_HEALTH_PORT: '0',
          BACKFILL_WAREHOUSE: `duckdb:${join(ws.dir, `controller-${minor}.duckdb`)}`,
          BACKFILL_PLAN_DIR: join(REPO_ROOT, 'plans'),
        };
        if (refused) {
          const out = await run([join(REPO_ROOT, 'build', 'controller', 'main.js')], childEnv);
          expect(out.code).toBe(2);
          expect(out.stderr).toContain(
            `Kubernetes ${gitVersion} at ${old.url} is older than 1.29, which the Stage 1 Jobs need (backoffLimitPerIndex and the pod failure policy action FailIndex)`,
          );
          // It stopped before watching anything.
          expect(old.requests.filter((r) => r.resource === 'jobs')).toEqual([]);
        } else {
          const { KubeClient } = await import('../core/kubernetes/kube.js');
          process.env.KUBECONFIG = kubeconfig;
          try {
            expect(await KubeClient.fromDefault(NAMESPACE).requireMinimumVersion()).toBe(gitVersion);
          } finally {
            delete process.env.KUBECONFIG;
          }
        }
      } finally {
        await old.close();
      }
    }
  });

  it('a cluster command without any Kubernetes configuration says so, instead of ECONNREFUSED on localhost:8080', async () => {
    const home = join(ws.dir, 'empty-home');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(home, { recursive: true });
    const out = await run(
      [join(REPO_ROOT, 'build', 'cli', 'main.js'), 'logs', '2021-10-21', '--season', SEASON, '--cluster'],
      {
        HOME: home,
      },
    );
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(
      'no Kubernetes configuration found: KUBECONFIG is not set, ~/.kube/config does not exist',
    );
    expect(out.stderr).not.toContain('ECONNREFUSED');
  });
});
