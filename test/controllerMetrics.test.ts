// The controller's /metrics, scraped over HTTP while it runs against the API server double: a season of four
// dates whose third fails in Stage 1 (the gate fails), a retry Job that loads it (the gate passes), Stage 3 on a
// clock that makes every date take 1.5 s, then the validation; watch and pass failures injected on the way.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHealthServer } from '../controller/health.js';
import { Controller } from '../controller/loop.js';
import { planDatesFrom } from '../controller/plans.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { EXIT_INDEX_PERMANENT, planConfigMapName } from '../core/jobs/spec.js';
import { createRetryJob } from '../core/kubernetes/cluster.js';
import { silentLogger } from '../core/log.js';
import { runStage3 } from '../core/stages/stage3.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';
import { type KubeApiServer, type KubeObject, type PodAttempt, startKubeApiServer } from './support/kubeApiServer.js';
import {
  ADMIN_TOKEN,
  applyStage1,
  applyStage3Spec,
  CONTROLLER_TOKEN,
  clientFor,
  NAMESPACE,
  TOKENS,
  waitFor,
} from './support/kubeFixtures.js';
import { REPO_ROOT } from './support/workspace.js';

const SEASON = '2021-22';
const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];
const FAILING = '2021-10-21';
const planDates = planDatesFrom(join(REPO_ROOT, 'plans'));

let t: TestPipeline;
let server: KubeApiServer;
let controller: Controller | undefined;
let http: Server | undefined;

beforeEach(async () => {
  t = await openTestPipeline('nba-backfill-metrics-');
  server = await startKubeApiServer({ tokens: TOKENS });
});
afterEach(async () => {
  await controller?.stop();
  http?.close();
  await server.podsIdle();
  await server.close();
  await t.dispose();
});

/** The exposition text as `name{labels}` -> value (labels as printed, in the order prom-client prints them). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** A Stage 1 pod: its date from the plan ConfigMap; the failing date fails on bad input in the first Job only. */
async function stage1Pod(a: PodAttempt) {
  const cm = server.get('configmaps', NAMESPACE, planConfigMapName(a.jobName)) as KubeObject;
  const plan = JSON.parse(String((cm.data as Record<string, string>)['job-plan.json'])) as { dates: string[] };
  const date = plan.dates[a.index] as string;
  if (date === FAILING && !a.jobName.startsWith('nba-retry-'))
    return { result: 'fail' as const, exitCode: EXIT_INDEX_PERMANENT, log: 'bad input\n' };
  const result = await runPhases1And2(t.adapters, silentLogger(), date, {
    trigger: { command: 'jobs/phase2-date', stage: 'stage1', jobName: a.jobName, jobIndex: a.index },
    skipDownstreamTrigger: true,
  });
  return result.ok ? { result: 'succeed' as const } : { result: 'fail' as const, exitCode: 1 };
}

describe('the controller /metrics', () => {
  it('counts dates, gate verdicts, Stage 3 progress and seconds per date, passes, errors and watch restarts', async () => {
    const dates = await planDates(SEASON, DATES);
    server.setPodScript(async (a) => {
      if (a.job.metadata.labels?.['app.kubernetes.io/component'] === 'stage1') return stage1Pod(a);
      const summaryFile = join(t.dir, `summary-${a.jobName}.json`);
      let clock = 0;
      const run = await runStage3(
        { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) },
        silentLogger(),
        {
          season: SEASON,
          dates,
          summaryFile,
          // Every date takes 1.5 s on this clock (two readings per date: date by date, each its own batch).
          now: () => (clock += 1500),
          batchSize: 1,
        },
      );
      const terminationMessage = readFileSync(summaryFile, 'utf8');
      return run.summary.status === 'succeeded'
        ? { result: 'succeed', terminationMessage }
        : { result: 'fail', exitCode: 1, terminationMessage };
    });
    const admin = clientFor(server, ADMIN_TOKEN);
    const stage3 = await applyStage3Spec(admin, SEASON, DATES);
    const { job } = await applyStage1(admin, SEASON, DATES);

    controller = new Controller({
      kube: clientFor(server, CONTROLLER_TOKEN),
      warehouse: t.adapters.warehouse,
      log: silentLogger(),
      planDates,
      now: () => new Date(),
      instance: 'nba-backfill-controller-test',
      debounceMs: 20,
      resyncMs: 500,
      retryMs: 50,
    });
    server.failNext({ verb: 'watch', resource: 'jobs', status: 500 });
    server.failNext({ verb: 'watch', resource: 'jobs', status: 503 });
    server.failNext({ verb: 'list', resource: 'configmaps', status: 500 });
    const c = controller;
    http = (
      await startHealthServer(
        () => c.health(),
        0,
        '127.0.0.1',
        () => c.metrics.render(),
      )
    ).server;
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    const scrape = async () => {
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parseMetrics(await res.text());
    };
    await controller.start();

    // Stage 1 ended with one failed date, and the gate failed on it.
    await waitFor('the failed gate', () => server.get('configmaps', NAMESPACE, 'nba-backfill-gate-202122'));
    await controller.idle();
    const afterGate = await scrape();
    expect(afterGate.get(`nba_backfill_stage1_dates{season="${SEASON}",state="planned"}`)).toBe(4);
    expect(afterGate.get(`nba_backfill_stage1_dates{season="${SEASON}",state="loaded"}`)).toBe(3);
    expect(afterGate.get(`nba_backfill_stage1_dates{season="${SEASON}",state="failed"}`)).toBe(1);
    expect(afterGate.get(`nba_backfill_gate_passed{season="${SEASON}"}`)).toBe(0);
    expect(afterGate.get(`nba_backfill_gate_runs_total{season="${SEASON}",verdict="failed"}`)).toBe(1);
    expect(afterGate.has(`nba_backfill_stage3_dates_complete{season="${SEASON}"}`)).toBe(false);
    expect(afterGate.get('nba_backfill_controller_actions_total{kind="reportStage1Failures"}')).toBe(1);

    // The retry loads the date: the gate passes, Stage 3 runs and is validated.
    await createRetryJob(admin, SEASON, [FAILING], 2);
    await waitFor('the validation report', () => server.get('configmaps', NAMESPACE, `${stage3}-validation`), 60_000);
    await controller.idle();
    const m = await scrape();
    expect(m.get(`nba_backfill_stage1_dates{season="${SEASON}",state="planned"}`)).toBe(4);
    expect(m.get(`nba_backfill_stage1_dates{season="${SEASON}",state="loaded"}`)).toBe(4);
    expect(m.get(`nba_backfill_stage1_dates{season="${SEASON}",state="failed"}`)).toBe(0);
    expect(m.get(`nba_backfill_gate_passed{season="${SEASON}"}`)).toBe(1);
    expect(m.get(`nba_backfill_gate_runs_total{season="${SEASON}",verdict="failed"}`)).toBe(1);
    expect(m.get(`nba_backfill_gate_runs_total{season="${SEASON}",verdict="passed"}`)).toBe(1);
    expect(m.get(`nba_backfill_stage3_dates{season="${SEASON}"}`)).toBe(4);
    expect(m.get(`nba_backfill_stage3_dates_complete{season="${SEASON}"}`)).toBe(4);
    expect(m.get(`nba_backfill_stage3_runs_total{season="${SEASON}",status="succeeded"}`)).toBe(1);
    expect(m.get(`nba_backfill_stage3_date_seconds_count{season="${SEASON}"}`)).toBe(4);
    expect(m.get(`nba_backfill_stage3_date_seconds_sum{season="${SEASON}"}`)).toBe(6);
    expect(m.get(`nba_backfill_stage3_date_seconds_bucket{le="1",season="${SEASON}"}`)).toBe(0);
    expect(m.get(`nba_backfill_stage3_date_seconds_bucket{le="2",season="${SEASON}"}`)).toBe(4);
    expect(m.get(`nba_backfill_stage3_date_seconds_bucket{le="+Inf",season="${SEASON}"}`)).toBe(4);
    expect(m.get('nba_backfill_controller_actions_total{kind="runGate"}')).toBe(2);
    expect(m.get('nba_backfill_controller_actions_total{kind="createStage3Job"}')).toBe(1);
    expect(m.get('nba_backfill_controller_actions_total{kind="validate"}')).toBe(1);
    // Two watches failed; the first report listing failed one pass. Passes are counted as the loop counts them.
    expect(m.get('nba_backfill_controller_watch_restarts_total')).toBe(2);
    expect(m.get('nba_backfill_controller_reconcile_errors_total')).toBe(1);
    expect(m.get('nba_backfill_controller_reconcile_passes_total')).toBe(controller.stats.passes);
    expect(controller.stats.passes).toBeGreaterThan(3);
    expect(job).toMatch(/^nba-stage1-202122-/);

    // /healthz is unchanged; anything else is not found.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const missing = await fetch(`${url}/other`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('not found: the controller serves /healthz and /metrics only\n');
  });

  it('is one registry per controller: a second controller starts at zero', async () => {
    const ports = {
      kube: clientFor(server, CONTROLLER_TOKEN),
      warehouse: t.adapters.warehouse,
      log: silentLogger(),
      planDates,
      now: () => new Date(),
      instance: 'x',
    };
    const a = new Controller(ports);
    const b = new Controller(ports);
    a.metrics.watchRestarted();
    const text = async (ctl: Controller) => parseMetrics((await ctl.metrics.render()).body);
    expect((await text(a)).get('nba_backfill_controller_watch_restarts_total')).toBe(1);
    expect((await text(b)).get('nba_backfill_controller_watch_restarts_total')).toBe(0);
  });
});
