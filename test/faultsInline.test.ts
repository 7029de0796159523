// --faults / BACKFILL_FAULTS holds the fault JSON itself when it starts with `{`, else a fault file's path: a
// pod's root filesystem is read-only, so the chart (the kind run's CHART_EXTRA_ENV) can only pass faults inline.
// Bad inline JSON is bad input naming the setting; inline JSON reaches the pods unchanged, locally and in the
// chart; and a fault added to the chart gives the Stage 1 Job a new name (its spec changed), not a new plan.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { V1ConfigMap, V1Job } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, isStage1Chart, loadSeasons, podEnv } from '../charts-src/charts.js';
import { loadChartConfig } from '../charts-src/config.js';
import { Controller } from '../controller/loop.js';
import { planDatesFrom } from '../controller/plans.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { isInlineFaults, loadConfig, podSettings } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError } from '../core/errors.js';
import { FAULTS_SETTING, FaultInjectingSource, loadFaults } from '../core/faults.js';
import {
  EXIT_INDEX_PERMANENT,
  EXIT_INDEX_RETRIABLE,
  planConfigMapName,
  stage1JobWithPlan,
  stage3JobName,
} from '../core/jobs/spec.js';
import { createRetryJob } from '../core/kubernetes/cluster.js';
import type { KubeClient } from '../core/kubernetes/kube.js';
import { silentLogger } from '../core/log.js';
import type { PlanDate } from '../core/plan.js';
import { runStage3 } from '../core/stages/stage3.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';
import {
  type KubeApiServer,
  type KubeObject,
  type PodAttempt,
  type PodOutcome,
  startKubeApiServer,
} from './support/kubeApiServer.js';
import {
  ADMIN_TOKEN,
  applyStage3Spec,
  CONTROLLER_TOKEN,
  CONTROLLER_USER,
  clientFor,
  NAMESPACE,
  TOKENS,
  waitFor,
} from './support/kubeFixtures.js';
import { createWorkspaceWithPlans, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const PERMANENT = '{"permanent":["2021-10-20"]}';

function refusal(read: () => unknown): BadInputError {
  try {
    read();
  } catch (err) {
    if (err instanceof BadInputError) return err;
    throw err;
  }
  throw new Error('expected bad input');
}

describe('a --faults / BACKFILL_FAULTS value', () => {
  it('is inline JSON when it starts with { (after white space), else a path', () => {
    expect(isInlineFaults(PERMANENT)).toBe(true);
    expect(isInlineFaults('  \n{}')).toBe(true);
    expect(isInlineFaults('faults.json')).toBe(false);
    expect(isInlineFaults('/etc/faults.json')).toBe(false);
    expect(isInlineFaults('./{odd}.json')).toBe(false);
    expect(isInlineFaults('[]')).toBe(false);
  });

  it('inline: parsed against the fault schema, with its defaults', () => {
    expect(loadFaults(PERMANENT)).toEqual({ transient: [], permanent: ['2021-10-20'], corrupt: [] });
    expect(
      loadFaults(
        ' {"transient":["2021-11-03"],"corrupt":[{"date":"2021-11-07","file":"playerGameLogs","how":"empty"}],' +
          '"processorErrors":[{"date":"2022-01-12","processor":"player_daily_cache"}]}',
      ),
    ).toEqual({
      transient: ['2021-11-03'],
      permanent: [],
      corrupt: [{ date: '2021-11-07', file: 'playerGameLogs', how: 'empty' }],
      processorErrors: [{ date: '2022-01-12', processor: 'player_daily_cache' }],
    });
  });

  it('inline and not JSON: bad input naming the setting, as a fault file would name its path', () => {
    const err = refusal(() => loadFaults('{"permanent":["2021-10-20"]'));
    expect(err.message).toMatch(/^fault JSON in --faults \/ BACKFILL_FAULTS: not valid JSON: /);
    expect(err.where).toBe(FAULTS_SETTING);
    expect(err.exitCode).toBe(2);
  });

  it.each([
    { name: 'an unknown key', text: '{"permanant":["2021-10-20"]}', field: '(root)' },
    { name: 'a date that is not one', text: '{"permanent":["20/10/2021"]}', field: 'permanent.0' },
    {
      name: 'an unknown corruption',
      text: '{"corrupt":[{"date":"2021-10-20","file":"x","how":"empty"}]}',
      field: 'corrupt.0.file',
    },
    { name: 'an object of the wrong shape', text: '{"permanent":"2021-10-20"}', field: 'permanent' },
  ])('inline with $name: names the setting and the first wrong field', ({ text, field }) => {
    const err = refusal(() => loadFaults(text));
    expect(err.message.startsWith(`fault JSON in ${FAULTS_SETTING}: ${field}: `)).toBe(true);
    expect(err.where).toBe(FAULTS_SETTING);
  });

  it('anything else is still a fault file: read, or refused naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'faults-inline-'));
    const path = join(dir, 'faults.json');
    writeFileSync(path, PERMANENT);
    expect(loadFaults(path)).toEqual({ transient: [], permanent: ['2021-10-20'], corrupt: [] });
    const missing = join(dir, 'missing.json');
    const err = refusal(() => loadFaults(missing));
    expect(err.message.startsWith(`fault file ${missing}: ENOENT`)).toBe(true);
    expect(err.where).toBe(missing);
  });

  it('comes from the environment or the flag as given, and reaches the pods unchanged (a path, made absolute)', () => {
    const fromEnv = loadConfig({ env: { BACKFILL_FAULTS: PERMANENT } });
    expect(fromEnv.faults).toBe(PERMANENT);
    expect(podSettings(fromEnv).BACKFILL_FAULTS).toBe(PERMANENT);
    const fromFlag = loadConfig({ env: {}, flags: { faults: ` ${PERMANENT}` } });
    expect(podSettings(fromFlag).BACKFILL_FAULTS).toBe(` ${PERMANENT}`);
    const path = podSettings(loadConfig({ env: { BACKFILL_FAULTS: 'faults.json' } })).BACKFILL_FAULTS as string;
    expect(isAbsolute(path)).toBe(true);
    expect(path.endsWith('faults.json')).toBe(true);
    expect(podSettings(loadConfig({ env: {} })).BACKFILL_FAULTS).toBeUndefined();
  });
});

describe('inline faults through the CLI, whose Stage 1 pods are processes given the settings', () => {
  let ws: Workspace;
  const range = ['stage1', '--season', '2021-22', '--start-date', '2021-10-19', '--end-date', '2021-10-21'];
  const fast = ['--retry-delay-ms', '0'];

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
  }, 120_000);
  afterAll(() => ws.remove());

  it('a permanent fault from the flag fails its date on both attempts; the others load', async () => {
    const out = await ws.cli([...range, ...fast, '--faults', PERMANENT], {
      BACKFILL_RUN_ID: '20260101-000000000-aaaa',
    });
    expect(out.code, out.stderr).toBe(1);
    expect(out.stdout).toMatch(/2 of 3 dates loaded( \([^)]*\))?, 1 failed/);
    expect(out.stdout).toMatch(/2021-10-20/);
    const log = readFileSync(
      join(ws.dir, '.backfill/logs/jobs/nba-stage1-202122-20260101-000000000-aaaa/index-1.log'),
      'utf8',
    );
    expect(log).toMatch(/injected fault: .* for 2021-10-20 fails on every attempt/);
    expect(log).toMatch(/"attempt":2/);
  }, 120_000);

  it('the same from BACKFILL_FAULTS; without it the date loads (the fault is gone, so is the failure)', async () => {
    const faulty = await ws.cli([...range, ...fast], { BACKFILL_FAULTS: PERMANENT });
    expect(faulty.code, faulty.stderr).toBe(1);
    expect(faulty.stdout).toMatch(/2 of 3 dates loaded( \([^)]*\))?, 1 failed/);
    const fixed = await ws.cli([...range, ...fast]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/3 of 3 dates loaded( \([^)]*\))?, 0 failed/);
  }, 120_000);

  it('bad inline JSON is bad input (exit 2) naming the setting, before any date runs', async () => {
    const out = await ws.cli([...range, ...fast, '--faults', '{"permanent":["2021-10-20",]}']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/fault JSON in --faults \/ BACKFILL_FAULTS: not valid JSON/);
    expect(out.stdout).not.toMatch(/dates loaded/);
  }, 60_000);
});

describe('inline faults in the chart (CHART_EXTRA_ENV), as the kind run injects one', () => {
  const KIND = {
    CHART_SEASONS: '2021-22',
    CHART_IMAGE: 'nba-backfill:e2e',
    CHART_IMAGE_PULL_POLICY: 'IfNotPresent',
    CHART_EXTRA_ENV: 'BIGQUERY_EMULATOR_HOST=http://bigquery:9050,METADATA_SERVER_DETECTION=none',
  };
  const built = async (env: Record<string, string>) => {
    const config = loadChartConfig(env);
    const seasons = await loadSeasons(config);
    const stage1 = buildApp(config, seasons)
      .files.map((f) => f.chart)
      .filter(isStage1Chart)
      .map((c) => c.built.job);
    return { config, seasons, job: stage1[0] };
  };
  const envOf = (job: Awaited<ReturnType<typeof built>>['job']) =>
    Object.fromEntries((job?.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]));

  it('every pod gets the JSON unchanged; the Stage 1 Job gets a new name, the same plan and Stage 3 Job', async () => {
    const plain = await built(KIND);
    const faulty = await built({ ...KIND, CHART_EXTRA_ENV: `${KIND.CHART_EXTRA_ENV},BACKFILL_FAULTS=${PERMANENT}` });
    expect(faulty.config.extraEnv.BACKFILL_FAULTS).toBe(PERMANENT);
    expect(envOf(faulty.job).BACKFILL_FAULTS).toBe(PERMANENT);
    expect(envOf(plain.job).BACKFILL_FAULTS).toBeUndefined();
    // The controller and the Stage 3 template get every pod's variables too.
    expect(podEnv(faulty.config).BACKFILL_FAULTS).toBe(PERMANENT);
    expect(faulty.job?.metadata.name).toMatch(/^nba-stage1-202122-[0-9a-f]{8}$/);
    expect(faulty.job?.metadata.name).not.toBe(plain.job?.metadata.name);
    expect(faulty.job?.metadata.labels['nba-backfill/plan-hash']).toBe(
      plain.job?.metadata.labels['nba-backfill/plan-hash'],
    );
    expect(stage3JobName('2021-22', faulty.seasons[0]?.dates ?? [])).toBe(
      stage3JobName('2021-22', plain.seasons[0]?.dates ?? []),
    );
    // The pods read it back as the programs do.
    expect(loadFaults(String(envOf(faulty.job).BACKFILL_FAULTS)).permanent).toEqual(['2021-10-20']);
  });

  it('refuses, naming CHART_EXTRA_ENV: a fault file path, bad JSON, or JSON with a comma (the pair separator)', () => {
    const refused = (value: string) => refusal(() => loadChartConfig({ ...KIND, CHART_EXTRA_ENV: value }));
    const path = refused('BACKFILL_FAULTS=/etc/faults.json');
    expect(path.message).toMatch(/^CHART_EXTRA_ENV: BACKFILL_FAULTS=\/etc\/faults.json: must be the fault JSON itself/);
    expect(path.where).toBe('CHART_EXTRA_ENV');
    const bad = refused('BACKFILL_FAULTS={"permanent":["2021-02-30"]}');
    expect(bad.message).toMatch(/^CHART_EXTRA_ENV: fault JSON in --faults \/ BACKFILL_FAULTS: permanent.0: /);
    expect(bad.where).toBe('CHART_EXTRA_ENV');
    const comma = refused('BACKFILL_FAULTS={"permanent":["2021-10-20","2021-10-21"]}');
    expect(comma.message).toMatch(/""2021-10-21"\]\}" is not NAME=value .* so a value holds none/);
    // An empty value is no faults, as the programs read an empty BACKFILL_FAULTS.
    expect(loadChartConfig({ ...KIND, CHART_EXTRA_ENV: 'BACKFILL_FAULTS=' }).extraEnv).toEqual({ BACKFILL_FAULTS: '' });
  });
});

describe('the kind failure scenario, against the API server double', () => {
  // The faults come from each pod's own environment, as in the cluster: a retry Job made by `retry --cluster`
  // copies its model's BACKFILL_FAULTS, and only a Stage 1 Job synthesized without it loads the date.
  const SEASON = '2021-22';
  const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];
  const planDates = planDatesFrom(join(REPO_ROOT, 'plans'));
  let t: TestPipeline;
  let server: KubeApiServer;
  let controllers: Controller[];

  beforeEach(async () => {
    t = await openTestPipeline('nba-backfill-faults-inline-');
    server = await startKubeApiServer({ tokens: TOKENS });
    controllers = [];
  });
  afterEach(async () => {
    expect(server.requests.filter((r) => r.user === CONTROLLER_USER && r.status === 403)).toEqual([]);
    for (const c of controllers) await c.stop();
    await server.podsIdle();
    await server.close();
    await t.dispose();
  });

  function newController(): Controller {
    const c = new Controller({
      kube: clientFor(server, CONTROLLER_TOKEN),
      warehouse: t.adapters.warehouse,
      log: pino({ level: 'silent' }),
      planDates,
      now: () => new Date(),
      instance: 'nba-backfill-controller-test',
      debounceMs: 20,
      resyncMs: 500,
      retryMs: 100,
    });
    controllers.push(c);
    return c;
  }

  /** The variables of a Job's container, by name. */
  function envOfJob(job: KubeObject | undefined): Record<string, string | undefined> {
    const spec = job?.spec as { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } };
    return Object.fromEntries((spec?.template?.spec?.containers?.[0]?.env ?? []).map((e) => [e.name, e.value]));
  }

  /** A Stage 1 pod as jobs/phase2-date runs it, its faults read from its own BACKFILL_FAULTS. */
  async function stage1Pod(a: PodAttempt): Promise<PodOutcome> {
    const cm = server.get('configmaps', NAMESPACE, planConfigMapName(a.jobName)) as KubeObject;
    const plan = JSON.parse(String((cm.data as Record<string, string>)['job-plan.json'])) as { dates: string[] };
    const date = plan.dates[a.index] as string;
    const setting = envOfJob(a.job).BACKFILL_FAULTS;
    const attempt = a.failureCount + 1;
    const ports = setting
      ? { ...t.adapters, source: new FaultInjectingSource(t.adapters.source, loadFaults(setting), attempt) }
      : t.adapters;
    const result = await runPhases1And2(ports, silentLogger(), date, {
      trigger: { command: 'jobs/phase2-date', stage: 'stage1', jobName: a.jobName, jobIndex: a.index },
      attempt,
      skipDownstreamTrigger: true,
    });
    if (result.ok) return { result: 'succeed' };
    const permanent = result.failures.every((f) => f.error instanceof BadInputError);
    return {
      result: 'fail',
      exitCode: permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE,
      log: result.failures.map((f) => `${JSON.stringify({ date, err: f.error.message })}\n`).join(''),
    };
  }

  async function stage3Pod(dates: PlanDate[]): Promise<PodOutcome> {
    const summaryFile = join(t.dir, `summary-${Date.now()}.json`);
    const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
    const run = await runStage3(ports, silentLogger(), { season: SEASON, dates, summaryFile });
    const terminationMessage = readFileSync(summaryFile, 'utf8');
    return run.summary.status === 'succeeded'
      ? { result: 'succeed', terminationMessage }
      : { result: 'fail', exitCode: 1, terminationMessage };
  }

  /** A season's Stage 1 Job with its plan, as `kubectl apply` of the synthesized file creates them. */
  async function applyStage1(admin: KubeClient, env: Record<string, string>): Promise<string> {
    const { job, planConfigMap } = stage1JobWithPlan({ season: SEASON, dates: DATES, parallelism: 2, env });
    await admin.createConfigMap(planConfigMap as unknown as V1ConfigMap);
    await admin.createJob(job as unknown as V1Job);
    return job.metadata.name;
  }

  const configMap = (name: string) => server.get('configmaps', NAMESPACE, name);
  const gate = () => configMap('nba-backfill-gate-202122')?.metadata.annotations ?? {};
  const events = (reason: string) =>
    (server.list('events', NAMESPACE) as (KubeObject & { reason: string; message: string })[]).filter(
      (e) => e.reason === reason,
    );
  const failuresOf = async (job: string) => {
    const cm = await waitFor(`the failure report of ${job}`, () => configMap(`${job}-failures`), 30_000);
    return JSON.parse(String((cm.data as Record<string, string>)['failures.json']));
  };

  it('failed index, report and refused gate; a retry inherits the fault; a Stage 1 Job without it loads the date and Stage 3 follows', async () => {
    const dates = await planDates(SEASON, DATES);
    server.setPodScript((a) =>
      a.job.metadata.labels?.['app.kubernetes.io/component'] === 'stage1' ? stage1Pod(a) : stage3Pod(dates),
    );
    const admin = clientFor(server, ADMIN_TOKEN);
    const stage3 = await applyStage3Spec(admin, SEASON, DATES);
    const faulty = await applyStage1(admin, { BACKFILL_FAULTS: PERMANENT });
    let controller = newController();
    await controller.start();

    // The date's index failed on both attempts (retriable, exit 1), the others loaded; reported with its logs.
    expect(await failuresOf(faulty)).toMatchObject({
      completedIndexes: '0,2,3',
      failedIndexes: '1',
      failed: [{ date: '2021-10-20', index: 1, attempts: 2, exitCodes: [1, 1], reason: 'BackoffLimitExceeded' }],
    });
    expect(events('DatesFailed').map((e) => e.message)).toEqual([expect.stringContaining('2021-10-20 (index 1: ')]);
    // The gate refuses, and Stage 3 is not created.
    await waitFor('the refused gate', () => gate()['nba-backfill/gate-passed'] === 'false', 30_000);
    const refusedKey = gate()['nba-backfill/gate-key'];
    await controller.idle();
    expect(server.get('jobs', NAMESPACE, stage3)).toBeUndefined();

    // `backfill retry --cluster` before the fix: the retry Job copies its model's settings, the fault with them.
    const retry = await createRetryJob(admin, SEASON, ['2021-10-20'], 2);
    expect(retry.model).toBe(faulty);
    expect(envOfJob(server.get('jobs', NAMESPACE, retry.job)).BACKFILL_FAULTS).toBe(PERMANENT);
    expect(await failuresOf(retry.job)).toMatchObject({ failedIndexes: '0', failed: [{ date: '2021-10-20' }] });
    await waitFor('the gate to run again', () => gate()['nba-backfill/gate-key'] !== refusedKey, 30_000);
    expect(gate()['nba-backfill/gate-passed']).toBe('false');
    await controller.idle();
    expect(server.get('jobs', NAMESPACE, stage3)).toBeUndefined();

    // The fix: synthesized again without the fault, which is a new Stage 1 Job (and a new controller pod).
    await controller.stop();
    const fixed = await applyStage1(admin, {});
    expect(fixed).not.toBe(faulty);
    controller = newController();
    await controller.start();
    await waitFor('Stage 3 after the fix', () => server.get('jobs', NAMESPACE, stage3), 60_000);
    expect(gate()['nba-backfill/gate-passed']).toBe('true');
    expect(events('GatePassed').map((e) => (e.involvedObject as { name: string }).name)).toEqual([fixed]);
    expect(configMap(`${fixed}-failures`)).toBeUndefined();
    const validation = await waitFor('the validation report', () => configMap(`${stage3}-validation`), 90_000);
    expect(validation.metadata.annotations?.['nba-backfill/passed']).toBe('true');
    await controller.idle();
    expect(controller.stats.actions.createStage3Job).toBe(1);
  }, 180_000);
});
