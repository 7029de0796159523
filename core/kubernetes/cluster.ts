// What the CLI does against a cluster through the adapter: a retry Job for the failed dates of a season (the
// season's Stage 1 Job is its model, so the retry runs exactly as the original did), the dates failing now,
// and the logs of a date's pods.

import type { IsoDate } from '../dates.js';
import { BadInputError } from '../errors.js';
import {
  INDEX_FAILURE_COUNT_ENV,
  JOB_PLAN_ENV,
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

/**
 * Creates the retry Job for `dates` and its plan ConfigMap, taking the image, the BACKFILL_* settings,
 * resources, service account and deadline from the season's Stage 1 Job, so the retry runs as it did.
 */
export async function createRetryJob(
  kube: Cluster,
  season: string,
  dates: readonly IsoDate[],
  parallelism: number,
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
  // The builder sets these itself; the rest are the settings the chart gave the pods.
  const own = new Set([JOB_PLAN_ENV, INDEX_FAILURE_COUNT_ENV, 'BACKFILL_LOG_LEVEL']);
  const env = Object.fromEntries(
    (container?.env ?? []).flatMap((e) => (e.value !== undefined && !own.has(e.name) ? [[e.name, e.value]] : [])),
  );
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
