// What the CLI does against a cluster through the adapter: a retry Job for the failed dates of a season (the
// season's Stage 1 Job is its model, so the retry runs exactly as the original did), the dates failing now,
// and the logs of a date's pods.

import { isInlineFaults } from '../config.js';
import type { IsoDate } from '../dates.js';
import { BadInputError, messageOf } from '../errors.js';
import { loadFaults } from '../faults.js';
import {
  INDEX_FAILURE_COUNT_ENV,
  JOB_PLAN_ENV,
  LOG_DIR_ENV,
  PHASE2_DATE_CONTAINER,
  type ResourceRequirements,
  stage1JobWithPlan,
} from '../jobs/spec.js';
import type { Cluster, ClusterConfigMap, ClusterJob, ClusterPod } from '../ports/cluster.js';
import { COMPONENT_STAGE1, indexPodSelector, LABEL_COMPONENT, LABEL_SEASON, planConfigMapName } from './contract.js';
import { planLookup, toObservedJob } from './observe.js';
import { jobOutcome, type ObservedJob, openFailedDates, type PlanLookup } from './reconcile.js';

const stage1Selector = (season: string) => `${LABEL_COMPONENT}=${COMPONENT_STAGE1},${LABEL_SEASON}=${season}`;

/** A season's Stage 1 and retry Jobs, newest first, each with its plan as read from its ConfigMap. */
export async function seasonJobs(
  kube: Cluster,
  season: string,
): Promise<{ job: ObservedJob; raw: ClusterJob; plan: PlanLookup }[]> {
  const out: { job: ObservedJob; raw: ClusterJob; plan: PlanLookup }[] = [];
  for (const raw of await kube.listJobs(stage1Selector(season))) {
    const job = toObservedJob(raw);
    if (!job) continue;
    const plan = job.planConfigMap
      ? planLookup(await kube.getConfigMap(job.planConfigMap), job)
      : ({ ok: false, problem: 'no plan ConfigMap annotation' } as const);
    out.push({ job, raw, plan });
  }
  return out.sort((a, b) => (a.job.createdAt === b.job.createdAt ? 0 : a.job.createdAt < b.job.createdAt ? 1 : -1));
}

/** The season's dates whose latest attempt in the cluster failed. */
export async function clusterFailedDates(kube: Cluster, season: string): Promise<IsoDate[]> {
  const jobs = await seasonJobs(kube, season);
  const running = jobs.filter((j) => jobOutcome(j.job) === null).map((j) => j.job.name);
  if (running.length > 0) {
    throw new BadInputError(`Stage 1 job(s) of ${season} still running: ${running.join(', ')}; retry once they end`, {
      where: '--season',
    });
  }
  return openFailedDates(
    jobs.map((j) => j.job),
    new Map(jobs.flatMap((j) => (j.job.planConfigMap ? [[j.job.planConfigMap, j.plan] as const] : []))),
  );
}

export interface RetryJobResult {
  readonly job: string;
  readonly planConfigMap: string;
  /** The Stage 1 Job whose image, settings and resources the retry copies. */
  readonly model: string;
}

const FAULTS_ENV = 'BACKFILL_FAULTS';

/** Settings the Job builder sets itself on every Stage 1 pod: never copied from the model, never overridden. */
export const RETRY_OWN_ENV: ReadonlySet<string> = new Set([
  JOB_PLAN_ENV,
  INDEX_FAILURE_COUNT_ENV,
  'BACKFILL_LOG_LEVEL',
]);

/** Changes to the settings a retry Job copies from its model: a bad setting dropped or fixed without a new chart. */
export interface RetryOverrides {
  /** Settings added or replaced, by name. */
  readonly set?: Readonly<Record<string, string>>;
  /** Settings of the model left out. */
  readonly unset?: readonly string[];
}

/**
 * `--set-env NAME=value` and `--unset-env NAME` as overrides, checked before anything is read: names as
 * environment variable names, not the builder's own, not both set and unset, and BACKFILL_FAULTS the fault JSON
 * itself (a pod has no fault file to read).
 */
export function retryOverrides(set: readonly string[], unset: readonly string[]): RetryOverrides {
  const name = (flag: string, n: string, what: string) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(n)) {
      throw new BadInputError(`${flag} ${what}: "${n}" is not a setting name (capitals, digits and _)`, {
        where: flag,
      });
    }
    if (RETRY_OWN_ENV.has(n)) {
      throw new BadInputError(`${flag} ${what}: ${n} is set by the Job itself for each retry, not copied`, {
        where: flag,
      });
    }
    return n;
  };
  const out: Record<string, string> = {};
  for (const pair of set) {
    const eq = pair.indexOf('=');
    if (eq < 0) throw new BadInputError(`--set-env ${pair}: give NAME=value`, { where: '--set-env' });
    out[name('--set-env', pair.slice(0, eq), pair)] = pair.slice(eq + 1);
  }
  const removed = unset.map((n) => name('--unset-env', n, n));
  if (removed.includes(LOG_DIR_ENV)) {
    throw new BadInputError(
      `--unset-env ${LOG_DIR_ENV}: every Stage 1 pod has its log folder (the Job sets a default); --set-env it to change it`,
      { where: '--unset-env' },
    );
  }
  const both = removed.find((n) => n in out);
  if (both)
    throw new BadInputError(`${both} is both set (--set-env) and unset (--unset-env)`, { where: '--unset-env' });
  const faults = out[FAULTS_ENV];
  if (faults !== undefined) {
    if (!isInlineFaults(faults)) {
      throw new BadInputError(
        `--set-env ${FAULTS_ENV}=${faults}: must be the fault JSON itself, starting with { (a pod has no fault file to read)`,
        { where: '--set-env' },
      );
    }
    try {
      loadFaults(faults);
    } catch (err) {
      throw new BadInputError(`--set-env ${FAULTS_ENV}: ${messageOf(err)}`, { where: '--set-env' });
    }
  }
  return { set: out, unset: removed };
}

/**
 * Creates the retry Job for `dates` and its plan ConfigMap, taking the image, the BACKFILL_* settings,
 * resources, service account and deadline from the season's Stage 1 Job, so the retry runs as it did; `overrides`
 * change the settings it copies (a setting it unsets must be one the model has: a typo is refused).
 */
export async function createRetryJob(
  kube: Cluster,
  season: string,
  dates: readonly IsoDate[],
  parallelism: number,
  overrides: RetryOverrides = {},
): Promise<RetryJobResult> {
  if (dates.length === 0) throw new BadInputError(`${season}: no dates to retry`, { where: '--season' });
  const models = (await seasonJobs(kube, season)).filter((j) => j.job.name.startsWith('nba-stage1-'));
  const model = models[0]?.raw;
  if (!model?.metadata?.name) {
    throw new BadInputError(
      `no Stage 1 job of ${season} in namespace ${kube.namespace} (${kube.server}) to take the pod settings from: apply the season's manifests first`,
      { where: '--season' },
    );
  }
  const pod = model.spec?.template?.spec;
  const container = pod?.containers.find((c) => c.name === PHASE2_DATE_CONTAINER) ?? pod?.containers[0];
  // The builder sets its own settings; the rest are the settings the chart gave the pods.
  const env: Record<string, string> = Object.fromEntries(
    (container?.env ?? []).flatMap((e) =>
      e.value !== undefined && !RETRY_OWN_ENV.has(e.name) ? [[e.name, e.value]] : [],
    ),
  );
  for (const n of overrides.unset ?? []) {
    if (!(n in env)) {
      throw new BadInputError(
        `--unset-env ${n}: the model job ${model.metadata.name} has no setting ${n} (it has ${Object.keys(env).sort().join(', ') || 'none'})`,
        { where: '--unset-env' },
      );
    }
    delete env[n];
  }
  Object.assign(env, overrides.set ?? {});
  const resources = container?.resources as ResourceRequirements | undefined;
  const { job, planConfigMap } = stage1JobWithPlan({
    season,
    dates,
    purpose: 'retry',
    parallelism: Math.max(1, Math.min(parallelism, dates.length)),
    image: container?.image,
    env,
    resources: resources?.requests && resources.limits ? resources : undefined,
    serviceAccountName: pod?.serviceAccountName,
    activeDeadlineSeconds: model.spec?.activeDeadlineSeconds,
  });
  const name = job.metadata.name;
  // The plan first: the Job's pods mount it. The same name always holds the same dates, so one already there is it.
  await kube.createConfigMap(planConfigMap as unknown as ClusterConfigMap);
  const { created } = await kube.createJob(job as unknown as ClusterJob);
  if (!created) {
    const existing = await kube.getJob(name);
    const observed = existing ? toObservedJob(existing) : null;
    const state = observed ? (jobOutcome(observed) ?? 'running') : 'unknown';
    throw new BadInputError(
      `a retry job for exactly these dates exists already: ${name} (${state}). To run it again: kubectl delete job ${name} -n ${kube.namespace}, then retry`,
      { where: name },
    );
  }
  return { job: name, planConfigMap: planConfigMapName(name), model: model.metadata.name };
}

/** One pod of a date: which Job and attempt, and its log. */
export interface DatePodLog {
  readonly job: string;
  readonly index: number;
  readonly pod: string;
  readonly phase: string;
  readonly log: string;
}

/**
 * The logs of every pod that ran `date` in the season's Stage 1 and retry Jobs, newest Job first, oldest
 * attempt first within a Job. `all: false` keeps the newest Job only.
 */
export async function datePodLogs(kube: Cluster, season: string, date: IsoDate, all: boolean): Promise<DatePodLog[]> {
  const jobs = (await seasonJobs(kube, season)).filter((j) => j.plan.ok && j.plan.plan.dates.includes(date));
  const out: DatePodLog[] = [];
  for (const { job, plan } of all ? jobs : jobs.slice(0, 1)) {
    if (!plan.ok) continue;
    const index = plan.plan.dates.indexOf(date);
    const pods: ClusterPod[] = await kube.listPods(indexPodSelector(job.name, index));
    const byAge = pods.sort((a, b) =>
      String(a.metadata?.creationTimestamp?.toISOString?.() ?? '') <
      String(b.metadata?.creationTimestamp?.toISOString?.() ?? '')
        ? -1
        : 1,
    );
    for (const pod of byAge) {
      const name = pod.metadata?.name ?? '';
      const container = pod.spec?.containers.length === 1 ? undefined : PHASE2_DATE_CONTAINER;
      out.push({
        job: job.name,
        index,
        pod: name,
        phase: pod.status?.phase ?? 'Unknown',
        log: await kube.podLog(name, container),
      });
    }
  }
  return out;
}
