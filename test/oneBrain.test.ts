// One brain, two executors: `backfill run` (the local executor, through the real CLI) and the controller (the
// Kubernetes executor, against the API server double) on the same four real 2021-22 dates take the same
// decisions, with the same reasons, in the same order: when every date loads, and when one date's raw file is
// corrupt so that the gate stops both. The run starts its Stage 1 Job itself; in the cluster the manifests do.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DECISION_TITLES } from '../cli/commands/run.js';
import { Controller } from '../controller/loop.js';
import { planDatesFrom } from '../controller/plans.js';
import { CheckedWarehouse } from '../core/checks/data.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError } from '../core/errors.js';
import { CorruptingObjectStore, type Faults } from '../core/faults.js';
import { EXIT_INDEX_PERMANENT, EXIT_INDEX_RETRIABLE, planConfigMapName } from '../core/jobs/spec.js';
import { silentLogger } from '../core/log.js';
import type { PipelinePorts } from '../core/pipeline/processor.js';
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
  CONTROLLER_TOKEN,
  clientFor,
  NAMESPACE,
  TOKENS,
  waitFor,
} from './support/kubeFixtures.js';
import { createWorkspaceWithPlans, ensureBuilt, REPO_ROOT } from './support/workspace.js';

const SEASON = '2021-22';
const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];
const RANGE = [
  '--season',
  SEASON,
  '--season-type',
  'regular',
  '--start-date',
  '2021-10-19',
  '--end-date',
  '2021-10-22',
];
const planDates = planDatesFrom(join(REPO_ROOT, 'plans'));

/** A decision as both sides record it. */
interface Decision {
  readonly kind: string;
  readonly season: string;
  readonly why: string;
}

const KIND_OF_TITLE = new Map(Object.entries(DECISION_TITLES).map(([kind, title]) => [title, kind]));

/** The decisions `backfill run` printed, `== <stage> <season>: <why>`, in order. */
function printedDecisions(stdout: string): Decision[] {
  return stdout.split('\n').flatMap((line) => {
    const m = /^== (.+?) (\d{4}-\d{2}): (.*)$/.exec(line);
    const kind = m && KIND_OF_TITLE.get(m[1] as string);
    return m && kind ? [{ kind, season: m[2] as string, why: m[3] as string }] : [];
  });
}

const CORRUPT: Faults = {
  transient: [],
  permanent: [],
  corrupt: [{ date: '2021-10-21', file: 'playerGameLogs', how: 'invalid-json' }],
};

let t: TestPipeline;
let server: KubeApiServer;
let controller: Controller | null;
let logLines: Record<string, unknown>[];

beforeAll(async () => ensureBuilt(), 120_000);
beforeEach(async () => {
  t = await openTestPipeline('nba-backfill-one-brain-');
  server = await startKubeApiServer({ tokens: TOKENS });
  controller = null;
  logLines = [];
});
afterEach(async () => {
  await controller?.stop();
  await server.podsIdle();
  await server.close();
  await t.dispose();
});

/** One Stage 1 pod, as jobs/phase2-date runs it: its date from the plan ConfigMap, exit 2 on bad input. */
async function stage1Pod(a: PodAttempt, faults: Faults | null): Promise<PodOutcome> {
  const cm = server.get('configmaps', NAMESPACE, planConfigMapName(a.jobName)) as KubeObject;
  const plan = JSON.parse(String((cm.data as Record<string, string>)['job-plan.json'])) as { dates: string[] };
  const date = plan.dates[a.index] as string;
  const ports: PipelinePorts = faults
    ? { ...t.adapters, objects: new CorruptingObjectStore(t.adapters.objects, faults) }
    : t.adapters;
  const result = await runPhases1And2(ports, silentLogger(), date, {
    trigger: { command: 'jobs/phase2-date', stage: 'stage1', jobName: a.jobName, jobIndex: a.index },
    attempt: a.failureCount + 1,
    skipDownstreamTrigger: true,
  });
  if (result.ok) return { result: 'succeed' };
  const permanent = result.failures.every((f) => f.error instanceof BadInputError);
  return { result: 'fail', exitCode: permanent ? EXIT_INDEX_PERMANENT : EXIT_INDEX_RETRIABLE };
}

/** The controller on the same dates until `settled` holds and it is idle; its decisions as it logged them. */
async function controllerDecisions(faults: Faults | null, settled: () => unknown): Promise<Decision[]> {
  const dates = await planDates(SEASON, DATES);
  server.setPodScript(async (a) => {
    if (a.job.metadata.labels?.['app.kubernetes.io/component'] === 'stage1') return stage1Pod(a, faults);
    const summaryFile = join(t.dir, 'summary.json');
    const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
    const run = await runStage3(ports, silentLogger(), { season: SEASON, dates, summaryFile });
    const terminationMessage = readFileSync(summaryFile, 'utf8');
    return run.summary.status === 'succeeded'
      ? { result: 'succeed', terminationMessage }
      : { result: 'fail', exitCode: 1, terminationMessage };
  });
  const admin = clientFor(server, ADMIN_TOKEN);
  await applyStage3Spec(admin, SEASON, DATES);
  await applyStage1(admin, SEASON, DATES);
  const log: Logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) });
  controller = new Controller({
    kube: clientFor(server, CONTROLLER_TOKEN),
    warehouse: t.adapters.warehouse,
    log,
    planDates,
    now: () => new Date(),
    instance: 'one-brain-test',
    debounceMs: 20,
    resyncMs: 200,
    retryMs: 100,
  });
  await controller.start();
  await waitFor('the controller to settle', settled, 60_000);
  await controller.idle();
  return logLines.flatMap((l) =>
    typeof l.decision === 'string' ? [{ kind: l.decision, season: String(l.season), why: String(l.msg) }] : [],
  );
}

/** `backfill run` on the same dates in a fresh workspace: its exit code and printed decisions. */
async function runDecisions(
  faults: Faults | null,
): Promise<{ code: number | null; decisions: Decision[]; stdout: string }> {
  const ws = createWorkspaceWithPlans();
  try {
    const extra: string[] = [];
    if (faults) {
      writeFileSync(join(ws.dir, 'faults.json'), JSON.stringify(faults));
      extra.push('--faults', 'faults.json');
    }
    const out = await ws.cli(['run', ...RANGE, '--retry-delay-ms', '0', ...extra]);
    return { code: out.code, decisions: printedDecisions(out.stdout), stdout: out.stdout + out.stderr };
  } finally {
    ws.remove();
  }
}

const kindsOf = (ds: readonly Decision[]) => ds.map((d) => `${d.kind} ${d.season}`);
/**
 * The decisions with Job names left out of their reasons: a local Job is named after its run (a run id), a
 * cluster's after its plan (a hash), by design; the words around the names must agree.
 */
const unnamed = (ds: readonly Decision[]) =>
  ds.map((d) => ({ ...d, why: d.why.replace(/\bjob nba-(stage[13])-(\d+)-[a-z0-9-]+/g, 'job nba-$1-$2-<name>') }));
const configMap = (name: string) => server.get('configmaps', NAMESPACE, name);

describe('backfill run and the controller take the same decisions', () => {
  it('every date loads: the gate passes, Stage 3 runs, validation follows, in the same order for the same reasons', async () => {
    const local = await runDecisions(null);
    expect(local.code, local.stdout).toBe(0);
    const cluster = await controllerDecisions(null, () =>
      server.list('configmaps', NAMESPACE).some((c) => c.metadata.name.endsWith('-validation')),
    );

    // The run starts its own Stage 1 Job; then both decide alike.
    expect(kindsOf(local.decisions)).toEqual([
      'startStage1 2021-22',
      'runGate 2021-22',
      'publishGate 2021-22',
      'createStage3Job 2021-22',
      'validate 2021-22',
    ]);
    expect(unnamed(local.decisions.slice(1))).toEqual(unnamed(cluster));
    expect(cluster.map((d) => d.why)).toEqual([
      'every Stage 1 job of 2021-22 finished (1 job, 4 dates): run the gate',
      expect.stringMatching(/^gate passed for 2021-22: 4 dates, \d+ games complete$/),
      expect.stringMatching(/^gate passed for 2021-22: start Stage 3 \(job nba-stage3-202122-[0-9a-f]+\)$/),
      'Stage 3 of 2021-22 complete through 2021-10-22: validate 4 dates',
    ]);
  }, 240_000);

  it('a corrupt date: its failure is reported, the gate fails for it, and both stop there (the run with exit 1)', async () => {
    const local = await runDecisions(CORRUPT);
    expect(local.code, local.stdout).toBe(1);
    expect(local.stdout).toMatch(/Stopped at the gate/);
    const cluster = await controllerDecisions(CORRUPT, () => configMap('nba-backfill-gate-202122'));

    expect(kindsOf(local.decisions)).toEqual([
      'startStage1 2021-22',
      'reportStage1Failures 2021-22',
      'runGate 2021-22',
      'publishGate 2021-22',
    ]);
    expect(unnamed(local.decisions.slice(1))).toEqual(unnamed(cluster));
    expect(cluster.map((d) => d.why)).toEqual([
      expect.stringMatching(
        /^Stage 1 job nba-stage1-202122-[0-9a-f]+ of 2021-22 ended Failed \(FailedIndexes\): 1 date not loaded \(2021-10-21\)$/,
      ),
      'every Stage 1 job of 2021-22 finished (1 job, 4 dates): run the gate',
      // The date's five Phase 1-2 runs failed (its player log is corrupt) or never ran.
      'gate failed for 2021-22: 1 date incomplete (2021-10-21), 5 Phase 1-2 runs failed or missing',
    ]);
    expect(server.list('jobs', NAMESPACE).map((j) => j.metadata.name)).not.toContainEqual(
      expect.stringMatching(/^nba-stage3-/),
    );
  }, 240_000);
});
