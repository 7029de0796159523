// The Jobs of the backfill, built once as plain batch/v1 objects: the cdk8s chart synthesizes them into dist/,
// the local job runtime runs the very same Stage 1 object on this machine, and the controller creates the
// Stage 3 object at run time. Also the names, labels and paths the chart and the controller agree on.

import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { IsoDate } from '../dates.js';
import { localJobName, PLAN_HASH_LABEL, planHash, RUN_ID_LABEL } from './runNames.js';

/** Exit codes of the phase2-date program; the pod failure policy fails an index at once on PERMANENT. */
export const EXIT_INDEX_OK = 0;
export const EXIT_INDEX_RETRIABLE = 1;
export const EXIT_INDEX_PERMANENT = 2;

export const PHASE2_DATE_CONTAINER = 'phase2-date';
/** Where the pod finds the job's dates (a ConfigMap volume in the cluster, a file locally). */
export const JOB_PLAN_ENV = 'BACKFILL_JOB_PLAN';
/**
 * Retries of a Stage 1 date (the Job's backoffLimitPerIndex): the pod program, built from the same source, knows
 * from it and its failure count whether its attempt is the last one allowed.
 */
export const STAGE1_RETRIES_PER_DATE = 1;
/** How many times this index already failed; the cluster fills it from the pod annotation. */
export const INDEX_FAILURE_COUNT_ENV = 'BACKFILL_INDEX_FAILURE_COUNT';
/**
 * `true`: the Stage 1 pod writes its date's Phase 2 even when the freshly scraped raw files are those of the
 * date's last successful load (which it otherwise records as unchanged, without writing). Part of the pod
 * template, so a forced Job has a name of its own.
 */
export const FORCE_ENV = 'BACKFILL_FORCE';
/** The controller's namespace, from the downward API. */
export const NAMESPACE_ENV = 'BACKFILL_NAMESPACE';
/** The log folder setting (core/config.ts); in a pod it points into the writable emptyDir. */
export const LOG_DIR_ENV = 'BACKFILL_LOG_DIR';
/**
 * The JSON log setting (core/config.ts). The Stage 3 pod's command sends it to standard output, where
 * `kubectl logs` and Cloud Logging read it (its per-date lines), as the Stage 1 pods' lines are.
 */
export const LOG_FILE_ENV = 'BACKFILL_LOG_FILE';
export const POD_STDOUT = '/dev/stdout';
/**
 * The Stage 3 pod's Job name, from its `job-name` label (the downward API): `backfill stage3 --job-name` puts it
 * in every per-date log line, so that a line leads back to the Job, as a Stage 1 pod's does.
 */
export const JOB_NAME_ENV = 'BACKFILL_JOB_NAME';

// ---- The contract between the chart, the controller and `backfill retry` against a cluster ----

/** The namespace the manifests use unless the chart is told otherwise. */
export const DEFAULT_NAMESPACE = 'nba-backfill';
/** The recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */
export const NAME_LABEL = 'app.kubernetes.io/name';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** The season a Job or ConfigMap belongs to, e.g. `2021-22`. */
export const SEASON_LABEL = 'nba-backfill/season';
/** On a Stage 1 Job: the name of the ConfigMap that holds its job plan. */
export const PLAN_CONFIGMAP_ANNOTATION = 'nba-backfill/plan-configmap';
export const APP_NAME = 'nba-backfill';

/** `app.kubernetes.io/component` values. */
export const COMPONENT_STAGE1 = 'stage1';
export const COMPONENT_STAGE1_PLAN = 'stage1-plan';
export const COMPONENT_STAGE3 = 'stage3';
export const COMPONENT_STAGE3_TEMPLATE = 'stage3-template';
export const COMPONENT_CONTROLLER = 'controller';

/** The key of the job plan in its ConfigMap, and the folder the Stage 1 pods mount it in. */
export const JOB_PLAN_KEY = 'job-plan.json';
export const JOB_PLAN_DIR = '/etc/nba-backfill/plan';
/** The key of the Stage 3 Job manifest (JSON) in its template ConfigMap. */
export const STAGE3_TEMPLATE_KEY = 'job.json';

/** The controller serves GET /healthz on this port (liveness and readiness probes). */
export const CONTROLLER_HEALTH_PORT = 8080;
export const CONTROLLER_HEALTH_PATH = '/healthz';
/** Prometheus metrics, on the same port (the pod's scrape annotations name both). */
export const CONTROLLER_METRICS_PATH = '/metrics';
export const CONTROLLER_NAME = 'nba-backfill-controller';
export const CONTROLLER_CONTAINER = 'controller';
/** The ServiceAccount of the controller (it has the Role) and of the Job pods (no Kubernetes API rights). */
export const CONTROLLER_SERVICE_ACCOUNT = 'nba-backfill-controller';
export const JOB_SERVICE_ACCOUNT = 'nba-backfill-job';
/** GKE Workload Identity: the Google service account a Kubernetes ServiceAccount acts as. */
export const WORKLOAD_IDENTITY_ANNOTATION = 'iam.gke.io/gcp-service-account';

/** The writable emptyDir of every pod (the root filesystem is read-only), and the log folder inside it. */
export const TMP_DIR = '/tmp';
export const POD_LOG_DIR = '/tmp/nba-backfill/logs';
export const DEFAULT_IMAGE = 'nba-backfill:latest';

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** `name[:tag][@sha256:<64 hex>]`, the forms an image reference takes (registry and path in the name). */
const IMAGE_REFERENCE =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;
const DIGEST = /@sha256:[0-9a-f]{64}$/;

/** Why an image reference is not one, or null. */
export function imageReferenceProblem(image: string): string | null {
  if (IMAGE_REFERENCE.test(image)) return null;
  if (/@/.test(image) && !DIGEST.test(image)) return 'a digest is @sha256: and 64 lowercase hex digits';
  return 'not an image reference (name[:tag][@sha256:digest], lowercase name)';
}

/**
 * The pull policy an image needs: a digest names one image for ever, so a node may reuse what it pulled; a
 * tag can move (`:latest`, or a tag pushed again), so every pod pulls it to run what the tag names now
 * (https://kubernetes.io/docs/concepts/containers/images/#image-pull-policy).
 */
export function imagePullPolicyFor(image: string): ImagePullPolicy {
  return DIGEST.test(image) ? 'IfNotPresent' : 'Always';
}

/** `nba-stage1-202122-1a2b3c4d-plan`: the ConfigMap a Stage 1 (or retry) Job reads its dates from. */
export function planConfigMapName(jobName: string): string {
  return `${jobName}-plan`;
}

/** `nba-backfill-stage3-202122`: the ConfigMap holding the season's Stage 3 Job manifest. */
export function stage3TemplateConfigMapName(season: string): string {
  return `nba-backfill-stage3-${season.replace('-', '')}`;
}

// ---- Pod fields ----

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: { readonly fieldRef: { readonly fieldPath: string } };
}

export interface PodFailurePolicyRule {
  readonly action: 'FailJob' | 'FailIndex' | 'Ignore' | 'Count';
  readonly onExitCodes?: {
    readonly containerName?: string;
    readonly operator: 'In' | 'NotIn';
    readonly values: readonly number[];
  };
  readonly onPodConditions?: readonly { readonly type: string; readonly status?: string }[];
}

/** Requests and limits as Kubernetes quantities (`250m`, `512Mi`). */
type ResourceQuantities = Readonly<Record<'cpu' | 'memory', string> & { 'ephemeral-storage'?: string }>;

export interface ResourceRequirements {
  readonly requests: ResourceQuantities;
  readonly limits: ResourceQuantities;
}

/** What the Pod Security Standard "restricted" asks of every container, and a read-only root. */
export interface ContainerSecurityContext {
  readonly allowPrivilegeEscalation: false;
  readonly readOnlyRootFilesystem: true;
  readonly runAsNonRoot: true;
  readonly capabilities: { readonly drop: readonly ['ALL'] };
}

export interface PodSecurityContext {
  readonly runAsNonRoot: true;
  readonly runAsUser: number;
  readonly runAsGroup: number;
  readonly fsGroup: number;
  readonly seccompProfile: { readonly type: 'RuntimeDefault' };
}

export interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
  readonly readOnly?: boolean;
}

export interface Volume {
  readonly name: string;
  readonly configMap?: {
    readonly name: string;
    readonly items?: readonly { readonly key: string; readonly path: string }[];
  };
  readonly emptyDir?: { readonly sizeLimit?: string };
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly imagePullPolicy?: ImagePullPolicy;
  readonly command: readonly string[];
  readonly env: readonly EnvVar[];
  readonly resources?: ResourceRequirements;
  readonly securityContext?: ContainerSecurityContext;
  readonly volumeMounts?: readonly VolumeMount[];
  readonly terminationMessagePath?: string;
  readonly terminationMessagePolicy?: 'File' | 'FallbackToLogsOnError';
  readonly [key: string]: unknown;
}

/** The pod fields every Job here sets. */
export interface JobPodSpec {
  readonly restartPolicy: 'Never';
  readonly serviceAccountName?: string;
  readonly securityContext?: PodSecurityContext;
  readonly containers: readonly ContainerSpec[];
  readonly volumes?: readonly Volume[];
  readonly terminationGracePeriodSeconds?: number;
  readonly [key: string]: unknown;
}

/** A Job's pod template: its labels (and annotations) and its pod. */
export interface JobPodTemplate {
  readonly metadata: {
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: JobPodSpec;
}

/** uid/gid 1000: the `node` user of the image. */
export const POD_SECURITY_CONTEXT: PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  fsGroup: 1000,
  seccompProfile: { type: 'RuntimeDefault' },
};

export const CONTAINER_SECURITY_CONTEXT: ContainerSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};

/** One Stage 1 pod runs one date: Phase 1-2 through the configured adapters. */
export const STAGE1_RESOURCES: ResourceRequirements = {
  // Ephemeral storage: the /tmp emptyDir (logs) counts against it; without a request the pod is the first a
  // node under disk pressure evicts (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage).
  requests: { cpu: '250m', memory: '384Mi', 'ephemeral-storage': '256Mi' },
  limits: { cpu: '1', memory: '768Mi', 'ephemeral-storage': '1Gi' },
};

/** The Stage 3 pod runs Phase 3-4 date by date for a whole season, with lookback windows in memory. */
export const STAGE3_RESOURCES: ResourceRequirements = {
  requests: { cpu: '500m', memory: '512Mi', 'ephemeral-storage': '256Mi' },
  limits: { cpu: '2', memory: '1536Mi', 'ephemeral-storage': '1Gi' },
};

/**
 * The Stage 3 pod's grace period after SIGTERM: it finishes the batch in flight and commits it before it
 * exits (a batch of 32 dates on BigQuery is a few minutes of jobs at most), where the default 30 s would kill
 * it mid-batch and waste the work.
 */
export const STAGE3_TERMINATION_GRACE_SECONDS = 600;
/** Tells the cluster autoscaler not to evict the one pod of a long Stage 3 run to shrink a node pool. */
export const SAFE_TO_EVICT_ANNOTATION = 'cluster-autoscaler.kubernetes.io/safe-to-evict';

const TMP_VOLUME = 'tmp';
const TMP_SIZE_LIMIT = '1Gi';
const JOB_PLAN_VOLUME = 'job-plan';

function sortedEnv(env: Readonly<Record<string, string>>): EnvVar[] {
  return Object.entries(env)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => ({ name: k, value: v }));
}

function checkResources(what: string, r: ResourceRequirements): ResourceRequirements {
  const quantity = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;
  for (const [kind, values] of [
    ['requests', r.requests],
    ['limits', r.limits],
  ] as const) {
    for (const [name, value] of Object.entries(values)) {
      if (!quantity.test(value)) throw new Error(`${what} resources.${kind}.${name} "${value}": not a quantity`);
    }
  }
  return r;
}

// ---- Stage 1 ----

/** What differs between the Stage 1 and Stage 3 pods; the rest of their template is the same. */
interface PodTemplateOptions {
  readonly labels: Readonly<Record<string, string>>;
  readonly container: string;
  readonly command: readonly string[];
  readonly env: readonly EnvVar[];
  /** @default DEFAULT_IMAGE */
  readonly image: string | undefined;
  /** @default imagePullPolicyFor(image) */
  readonly imagePullPolicy: ImagePullPolicy | undefined;
  /** @default JOB_SERVICE_ACCOUNT */
  readonly serviceAccountName: string | undefined;
  readonly resources: ResourceRequirements;
  /** Pod annotations. @default none */
  readonly annotations?: Readonly<Record<string, string>>;
  /** @default Kubernetes' 30 s */
  readonly terminationGracePeriodSeconds?: number;
  /** Mounts and volumes besides the writable /tmp every pod has. */
  readonly mounts: readonly VolumeMount[];
  readonly volumes: readonly Volume[];
  readonly termination: {
    readonly terminationMessagePath?: string;
    readonly terminationMessagePolicy: 'File' | 'FallbackToLogsOnError';
  };
}

/** The one pod template of the project's Jobs: restricted security, one container, a small writable /tmp. */
function podTemplate(o: PodTemplateOptions): JobPodTemplate {
  return {
    metadata: { labels: o.labels, ...(o.annotations ? { annotations: { ...o.annotations } } : {}) },
    spec: {
      restartPolicy: 'Never',
      ...(o.terminationGracePeriodSeconds !== undefined
        ? { terminationGracePeriodSeconds: o.terminationGracePeriodSeconds }
        : {}),
      serviceAccountName: o.serviceAccountName ?? JOB_SERVICE_ACCOUNT,
      securityContext: POD_SECURITY_CONTEXT,
      containers: [
        {
          name: o.container,
          image: o.image ?? DEFAULT_IMAGE,
          imagePullPolicy: o.imagePullPolicy ?? imagePullPolicyFor(o.image ?? DEFAULT_IMAGE),
          command: [...o.command],
          env: [...o.env],
          resources: o.resources,
          securityContext: CONTAINER_SECURITY_CONTEXT,
          volumeMounts: [...o.mounts, { name: TMP_VOLUME, mountPath: TMP_DIR }],
          ...o.termination,
        },
      ],
      volumes: [...o.volumes, { name: TMP_VOLUME, emptyDir: { sizeLimit: TMP_SIZE_LIMIT } }],
    },
  };
}

/** The subset of batch/v1 Job this project sets and the local runtime reads. */
export interface IndexedJob {
  readonly apiVersion: 'batch/v1';
  readonly kind: 'Job';
  readonly metadata: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly completionMode: 'Indexed';
    readonly completions: number;
    readonly parallelism: number;
    readonly backoffLimitPerIndex: number;
    readonly activeDeadlineSeconds: number;
    readonly podFailurePolicy: { readonly rules: readonly PodFailurePolicyRule[] };
    readonly template: JobPodTemplate;
  };
}

/** The job plan: what one Stage 1 Job does, the file its pods read their date from. */
export interface JobPlan {
  readonly jobName: string;
  readonly season: string;
  readonly dates: readonly IsoDate[];
  /** A local run's id (core/jobs/runNames.ts); the cluster's plans have none. */
  readonly runId?: string;
}

export interface Stage1JobOptions {
  readonly season: string;
  readonly dates: readonly IsoDate[];
  /** Pods running at once. @default 2 */
  readonly parallelism?: number;
  /** @default 'nba-backfill:latest' */
  readonly image?: string;
  /** @default imagePullPolicyFor(image): Always for a tag, IfNotPresent for a digest */
  readonly imagePullPolicy?: ImagePullPolicy;
  /** Where the job plan file is mounted in the pod. @default '/etc/nba-backfill/plan/job-plan.json' */
  readonly jobPlanPath?: string;
  /**
   * Settings passed to the pods (warehouse, objects, source, ...) as BACKFILL_* variables; they win over the
   * pod's own BACKFILL_LOG_DIR. @default {}
   */
  readonly env?: Readonly<Record<string, string>>;
  /** A name suffix for retry jobs, e.g. `retry`. */
  readonly purpose?: string;
  /**
   * A local run's id: the Job is then named after the run (`nba-stage1-202122-<run id>`) and carries the plan
   * hash and the run id in labels, so that two runs of the same dates keep apart. Without it the name is the
   * plan's hash, as the cluster's Jobs are named (the chart and the controller rely on it being deterministic).
   */
  readonly runId?: string;
  /** @default 3600 (one hour for a season at parallelism 2 leaves a wide margin) */
  readonly activeDeadlineSeconds?: number;
  /** @default STAGE1_RESOURCES */
  readonly resources?: ResourceRequirements;
  /** @default 'nba-backfill-job' */
  readonly serviceAccountName?: string;
}

/**
 * `nba-<purpose>-<season>-<hash>`: short (pod names add `-<index>-<random>`, and the Job name is also a label
 * value, 63 characters at most) and unique per hash.
 */
export function seasonJobName(purpose: string, season: string, hash: string): string {
  return `nba-${purpose}-${season.replace('-', '')}-${hash}`;
}

/**
 * A Stage 1 (or retry) Job, named from a hash of its whole spec (the pod template: image, pull policy, env,
 * resources, ...) and its plan's dates. A Job's pod template cannot change, so a new image or setting must be
 * a new Job: under a name of its own, `kubectl apply` and Argo CD create it (and Argo CD prunes the old one)
 * instead of failing with "field is immutable". The dates' hash stays a label (`nba-backfill/plan-hash`).
 */
export function buildStage1Job(options: Stage1JobOptions): IndexedJob {
  if (options.runId !== undefined) {
    return assembleStage1Job(options, localJobName(options.purpose ?? 'stage1', options.season, options.runId));
  }
  const purpose = options.purpose ?? 'stage1';
  // The spec names its plan ConfigMap after the Job: hash it under a placeholder name, then name it.
  const provisional = assembleStage1Job(options, seasonJobName(purpose, options.season, '00000000'));
  const hash = createHash('sha256')
    .update(JSON.stringify({ dates: options.dates, labels: provisional.metadata.labels, spec: provisional.spec }))
    .digest('hex')
    .slice(0, 8);
  return assembleStage1Job(options, seasonJobName(purpose, options.season, hash));
}

function assembleStage1Job(options: Stage1JobOptions, name: string): IndexedJob {
  if (options.dates.length === 0) throw new Error(`Stage 1 job for ${options.season}: no dates`);
  const parallelism = options.parallelism ?? 2;
  if (!Number.isInteger(parallelism) || parallelism < 1) {
    throw new Error(`Stage 1 job parallelism ${parallelism}: must be a whole number >= 1`);
  }
  const jobPlanPath = options.jobPlanPath ?? posix.join(JOB_PLAN_DIR, JOB_PLAN_KEY);
  if (!posix.isAbsolute(jobPlanPath)) throw new Error(`Stage 1 job plan path "${jobPlanPath}": must be absolute`);
  const labels = {
    [NAME_LABEL]: APP_NAME,
    [COMPONENT_LABEL]: COMPONENT_STAGE1,
    [PART_OF_LABEL]: APP_NAME,
    [SEASON_LABEL]: options.season,
    [PLAN_HASH_LABEL]: planHash(options.dates),
    ...(options.runId === undefined ? {} : { [RUN_ID_LABEL]: options.runId }),
  };
  const env: EnvVar[] = [
    { name: JOB_PLAN_ENV, value: jobPlanPath },
    // Kubernetes counts an index's failures on its pods; the program uses it as the attempt number.
    {
      name: INDEX_FAILURE_COUNT_ENV,
      valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-index-failure-count']" } },
    },
    { name: 'BACKFILL_LOG_LEVEL', value: 'info' },
    ...sortedEnv({ [LOG_DIR_ENV]: POD_LOG_DIR, ...options.env }),
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels, annotations: { [PLAN_CONFIGMAP_ANNOTATION]: planConfigMapName(name) } },
    spec: {
      completionMode: 'Indexed',
      completions: options.dates.length,
      parallelism,
      // One retry per date: a transient failure gets a second chance, then the date is recorded as failed.
      // No maxFailedIndexes: a failed date never stops the others.
      backoffLimitPerIndex: STAGE1_RETRIES_PER_DATE,
      activeDeadlineSeconds: options.activeDeadlineSeconds ?? 3600,
      podFailurePolicy: {
        rules: [
          // An eviction or preemption is not the date's fault and must not use up its retry.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
          // Bad input will not get better by trying again. (`onPodConditions: []` because the 1.28 schema,
          // which cdk8s-plus-28 types, marks it required; the API server accepts an empty list here.)
          {
            action: 'FailIndex',
            onExitCodes: { containerName: PHASE2_DATE_CONTAINER, operator: 'In', values: [EXIT_INDEX_PERMANENT] },
            onPodConditions: [],
          },
        ],
      },
      template: podTemplate({
        labels,
        container: PHASE2_DATE_CONTAINER,
        command: ['node', 'build/jobs/phase2-date/main.js'],
        env,
        image: options.image,
        imagePullPolicy: options.imagePullPolicy,
        serviceAccountName: options.serviceAccountName,
        resources: checkResources(`Stage 1 job ${name}`, options.resources ?? STAGE1_RESOURCES),
        // The plan's ConfigMap, mounted where the pod reads its date.
        mounts: [{ name: JOB_PLAN_VOLUME, mountPath: posix.dirname(jobPlanPath), readOnly: true }],
        volumes: [
          {
            name: JOB_PLAN_VOLUME,
            configMap: {
              name: planConfigMapName(name),
              items: [{ key: JOB_PLAN_KEY, path: posix.basename(jobPlanPath) }],
            },
          },
        ],
        // A failed date's last log lines show in `kubectl describe pod` and the pod's status.
        termination: { terminationMessagePolicy: 'FallbackToLogsOnError' },
      }),
    },
  };
}

/** The plan file's text, as the local runtime writes it and the ConfigMap holds it. */
export function jobPlanJson(plan: JobPlan): string {
  return `${JSON.stringify({ jobName: plan.jobName, season: plan.season, dates: plan.dates }, null, 2)}\n`;
}

/** v1 ConfigMap, as far as this project fills it. */
export interface ConfigMapObject {
  readonly apiVersion: 'v1';
  readonly kind: 'ConfigMap';
  readonly metadata: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly data: Readonly<Record<string, string>>;
}

/** The ConfigMap a Stage 1 (or retry) Job's pods read their dates from; create it with (before) the Job. */
export function buildJobPlanConfigMap(plan: JobPlan): ConfigMapObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: planConfigMapName(plan.jobName),
      labels: {
        [NAME_LABEL]: APP_NAME,
        [COMPONENT_LABEL]: COMPONENT_STAGE1_PLAN,
        [PART_OF_LABEL]: APP_NAME,
        [SEASON_LABEL]: plan.season,
      },
    },
    data: { [JOB_PLAN_KEY]: jobPlanJson(plan) },
  };
}

/** A Stage 1 (or retry) Job and the ConfigMap holding its plan: what a cluster gets, in apply order. */
export function stage1JobWithPlan(options: Stage1JobOptions): {
  readonly planConfigMap: ConfigMapObject;
  readonly job: IndexedJob;
} {
  const job = buildStage1Job(options);
  const planConfigMap = buildJobPlanConfigMap({
    jobName: job.metadata.name,
    season: options.season,
    dates: options.dates,
  });
  return { planConfigMap, job };
}

// ---- Stage 3 ----

export const PHASE3_RUNNER_CONTAINER = 'phase3-runner';
/** Where the Stage 3 pod writes its summary; Kubernetes shows the file as the pod's termination message. */
export const TERMINATION_MESSAGE_PATH = '/dev/termination-log';

/** batch/v1 Job for Stage 3: one pod, no retry on error, evictions ignored so a replacement pod resumes. */
export interface SinglePodJob {
  readonly apiVersion: 'batch/v1';
  readonly kind: 'Job';
  readonly metadata: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly completions: 1;
    readonly parallelism: 1;
    readonly backoffLimit: 0;
    readonly activeDeadlineSeconds: number;
    readonly podFailurePolicy: { readonly rules: readonly PodFailurePolicyRule[] };
    readonly template: JobPodTemplate;
  };
}

export interface Stage3JobOptions {
  readonly season: string;
  /** The plan's dates: the name is unique per plan, so a new plan gets a new Stage 3 Job. */
  readonly dates: readonly IsoDate[];
  /** @default 'regular' */
  readonly seasonType?: string;
  /** @default 'nba-backfill:latest' */
  readonly image?: string;
  /** @default imagePullPolicyFor(image): Always for a tag, IfNotPresent for a digest */
  readonly imagePullPolicy?: ImagePullPolicy;
  /** Settings passed to the pod as BACKFILL_* variables; they win over the pod's BACKFILL_LOG_DIR. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** @default 7200 */
  readonly activeDeadlineSeconds?: number;
  /** @default STAGE3_RESOURCES */
  readonly resources?: ResourceRequirements;
  /** @default 'nba-backfill-job' */
  readonly serviceAccountName?: string;
}

/** Deterministic per plan: the controller creates it once; "already exists" means it was created. */
export function stage3JobName(season: string, dates: readonly IsoDate[]): string {
  return seasonJobName('stage3', season, planHash(dates));
}

/**
 * The Stage 3 Job. The controller creates it at run time, so it carries none of Argo CD's tracking label
 * (`app.kubernetes.io/instance`) or annotation (`argocd.argoproj.io/tracking-id`): Argo CD would otherwise
 * take it for a resource missing from Git and prune it.
 */
export function buildStage3Job(options: Stage3JobOptions): SinglePodJob {
  if (options.dates.length === 0) throw new Error(`Stage 3 job for ${options.season}: no dates`);
  const name = stage3JobName(options.season, options.dates);
  const labels = {
    [NAME_LABEL]: APP_NAME,
    [COMPONENT_LABEL]: COMPONENT_STAGE3,
    [PART_OF_LABEL]: APP_NAME,
    [MANAGED_BY_LABEL]: CONTROLLER_NAME,
    [SEASON_LABEL]: options.season,
  };
  const env: EnvVar[] = [
    { name: 'BACKFILL_SEASON', value: options.season },
    { name: 'BACKFILL_SEASON_TYPE', value: options.seasonType ?? 'regular' },
    { name: 'BACKFILL_SUMMARY_FILE', value: TERMINATION_MESSAGE_PATH },
    { name: JOB_NAME_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.labels['job-name']" } } },
    { name: 'BACKFILL_LOG_LEVEL', value: 'info' },
    ...sortedEnv({ [LOG_DIR_ENV]: POD_LOG_DIR, [LOG_FILE_ENV]: POD_STDOUT, ...options.env }),
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels },
    spec: {
      completions: 1,
      parallelism: 1,
      // An error stops Stage 3 for a person to look at; a rerun resumes at the first incomplete date.
      backoffLimit: 0,
      activeDeadlineSeconds: options.activeDeadlineSeconds ?? 7200,
      podFailurePolicy: {
        rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }],
      },
      template: podTemplate({
        labels,
        container: PHASE3_RUNNER_CONTAINER,
        command: ['node', 'build/jobs/phase3-runner/main.js'],
        env,
        image: options.image,
        imagePullPolicy: options.imagePullPolicy,
        serviceAccountName: options.serviceAccountName,
        resources: checkResources(`Stage 3 job ${name}`, options.resources ?? STAGE3_RESOURCES),
        annotations: { [SAFE_TO_EVICT_ANNOTATION]: 'false' },
        terminationGracePeriodSeconds: STAGE3_TERMINATION_GRACE_SECONDS,
        mounts: [],
        volumes: [],
        termination: { terminationMessagePath: TERMINATION_MESSAGE_PATH, terminationMessagePolicy: 'File' },
      }),
    },
  };
}
