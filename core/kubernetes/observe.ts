// From Kubernetes objects to the controller's observed state: Jobs, plan and spec ConfigMaps, the reports it
// wrote, and how Stage 3 pods ended. Conversions are pure; `observe` does the reads.

import { messageOf } from '../errors.js';
import { JobPlanSchema } from '../jobs/jobPlan.js';
import { PHASE3_RUNNER_CONTAINER } from '../jobs/spec.js';
import type { Cluster, ClusterConfigMap, ClusterJob, ClusterPod } from '../ports/cluster.js';
import {
  ANNOTATION_GATE_KEY,
  ANNOTATION_GATE_PASSED,
  ANNOTATION_JOB_UID,
  ANNOTATION_PLAN_CONFIGMAP,
  COMPONENT_STAGE1,
  COMPONENT_STAGE3,
  LABEL_COMPONENT,
  LABEL_MANAGED_BY,
  LABEL_REPORT,
  LABEL_SEASON,
  MANAGED_BY_CONTROLLER,
  PLAN_CONFIGMAP_KEY,
  POD_LABEL_JOB_NAME,
  REPORT_KINDS,
  type ReportKind,
  STAGE3_SPEC_KEY,
  stage3SpecConfigMapName,
} from './contract.js';
import {
  type GateOutcome,
  jobOutcome,
  type ObservedJob,
  type ObservedReport,
  type ObservedState,
  type PlanLookup,
  type Stage3Spec,
  type Stage3Termination,
} from './reconcile.js';

/** The Jobs the controller watches. */
export const JOB_SELECTOR = `${LABEL_COMPONENT} in (${COMPONENT_STAGE1},${COMPONENT_STAGE3}),${LABEL_SEASON}`;
/** The ConfigMaps the controller wrote. */
export const REPORT_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_CONTROLLER}`;

const iso = (d: Date | string | undefined | null): string | null =>
  d === undefined || d === null ? null : d instanceof Date ? d.toISOString() : String(d);

/** A Job as the controller sees it; null for a Job without the component and season labels. */
export function toObservedJob(job: ClusterJob): ObservedJob | null {
  const labels = job.metadata?.labels ?? {};
  const component = labels[LABEL_COMPONENT];
  const season = labels[LABEL_SEASON];
  const name = job.metadata?.name;
  if (!component || !season || !name) return null;
  const conditions = (job.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    at: iso(c.lastTransitionTime),
  }));
  const terminal = conditions.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  return {
    name,
    uid: job.metadata?.uid ?? '',
    component,
    season,
    planConfigMap: job.metadata?.annotations?.[ANNOTATION_PLAN_CONFIGMAP] ?? null,
    completions: job.spec?.completions ?? 1,
    createdAt: iso(job.metadata?.creationTimestamp) ?? '',
    finishedAt: iso(job.status?.completionTime) ?? terminal?.at ?? null,
    completedIndexes: job.status?.completedIndexes ?? '',
    failedIndexes: job.status?.failedIndexes ?? null,
    succeeded: job.status?.succeeded ?? 0,
    failed: job.status?.failed ?? 0,
    active: job.status?.active ?? 0,
    conditions: conditions.map(({ at: _at, ...c }) => c),
  };
}

/** A plan ConfigMap read for a Job: the plan, checked against the Job it belongs to. */
export function planLookup(configMap: ClusterConfigMap | null, job: ObservedJob): PlanLookup {
  if (!configMap) return { ok: false, problem: 'not found' };
  const text = configMap.data?.[PLAN_CONFIGMAP_KEY];
  if (text === undefined) return { ok: false, problem: `no key ${PLAN_CONFIGMAP_KEY}` };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `${PLAN_CONFIGMAP_KEY} is not JSON: ${messageOf(err)}` };
  }
  const parsed = JobPlanSchema.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return { ok: false, problem: `${PLAN_CONFIGMAP_KEY}: ${i?.path.join('.')}: ${i?.message}` };
  }
  const plan = parsed.data;
  if (plan.dates.length !== job.completions) {
    return { ok: false, problem: `${plan.dates.length} dates for a job of ${job.completions} completions` };
  }
  if (plan.season !== job.season) return { ok: false, problem: `plan for ${plan.season}, job for ${job.season}` };
  return { ok: true, plan };
}

/** A season's Stage 3 spec ConfigMap read: a batch/v1 Job with a name. */
export function stage3Spec(configMap: ClusterConfigMap | null, season: string): Stage3Spec {
  const name = stage3SpecConfigMapName(season);
  if (!configMap) return { ok: false, problem: `configmap ${name} not found` };
  const text = configMap.data?.[STAGE3_SPEC_KEY];
  if (text === undefined) return { ok: false, problem: `configmap ${name} has no key ${STAGE3_SPEC_KEY}` };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `configmap ${name} ${STAGE3_SPEC_KEY} is not JSON: ${messageOf(err)}` };
  }
  const job = body as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown }; spec?: unknown };
  if (job?.apiVersion !== 'batch/v1' || job.kind !== 'Job' || typeof job.metadata?.name !== 'string' || !job.spec) {
    return { ok: false, problem: `configmap ${name} ${STAGE3_SPEC_KEY} is not a batch/v1 Job with a name and spec` };
  }
  return { ok: true, jobName: job.metadata.name, manifest: body as Record<string, unknown> };
}

/** A report ConfigMap the controller wrote; null for anything else. */
export function toObservedReport(configMap: ClusterConfigMap): ObservedReport | null {
  const labels = configMap.metadata?.labels ?? {};
  const kind = labels[LABEL_REPORT] as ReportKind | undefined;
  if (!kind || !REPORT_KINDS.includes(kind) || labels[LABEL_MANAGED_BY] !== MANAGED_BY_CONTROLLER) return null;
  const a = configMap.metadata?.annotations ?? {};
  const passed = a[ANNOTATION_GATE_PASSED];
  return {
    name: configMap.metadata?.name ?? '',
    kind,
    season: labels[LABEL_SEASON] ?? '',
    jobUid: a[ANNOTATION_JOB_UID] ?? null,
    gateKey: a[ANNOTATION_GATE_KEY] ?? null,
    gatePassed: passed === 'true' ? true : passed === 'false' ? false : null,
  };
}

/** How the newest terminated pod of a Stage 3 Job ended (its runner container's state). */
export function stage3Termination(pods: readonly ClusterPod[]): Stage3Termination | null {
  const ended = pods
    .map((pod) => {
      const statuses = pod.status?.containerStatuses ?? [];
      const status = statuses.find((s) => s.name === PHASE3_RUNNER_CONTAINER) ?? statuses[0];
      return { pod, terminated: status?.state?.terminated };
    })
    .filter((p) => p.terminated)
    .sort((a, b) =>
      (iso(a.pod.metadata?.creationTimestamp) ?? '') < (iso(b.pod.metadata?.creationTimestamp) ?? '') ? -1 : 1,
    );
  const last = ended.at(-1);
  if (!last?.terminated) return null;
  return {
    podName: last.pod.metadata?.name ?? '',
    exitCode: last.terminated.exitCode ?? null,
    reason: last.terminated.reason ?? null,
    message: last.terminated.message?.trim() || null,
  };
}

/** What observe keeps between passes: plans, once read, do not change under a Job. */
export interface ObserveCache {
  readonly plans: Map<string, PlanLookup>;
}

/** Reads everything reconcile needs besides the Jobs (which the watch keeps). */
export async function observe(
  kube: Cluster,
  jobs: readonly ClusterJob[],
  gates: ReadonlyMap<string, GateOutcome>,
  cache: ObserveCache,
): Promise<ObservedState> {
  const observed = jobs.map(toObservedJob).filter((j): j is ObservedJob => j !== null);
  const plans = new Map<string, PlanLookup>();
  for (const job of observed) {
    if (job.component !== COMPONENT_STAGE1 || !job.planConfigMap) continue;
    const cached = cache.plans.get(`${job.uid}/${job.planConfigMap}`);
    const lookup = cached ?? planLookup(await kube.getConfigMap(job.planConfigMap), job);
    if (lookup.ok) cache.plans.set(`${job.uid}/${job.planConfigMap}`, lookup);
    plans.set(job.planConfigMap, lookup);
  }
  const stage3Specs = new Map<string, Stage3Spec>();
  for (const season of new Set(observed.map((j) => j.season))) {
    stage3Specs.set(season, stage3Spec(await kube.getConfigMap(stage3SpecConfigMapName(season)), season));
  }
  const reports = (await kube.listConfigMaps(REPORT_SELECTOR))
    .map(toObservedReport)
    .filter((r): r is ObservedReport => r !== null);
  const stage3Pods = new Map<string, Stage3Termination | null>();
  for (const job of observed) {
    const outcome = jobOutcome(job);
    if (job.component !== COMPONENT_STAGE3 || !outcome) continue;
    const kind = outcome === 'Failed' ? 'stage3-failure' : 'validation';
    if (reports.some((r) => r.kind === kind && r.jobUid === job.uid)) continue;
    stage3Pods.set(job.name, stage3Termination(await kube.listPods(`${POD_LABEL_JOB_NAME}=${job.name}`)));
  }
  return { namespace: kube.namespace, jobs: observed, plans, stage3Specs, stage3Pods, reports, gates };
}
