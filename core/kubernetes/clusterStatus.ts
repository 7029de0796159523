// `backfill status --cluster`: the cluster's Jobs, plans and validation ConfigMaps read once, then merged into
// each season's observation of the warehouse (pure), so that the same seasonStatus derives the view.

import { z } from 'zod';
import type { IsoDate } from '../dates.js';
import { messageOf, ProcessingError } from '../errors.js';
import type { Plan } from '../plan.js';
import type { Cluster, ClusterConfigMap } from '../ports/cluster.js';
import type { SeasonObservation, ValidationReportRef } from '../status.js';
import {
  COMPONENT_STAGE1,
  COMPONENT_STAGE3,
  LABEL_MANAGED_BY,
  LABEL_REPORT,
  LABEL_SEASON,
  MANAGED_BY_CONTROLLER,
} from './contract.js';
import { JOB_SELECTOR, planLookup, toObservedJob } from './observe.js';
import { jobOutcome, type ObservedJob, openFailedDates, type PlanLookup } from './reconcile.js';

/** A validation ConfigMap the controller wrote (`<stage3 job>-validation`), as far as status needs it. */
export interface ClusterValidation {
  readonly name: string;
  readonly season: string;
  readonly passed: boolean;
  readonly generatedAt: string;
  /** The first and last date it validated (null: none). */
  readonly range: { readonly start: IsoDate; readonly end: IsoDate } | null;
}

/** What `status --cluster` reads from the cluster, for every season at once. */
export interface ClusterReading {
  readonly namespace: string;
  readonly jobs: readonly ObservedJob[];
  /** Plan ConfigMaps by name. */
  readonly plans: ReadonlyMap<string, PlanLookup>;
  readonly validations: readonly ClusterValidation[];
}

const VALIDATION_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_CONTROLLER},${LABEL_REPORT}=validation`;

const ValidationSummarySchema = z.object({
  passed: z.boolean(),
  generatedAt: z.string(),
  range: z.object({ start: z.string(), end: z.string() }).nullable(),
});

/** A validation ConfigMap's summary.json; a ConfigMap that does not hold one is an error naming it. */
export function toClusterValidation(configMap: ClusterConfigMap): ClusterValidation {
  const name = configMap.metadata?.name ?? '';
  const text = configMap.data?.['summary.json'];
  const fail = (why: string) =>
    new ProcessingError(`validation ConfigMap ${name}: ${why} (the controller writes it after Stage 3)`);
  if (text === undefined) throw fail('no key summary.json');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw fail(`summary.json is not JSON: ${messageOf(err)}`);
  }
  const parsed = ValidationSummarySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fail(`summary.json: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return { name, season: configMap.metadata?.labels?.[LABEL_SEASON] ?? '', ...parsed.data };
}

/** Reads the Jobs the controller watches, their plans and the validation ConfigMaps. */
export async function readCluster(kube: Cluster): Promise<ClusterReading> {
  const jobs = (await kube.listJobs(JOB_SELECTOR)).map(toObservedJob).filter((j): j is ObservedJob => j !== null);
  const plans = new Map<string, PlanLookup>();
  for (const job of jobs) {
    if (job.component !== COMPONENT_STAGE1 || !job.planConfigMap || plans.has(job.planConfigMap)) continue;
    plans.set(job.planConfigMap, planLookup(await kube.getConfigMap(job.planConfigMap), job));
  }
  const validations = (await kube.listConfigMaps(VALIDATION_SELECTOR)).map(toClusterValidation);
  return { namespace: kube.namespace, jobs, plans, validations };
}

const byCreation = (a: ObservedJob, b: ObservedJob) =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0;

/**
 * The season's observation with the cluster's facts: a date whose latest attempt failed in the cluster's Jobs
 * (what `retry --cluster` retries: a pod killed before it wrote run history, too) counts as failed beside those
 * run history shows failing; the validation is the controller's (its ConfigMaps, which cover the plan's dates
 * in their range), not a report on this machine; and the Jobs not ended say what is running.
 */
export function withCluster(obs: SeasonObservation, cluster: ClusterReading): SeasonObservation {
  const jobs = cluster.jobs.filter((j) => j.season === obs.season).sort(byCreation);
  const planned = new Set(obs.plan.dates.map((d) => d.date));
  const failedInCluster = openFailedDates(jobs, cluster.plans).filter((d) => planned.has(d));
  const stage3 = jobs.filter((j) => j.component === COMPONENT_STAGE3).at(-1);
  return {
    ...obs,
    failedDates: [...new Set([...obs.failedDates, ...failedInCluster])].sort(),
    validationReports: cluster.validations
      .filter((v) => v.season === obs.season)
      .map((v) => validationRef(v, obs.plan)),
    cluster: {
      namespace: cluster.namespace,
      runningJobs: jobs
        .filter((j) => jobOutcome(j) === null)
        .map((j) => ({ name: j.name, stage: j.component === COMPONENT_STAGE3 ? 'stage3' : 'stage1' })),
      stage3Job: stage3 ? { name: stage3.name, outcome: jobOutcome(stage3) } : null,
    },
  };
}

function validationRef(v: ClusterValidation, plan: Plan): ValidationReportRef {
  const dates = v.range
    ? plan.dates.map((d) => d.date).filter((d) => d >= (v.range?.start ?? '') && d <= (v.range?.end ?? ''))
    : [];
  return { path: `configmap/${v.name}`, seasons: [v.season], dates, passed: v.passed, generatedAt: v.generatedAt };
}
