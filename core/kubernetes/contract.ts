// The names the controller shares with the manifests (charts-src) and with Kubernetes itself: labels,
// annotations, ConfigMap names and keys, and the names of what the controller writes.

import type { IsoDate } from '../dates.js';
import {
  COMPONENT_LABEL,
  CONTROLLER_NAME,
  JOB_PLAN_KEY,
  MANAGED_BY_LABEL,
  PLAN_CONFIGMAP_ANNOTATION,
  SEASON_LABEL,
  STAGE3_TEMPLATE_KEY,
  stage3TemplateConfigMapName,
} from '../jobs/spec.js';

// --- Shared with the manifests: the values live in core/jobs/spec.ts, which the chart builds from too.
export { COMPONENT_STAGE1, COMPONENT_STAGE3, DEFAULT_NAMESPACE, planConfigMapName } from '../jobs/spec.js';
/** `stage1` on Stage 1 and retry Jobs, `stage3` on the Stage 3 Job. */
export const LABEL_COMPONENT = COMPONENT_LABEL;
export const LABEL_SEASON = SEASON_LABEL;
/** On a Stage 1 or retry Job: the ConfigMap holding its job plan. */
export const ANNOTATION_PLAN_CONFIGMAP = PLAN_CONFIGMAP_ANNOTATION;
/** The key of the plan ConfigMap that holds the JobPlan (`{"jobName","season","dates"}`). */
export const PLAN_CONFIGMAP_KEY = JOB_PLAN_KEY;
/** The key of the Stage 3 spec ConfigMap that holds the full batch/v1 Job. */
export const STAGE3_SPEC_KEY = STAGE3_TEMPLATE_KEY;
/** The ConfigMap that holds a season's Stage 3 Job spec: `nba-backfill-stage3-202122`. */
export const stage3SpecConfigMapName = stage3TemplateConfigMapName;

/** A season label without its dash: `2021-22` -> `202122`. */
export function seasonSlug(season: string): string {
  return season.replace('-', '');
}

/** One rule of a Role, as rbac.authorization.k8s.io/v1 writes it. */
export interface RoleRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/**
 * The controller's Role, and so everything the controller may do in its namespace: exactly the calls
 * core/kubernetes/kube.ts makes for it (a test runs the controller against the API server double with only
 * these rules and checks that it uses each of them). The chart writes this Role and dist/README.md lists it.
 * `backfill logs --cluster` and `backfill retry --cluster` run with the user's own credentials, not these.
 */
export const CONTROLLER_ROLE_RULES: readonly RoleRule[] = [
  // List and watch the Stage 1, retry and Stage 3 Jobs (an informer); create a season's Stage 3 Job. Never
  // get (the informer's cache has them), update or delete a Job.
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch', 'create'] },
  // Find a failed date's pods (their exit codes and reasons) for the failure report; their logs are read by
  // people, with the printed `kubectl logs` command.
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  // Read the plans and the Stage 3 templates; write (create, then replace at a resourceVersion) the reports.
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'update'] },
  // The Warning and Normal Events of each report (core/v1 Events).
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  // Leader election: only the holder of the Lease acts (controller/lease.ts).
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

/** The oldest Kubernetes (major, minor) the Jobs run on: `backoffLimitPerIndex` and `FailIndex` are on by default from 1.29. */
export const MIN_KUBERNETES: readonly [number, number] = [1, 29];

// --- Set by Kubernetes' Job controller on the pods of a Job (the prefixed job-name label since 1.27; the
// unprefixed `job-name` is kept only for compatibility: https://kubernetes.io/docs/reference/labels-annotations-taints/#batchkubernetesiojob-name).
export const POD_LABEL_JOB_NAME = 'batch.kubernetes.io/job-name';
export const POD_LABEL_COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';

/** The label selector of the pods of one index of a Job (every attempt). */
export function indexPodSelector(jobName: string, index: number | string): string {
  return `${POD_LABEL_JOB_NAME}=${jobName},${POD_LABEL_COMPLETION_INDEX}=${index}`;
}

/**
 * The command a person runs to read the logs of one index's pods: whole (with `-l`, kubectl prints only the
 * last 10 lines of each pod unless told `--tail=-1`) and with each line prefixed by its pod, so that the
 * attempts of a date are told apart.
 */
export function kubectlLogsCommand(namespace: string, jobName: string, index: number | string): string {
  return `kubectl logs -n ${namespace} -l ${indexPodSelector(jobName, index)} --tail=-1 --prefix`;
}

// --- What the controller writes, and how it finds it again after a restart.
export const LABEL_MANAGED_BY = MANAGED_BY_LABEL;
export const MANAGED_BY_CONTROLLER = CONTROLLER_NAME;
/** The kind of report a ConfigMap holds. */
export const LABEL_REPORT = 'nba-backfill/report';
/** The Job a report is about, and its uid: a Job deleted and created again under the same name is reported again. */
export const ANNOTATION_JOB = 'nba-backfill/job';
export const ANNOTATION_JOB_UID = 'nba-backfill/job-uid';
/** On the gate report: which finished Stage 1 Jobs the gate ran after, and its verdict. */
export const ANNOTATION_GATE_KEY = 'nba-backfill/gate-key';
export const ANNOTATION_GATE_PASSED = 'nba-backfill/gate-passed';
export const ANNOTATION_PASSED = 'nba-backfill/passed';
/** The controller's name in Events (`source.component`, `reportingComponent`). */
export const EVENT_COMPONENT = CONTROLLER_NAME;

export const REPORT_KINDS = ['failures', 'gate', 'stage3-failure', 'validation'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

/** The failure log of a finished Stage 1 or retry Job. */
export function failuresConfigMapName(jobName: string): string {
  return `${jobName}-failures`;
}

/** The gate report of a season (one, updated each time the gate runs). */
export function gateConfigMapName(season: string): string {
  return `nba-backfill-gate-${seasonSlug(season)}`;
}

/** What a failed Stage 3 Job left: its termination message and the reason. */
export function stage3ResultConfigMapName(jobName: string): string {
  return `${jobName}-result`;
}

/** The Stage 4 validation report made after a Stage 3 Job succeeded. */
export function validationConfigMapName(jobName: string): string {
  return `${jobName}-validation`;
}

/**
 * Events get deterministic names, so that a controller restarted between writing an Event and writing the
 * ConfigMap that marks the report as done gets "already exists" instead of reporting twice.
 */
export function eventName(subject: string, discriminator: string, what: string): string {
  return `${subject}.${discriminator.replace(/[^a-z0-9]/g, '').slice(0, 10)}.${what}`;
}

/** The compact form of a date list for a message: the first few, then a count. */
export function listDates(dates: readonly IsoDate[], shown = 8): string {
  return dates.length <= shown ? dates.join(', ') : `${dates.slice(0, shown).join(', ')}, ... (${dates.length} dates)`;
}
