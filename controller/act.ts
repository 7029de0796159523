// Carrying out the actions reconcile decided: Kubernetes writes through the adapter, the gate and the Stage 4
// validation on the warehouse, and a log line for each. Every write is idempotent ("already exists" is
// success), and the ConfigMap that marks a report as done is written last.

import type { IsoDate } from '../core/dates.js';
import { messageOf, oneLine } from '../core/errors.js';
import { formatGate, runGate } from '../core/gate.js';
import { EXIT_INDEX_PERMANENT } from '../core/jobs/spec.js';
import {
  ANNOTATION_GATE_KEY,
  ANNOTATION_GATE_PASSED,
  ANNOTATION_PASSED,
  eventName,
  failuresConfigMapName,
  gateConfigMapName,
  listDates,
  POD_LABEL_COMPLETION_INDEX,
  POD_LABEL_JOB_NAME,
  stage3ResultConfigMapName,
  validationConfigMapName,
} from '../core/kubernetes/contract.js';
import type { Action, GateOutcome } from '../core/kubernetes/reconcile.js';
import type { Logger } from '../core/log.js';
import type { PlanDate } from '../core/plan.js';
import type { Cluster, ClusterJob } from '../core/ports/cluster.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import { latestRuns } from '../core/runs/history.js';
import { reportMarkdown } from '../core/stages/report.js';
import { appendFailureLog, failureLogRows } from '../core/stages/stage1.js';
import { validate } from '../core/stages/validate.js';
import {
  compactGate,
  type FailedRun,
  failureEventMessage,
  failureLog,
  failureLogText,
  gateEventMessage,
  gateMissingDates,
  type IndexAttempts,
  type JobEventInput,
  jobEvent,
  reportConfigMap,
  type Stage1FailureAction,
  stage3FailureMessage,
  validationSummary,
} from './reports.js';

/** A Kubernetes Event about a Job, in the controller's namespace, stamped with the time and this instance. */
function emitEvent(ports: ActPorts, input: Omit<JobEventInput, 'namespace' | 'now' | 'instance'>): Promise<unknown> {
  return ports.kube.createEvent(
    jobEvent({ ...input, namespace: ports.kube.namespace, now: ports.now(), instance: ports.instance }),
  );
}

/** The plan's dates (with their game ids) for some dates of a season. */
export type PlanDatesFn = (season: string, dates: readonly IsoDate[]) => Promise<PlanDate[]>;

export interface ActPorts {
  readonly kube: Cluster;
  readonly warehouse: Warehouse;
  readonly log: Logger;
  readonly planDates: PlanDatesFn;
  readonly now: () => Date;
  /** This controller instance (its pod name), for Events. */
  readonly instance: string;
}

/** What an action produced that the loop keeps: a gate result, or a Job it created. */
export interface ActOutcome {
  readonly gate?: GateOutcome;
  readonly createdJob?: ClusterJob;
}

type Of<K extends Action['kind']> = Extract<Action, { kind: K }>;

/** Attempts per index from the Job's pods (they stay until the Job is deleted). */
async function indexAttempts(ports: ActPorts, job: string): Promise<Map<number, IndexAttempts>> {
  const pods = await ports.kube.listPods(`${POD_LABEL_JOB_NAME}=${job}`);
  const byIndex = new Map<number, { at: string; code: number | null }[]>();
  for (const pod of pods) {
    const index = Number(pod.metadata?.labels?.[POD_LABEL_COMPLETION_INDEX]);
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    if (!Number.isInteger(index) || !terminated) continue;
    const disrupted = pod.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True');
    const list = byIndex.get(index) ?? [];
    list.push({
      at: String(pod.metadata?.creationTimestamp?.toISOString?.() ?? ''),
      code: disrupted ? null : terminated.exitCode,
    });
    byIndex.set(index, list);
  }
  return new Map(
    [...byIndex].map(([i, xs]) => [i, { exitCodes: xs.sort((a, b) => (a.at < b.at ? -1 : 1)).map((x) => x.code) }]),
  );
}

/** The latest failed Phase 1-2 run of each date, from run history. */
async function failedRuns(warehouse: Warehouse, dates: readonly IsoDate[]): Promise<Map<IsoDate, FailedRun>> {
  if (dates.length === 0) return new Map();
  const sorted = [...dates].sort();
  const runs = await latestRuns(warehouse, { start: sorted[0] as IsoDate, end: sorted.at(-1) as IsoDate }, [1, 2]);
  const out = new Map<IsoDate, FailedRun>();
  // A failed run is the cause; a blocked one was only withheld because of it (a date commits whole or not).
  const rank = (status: string) => (status === 'failed' ? 0 : status === 'blocked' ? 1 : 2);
  for (const pass of [0, 1, 2]) {
    for (const r of runs) {
      if (r.status !== 'success' && rank(r.status) === pass && dates.includes(r.dataDate) && !out.has(r.dataDate)) {
        out.set(r.dataDate, { processor: r.processorName, error: r.errorMessage });
      }
    }
  }
  return out;
}

async function reportStage1Failures(ports: ActPorts, a: Stage1FailureAction): Promise<ActOutcome> {
  const log = ports.log.child({ season: a.season, job: a.job });
  const dates = a.failed.flatMap((f) => (f.date ? [f.date] : []));
  // The details are a courtesy: without them the report still names every failed date and its logs.
  const attempts = await indexAttempts(ports, a.job).catch((err) => {
    log.warn({ err: messageOf(err) }, 'could not read the job pods for attempt counts');
    return new Map<number, IndexAttempts>();
  });
  const runs = await failedRuns(ports.warehouse, dates).catch((err) => {
    log.warn({ err: messageOf(err) }, 'could not read run history for the failed dates');
    return new Map<IsoDate, FailedRun>();
  });
  const failures = failureLog(a, attempts, runs, EXIT_INDEX_PERMANENT);
  const cmName = failuresConfigMapName(a.job);
  const ns = ports.kube.namespace;
  for (const f of failures.failed) {
    log.warn(
      {
        date: f.date,
        index: f.index,
        processor: f.processor,
        error: f.error,
        reason: f.reason,
        attempts: f.attempts,
        logs: f.logs,
      },
      'date failed',
    );
  }
  for (const u of failures.undated) log.warn({ index: u.index, logs: u.logs }, 'index failed (date unknown)');
  await emitEvent(ports, {
    name: eventName(a.job, a.jobUid, 'failed-dates'),
    job: { name: a.job, uid: a.jobUid },
    type: 'Warning',
    reason: 'DatesFailed',
    message: failureEventMessage(failures, cmName),
  });
  // `backfill failures` and `backfill retry --season` read this table, in the cluster as on one machine. Once
  // per (job, index): a restart before the ConfigMap below is written reports again and adds nothing.
  await appendFailureLog(ports.warehouse, failureLogRows(a.job, a.season, failures.failed, ports.now().toISOString()));
  await ports.kube.upsertConfigMap(
    reportConfigMap({
      name: cmName,
      namespace: ns,
      kind: 'failures',
      season: a.season,
      job: { name: a.job, uid: a.jobUid },
      data: { 'failures.json': `${JSON.stringify(failures, null, 2)}\n`, 'failures.txt': failureLogText(failures) },
    }),
  );
  log.warn(
    { failedDates: dates, failedIndexes: a.failedIndexes, configMap: cmName },
    `stage 1 job ${a.job} finished with ${a.failed.length} failed date(s): ${listDates(dates)}`,
  );
  return {};
}

async function runGateAction(ports: ActPorts, a: Of<'runGate'>): Promise<ActOutcome> {
  const log = ports.log.child({ season: a.season });
  log.info({ gateKey: a.key, dates: a.dates.length }, 'every stage 1 job of the season finished: running the gate');
  const result = await runGate(ports.warehouse, [
    { season: a.season, dates: await ports.planDates(a.season, a.dates) },
  ]);
  return { gate: { key: a.key, result } };
}

async function publishGate(ports: ActPorts, a: Of<'publishGate'>): Promise<ActOutcome> {
  const log = ports.log.child({ season: a.season });
  const name = gateConfigMapName(a.season);
  const passed = a.result.passed;
  if (a.lastJob.name) {
    await emitEvent(ports, {
      name: eventName(name, a.key, passed ? 'gate-passed' : 'gate-failed'),
      job: a.lastJob,
      type: passed ? 'Normal' : 'Warning',
      reason: passed ? 'GatePassed' : 'GateFailed',
      message: gateEventMessage(a.result),
    });
  }
  await ports.kube.upsertConfigMap(
    reportConfigMap({
      name,
      namespace: ports.kube.namespace,
      kind: 'gate',
      season: a.season,
      annotations: { [ANNOTATION_GATE_KEY]: a.key, [ANNOTATION_GATE_PASSED]: String(passed) },
      data: { 'gate.txt': formatGate(a.result), 'gate.json': `${JSON.stringify(compactGate(a.result), null, 2)}\n` },
    }),
  );
  const missing = gateMissingDates(a.result);
  const fields = {
    gateKey: a.key,
    dates: a.result.dates,
    games: a.result.games,
    missingDates: missing,
    missingGames: new Set(a.result.tables.flatMap((t) => t.missingGames.map((g) => `${g.date}|${g.gameId}`))).size,
    runProblems: a.result.runProblems.length,
    configMap: name,
  };
  if (passed) log.info(fields, 'GATE PASSED: Stage 3 may start');
  else
    log.warn(
      fields,
      `GATE FAILED: ${missing.length} date(s) incomplete (${listDates(missing)}); waiting for a retry job`,
    );
  return {};
}

async function createStage3Job(ports: ActPorts, a: Of<'createStage3Job'>): Promise<ActOutcome> {
  const log = ports.log.child({ season: a.season, job: a.job });
  // Created where the controller runs, whatever namespace the synthesized spec was written for.
  const manifest = a.manifest as ClusterJob;
  const { namespace: _ignored, ...metadata } = manifest.metadata ?? {};
  const { created, job } = await ports.kube.createJob({ ...manifest, metadata });
  if (!created) {
    log.info('stage 3 job already exists (created before): nothing to do');
    return {};
  }
  await emitEvent(ports, {
    name: eventName(a.job, job?.metadata?.uid ?? 'created', 'created'),
    job: { name: a.job, uid: job?.metadata?.uid ?? '' },
    type: 'Normal',
    reason: 'Stage3Created',
    message: `the Phase 2 gate passed for ${a.season}: Stage 3 job ${a.job} created by the controller`,
  });
  log.info('stage 3 job created');
  return job ? { createdJob: job } : {};
}

async function reportStage3Failure(ports: ActPorts, a: Of<'reportStage3Failure'>): Promise<ActOutcome> {
  const log = ports.log.child({ season: a.season, job: a.job });
  const message = stage3FailureMessage(a);
  const name = stage3ResultConfigMapName(a.job);
  await emitEvent(ports, {
    name: eventName(a.job, a.jobUid, 'failed'),
    job: { name: a.job, uid: a.jobUid },
    type: 'Warning',
    reason: 'Stage3Failed',
    message,
  });
  await ports.kube.upsertConfigMap(
    reportConfigMap({
      name,
      namespace: ports.kube.namespace,
      kind: 'stage3-failure',
      season: a.season,
      job: { name: a.job, uid: a.jobUid },
      data: {
        'summary.json': `${JSON.stringify({ reason: a.reason, conditionMessage: a.conditionMessage, pod: a.termination?.podName ?? null, exitCode: a.termination?.exitCode ?? null, summary: a.summary, terminationMessage: a.termination?.message ?? null }, null, 2)}\n`,
        'message.txt': `${message}\n`,
      },
    }),
  );
  log.error(
    {
      failedDate: a.summary?.failedDate ?? null,
      processor: a.summary?.processor ?? null,
      check: a.summary?.check ?? null,
      reason: a.reason,
      configMap: name,
    },
    message,
  );
  return {};
}

async function validateAction(ports: ActPorts, a: Of<'validate'>): Promise<ActOutcome> {
  const log = ports.log.child({ season: a.season, job: a.job });
  log.info({ dates: a.dates.length }, 'stage 3 succeeded: running the stage 4 validation');
  const report = await validate(
    ports.warehouse,
    [{ season: a.season, dates: await ports.planDates(a.season, a.dates) }],
    ports.now,
  );
  const summary = validationSummary(report, a.summary);
  const name = validationConfigMapName(a.job);
  const failing = report.checks.filter((c) => !c.passed).map((c) => `${c.name} (${c.failureCount})`);
  await emitEvent(ports, {
    name: eventName(a.job, a.jobUid, 'validated'),
    job: { name: a.job, uid: a.jobUid },
    type: report.passed ? 'Normal' : 'Warning',
    reason: report.passed ? 'ValidationPassed' : 'ValidationFailed',
    message: report.passed
      ? `Stage 4 validation of ${a.season} passed: ${report.dates.length} dates, ${report.checks.length} checks; report: configmap ${name}`
      : `Stage 4 validation of ${a.season} failed: ${failing.join(', ')}; report: configmap ${name}`,
  });
  await ports.kube.upsertConfigMap(
    reportConfigMap({
      name,
      namespace: ports.kube.namespace,
      kind: 'validation',
      season: a.season,
      job: { name: a.job, uid: a.jobUid },
      annotations: { [ANNOTATION_PASSED]: String(report.passed) },
      data: { 'summary.json': `${JSON.stringify(summary, null, 2)}\n`, 'report.md': reportMarkdown(report) },
    }),
  );
  const fields = { dates: report.dates.length, checks: report.checks.length, failing, configMap: name };
  if (report.passed) log.info(fields, 'VALIDATION PASSED');
  else log.warn(fields, `VALIDATION FAILED: ${oneLine(failing.join(', '))}`);
  return {};
}

/** Carries out one action; throws when a call fails (the loop retries the whole pass). */
export async function act(ports: ActPorts, action: Action): Promise<ActOutcome> {
  switch (action.kind) {
    case 'reportStage1Failures':
      return reportStage1Failures(ports, action);
    case 'runGate':
      return runGateAction(ports, action);
    case 'publishGate':
      return publishGate(ports, action);
    case 'createStage3Job':
      return createStage3Job(ports, action);
    case 'reportStage3Failure':
      return reportStage3Failure(ports, action);
    case 'validate':
      return validateAction(ports, action);
    case 'warn':
      ports.log.warn({ season: action.season, subject: action.subject }, action.message);
      return {};
    case 'startStage1':
      // The cluster's Stage 1 Jobs come from the manifests (its observations name no selection): never decided here.
      ports.log.warn({ season: action.season }, `not started by the controller: ${action.why}`);
      return {};
  }
}
