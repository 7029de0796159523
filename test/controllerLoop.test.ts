// The controller end to end against the API server double: Stage 1 pods do the real Phase 1-2 of their date
// (read from their plan ConfigMap) into a real DuckDB warehouse, the controller runs the real gate, creates the
// Stage 3 Job, whose pod runs the real Stage 3, and validates. Restarts of the controller at several points
// converge without creating a Job or a report twice; a failed date is reported with its logs command and
// holds Stage 3 back until a retry Job loads it; a Stage 3 failure is reported from its termination message.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Controller, type ControllerOptions } from '../controller/loop.js';
import { planDatesFrom } from '../controller/plans.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError } from '../core/errors.js';
import { CorruptingObjectStore, type Faults } from '../core/faults.js';
import { EXIT_INDEX_PERMANENT, EXIT_INDEX_RETRIABLE, planConfigMapName, stage1JobWithPlan } from '../core/jobs/spec.js';
import { createRetryJob } from '../core/kubernetes/cluster.js';
import { silentLogger } from '../core/log.js';
import type { PipelinePorts } from '../core/pipeline/processor.js';
import type { PlanDate } from '../core/plan.js';
import { nbacPlayerBoxscore } from '../core/schema/raw.js';
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
  applyStage1,
  applyStage3Spec,
  CONTROLLER_RULES,
  CONTROLLER_TOKEN,
  CONTROLLER_USER,
  clientFor,
  NAMESPACE,
  TOKENS,
  waitFor,
} from './support/kubeFixtures.js';
import { REPO_ROOT } from './support/workspace.js';

const SEASON = '2021-22';
const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];
const planDates = planDatesFrom(join(REPO_ROOT, 'plans'));

let t: TestPipeline;
let server: KubeApiServer;
let logLines: Record<string, unknown>[];
let controllers: Controller[];
/** Pods a test holds back; released after it, so that a failing test does not leave them running. */
let held: (() => void)[];

beforeEach(async () => {
  t = await openTestPipeline('nba-backfill-controller-');
  server = await startKubeApiServer({ tokens: TOKENS });
  logLines = [];
  controllers = [];
  held = [];
});
afterEach(async () => {
  // The Role is enough: the API server never refused the controller.
  expect(server.requests.filter((r) => r.user === CONTROLLER_USER && r.status === 403)).toEqual([]);
  for (const c of controllers) await c.stop();
  for (const release of held) release();
  await server.podsIdle();
  await server.close();
  await t.dispose();
});

function newController(resyncMs = 500, overrides: Partial<ControllerOptions> = {}): Controller {
  const log: Logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) });
  const c = new Controller({
    kube: clientFor(server, CONTROLLER_TOKEN),
    warehouse: t.adapters.warehouse,
    log,
    planDates,
    now: () => new Date(),
    ...overrides,
    instance: 'nba-backfill-controller-test',
    debounceMs: 20,
    resyncMs,
    retryMs: 100,
  });
  controllers.push(c);
  return c;
}

/** One Stage 1 pod, as jobs/phase2-date runs it: its date from the plan ConfigMap, exit 2 on bad input. */
async function stage1Pod(a: PodAttempt, faults?: Faults): Promise<PodOutcome> {
  const cm = server.get('configmaps', NAMESPACE, planConfigMapName(a.jobName)) as KubeObject;
  const date = (JSON.parse(String((cm.data as Record<string, string>)['job-plan.json'])) as { dates: string[] }).dates[
    a.index
  ] as string;
  const ports: PipelinePorts = faults
    ? { ...t.adapters, objects: new CorruptingObjectStore(t.adapters.objects, faults) }
    : t.adapters;
  const result = await runPhases1And2(ports, silentLogger(), date, {
    trigger: { command: 'jobs/phase2-date', stage: 'stage1', jobName: a.jobName, jobIndex: a.index },
    attempt: a.failureCount + 1,
    skipDownstreamTrigger: true,
  });
  const line = (msg: string, extra: Record<string, unknown> = {}) =>
    `${JSON.stringify({ level: 30, date, index: a.index, msg, ...extra })}\n`;
  if (result.ok) return { result: 'succeed', log: line('index succeeded') };
  const permanent = result.failures.every((f) => f.error instanceof BadInputError);
  return {
    result: 'fail',
    exitCode: permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE,
    log: result.failures
      .map((f) => line('processor failed', { processor: f.processor, err: f.error.message }))
      .join(''),
  };
}

/** The Stage 3 pod, as jobs/phase3-runner runs it: its summary becomes the termination message. */
async function stage3Pod(dates: PlanDate[], onDate?: (date: string) => Promise<void>): Promise<PodOutcome> {
  const summaryFile = join(t.dir, `summary-${Date.now()}.json`);
  const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
  const run = await runStage3(ports, silentLogger(), { season: SEASON, dates, summaryFile, onDate });
  const terminationMessage = readFileSync(summaryFile, 'utf8');
  return run.summary.status === 'succeeded'
    ? { result: 'succeed', terminationMessage }
    : { result: 'fail', exitCode: 1, terminationMessage };
}

const component = (a: PodAttempt) => a.job.metadata.labels?.['app.kubernetes.io/component'];
const configMap = (name: string) => server.get('configmaps', NAMESPACE, name);
/** A ConfigMap's data; empty when it does not exist. */
const dataOf = (name: string) => (configMap(name)?.data ?? {}) as Record<string, string>;
const events = () => server.list('events', NAMESPACE) as (KubeObject & { reason: string; message: string })[];

describe('the controller loop against the API server double', () => {
  it('all dates load: the gate passes, Stage 3 is created once across restarts, then validated once', async () => {
    let release: () => void = () => {};
    const stage3Started = new Promise<void>((r) => {
      release = r;
      held.push(r);
    });
    const dates = await planDates(SEASON, DATES);
    server.setPodScript(async (a) => {
      if (component(a) === 'stage1') return stage1Pod(a);
      await stage3Started;
      return stage3Pod(dates);
    });
    const admin = clientFor(server, ADMIN_TOKEN);
    const stage3 = await applyStage3Spec(admin, SEASON, DATES);
    const { job } = await applyStage1(admin, SEASON, DATES);

    // The first controller sees Stage 1 through, runs the gate once, creates Stage 3, and is stopped. Its watch
    // lags (1.5 s) while it resyncs every 100 ms: passes that do not see the new Job yet must not create it again.
    const first = newController(100);
    await first.start();
    await waitFor(
      'the Stage 1 job to finish',
      () => (server.get('jobs', NAMESPACE, job)?.status as { completionTime?: string } | undefined)?.completionTime,
    );
    server.setWatchDelay(1500);
    await waitFor('the Stage 3 job', () => server.get('jobs', NAMESPACE, stage3));
    const passes = first.stats.passes;
    await waitFor('passes while the watch lags', () => first.stats.passes >= passes + 3);
    expect(first.stats.lists).toBe(1);
    await first.stop();
    server.setWatchDelay(0);
    expect(first.stats.actions.runGate).toBe(1);
    expect(first.stats.actions.createStage3Job).toBe(1);
    expect(first.stats.actions.reportStage1Failures).toBeUndefined();
    expect(configMap('nba-backfill-gate-202122')?.metadata.annotations).toMatchObject({
      'nba-backfill/gate-passed': 'true',
    });
    expect(String(dataOf('nba-backfill-gate-202122')['gate.txt'])).toMatch(/GATE PASSED/);
    expect(configMap(`${job}-failures`)).toBeUndefined();
    expect(events().map((e) => [e.reason, (e.involvedObject as { name: string }).name])).toEqual(
      expect.arrayContaining([
        ['GatePassed', job],
        ['Stage3Created', stage3],
      ]),
    );

    // A restart while Stage 3 runs: nothing is created again; Stage 3 ends and is validated.
    const second = newController();
    await second.start();
    await second.idle();
    release();
    await waitFor('the validation report', () => configMap(`${stage3}-validation`), 60_000);
    await second.idle();
    await second.stop();
    expect(second.stats.actions.createStage3Job).toBeUndefined();
    expect(second.stats.actions.runGate).toBeUndefined();
    expect(second.stats.actions.validate).toBe(1);
    const validation = configMap(`${stage3}-validation`) as KubeObject;
    const summary = JSON.parse(String((validation.data as Record<string, string>)['summary.json']));
    expect(summary).toMatchObject({ passed: true, dates: 4, stage3: { status: 'succeeded', processed: 4 } });
    expect(validation.metadata.annotations?.['nba-backfill/passed']).toBe('true');
    expect(String((validation.data as Record<string, string>)['report.md'])).toMatch(
      /# NBA backfill validation: 2021-22/,
    );

    // A third start after everything: it observes, and does nothing.
    const third = newController();
    await third.start();
    await third.idle();
    expect(third.stats.passes).toBeGreaterThan(0);
    expect(third.stats.actions).toEqual({});

    // Across the three controllers: the Stage 3 Job created once, and never asked for twice.
    const jobPosts = server.requests.filter((r) => r.method === 'POST' && r.resource === 'jobs' && r.user !== 'admin');
    expect(jobPosts.map((r) => r.status)).toEqual([201]);
    const validationPosts = server.requests.filter(
      (r) => r.method === 'POST' && r.resource === 'configmaps' && r.status === 201 && r.user !== 'admin',
    );
    expect(validationPosts).toHaveLength(2); // the gate report and the validation report
    expect(events().filter((e) => e.reason === 'ValidationPassed')).toHaveLength(1);
    expect(logLines.some((l) => l.msg === 'VALIDATION PASSED' && l.job === stage3)).toBe(true);
    expect(logLines.some((l) => l.msg === 'stage 3 job created' && l.season === SEASON)).toBe(true);
  });

  it('a failed date is reported with its logs command and holds Stage 3 back until a retry loads it; a Stage 3 failure is reported from its termination message', async () => {
    const dates = await planDates(SEASON, DATES);
    // 2021-10-21's player log is corrupt (bad input: exit 2, no retry) in the Stage 1 job only; 2021-10-20
    // fails once on a transient error and loads on its retry. Stage 3 then meets a gap that appears
    // after its gate (2021-10-22's player rows vanish while it runs 2021-10-20).
    const corrupt: Faults = {
      transient: [],
      permanent: [],
      corrupt: [{ date: '2021-10-21', file: 'playerGameLogs', how: 'invalid-json' }],
    };
    server.setPodScript(async (a) => {
      if (component(a) === 'stage3') {
        return stage3Pod(dates, async (date) => {
          if (date === '2021-10-20') {
            await t.adapters.warehouse.commit({
              replace: [{ table: nbacPlayerBoxscore, date: '2021-10-22', rows: [] }],
              append: [],
            });
          }
        });
      }
      if (a.jobName.startsWith('nba-retry-')) return stage1Pod(a);
      if (a.index === 1 && a.attempt === 1)
        return { result: 'fail', exitCode: EXIT_INDEX_RETRIABLE, log: 'HTTP 503\n' };
      return stage1Pod(a, corrupt);
    });
    const admin = clientFor(server, ADMIN_TOKEN);
    const stage3 = await applyStage3Spec(admin, SEASON, DATES);
    const { job } = await applyStage1(admin, SEASON, DATES);
    // The controller's first ConfigMap write fails: it has appended the failure log but not yet marked the
    // report done, as after a crash between the two. The report is written again, and the rows once.
    server.failNext({ verb: 'create', resource: 'configmaps', status: 500 });
    const controller = newController();
    await controller.start();

    // The failure log: one date, its reason, attempts, the failing processor and the command for its logs.
    const failures = await waitFor('the failure log', () => configMap(`${job}-failures`));
    const log = JSON.parse(String((failures.data as Record<string, string>)['failures.json']));
    const kubectl = `kubectl logs -n ${NAMESPACE} -l batch.kubernetes.io/job-name=${job},batch.kubernetes.io/job-completion-index=2 --tail=-1 --prefix`;
    expect(log).toMatchObject({
      jobName: job,
      season: SEASON,
      completedIndexes: '0,1,3',
      failedIndexes: '2',
      failed: [
        {
          date: '2021-10-21',
          index: 2,
          attempts: 1,
          exitCodes: [2],
          reason: 'PodFailurePolicy',
          // The first Phase 2 processor (by name) whose latest run on the date failed, as `backfill failures` says.
          processor: 'nbac_gamebook_player_stats',
          error: expect.stringMatching(/JSON/),
          logs: kubectl,
        },
      ],
    });
    const event = events().find((e) => e.reason === 'DatesFailed');
    expect(event?.type).toBe('Warning');
    expect(event?.message).toContain(`2021-10-21 (index 2: ${kubectl})`);
    expect(logLines.find((l) => l.msg === 'date failed')).toMatchObject({
      date: '2021-10-21',
      index: 2,
      logs: kubectl,
    });
    // `backfill failures` reads the same failure, with the command as where the logs are.
    const rows = await t.adapters.warehouse.query(
      'SELECT CAST(data_date AS STRING) AS d, log_location FROM nba_reference.backfill_failure_log WHERE job_name = @job',
      { job },
    );
    expect(rows).toEqual([{ d: '2021-10-21', log_location: kubectl }]);

    // The gate fails on that date, says so, and Stage 3 is not created.
    const gate = await waitFor('the gate report', () => configMap('nba-backfill-gate-202122'));
    expect(gate.metadata.annotations?.['nba-backfill/gate-passed']).toBe('false');
    expect(String((gate.data as Record<string, string>)['gate.txt'])).toMatch(/nbac_player_boxscore .* 2021-10-21/);
    expect(events().find((e) => e.reason === 'GateFailed')?.message).toMatch(/1 date\(s\) incomplete \(2021-10-21\)/);
    await controller.idle();
    expect(server.get('jobs', NAMESPACE, stage3)).toBeUndefined();
    expect(
      logLines.some(
        (l) => String(l.msg).startsWith('GATE FAILED') && (l.missingDates as string[])?.[0] === '2021-10-21',
      ),
    ).toBe(true);

    // The fix, then `backfill retry --cluster`: a retry Job for the failed date, modelled on the Stage 1 Job.
    const retry = await createRetryJob(admin, SEASON, ['2021-10-21'], 2);
    expect(retry.model).toBe(job);
    await waitFor('Stage 3 after the retry', () => server.get('jobs', NAMESPACE, stage3), 30_000);
    await waitFor(
      'the gate report to pass',
      () => configMap('nba-backfill-gate-202122')?.metadata.annotations?.['nba-backfill/gate-passed'] === 'true',
    );
    expect(events().find((e) => e.reason === 'GatePassed')?.involvedObject).toMatchObject({ name: retry.job });

    // Stage 3 stops at the gap: the controller reports the date and the reason from the termination message.
    const result = await waitFor('the Stage 3 failure report', () => configMap(`${stage3}-result`), 60_000);
    const message = String((result.data as Record<string, string>)['message.txt']);
    expect(message).toMatch(
      /^Stage 3 of 2021-22 stopped at 2021-10-22 \(player_game_summary, gap_detection\): Analytics BLOCKED: Gap Detected - missing dates in lookback window: 2021-10-22/,
    );
    expect(events().find((e) => e.reason === 'Stage3Failed')?.message).toContain('stopped at 2021-10-22');
    await controller.idle();
    expect(logLines.find((l) => l.failedDate === '2021-10-22')).toMatchObject({ level: 50, check: 'gap_detection' });
    expect(controller.stats.actions).toMatchObject({
      // Twice: the first report's ConfigMap write failed (above), so the pass ran it again.
      reportStage1Failures: 2,
      runGate: 2,
      publishGate: 2,
      createStage3Job: 1,
      reportStage3Failure: 1,
    });
    expect(controller.stats.actions.validate).toBeUndefined();
    // Every verb the Role grants was used on this path, and nothing else was asked for (the leases are the
    // program's leader election, which controllerLease.test.ts runs with the same Role).
    const used = new Set(
      server.requests.filter((r) => r.user === CONTROLLER_USER).map((r) => `${r.verb} ${r.resource}`),
    );
    const granted = new Set(
      CONTROLLER_RULES.flatMap((rule) => rule.resources.flatMap((res) => rule.verbs.map((v) => `${v} ${res}`))).filter(
        (g) => !g.endsWith(' leases'),
      ),
    );
    expect([...used].sort()).toEqual([...granted].sort());
  });

  it('restarts its watch after errors and retries a pass that failed, then carries on', async () => {
    const admin = clientFor(server, ADMIN_TOKEN);
    await applyStage3Spec(admin, SEASON, DATES);
    const controller = newController();
    // The first watch and the one after it fail (HTTP 500, then 503); the first report listing fails once.
    server.failNext({ verb: 'watch', resource: 'jobs', status: 500 });
    server.failNext({ verb: 'watch', resource: 'jobs', status: 503 });
    server.failNext({ verb: 'list', resource: 'configmaps', status: 500 });
    await controller.start();
    // Stage 1 pods that load nothing: the gate fails, which is what this test waits for.
    server.setPodScript(() => ({ result: 'succeed' }));
    const { job } = await applyStage1(admin, SEASON, DATES);
    const gate = await waitFor('the gate report', () => configMap('nba-backfill-gate-202122'));
    expect(gate.metadata.annotations?.['nba-backfill/gate-passed']).toBe('false');
    expect(controller.stats.watchErrors).toBe(2);
    expect(controller.stats.failedPasses).toBe(1);
    expect(controller.stats.actions.runGate).toBe(1);
    expect(logLines.filter((l) => l.msg === 'job watch failed; restarting it').map((l) => l.err)).toEqual([
      expect.stringMatching(/500|Internal Server Error/),
      expect.stringMatching(/503|Service Unavailable/),
    ]);
    expect(logLines.find((l) => l.msg === 'pass failed; trying again')?.err).toMatch(
      /list configmaps in namespace nba-backfill .*: HTTP 500 InternalError: injected fault/,
    );
    expect(controller.health()).toMatchObject({ ok: true });
    expect(events().find((e) => e.reason === 'GateFailed')?.involvedObject).toMatchObject({ name: job });
  });
});

describe('a long action and a failing season', () => {
  it('stays live through a gate longer than 3 resyncs while its queries progress, and not when one hangs', async () => {
    let clock = Date.parse('2026-12-01T00:00:00Z');
    const held: (() => void)[] = [];
    let holding = false;
    // The warehouse the controller's gate reads: each query waits for the test while `holding`.
    const warehouse = new Proxy(t.adapters.warehouse, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver);
        if (prop !== 'query' || typeof value !== 'function')
          return typeof value === 'function' ? value.bind(obj) : value;
        return async (...args: unknown[]) => {
          if (holding) await new Promise<void>((resolve) => held.push(resolve));
          return value.apply(obj, args);
        };
      },
    });
    server.setPodScript((a) => stage1Pod(a));
    holding = true;
    // resync 500 ms: no progress for 1.5 s (3 resyncs, on the controller's clock) fails /healthz.
    const controller = newController(500, { warehouse, now: () => new Date(clock) });
    await controller.start();
    await applyStage1(clientFor(server, ADMIN_TOKEN), SEASON, DATES.slice(0, 2));
    await waitFor('the gate to query the warehouse', () => held.length > 0 || undefined);
    expect(controller.health(clock)).toMatchObject({ ok: true });
    // Two steps of 1 s each, a query ending in each: 2 s into the gate, still live.
    for (let step = 0; step < 2; step++) {
      clock += 1000;
      held.shift()?.();
      await waitFor('the next query of the gate', () => held.length > 0 || undefined);
      expect(controller.health(clock)).toMatchObject({
        ok: true,
        detail: expect.stringContaining('running runGate 2021-22'),
      });
    }
    // A query that hangs: 2 s with nothing ending is no progress, and the probe fails.
    clock += 2000;
    expect(controller.health(clock)).toEqual({ ok: false, detail: 'no progress for 2 s; running runGate 2021-22' });
    holding = false;
    for (const release of held.splice(0)) release();
    await waitFor('the gate report', () => configMap('nba-backfill-gate-202122'));
  });

  it('a season whose action fails is retried alone, with an Event and a metric, while the other season goes on', async () => {
    const OTHER = '2022-23';
    const otherDates = ['2022-10-18', '2022-10-19'];
    let broken = true;
    // A plan in the image that differs from Git's, for one season: its gate cannot run.
    const controller = newController(500, {
      planDates: async (season, dates) => {
        if (broken && season === OTHER) throw new Error(`the plan of ${OTHER} in the image differs from the Job's`);
        return planDates(season, dates);
      },
    });
    server.setPodScript((a) => stage1Pod(a));
    await controller.start();
    const admin = clientFor(server, ADMIN_TOKEN);
    const { job: otherJob } = await applyStage1(admin, OTHER, otherDates);
    await applyStage1(admin, SEASON, DATES.slice(0, 2));
    // The other season reaches its gate and publishes it, though 2022-23 failed first (seasons come in order).
    await waitFor('the 2021-22 gate report', () => configMap('nba-backfill-gate-202122'));
    await waitFor('two failures in a row', () =>
      controller.failingSeasons()[OTHER]
        ? logLines.filter((l) => l.action === 'runGate' && l.season === OTHER).length >= 2 || undefined
        : undefined,
    );
    expect(configMap('nba-backfill-gate-202223')).toBeUndefined();
    expect(controller.failingSeasons()).toEqual({
      [OTHER]: `the plan of ${OTHER} in the image differs from the Job's`,
    });
    const failure = events().find((e) => e.reason === 'ActionFailed');
    expect(failure?.involvedObject).toMatchObject({ kind: 'Job', name: otherJob });
    expect(failure?.message).toMatch(
      /^runGate for 2022-23 failed \(1 in a row; next try in 0 s\): the plan of 2022-23/,
    );
    const retries = logLines.filter((l) => l.action === 'runGate' && l.season === OTHER).map((l) => l.retryInMs);
    // Backoff per season: 100 ms, then doubled.
    expect(retries.slice(0, 2)).toEqual([100, 200]);
    expect(await controller.metrics.render()).toMatchObject({
      body: expect.stringMatching(
        /nba_backfill_controller_action_failures_total\{kind="runGate",season="2022-23"\} [2-9]/,
      ),
    });
    expect(controller.stats.failedPasses).toBe(0);
    // Fixed: the next try runs its gate and the season is no longer failing.
    broken = false;
    await waitFor('the 2022-23 gate report', () => configMap('nba-backfill-gate-202223'));
    expect(controller.failingSeasons()).toEqual({});
  });

  it('acts only while it holds the leader lease', async () => {
    let leading = false;
    server.setPodScript((a) => stage1Pod(a));
    const controller = newController(200, { leading: () => leading });
    await controller.start();
    await applyStage1(clientFor(server, ADMIN_TOKEN), SEASON, DATES.slice(0, 2));
    await waitFor(
      'a pass that wanted to act',
      () => logLines.some((l) => l.msg === 'not holding the leader lease: acting on nothing') || undefined,
    );
    await controller.idle();
    expect(controller.stats.actions).toEqual({});
    expect(configMap('nba-backfill-gate-202122')).toBeUndefined();
    leading = true;
    await waitFor('the gate report once leading', () => configMap('nba-backfill-gate-202122'));
    expect(controller.stats.actions.runGate).toBe(1);
  });

  it('resumes its watch each time the API server ends it, from where it was, without listing again', async () => {
    await server.close();
    server = await startKubeApiServer({ tokens: TOKENS, watchTimeoutMs: 150 });
    server.setPodScript((a) => stage1Pod(a));
    const controller = newController(60_000);
    await controller.start();
    const watches = () =>
      server.requests.filter((r) => r.user === CONTROLLER_USER && r.verb === 'watch' && r.resource === 'jobs');
    await waitFor('three watches ended by the server', () => watches().length >= 4 || undefined);
    // A Job created now reaches the controller through a resumed watch: it runs the gate.
    await applyStage1(clientFor(server, ADMIN_TOKEN), SEASON, DATES.slice(0, 2));
    await waitFor('the gate report', () => configMap('nba-backfill-gate-202122'));
    expect(controller.stats.lists).toBe(1);
    expect(controller.stats.watchErrors).toBe(0);
    // Each resumed watch asked for changes since a resourceVersion it had seen.
    expect(
      watches()
        .slice(1)
        .every((r) => Number(r.query.resourceVersion) > 0),
    ).toBe(true);
  });

  it('a Stage 1 Job whose pods cannot start (its plan ConfigMap missing) is reported at its deadline, its indexes undated', async () => {
    server.setPodScript((a) => stage1Pod(a));
    const controller = newController();
    await controller.start();
    // The Job without its plan ConfigMap, as a sync that dropped the ConfigMap would leave it.
    const { job } = stage1JobWithPlan({ season: SEASON, dates: DATES.slice(0, 2), parallelism: 2 });
    await clientFor(server, ADMIN_TOKEN).createJob(job as never);
    const pending = () =>
      (server.list('pods', NAMESPACE) as KubeObject[]).filter(
        (p) =>
          (p.status as { containerStatuses?: { state?: { waiting?: { message?: string } } }[] })?.containerStatuses?.[0]
            ?.state?.waiting?.message ===
          `MountVolume.SetUp failed for volume "job-plan" : configmap "${job.metadata.name}-plan" not found`,
      );
    await waitFor('both pods Pending on the missing ConfigMap', () => pending().length === 2 || undefined);
    await controller.idle();
    expect(configMap(`${job.metadata.name}-failures`)).toBeUndefined();
    // Its activeDeadlineSeconds passes: the Job fails (DeadlineExceeded) and the controller reports both dates.
    server.passDeadline(job.metadata.name);
    const failures = await waitFor('the failure report', () => configMap(`${job.metadata.name}-failures`));
    const report = JSON.parse(String((failures.data as Record<string, string>)['failures.json']));
    // Without its plan, the controller cannot name the dates: it reports both indexes, with their logs command.
    expect(report).toMatchObject({ completedIndexes: '', failedIndexes: '', failed: [] });
    expect(report.undated.map((u: { index: number }) => u.index)).toEqual([0, 1]);
    const ended = server.get('jobs', NAMESPACE, job.metadata.name)?.status as {
      conditions?: { type: string; reason: string }[];
    };
    expect(ended.conditions?.map((c) => [c.type, c.reason])).toEqual([
      ['FailureTarget', 'DeadlineExceeded'],
      ['Failed', 'DeadlineExceeded'],
    ]);
  });
});
