// A Kubernetes API server double over node:http, for tests of the controller and the CLI's cluster mode (no
// control plane can run on these machines). It serves Jobs, Pods (and their logs), ConfigMaps and Events at
// their real REST paths, with resourceVersions, label and field selectors, watch streams (a 410 Expired ERROR
// event for too old a resourceVersion), Status objects for errors, RBAC by bearer token, and the Job
// controller's behaviour for the fields this project uses: Indexed completion, parallelism,
// backoffLimitPerIndex, podFailurePolicy (Ignore, FailIndex, FailJob, Count), backoffLimit, the compressed
// completedIndexes/failedIndexes, the interim and terminal conditions, pod labels and termination messages.
// Pods do not run containers: a script says how each attempt ends, and may do real work first. ConfigMaps, Leases
// and Jobs take PATCH (JSON patch, JSON merge patch, strategic merge patch, server-side apply) and every write keeps
// metadata.managedFields as the API server's field manager does.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, loadYaml } from '@kubernetes/client-node';

/**
 * The Job controller's own formatting of an index set, written here apart from core/jobs/indexes.ts so that a
 * bug there cannot hide on both sides: consecutive indexes become intervals (withOrderedIndexes), and an
 * interval prints as "first", "first,last" for two, or "first-last" (orderedIntervals.String in
 * kubernetes/kubernetes pkg/controller/job/indexed_job_utils.go).
 */
export function jobControllerIndexes(indexes: Iterable<number>): string {
  const intervals: { first: number; last: number }[] = [];
  for (const x of [...new Set(indexes)].sort((a, b) => a - b)) {
    const last = intervals.at(-1);
    if (last && x === last.last + 1) last.last = x;
    else intervals.push({ first: x, last: x });
  }
  let out = '';
  for (const v of intervals) {
    if (out.length > 0) out += ',';
    out += String(v.first);
    if (v.last > v.first) out += (v.last === v.first + 1 ? ',' : '-') + String(v.last);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Types

/** A JSON object as the API serves it. */
export type KubeObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata: Record<string, unknown> & {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};

/** An RBAC PolicyRule, as in a Role. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/** Who a bearer token is: everything allowed (`admin`) or a user bound to a Role's rules in one namespace. */
export type TokenGrant =
  | 'admin'
  | { readonly user: string; readonly rules: readonly PolicyRule[]; readonly namespace: string };

/** How one pod attempt ends. */
export type PodOutcome =
  | { readonly result: 'succeed'; readonly log?: string; readonly terminationMessage?: string }
  | { readonly result: 'fail'; readonly exitCode: number; readonly log?: string; readonly terminationMessage?: string }
  /** Evicted or preempted: the pod gets the DisruptionTarget condition and fails (exit 143). */
  | { readonly result: 'disrupted'; readonly log?: string };

export interface PodAttempt {
  readonly namespace: string;
  readonly job: KubeObject;
  readonly jobName: string;
  readonly podName: string;
  /** The completion index (0 for a Job that is not Indexed). */
  readonly index: number;
  /** 1 for the first pod of the index, counting every earlier pod of it (ignored ones too). */
  readonly attempt: number;
  /** batch.kubernetes.io/job-index-failure-count: earlier failures that counted against backoffLimitPerIndex. */
  readonly failureCount: number;
}

/** Decides how each pod attempt ends; may be async (the pod runs until it resolves). */
export type PodScript = (attempt: PodAttempt) => PodOutcome | Promise<PodOutcome>;

/** A request as received; the fields after `query` are filled in while it is handled. */
export interface RecordedKubeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The authenticated user (`admin` for the admin token), null when unauthenticated. */
  user: string | null;
  /** The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** The RBAC resource, e.g. `jobs` or `pods/log`. */
  resource: string;
  name: string | null;
  /** The HTTP status answered (200 for a watch stream, whatever it then carried). */
  status: number;
}

export interface KubeApiServerOptions {
  /** Bearer tokens. @default { 'admin-token': 'admin' } */
  readonly tokens?: Readonly<Record<string, TokenGrant>>;
  /** How pods end. @default every pod succeeds */
  readonly podScript?: PodScript;
  /**
   * The server's own end to every watch, whatever the client asked: the API server closes a watch after a
   * randomized `--min-request-timeout` (30 to 60 minutes by default), and a client must resume it from its
   * last resourceVersion (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
   * @default none
   */
  readonly watchTimeoutMs?: number;
  /**
   * How long an Event lives: the API server deletes Events this long after their last write (kube-apiserver
   * `--event-ttl`, 1 hour by default: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/).
   * @default 3600000
   */
  readonly eventTtlMs?: number;
  /** The double's clock for Event expiry. @default Date.now */
  readonly clock?: () => number;
  /** Whether a node can pull an image (a registry that refuses, a tag that does not exist). @default every image */
  readonly imagePullable?: (image: string) => boolean;
  /** What GET /version answers. @default Kubernetes 1.33.1 */
  readonly version?: { readonly major: string; readonly minor: string; readonly gitVersion: string };
}

export interface KubeApiServer {
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: readonly RecordedKubeRequest[];
  /** A client configuration for this server with the token, as a kubeconfig file would give it. */
  kubeConfig(token: string, namespace?: string): KubeConfig;
  /** The same as a kubeconfig file's text (JSON is YAML), for a CLI run with KUBECONFIG. */
  kubeconfigText(token: string, namespace?: string): string;
  setPodScript(script: PodScript): void;
  /** The next `times` requests of this verb and resource get this HTTP status (an API server in trouble). */
  failNext(fault: {
    readonly verb: string;
    readonly resource: string;
    readonly status: number;
    readonly times?: number;
  }): void;
  /**
   * The Job's activeDeadlineSeconds has passed (the test says when, not the clock): the Job fails with reason
   * DeadlineExceeded and its active pods, running or still Pending, are terminated.
   */
  passDeadline(jobName: string, namespace?: string): void;
  /** Delays every watch event by this long (a slow watch: a client's cache lags behind its own writes). */
  setWatchDelay(ms: number): void;
  /**
   * Creates an object as another client would (validated, defaulted, watchers told, a Job started), without
   * a request: for a change that must land at an exact moment, e.g. while watches are down.
   */
  create(resource: ResourceName, namespace: string, object: KubeObject): KubeObject;
  /** An object as stored, or undefined. */
  get(resource: ResourceName, namespace: string, name: string): KubeObject | undefined;
  list(resource: ResourceName, namespace: string): KubeObject[];
  /** A pod's log as written so far. */
  podLog(namespace: string, name: string): string | undefined;
  /** Forgets the change history: a watch from an older resourceVersion now gets 410 Expired. */
  compact(): void;
  /** Ends every open watch, as a restarted API server does. */
  closeWatches(): void;
  /** Open watch streams. */
  watchCount(): number;
  /** Resolves when no simulated pod is running. */
  podsIdle(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Resources

const RESOURCES = {
  jobs: { group: 'batch', prefix: '/apis/batch/v1', apiVersion: 'batch/v1', kind: 'Job' },
  pods: { group: '', prefix: '/api/v1', apiVersion: 'v1', kind: 'Pod' },
  configmaps: { group: '', prefix: '/api/v1', apiVersion: 'v1', kind: 'ConfigMap' },
  events: { group: '', prefix: '/api/v1', apiVersion: 'v1', kind: 'Event' },
  leases: {
    group: 'coordination.k8s.io',
    prefix: '/apis/coordination.k8s.io/v1',
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
  },
} as const;
export type ResourceName = keyof typeof RESOURCES;

const isResource = (r: string): r is ResourceName => Object.hasOwn(RESOURCES, r);

/** `jobs.batch` or `configmaps`, as Status messages name a resource. */
const qualified = (r: ResourceName) => (RESOURCES[r].group ? `${r}.${RESOURCES[r].group}` : r);

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
  status() {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      // An error that is no metav1.Status (a plain Go error) answers 500 with no reason (StatusReasonUnknown is "").
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

const notFound = (r: ResourceName, name: string) =>
  new ApiError(404, 'NotFound', `${qualified(r)} "${name}" not found`, {
    name,
    ...(RESOURCES[r].group ? { group: RESOURCES[r].group } : {}),
    kind: r,
  });

const alreadyExists = (r: ResourceName, name: string) =>
  new ApiError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, {
    name,
    ...(RESOURCES[r].group ? { group: RESOURCES[r].group } : {}),
    kind: r,
  });

function invalid(r: ResourceName, name: string, causes: { field: string; message: string; reason: string }[]) {
  const { group, kind } = RESOURCES[r];
  return new ApiError(
    422,
    'Invalid',
    `${group ? `${kind}.${group}` : kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
    { name, ...(group ? { group } : {}), kind, causes },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Selectors (labels: equality- and set-based; fields: metadata.name, metadata.namespace, status.phase)

type Requirement = { key: string; op: 'in' | 'notin' | 'exists' | '!exists'; values: string[] };

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function parseLabelSelector(text: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  if (current.trim() !== '' || parts.length > 0) parts.push(current);
  const bad = (part: string, why: string) =>
    new ApiError(400, 'BadRequest', `unable to parse requirement: ${why} in "${part.trim()}"`);
  return parts.map((raw) => {
    const part = raw.trim();
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    let req: Requirement;
    if (m) {
      req = {
        key: m[1] as string,
        op: m[2] as 'in' | 'notin',
        values: (m[3] as string).split(',').map((v) => v.trim()),
      };
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
      req = { key: m[1] as string, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3] as string] };
    } else if ((m = /^!\s*(\S+)$/.exec(part))) {
      req = { key: m[1] as string, op: '!exists', values: [] };
    } else if (/^\S+$/.test(part)) {
      req = { key: part, op: 'exists', values: [] };
    } else throw bad(part, 'not a requirement');
    if (!LABEL_KEY.test(req.key)) throw bad(part, `invalid label key "${req.key}"`);
    for (const v of req.values)
      if (!LABEL_VALUE.test(v) || v.length > 63) throw bad(part, `invalid label value "${v}"`);
    return req;
  });
}

function matchesLabels(labels: Record<string, string> | undefined, reqs: readonly Requirement[]): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'in':
        return has && r.values.includes(l[r.key] as string);
      case 'notin':
        return !has || !r.values.includes(l[r.key] as string);
      case 'exists':
        return has;
      default:
        return !has;
    }
  });
}

type FieldReq = { path: string; value: string; negate: boolean };

function parseFieldSelector(resource: ResourceName, text: string): FieldReq[] {
  if (!text) return [];
  const allowed = ['metadata.name', 'metadata.namespace', ...(resource === 'pods' ? ['status.phase'] : [])];
  return text.split(',').map((part) => {
    const m = /^([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)$/.exec(part.trim());
    if (!m) throw new ApiError(400, 'BadRequest', `invalid field selector: "${part}"`);
    if (!allowed.includes(m[1] as string)) {
      throw new ApiError(400, 'BadRequest', `field label not supported: ${m[1]}`);
    }
    return { path: m[1] as string, value: m[3] as string, negate: m[2] === '!=' };
  });
}

function matchesFields(obj: KubeObject, reqs: readonly FieldReq[]): boolean {
  return reqs.every((r) => {
    const value = r.path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
    return (String(value ?? '') === r.value) !== r.negate;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Validation of what the controller and the CLI create

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;

function validateName(r: ResourceName, obj: KubeObject, max = 253): void {
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || name === '') {
    throw invalid(r, '', [
      {
        field: 'metadata.name',
        reason: 'FieldValueRequired',
        message: 'Required value: name or generateName is required',
      },
    ]);
  }
  if (name.length > max || !DNS_SUBDOMAIN.test(name)) {
    throw invalid(r, name, [
      {
        field: 'metadata.name',
        reason: 'FieldValueInvalid',
        message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain of at most ${max} characters`,
      },
    ]);
  }
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function validateJob(job: KubeObject): void {
  // The job name is also a label value on its pods: 63 characters at most.
  validateName('jobs', job, 63);
  const name = job.metadata.name;
  const spec = obj(job.spec);
  const pod = obj(obj(spec.template).spec);
  const causes: { field: string; message: string; reason: string }[] = [];
  const need = (ok: boolean, field: string, message: string, reason = 'FieldValueInvalid') => {
    if (!ok) causes.push({ field, message, reason });
  };
  const containers = arr(pod.containers);
  need(containers.length > 0, 'spec.template.spec.containers', 'Required value', 'FieldValueRequired');
  containers.forEach((c, i) => {
    need(
      typeof obj(c).name === 'string',
      `spec.template.spec.containers[${i}].name`,
      'Required value',
      'FieldValueRequired',
    );
    need(
      typeof obj(c).image === 'string',
      `spec.template.spec.containers[${i}].image`,
      'Required value',
      'FieldValueRequired',
    );
  });
  need(
    pod.restartPolicy === 'Never' || pod.restartPolicy === 'OnFailure',
    'spec.template.spec.restartPolicy',
    `Unsupported value: "${String(pod.restartPolicy ?? '')}": supported values: "OnFailure", "Never"`,
    'FieldValueNotSupported',
  );
  const indexed = spec.completionMode === 'Indexed';
  need(
    spec.completionMode === undefined || indexed || spec.completionMode === 'NonIndexed',
    'spec.completionMode',
    'Unsupported value',
    'FieldValueNotSupported',
  );
  need(
    !indexed || Number.isInteger(spec.completions),
    'spec.completions',
    'Required value: when completion mode is Indexed',
    'FieldValueRequired',
  );
  need(
    spec.backoffLimitPerIndex === undefined || indexed,
    'spec.backoffLimitPerIndex',
    'Invalid value: requires indexed completion mode',
  );
  const rules = arr(obj(spec.podFailurePolicy).rules);
  need(
    rules.length === 0 || pod.restartPolicy === 'Never',
    'spec.template.spec.restartPolicy',
    'Invalid value: only "Never" is supported when podFailurePolicy is specified',
  );
  rules.forEach((raw, i) => {
    const rule = obj(raw);
    need(
      ['FailJob', 'FailIndex', 'Ignore', 'Count'].includes(String(rule.action)),
      `spec.podFailurePolicy.rules[${i}].action`,
      'Unsupported value',
      'FieldValueNotSupported',
    );
    need(
      rule.action !== 'FailIndex' || spec.backoffLimitPerIndex !== undefined,
      `spec.podFailurePolicy.rules[${i}].action`,
      'Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set',
    );
    const codes = obj(rule.onExitCodes);
    need(
      !(codes.operator === 'In' && arr(codes.values).includes(0)),
      `spec.podFailurePolicy.rules[${i}].onExitCodes.values`,
      'Invalid value: 0: must not be 0 for the In operator',
    );
    // An exit-code rule may carry `onPodConditions: []` (the 1.28 types ask for it); exactly one must say something.
    need(
      (rule.onExitCodes !== undefined) !== arr(rule.onPodConditions).length > 0,
      `spec.podFailurePolicy.rules[${i}]`,
      'Invalid value: specifying one of onExitCodes and onPodConditions is required',
    );
  });
  if (causes.length > 0) throw invalid('jobs', name, causes);
}

/** Labels the Job controller adds to a Job's pod template, which a client's manifest does not carry. */
const GENERATED_TEMPLATE_LABELS = [
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'controller-uid',
  'job-name',
];

/** JSON with object keys sorted: two encodings of one value compare equal whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Json)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Json)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function withoutGeneratedLabels(template: unknown): unknown {
  const t = structuredClone(obj(template));
  const meta = obj(t.metadata);
  const labels = { ...obj(meta.labels) };
  for (const l of GENERATED_TEMPLATE_LABELS) delete labels[l];
  return { ...t, metadata: { ...meta, labels } };
}

/** A created Job without what the Job strategy generates: its selector and the controller's template labels. */
function withoutGeneratedFields(job: KubeObject): KubeObject {
  const out = structuredClone(job);
  const spec = obj(out.spec);
  delete spec.selector;
  const meta = obj(obj(spec.template).metadata);
  const labels = obj(meta.labels);
  for (const l of GENERATED_TEMPLATE_LABELS) delete labels[l];
  if (Object.keys(labels).length === 0) delete meta.labels;
  return out;
}

/**
 * A Job's pod template and its other fixed fields cannot change after creation: the API server answers 422
 * "field is immutable" ("The Job's spec.template is immutable", apart from a few scheduling fields of a
 * suspended Job: https://kubernetes.io/docs/concepts/workloads/controllers/job/#mutable-scheduling-directives).
 * This is what `kubectl apply` and an Argo CD sync of a changed Job under the same name meet.
 */
function refuseImmutableJobChange(current: KubeObject, next: KubeObject): void {
  const was = obj(current.spec);
  const now = obj(next.spec);
  const causes: { field: string; message: string; reason: string }[] = [];
  if (canonical(withoutGeneratedLabels(was.template)) !== canonical(withoutGeneratedLabels(now.template))) {
    causes.push({ field: 'spec.template', message: 'field is immutable', reason: 'FieldValueInvalid' });
  }
  for (const field of ['completionMode', 'backoffLimitPerIndex', 'podFailurePolicy'] as const) {
    if (canonical(was[field]) !== canonical(now[field])) {
      causes.push({ field: `spec.${field}`, message: 'field is immutable', reason: 'FieldValueInvalid' });
    }
  }
  if (causes.length > 0) {
    throw new ApiError(
      422,
      'Invalid',
      `Job.batch "${next.metadata.name}" is invalid: ${causes.map((c) => `${c.field}: Invalid value: ${c.message}`).join(', ')}`,
      { name: next.metadata.name, group: 'batch', kind: 'Job', causes },
    );
  }
}

/**
 * A coordination.k8s.io/v1 Lease: a name, and a spec whose durations are positive whole seconds
 * (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/lease-v1/).
 */
function validateLease(lease: KubeObject): void {
  validateName('leases', lease);
  const spec = obj(lease.spec);
  const causes: { field: string; message: string; reason: string }[] = [];
  const duration = spec.leaseDurationSeconds;
  if (duration !== undefined && !(Number.isInteger(duration) && (duration as number) > 0)) {
    causes.push({ field: 'spec.leaseDurationSeconds', message: 'must be greater than 0', reason: 'FieldValueInvalid' });
  }
  if (spec.holderIdentity !== undefined && typeof spec.holderIdentity !== 'string') {
    causes.push({ field: 'spec.holderIdentity', message: 'must be a string', reason: 'FieldValueTypeInvalid' });
  }
  if (causes.length > 0) {
    throw new ApiError(
      422,
      'Invalid',
      `Lease.coordination.k8s.io "${lease.metadata.name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
      { name: lease.metadata.name, group: 'coordination.k8s.io', kind: 'Lease', causes },
    );
  }
}

function validateConfigMap(cm: KubeObject): void {
  validateName('configmaps', cm);
  const causes: { field: string; message: string; reason: string }[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(obj(cm.data))) {
    if (!CONFIGMAP_KEY.test(k)) {
      causes.push({
        field: `data[${k}]`,
        reason: 'FieldValueInvalid',
        message: `Invalid value: "${k}": a valid config key`,
      });
    }
    if (typeof v !== 'string')
      causes.push({ field: `data[${k}]`, reason: 'FieldValueTypeInvalid', message: 'must be a string' });
    size += k.length + Buffer.byteLength(String(v));
  }
  if (size > 1024 * 1024) {
    causes.push({ field: 'data', reason: 'FieldValueTooLong', message: 'Too long: must have at most 1048576 bytes' });
  }
  if (causes.length > 0) throw invalid('configmaps', cm.metadata.name, causes);
}

function validateEvent(ev: KubeObject, namespace: string): void {
  validateName('events', ev);
  const involved = obj(ev.involvedObject);
  const causes: { field: string; message: string; reason: string }[] = [];
  if (involved.namespace !== undefined && involved.namespace !== namespace) {
    causes.push({
      field: 'involvedObject.namespace',
      reason: 'FieldValueInvalid',
      message: 'Invalid value: does not match event.namespace',
    });
  }
  if (!involved.kind || !involved.name) {
    causes.push({ field: 'involvedObject', reason: 'FieldValueRequired', message: 'Required value: kind and name' });
  }
  if (ev.type !== undefined && ev.type !== 'Normal' && ev.type !== 'Warning') {
    causes.push({
      field: 'type',
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: "${String(ev.type)}"`,
    });
  }
  if (!ev.reason) causes.push({ field: 'reason', reason: 'FieldValueRequired', message: 'Required value' });
  if (causes.length > 0) throw invalid('events', ev.metadata.name, causes);
}

// ---------------------------------------------------------------------------------------------------------------
// PATCH: JSON patch, JSON merge patch, strategic merge patch, server-side apply and field management
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply)

/**
 * The patch types the API server takes for a built-in resource, in the order its 415 lists them (the PATCH route's
 * supportedTypes in k8s.io/apiserver pkg/endpoints/installer.go; application/apply-patch+cbor only behind the
 * CBORServingAndStorage feature gate, off in 1.33).
 */
const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;
type PatchType = (typeof PATCH_TYPES)[number];
const isPatchType = (t: string): t is PatchType => (PATCH_TYPES as readonly string[]).includes(t);

const isMap = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The lists of the served types that merge by key instead of being replaced whole, by field name (unambiguous in
 * Jobs, Pods, ConfigMaps and Leases): the `patchStrategy:"merge"` `patchMergeKey` tags of k8s.io/api, which a
 * strategic merge patch reads (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#notes-on-the-strategic-merge-patch),
 * and the `+listType=map` `+listMapKey` markers, which server-side apply reads
 * (https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy). Volume mounts merge by
 * mountPath; container ports by containerPort in a strategic merge patch, by containerPort and protocol (default
 * TCP) for apply. Every other list is atomic: a patch or an apply replaces it whole (tolerations, command, args,
 * podFailurePolicy.rules, ...), and field management owns it as one leaf.
 */
const KEYED_LISTS: Readonly<Record<string, { readonly smp: string; readonly ssa: readonly string[] }>> = {
  containers: { smp: 'name', ssa: ['name'] },
  initContainers: { smp: 'name', ssa: ['name'] },
  ephemeralContainers: { smp: 'name', ssa: ['name'] },
  env: { smp: 'name', ssa: ['name'] },
  volumes: { smp: 'name', ssa: ['name'] },
  volumeMounts: { smp: 'mountPath', ssa: ['mountPath'] },
  volumeDevices: { smp: 'devicePath', ssa: ['devicePath'] },
  ports: { smp: 'containerPort', ssa: ['containerPort', 'protocol'] },
  imagePullSecrets: { smp: 'name', ssa: ['name'] },
  ownerReferences: { smp: 'uid', ssa: ['uid'] },
};
const keyedList = (field: string | undefined) =>
  field !== undefined && Object.hasOwn(KEYED_LISTS, field) ? KEYED_LISTS[field] : undefined;

/** Lists of scalars that a strategic merge patch merges as sets (ObjectMeta.finalizers: `patchStrategy:"merge"`). */
const SET_LISTS = new Set(['finalizers']);

/** Maps of user keys (not structs): an Update operation that adds one owns the map itself too ("." in FieldsV1). */
const GRANULAR_MAPS = new Set([
  'labels',
  'annotations',
  'data',
  'binaryData',
  'matchLabels',
  'nodeSelector',
  'limits',
  'requests',
]);

/** An error the API server passes on as a plain Go error, not a metav1.Status: 500 with no reason. */
const plainError = (message: string) => new ApiError(500, '', message);

/** Go's %v of a decoded JSON value, as the strategic merge patch errors print a map: map[k:v ...], keys sorted. */
function goValue(v: unknown): string {
  if (isMap(v)) {
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goValue(v[k])}`)
      .join(' ')}]`;
  }
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  return String(v);
}

/**
 * RFC 7386 JSON merge patch (https://www.rfc-editor.org/rfc/rfc7386): an object merges key by key, null deletes the
 * key, anything else (an array too) replaces the target
 * (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-json-merge-patch-to-update-a-deployment).
 */
function jsonMergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Json = isMap(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

/** A patch value with its `$` directives dropped, as decoding into the typed object drops unknown fields. */
function withoutDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutDirectives);
  if (!isMap(v)) return structuredClone(v);
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !k.startsWith('$'))
      .map(([k, c]) => [k, withoutDirectives(c)]),
  );
}

const DELETED = Symbol('deleted');

/**
 * A strategic merge patch of a map (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md):
 * fields merge and null deletes as in a merge patch; a list with a patch merge key (KEYED_LISTS) merges item by
 * item on that key, a set list (finalizers) as a set, any other list is replaced. Directives: `$patch: replace` and
 * `$patch: delete` on a map or on a list item (`{"$patch": "replace"}` as an item replaces the whole list),
 * `$deleteFromPrimitiveList/<list>` and `$retainKeys`. `$setElementOrder/<list>` is accepted and ignored: a merged
 * list keeps the live order, new items last. A built-in type takes it; a custom resource would not
 * (https://kubernetes.io/docs/reference/kubectl/generated/kubectl_patch/).
 */
function strategicMergeMap(original: Json, patch: Json): Json | typeof DELETED {
  const directive = patch.$patch;
  if (directive === 'delete') return DELETED;
  if (directive === 'replace') return withoutDirectives(patch) as Json;
  if (directive !== undefined && directive !== 'merge') {
    // mergepatch.ErrBadPatchType, a plain error (k8s.io/apimachinery pkg/util/strategicpatch/patch.go).
    throw plainError(`unknown patch type: ${String(directive)} in map: ${goValue(patch)}`);
  }
  const out = structuredClone(original);
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const list = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set(arr(v).map(canonical));
      if (Array.isArray(out[list])) out[list] = (out[list] as unknown[]).filter((x) => !drop.has(canonical(x)));
      continue;
    }
    if (v === null) delete out[k];
    else if (isMap(v)) {
      const merged = strategicMergeMap(isMap(out[k]) ? (out[k] as Json) : {}, v);
      if (merged === DELETED) delete out[k];
      else out[k] = merged;
    } else if (Array.isArray(v)) out[k] = strategicMergeList(k, out[k], v);
    else out[k] = v;
  }
  if (Array.isArray(patch.$retainKeys)) {
    // "all the fields not in this directive will be cleared"
    const keep = new Set(patch.$retainKeys.map(String));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function strategicMergeList(field: string, original: unknown, patch: readonly unknown[]): unknown[] {
  const replace = patch.filter((item) => isMap(item) && item.$patch === 'replace');
  if (replace.length > 0) return withoutDirectives(patch.filter((item) => !replace.includes(item))) as unknown[];
  if (SET_LISTS.has(field)) {
    const out = arr(original).slice();
    const seen = new Set(out.map(canonical));
    for (const x of patch) {
      if (seen.has(canonical(x))) continue;
      seen.add(canonical(x));
      out.push(x);
    }
    return out;
  }
  const mergeKey = keyedList(field)?.smp;
  if (mergeKey === undefined) return withoutDirectives(patch) as unknown[];
  const out = arr(original).map((x) => structuredClone(x));
  const same = (x: unknown, item: Json) => isMap(x) && canonical(x[mergeKey]) === canonical(item[mergeKey]);
  for (const item of patch) {
    if (!isMap(item)) throw plainError(`map: ${goValue(item)} does not contain declared merge key: ${mergeKey}`);
    if (!Object.hasOwn(item, mergeKey)) {
      // mergepatch.ErrNoMergeKey: `kubectl patch` shows "map: map[image:x] does not contain declared merge key: name".
      throw plainError(`map: ${goValue(item)} does not contain declared merge key: ${mergeKey}`);
    }
    if (item.$patch === 'delete') {
      // "Delete operation will delete all entries in the list that match the merge key."
      for (let i = out.length - 1; i >= 0; i--) if (same(out[i], item)) out.splice(i, 1);
      continue;
    }
    const at = out.findIndex((x) => same(x, item));
    const merged = strategicMergeMap(at >= 0 ? (out[at] as Json) : {}, item);
    if (merged === DELETED) continue;
    if (at >= 0) out[at] = merged;
    else out.push(merged);
  }
  return out;
}

/**
 * An RFC 6902 JSON patch (https://www.rfc-editor.org/rfc/rfc6902) as gopkg.in/evanphx/json-patch.v4 applies it for
 * the API server: add, remove, replace, move, copy, test. An operation that does not apply (a missing path, a failed
 * test, an index out of range, an unknown op) answers 422 with a message that hides the library's: the patch handler
 * returns NewGenericServerResponse(422, ...) without the server message (applyJSPatch in k8s.io/apiserver
 * pkg/endpoints/handlers/patch.go; the message is StatusUnprocessableEntity's in k8s.io/apimachinery
 * pkg/api/errors/errors.go).
 */
function jsonPatch(doc: unknown, ops: readonly Json[]): unknown {
  const rejected = () =>
    new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
  const pointer = (p: unknown): string[] => {
    if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) throw rejected();
    return p === ''
      ? []
      : p
          .slice(1)
          .split('/')
          .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
  };
  const index = (list: unknown[], token: string, adding: boolean): number => {
    if (adding && token === '-') return list.length;
    if (!/^(0|[1-9][0-9]*)$/.test(token)) throw rejected();
    const i = Number(token);
    if (i > list.length || (!adding && i === list.length)) throw rejected();
    return i;
  };
  const valueAt = (root: unknown, tokens: readonly string[]): unknown => {
    let node = root;
    for (const t of tokens) {
      if (Array.isArray(node)) node = node[index(node, t, false)];
      else if (isMap(node) && Object.hasOwn(node, t)) node = node[t];
      else throw rejected();
    }
    return node;
  };
  const remove = (root: unknown, tokens: readonly string[]): unknown => {
    const last = tokens.at(-1);
    if (last === undefined) throw rejected();
    const parent = valueAt(root, tokens.slice(0, -1));
    if (Array.isArray(parent)) return parent.splice(index(parent, last, false), 1)[0];
    if (!isMap(parent) || !Object.hasOwn(parent, last)) throw rejected();
    const value = parent[last];
    delete parent[last];
    return value;
  };
  const add = (root: unknown, tokens: readonly string[], value: unknown): unknown => {
    const last = tokens.at(-1);
    if (last === undefined) return value;
    const parent = valueAt(root, tokens.slice(0, -1));
    if (Array.isArray(parent)) parent.splice(index(parent, last, true), 0, value);
    else if (isMap(parent)) parent[last] = value;
    else throw rejected();
    return root;
  };
  const value = (op: Json) => {
    if (!Object.hasOwn(op, 'value')) throw rejected();
    return structuredClone(op.value);
  };
  let out = structuredClone(doc);
  for (const op of ops) {
    const path = pointer(op.path);
    switch (op.op) {
      case 'add':
        out = add(out, path, value(op));
        break;
      case 'remove':
        remove(out, path);
        break;
      case 'replace': {
        const v = value(op);
        valueAt(out, path);
        if (path.length === 0) out = v;
        else {
          remove(out, path);
          out = add(out, path, v);
        }
        break;
      }
      case 'move': {
        const from = pointer(op.from);
        // RFC 6902 4.4: a location cannot be moved into one of its children.
        if (path.length > from.length && from.every((t, i) => path[i] === t)) throw rejected();
        out = add(out, path, remove(out, from));
        break;
      }
      case 'copy':
        out = add(out, path, structuredClone(valueAt(out, pointer(op.from))));
        break;
      case 'test':
        if (canonical(valueAt(out, path)) !== canonical(op.value)) throw rejected();
        break;
      default:
        throw rejected();
    }
  }
  return out;
}

// --- Field management (https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management)

/**
 * A step of a field path as metadata.managedFields' FieldsV1 writes it: a field of a map (`f:name`) or an item of a
 * keyed list by its key fields (`k:{"name":"main"}`). An atomic list is owned whole, as one leaf: its items are never
 * paths here (no `i:` or `v:` elements are written; a FieldsV1 that has them is read without them).
 */
type PathElement = { readonly f: string } | { readonly k: Json };
type FieldPath = readonly PathElement[];
/** A set of field paths, by key. */
type FieldSet = Map<string, FieldPath>;

const elementKey = (e: PathElement) => ('f' in e ? `f:${e.f}` : `k:${canonical(e.k)}`);
const pathKey = (p: FieldPath) => p.map(elementKey).join('\u0000');
const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}\u0000`);
/** fieldpath.Path.String(): `.spec.template.spec.containers[name="main"].image`. */
const pathString = (p: FieldPath) =>
  p
    .map((e) =>
      'f' in e
        ? `.${e.f}`
        : `[${Object.keys(e.k)
            .sort()
            .map((n) => `${n}=${JSON.stringify(e.k[n])}`)
            .join(',')}]`,
    )
    .join('');
const union = (...sets: FieldSet[]): FieldSet => new Map(sets.flatMap((s) => [...s]));
const minus = (a: FieldSet, b: FieldSet): FieldSet => new Map([...a].filter(([k]) => !b.has(k)));
const meet = (a: FieldSet, b: FieldSet): FieldSet => new Map([...a].filter(([k]) => b.has(k)));

/** The key of an item of a keyed list, as apply keys it: its key fields, a missing protocol being TCP (its default). */
function itemKey(keys: readonly string[], item: Json): Json {
  const k: Json = {};
  for (const name of keys) {
    const v = item[name] ?? (name === 'protocol' ? 'TCP' : undefined);
    if (v !== undefined) k[name] = v;
  }
  return k;
}
const isKeyedList = (field: string | undefined, v: unknown): v is Json[] =>
  keyedList(field) !== undefined && Array.isArray(v) && v.every(isMap);

/**
 * The fields a value sets at `path`, as server-side apply counts them (ToFieldSet in sigs.k8s.io/structured-merge-diff
 * typed/tofieldset.go): every scalar and every atomic list is a leaf; an item of a keyed list is a member itself
 * besides its fields; a map sets only its fields, so an empty map sets nothing. With `maps`, a map of user keys is a
 * member too (what an Update operation that adds one records).
 */
function collectFields(out: FieldSet, v: unknown, path: FieldPath, field: string | undefined, maps: boolean): void {
  if (v === undefined || v === null) return;
  const list = keyedList(field);
  if (list && isKeyedList(field, v)) {
    for (const item of v) {
      const p = [...path, { k: itemKey(list.ssa, item) }];
      out.set(pathKey(p), p);
      for (const [k, c] of Object.entries(item)) collectFields(out, c, [...p, { f: k }], k, maps);
    }
    return;
  }
  if (isMap(v)) {
    if (maps && field !== undefined && GRANULAR_MAPS.has(field)) out.set(pathKey(path), path);
    for (const [k, c] of Object.entries(v)) collectFields(out, c, [...path, { f: k }], k, maps);
    return;
  }
  out.set(pathKey(path), path);
}

interface Comparison {
  readonly added: FieldSet;
  readonly modified: FieldSet;
  readonly removed: FieldSet;
}

/** What changed from `a` to `b`, field by field (typed.Comparison in sigs.k8s.io/structured-merge-diff). */
function compareFields(a: unknown, b: unknown, path: FieldPath, field: string | undefined, out: Comparison): void {
  const noA = a === undefined || a === null;
  const noB = b === undefined || b === null;
  if (noA && noB) return;
  if (noA || noB) {
    if (noA) collectFields(out.added, b, path, field, true);
    else collectFields(out.removed, a, path, field, true);
    return;
  }
  const list = keyedList(field);
  if (list && isKeyedList(field, a) && isKeyedList(field, b)) {
    const items = new Map<string, { key: Json; a?: Json; b?: Json }>();
    for (const x of a) {
      const key = itemKey(list.ssa, x);
      items.set(canonical(key), { key, a: x });
    }
    for (const x of b) {
      const key = itemKey(list.ssa, x);
      const seen = items.get(canonical(key));
      if (seen) seen.b = x;
      else items.set(canonical(key), { key, b: x });
    }
    for (const item of items.values()) {
      const p = [...path, { k: item.key }];
      if (item.a && item.b) {
        for (const k of new Set([...Object.keys(item.a), ...Object.keys(item.b)])) {
          compareFields(item.a[k], item.b[k], [...p, { f: k }], k, out);
        }
      } else {
        const side = item.a ? out.removed : out.added;
        side.set(pathKey(p), p);
        for (const [k, c] of Object.entries(item.a ?? item.b ?? {})) collectFields(side, c, [...p, { f: k }], k, true);
      }
    }
    return;
  }
  if (isMap(a) && isMap(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      compareFields(a[k], b[k], [...path, { f: k }], k, out);
    }
    return;
  }
  if (canonical(a) === canonical(b)) return;
  if (isMap(a) || isMap(b) || isKeyedList(field, a) || isKeyedList(field, b)) {
    collectFields(out.removed, a, path, field, true);
    collectFields(out.added, b, path, field, true);
  } else out.modified.set(pathKey(path), path);
}

function compareObjects(a: Json, b: Json): Comparison {
  const out: Comparison = { added: new Map(), modified: new Map(), removed: new Map() };
  compareFields(a, b, [], undefined, out);
  return out;
}

/**
 * An object as field management sees it: without apiVersion and kind, without status (reset on the main resource)
 * and without the metadata the server owns (the stripMetaManager's set in k8s.io/apimachinery
 * pkg/util/managedfields/internal/stripmeta.go).
 */
function managedView(o: Json): Json {
  const { apiVersion: _a, kind: _k, status: _s, ...rest } = structuredClone(o);
  const meta = { ...obj(rest.metadata) };
  for (const f of [
    'name',
    'namespace',
    'uid',
    'resourceVersion',
    'generation',
    'creationTimestamp',
    'managedFields',
    'selfLink',
  ]) {
    delete meta[f];
  }
  return { ...rest, metadata: meta };
}

/** A FieldSet as FieldsV1: a tree of `f:`/`k:` keys whose leaves are `{}`, "." marking a member that has children. */
function encodeFields(set: FieldSet): Json {
  interface Node {
    member: boolean;
    readonly children: Map<string, Node>;
  }
  const root: Node = { member: false, children: new Map() };
  for (const p of set.values()) {
    let node = root;
    for (const e of p) {
      const k = elementKey(e);
      let child = node.children.get(k);
      if (!child) node.children.set(k, (child = { member: false, children: new Map() }));
      node = child;
    }
    node.member = true;
  }
  const write = (n: Node): Json => {
    const out: Json = n.member && n.children.size > 0 ? { '.': {} } : {};
    for (const k of [...n.children.keys()].sort()) out[k] = write(n.children.get(k) as Node);
    return out;
  };
  return write(root);
}

function decodeFields(tree: unknown, path: FieldPath = [], out: FieldSet = new Map()): FieldSet {
  const node = obj(tree);
  const keys = Object.keys(node);
  if (path.length > 0 && (keys.length === 0 || Object.hasOwn(node, '.'))) out.set(pathKey(path), path);
  for (const k of keys) {
    let e: PathElement | null = null;
    if (k.startsWith('f:')) e = { f: k.slice(2) };
    else if (k.startsWith('k:')) {
      try {
        e = { k: obj(JSON.parse(k.slice(2))) };
      } catch {
        e = null;
      }
    }
    if (e) decodeFields(node[k], [...path, e], out);
  }
  return out;
}

/** One entry of metadata.managedFields, its fields decoded. */
interface FieldManager {
  readonly manager: string;
  readonly operation: 'Apply' | 'Update';
  readonly apiVersion: string;
  time: string;
  set: FieldSet;
}
type FieldManagers = Map<string, FieldManager>;
/** A manager's identity (BuildManagerIdentifier): its name and operation (an Update's API version: one per resource here). */
const managerId = (manager: string, operation: FieldManager['operation']) => `${operation}\u0000${manager}`;

/** The managers of a managedFields list, or null when it is empty or not one the server wrote. */
function decodeManagedFields(entries: unknown): FieldManagers | null {
  if (!Array.isArray(entries) || entries.length === 0) return null;
  const out: FieldManagers = new Map();
  for (const raw of entries) {
    const e = obj(raw);
    const operation = e.operation;
    if ((operation !== 'Apply' && operation !== 'Update') || typeof e.apiVersion !== 'string') return null;
    if (e.fieldsType !== 'FieldsV1') return null;
    const manager = typeof e.manager === 'string' ? e.manager : '';
    out.set(managerId(manager, operation), {
      manager,
      operation,
      apiVersion: e.apiVersion,
      time: typeof e.time === 'string' ? e.time : '',
      set: decodeFields(e.fieldsV1),
    });
  }
  return out;
}

/**
 * The managers as metadata.managedFields, the way the server sorts them (sortEncodedManagedFields: by operation, so
 * Apply first, then time, then manager); a manager that owns nothing is dropped.
 */
function encodeManagedFields(managers: FieldManagers): Json[] {
  const order = (a: FieldManager, b: FieldManager) =>
    a.operation.localeCompare(b.operation) || a.time.localeCompare(b.time) || a.manager.localeCompare(b.manager);
  return [...managers.values()]
    .filter((m) => m.set.size > 0)
    .sort(order)
    .map((m) => ({
      ...(m.manager ? { manager: m.manager } : {}),
      operation: m.operation,
      apiVersion: m.apiVersion,
      time: m.time,
      fieldsType: 'FieldsV1',
      fieldsV1: encodeFields(m.set),
    }));
}

/** `managedFields: [{}]` (https://kubernetes.io/docs/reference/using-api/server-side-apply/#clearing-managedfields). */
const isManagedFieldsReset = (v: unknown) =>
  Array.isArray(v) && v.length === 1 && isMap(v[0]) && Object.keys(v[0]).length === 0;

/**
 * The manager of a write that is not an apply: the fieldManager query parameter, or else one inferred from the
 * User-Agent header (https://kubernetes.io/docs/reference/using-api/server-side-apply/#managers): its printable
 * characters up to the first "/", at most 128 (managerOrUserAgent and prefixFromUserAgent in k8s.io/apiserver
 * pkg/endpoints/handlers/create.go; kubectl's "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0" makes "kubectl").
 */
function managerOf(fieldManager: string | null, userAgent: string | undefined): string {
  if (fieldManager) return fieldManager;
  const prefix = [...((userAgent ?? '').split('/')[0] ?? '')].filter((c) => c >= ' ' && c !== '\u007f');
  return prefix.join('').slice(0, 128);
}

/**
 * The managedFields after an Update operation (a create, an update, a patch that is not an apply) by `manager`: it
 * takes the fields it added or changed from whoever owned them ("Whenever a field's value does change, ownership
 * moves from its current manager to the manager making the change":
 * https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management), and a field it removed is
 * owned by no one. Managed fields the request itself sends replace the live ones, and `[{}]` clears them
 * (https://kubernetes.io/docs/reference/using-api/server-side-apply/#clearing-managedfields); an empty list keeps the
 * live ones (decodeLiveOrNew in k8s.io/apimachinery pkg/util/managedfields/internal/fieldmanager.go).
 */
function managedFieldsAfterUpdate(
  live: KubeObject | undefined,
  next: KubeObject,
  manager: string,
  apiVersion: string,
): Json[] {
  const sent = next.metadata.managedFields;
  const managers: FieldManagers = isManagedFieldsReset(sent)
    ? new Map()
    : (decodeManagedFields(sent) ?? decodeManagedFields(live?.metadata.managedFields) ?? new Map());
  const cmp = compareObjects(live ? managedView(live) : {}, managedView(next));
  const changed = union(cmp.added, cmp.modified);
  const id = managerId(manager, 'Update');
  for (const [mid, m] of managers) if (mid !== id) m.set = minus(minus(m.set, changed), cmp.removed);
  const set = union(minus(managers.get(id)?.set ?? new Map(), cmp.removed), changed);
  managers.set(id, { manager, operation: 'Update', apiVersion, time: now(), set });
  return encodeManagedFields(managers);
}

/**
 * Apply's conflict: 409 Conflict, a FieldManagerConflict cause a field (NewConflictError in k8s.io/apimachinery
 * pkg/util/managedfields/internal/conflict.go: "Apply failed with 1 conflict: conflict with "m": .spec.parallelism";
 * an Update manager prints as `"m" using batch/v1`; https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts).
 */
function applyConflict(conflicts: readonly { manager: FieldManager; path: FieldPath }[]): ApiError {
  const who = (m: FieldManager) =>
    m.operation === 'Update' ? `${JSON.stringify(m.manager)} using ${m.apiVersion}` : JSON.stringify(m.manager);
  const causes = conflicts.map((c) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with ${who(c.manager)}`,
    field: pathString(c.path),
  }));
  const first = conflicts[0];
  if (conflicts.length === 1 && first) {
    return new ApiError(
      409,
      'Conflict',
      `Apply failed with 1 conflict: conflict with ${who(first.manager)}: ${pathString(first.path)}`,
      { causes },
    );
  }
  const byManager = new Map<string, string[]>();
  for (const c of conflicts)
    byManager.set(who(c.manager), [...(byManager.get(who(c.manager)) ?? []), pathString(c.path)]);
  const lines = [...byManager.keys()]
    .sort()
    .flatMap((m) => [`conflicts with ${m}:`, ...(byManager.get(m) ?? []).map((p) => `- ${p}`)]);
  return new ApiError(409, 'Conflict', `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`, {
    causes,
  });
}

/**
 * The applied configuration merged into the live object (https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy):
 * maps merge field by field, keyed lists item by item on their keys (new items last), scalars and atomic lists take
 * the applied value. A null in the configuration leaves the live value.
 */
function applyMerge(live: unknown, config: unknown, field: string | undefined): unknown {
  if (config === undefined || config === null) return structuredClone(live);
  const list = keyedList(field);
  if (list && isKeyedList(field, config) && (live === undefined || isKeyedList(field, live))) {
    const out = arr(live).map((x) => structuredClone(x) as Json);
    for (const item of config) {
      const k = canonical(itemKey(list.ssa, item));
      const at = out.findIndex((x) => canonical(itemKey(list.ssa, x)) === k);
      if (at >= 0) out[at] = applyMerge(out[at], item, undefined) as Json;
      else out.push(applyMerge(undefined, item, undefined) as Json);
    }
    return out;
  }
  if (isMap(config)) {
    const out: Json = isMap(live) ? structuredClone(live) : {};
    for (const [k, v] of Object.entries(config)) if (v !== null && v !== undefined) out[k] = applyMerge(out[k], v, k);
    return out;
  }
  return structuredClone(config);
}

/**
 * A keyed list item without its key fields cannot be applied: a plain error, 500 ("failed to create typed patch
 * object (ns/name; /v1, Kind=ConfigMap): ...: element 0: associative list with keys has an element that omits key
 * field "name" (and doesn't have default value)", from sigs.k8s.io/structured-merge-diff typed/helpers.go and
 * objectGVKNN in k8s.io/apimachinery pkg/util/managedfields/internal/structuredmerge.go).
 */
function refuseKeylessItems(config: KubeObject, gvk: string): void {
  const walk = (v: unknown, path: FieldPath, field: string | undefined) => {
    const list = keyedList(field);
    if (list && isKeyedList(field, v)) {
      v.forEach((item, i) => {
        const missing = list.ssa.find((k) => k !== 'protocol' && item[k] === undefined);
        if (missing !== undefined) {
          throw plainError(
            `failed to create typed patch object (${String(config.metadata.namespace ?? '')}/${config.metadata.name}; ${gvk}): ${pathString(path)}: element ${i}: associative list with keys has an element that omits key field ${JSON.stringify(missing)} (and doesn't have default value)`,
          );
        }
        const p = [...path, { k: itemKey(list.ssa, item) }];
        for (const [k, c] of Object.entries(item)) walk(c, [...p, { f: k }], k);
      });
    } else if (isMap(v)) for (const [k, c] of Object.entries(v)) walk(c, [...path, { f: k }], k);
  };
  walk(config, [], undefined);
}

/** Deletes a field path from an object (a list item by its key); a map of user keys left empty goes too (omitempty). */
function removeField(node: unknown, path: FieldPath, field: string | undefined): void {
  const [head, ...rest] = path;
  if (!head) return;
  if ('f' in head) {
    if (!isMap(node) || !Object.hasOwn(node, head.f)) return;
    if (rest.length === 0) {
      delete node[head.f];
      return;
    }
    removeField(node[head.f], rest, head.f);
    const child = node[head.f];
    if (GRANULAR_MAPS.has(head.f) && isMap(child) && Object.keys(child).length === 0) delete node[head.f];
    return;
  }
  const list = keyedList(field);
  if (!list || !Array.isArray(node)) return;
  const at = node.findIndex((x) => isMap(x) && canonical(itemKey(list.ssa, x)) === canonical(head.k));
  if (at < 0) return;
  if (rest.length === 0) node.splice(at, 1);
  else removeField(node[at], rest, undefined);
}

/**
 * Server-side apply of `config` by `manager` onto the live object (undefined: apply creates it). Returns the merged
 * object with its managedFields; throws the conflict unless `force`.
 *  - The applier owns every field of its configuration (operation Apply); fields it applied last time and omits now
 *    are removed from the object unless another manager owns them ("If the set of items present in the applied config
 *    is not a superset of the items applied by the same user last time, each missing item not managed by any other
 *    appliers is removed": https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy).
 *  - A field whose value the apply changes and another manager owns is a conflict; with force the applier takes it
 *    and the other manager loses it (https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts).
 *    Applying the value a field already has shares its ownership.
 *  - A live object without managedFields first gets a "before-first-apply" Update manager owning all its fields
 *    (skipNonAppliedManager in k8s.io/apimachinery pkg/util/managedfields/internal/skipnonapplied.go).
 * Granularity: leaves are scalars and atomic lists (owned whole); items of keyed lists are `k:{...}` members.
 */
function serverSideApply(
  current: KubeObject | undefined,
  config: KubeObject,
  manager: string,
  force: boolean,
  apiVersion: string,
): KubeObject {
  let managers = current ? decodeManagedFields(current.metadata.managedFields) : null;
  if (!managers) {
    managers = new Map();
    if (current) {
      const set: FieldSet = new Map();
      collectFields(set, managedView(current), [], undefined, true);
      const id = managerId('before-first-apply', 'Update');
      managers.set(id, { manager: 'before-first-apply', operation: 'Update', apiVersion, time: now(), set });
    }
  }
  const live: Json = current ? managedView(current) : {};
  const base: Json = current ? structuredClone(current) : {};
  base.metadata = { ...obj(base.metadata) };
  delete (base.metadata as Json).managedFields;
  const merged = applyMerge(base, config, undefined) as KubeObject;
  const id = managerId(manager, 'Apply');
  const last = managers.get(id)?.set;
  const set: FieldSet = new Map();
  collectFields(set, managedView(config), [], undefined, false);
  managers.set(id, { manager, operation: 'Apply', apiVersion, time: now(), set });
  if (last) {
    const owned = [...union(...[...managers.values()].map((m) => m.set)).keys()];
    const dropped = [...minus(last, set).values()].sort((a, b) => a.length - b.length);
    for (const p of dropped) {
      const k = pathKey(p);
      if (owned.some((o) => within(o, k))) continue;
      // A key field of a list item stays while the item does.
      const leaf = p.at(-1);
      const item = p.at(-2);
      if (leaf && item && 'f' in leaf && 'k' in item && Object.hasOwn(item.k, leaf.f)) continue;
      removeField(merged, p, undefined);
    }
  }
  const cmp = compareObjects(live, managedView(merged));
  const changed = union(cmp.added, cmp.modified);
  const conflicts: { manager: FieldManager; path: FieldPath }[] = [];
  for (const [mid, m] of managers) {
    if (mid === id) continue;
    for (const path of meet(m.set, changed).values()) conflicts.push({ manager: m, path });
  }
  if (conflicts.length > 0 && !force) throw applyConflict(conflicts);
  for (const [mid, m] of managers) if (mid !== id) m.set = minus(minus(m.set, changed), cmp.removed);
  merged.metadata = obj(merged.metadata) as KubeObject['metadata'];
  merged.metadata.managedFields = encodeManagedFields(managers);
  return merged;
}

/** schema.GroupVersionKind's String(): "batch/v1, Kind=Job", "/v1, Kind=ConfigMap". */
function gvkString(apiVersion: unknown, kind: unknown): string {
  const v = typeof apiVersion === 'string' ? apiVersion : '';
  const [group, version] = v.includes('/') ? (v.split('/', 2) as [string, string]) : ['', v];
  return `${group}/${version}, Kind=${typeof kind === 'string' ? kind : ''}`;
}

/** The JSON type name Go's encoding/json prints in "cannot unmarshal X into Go value of type ...". */
function goJsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

/** The maximum number of operations of one JSON patch (maxJSONPatchOperations). */
const MAX_JSON_PATCH_OPERATIONS = 10000;

/**
 * A JSON patch, a merge patch or a strategic merge patch applied to the stored object, with the errors the patch
 * handler answers (applyJSPatch and strategicPatchObject in k8s.io/apiserver pkg/endpoints/handlers/patch.go). A
 * body that does not decode is 400 BadRequest; the server's default fieldValidation (Warn) decodes a JSON or merge
 * patch strictly first, hence "error decoding patch: ...".
 */
function patchObject(type: PatchType, current: KubeObject, raw: string): unknown {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (err) {
    const message = (err as Error).message;
    throw new ApiError(
      400,
      'BadRequest',
      type === 'application/strategic-merge-patch+json' ? message : `error decoding patch: ${message}`,
    );
  }
  if (type === 'application/json-patch+json') {
    const ops = body === null ? [] : body;
    if (!Array.isArray(ops)) {
      throw new ApiError(
        400,
        'BadRequest',
        `error decoding patch: json: cannot unmarshal ${goJsonType(ops)} into Go value of type []handlers.jsonPatchOp`,
      );
    }
    const notOp = ops.find((op) => !isMap(op));
    if (notOp !== undefined) {
      throw new ApiError(
        400,
        'BadRequest',
        `error decoding patch: json: cannot unmarshal ${goJsonType(notOp)} into Go value of type handlers.jsonPatchOp`,
      );
    }
    if (ops.length > MAX_JSON_PATCH_OPERATIONS) {
      throw new ApiError(
        413,
        'RequestEntityTooLarge',
        `Request entity too large: The allowed maximum operations in a JSON patch is ${MAX_JSON_PATCH_OPERATIONS}, got ${ops.length}`,
      );
    }
    return jsonPatch(current, ops as Json[]);
  }
  if (type === 'application/merge-patch+json') {
    // A null patch is jsonpatch.ErrBadJSONPatch.
    if (body === null) throw new ApiError(400, 'BadRequest', 'Invalid JSON Patch');
    if (!isMap(body)) {
      throw new ApiError(
        400,
        'BadRequest',
        `error decoding patch: json: cannot unmarshal ${goJsonType(body)} into Go value of type map[string]interface {}`,
      );
    }
    return jsonMergePatch(current, body);
  }
  if (body !== null && !isMap(body)) {
    throw new ApiError(
      400,
      'BadRequest',
      `json: cannot unmarshal ${goJsonType(body)} into Go value of type map[string]interface {}`,
    );
  }
  return strategicMergePatch(current, body ?? {});
}

/** A strategic merge patch of a whole object, as the server applies a PATCH body (exported for tests of the merge). */
export function strategicMergePatch(
  original: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const merged = strategicMergeMap(original, patch);
  return merged === DELETED ? {} : merged;
}

/**
 * The body of a server-side apply: YAML (JSON is YAML), a whole object of the resource's kind and version that leaves
 * metadata.managedFields to the server (versionCheckManager, then structuredMergeManager.Apply, in k8s.io/apimachinery
 * pkg/util/managedfields/internal; https://kubernetes.io/docs/reference/using-api/server-side-apply/#api-implementation).
 */
function parseApplyConfiguration(r: ResourceName, raw: string): KubeObject {
  let config: unknown;
  try {
    config = loadYaml<unknown>(raw);
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `error decoding YAML: ${(err as Error).message}`);
  }
  config ??= {};
  if (!isMap(config)) {
    throw new ApiError(
      400,
      'BadRequest',
      `error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal ${goJsonType(config)} into Go value of type map[string]interface {}`,
    );
  }
  const { apiVersion, kind } = RESOURCES[r];
  if (config.apiVersion !== apiVersion || config.kind !== kind) {
    throw new ApiError(400, 'BadRequest', `invalid object type: ${gvkString(config.apiVersion, config.kind)}`);
  }
  const metadata = obj(config.metadata);
  if (metadata.managedFields !== undefined && metadata.managedFields !== null) {
    throw new ApiError(400, 'BadRequest', 'metadata.managedFields must be nil');
  }
  const out = { ...config, metadata } as KubeObject;
  refuseKeylessItems(out, gvkString(apiVersion, kind));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The server

/** Kubernetes' name suffix alphabet (no vowels, no look-alikes). */
const SUFFIX = 'bcdfghjklmnpqrstvwxz2456789';
const suffix = () => Array.from({ length: 5 }, () => SUFFIX[Math.floor(Math.random() * SUFFIX.length)]).join('');
/** RFC 3339 with seconds, as the API server writes metav1.Time. */
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

interface Watcher {
  readonly resource: ResourceName;
  readonly namespace: string;
  readonly labels: Requirement[];
  readonly fields: FieldReq[];
  readonly res: ServerResponse;
}

interface Change {
  readonly rv: number;
  readonly resource: ResourceName;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
  readonly previous: KubeObject | null;
}

interface IndexState {
  failures: number;
  ignored: number;
  pods: number;
  running: boolean;
  done: 'succeeded' | 'failed' | null;
}

interface JobSim {
  readonly namespace: string;
  readonly name: string;
  readonly indexed: boolean;
  readonly completions: number;
  readonly parallelism: number;
  readonly perIndex: number | null;
  readonly backoffLimit: number;
  readonly rules: Json[];
  readonly indexes: IndexState[];
  failedPods: number;
  failJob: string | null;
  finished: boolean;
  started: string | null;
}

export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const tokens: Readonly<Record<string, TokenGrant>> = options.tokens ?? { 'admin-token': 'admin' };
  let podScript: PodScript = options.podScript ?? (() => ({ result: 'succeed' }));
  const store = new Map<ResourceName, Map<string, KubeObject>>(
    (Object.keys(RESOURCES) as ResourceName[]).map((r) => [r, new Map()]),
  );
  const logs = new Map<string, string>();
  const requests: RecordedKubeRequest[] = [];
  const watchers = new Set<Watcher>();
  const history: Change[] = [];
  const sims = new Map<string, JobSim>();
  let rv = 1000;
  /** Changes up to this resourceVersion are forgotten: older watches are expired. */
  let compactedRv = rv;
  let runningPods = 0;
  let idleWaiters: (() => void)[] = [];
  let closed = false;

  const key = (ns: string, name: string) => `${ns}/${name}`;
  const clone = <T>(v: T): T => structuredClone(v);
  const withType = (r: ResourceName, o: KubeObject): KubeObject => ({
    apiVersion: RESOURCES[r].apiVersion,
    kind: RESOURCES[r].kind,
    ...o,
  });

  let watchDelayMs = 0;
  const faults: { verb: string; resource: string; status: number; left: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const send = (w: Watcher, type: string, object: unknown) => {
    const line = `${JSON.stringify({ type, object })}\n`;
    if (watchDelayMs === 0) {
      if (!w.res.writableEnded) w.res.write(line);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!w.res.writableEnded) w.res.write(line);
    }, watchDelayMs);
    timers.add(timer);
  };

  /** Stores an object at a new resourceVersion and tells the watchers, as etcd and the watch cache do. */
  const clock = options.clock ?? Date.now;
  /** When each Event was last written, for its expiry. */
  const eventWritten = new Map<string, number>();

  /** Deletes the Events older than their TTL, as the API server's storage does. */
  function expireEvents(): void {
    const ttl = options.eventTtlMs ?? 3_600_000;
    for (const [k, at] of eventWritten) {
      const ev = store.get('events')?.get(k);
      if (ev && clock() - at >= ttl) write('events', ev, 'DELETED');
    }
  }

  function write(r: ResourceName, o: KubeObject, type: Change['type']): KubeObject {
    const ns = o.metadata.namespace as string;
    const k = key(ns, o.metadata.name);
    if (r === 'events') {
      if (type === 'DELETED') eventWritten.delete(k);
      else eventWritten.set(k, clock());
    }
    const previous = store.get(r)?.get(k) ?? null;
    rv++;
    const stored = clone(withType(r, o));
    stored.metadata.resourceVersion = String(rv);
    if (type === 'DELETED') store.get(r)?.delete(k);
    else store.get(r)?.set(k, stored);
    const change: Change = { rv, resource: r, type, object: stored, previous };
    history.push(change);
    for (const w of watchers) deliver(w, change);
    return clone(stored);
  }

  /** A change as one watcher sees it: an object entering or leaving its selector is ADDED or DELETED. */
  function deliver(w: Watcher, c: Change): void {
    if (w.resource !== c.resource || c.object.metadata.namespace !== w.namespace) return;
    const sees = (o: KubeObject | null) =>
      o !== null && matchesLabels(o.metadata.labels, w.labels) && matchesFields(o, w.fields);
    const after = c.type !== 'DELETED' && sees(c.object);
    const before = c.type === 'ADDED' ? false : sees(c.previous ?? c.object);
    if (c.type === 'DELETED') {
      if (before) send(w, 'DELETED', c.object);
    } else if (after && !before) send(w, 'ADDED', c.object);
    else if (after && before) send(w, 'MODIFIED', c.object);
    else if (!after && before) send(w, 'DELETED', c.object);
  }

  // --- The Job controller

  function podFailureAction(sim: JobSim, pod: KubeObject): string | null {
    const status = obj(pod.status);
    const conditions = arr(status.conditions).map(obj);
    const terminated = arr(status.containerStatuses).map((c) => ({
      name: String(obj(c).name),
      code: Number(obj(obj(obj(c).state).terminated).exitCode),
    }));
    for (const rule of sim.rules) {
      const codes = obj(rule.onExitCodes);
      if (rule.onExitCodes) {
        const values = arr(codes.values).map(Number);
        const hit = terminated.some(
          (t) =>
            t.code !== 0 &&
            (codes.containerName === undefined || codes.containerName === t.name) &&
            (codes.operator === 'In' ? values.includes(t.code) : !values.includes(t.code)),
        );
        if (hit) return String(rule.action);
      }
      const wanted = arr(rule.onPodConditions).map(obj);
      if (
        wanted.length > 0 &&
        wanted.some((w) => conditions.some((c) => c.type === w.type && c.status === (w.status ?? 'True')))
      ) {
        return String(rule.action);
      }
    }
    return null;
  }

  function jobStatus(sim: JobSim, job: KubeObject): Json {
    const previous = obj(job.status);
    const succeeded = sim.indexes.flatMap((s, i) => (s.done === 'succeeded' ? [i] : []));
    const failed = sim.indexes.flatMap((s, i) => (s.done === 'failed' ? [i] : []));
    const active = sim.indexes.filter((s) => s.running).length;
    const status: Json = {
      ...(sim.started ? { startTime: sim.started } : {}),
      active,
      ready: active,
      terminating: 0,
      succeeded: succeeded.length,
      failed: sim.failedPods,
      uncountedTerminatedPods: {},
      conditions: arr(previous.conditions),
    };
    if (sim.indexed && succeeded.length > 0) status.completedIndexes = jobControllerIndexes(succeeded);
    if (sim.indexed && sim.perIndex !== null) status.failedIndexes = jobControllerIndexes(failed);
    if (previous.completionTime) status.completionTime = previous.completionTime;
    if (!status.active) delete status.active;
    if (!status.succeeded) delete status.succeeded;
    if (!status.failed) delete status.failed;
    return status;
  }

  function condition(type: string, reason: string, message: string): Json {
    const at = now();
    return { type, status: 'True', lastProbeTime: at, lastTransitionTime: at, reason, message };
  }

  function updateJob(sim: JobSim): void {
    const job = store.get('jobs')?.get(key(sim.namespace, sim.name));
    if (!job) return;
    const status = jobStatus(sim, job);
    if (!sim.finished) {
      const succeeded = sim.indexes.filter((s) => s.done === 'succeeded').length;
      const failed = sim.indexes.filter((s) => s.done === 'failed').length;
      let interim: Json | null = null;
      let terminal: Json | null = null;
      if (sim.failJob) {
        const message =
          sim.failJob === 'BackoffLimitExceeded'
            ? 'Job has reached the specified backoff limit'
            : sim.failJob === 'DeadlineExceeded'
              ? 'Job was active longer than specified deadline'
              : 'Container failed with a pod failure policy FailJob rule';
        interim = condition('FailureTarget', sim.failJob, message);
        terminal = condition('Failed', sim.failJob, message);
      } else if (failed > 0 && failed + succeeded >= sim.completions) {
        interim = condition('FailureTarget', 'FailedIndexes', 'Job has failed indexes');
        terminal = condition('Failed', 'FailedIndexes', 'Job has failed indexes');
      } else if (succeeded >= sim.completions) {
        interim = condition('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods');
        terminal = condition('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods');
      }
      if (interim && terminal) {
        sim.finished = true;
        // The interim condition first (pods may still terminate), the terminal one in a later update.
        status.conditions = [...arr(status.conditions), interim];
        write('jobs', { ...job, status }, 'MODIFIED');
        const final = terminal;
        setImmediate(() => {
          const current = store.get('jobs')?.get(key(sim.namespace, sim.name));
          if (!current) return;
          const s = obj(current.status);
          const done: Json = { ...s, conditions: [...arr(s.conditions), final] };
          if (final.type === 'Complete') done.completionTime = now();
          write('jobs', { ...current, status: done }, 'MODIFIED');
        });
        return;
      }
    }
    if (JSON.stringify(status) !== JSON.stringify(obj(job.status))) write('jobs', { ...job, status }, 'MODIFIED');
  }

  function launch(sim: JobSim, index: number): void {
    const job = store.get('jobs')?.get(key(sim.namespace, sim.name));
    if (!job) return;
    const state = sim.indexes[index] as IndexState;
    state.running = true;
    state.pods++;
    runningPods++;
    const jobUid = String(job.metadata.uid);
    const template = obj(obj(job.spec).template);
    const tmeta = obj(template.metadata);
    const tspec = obj(template.spec);
    const podName = sim.indexed ? `${sim.name}-${index}-${suffix()}` : `${sim.name}-${suffix()}`;
    const labels: Record<string, string> = {
      ...(obj(tmeta.labels) as Record<string, string>),
      'batch.kubernetes.io/controller-uid': jobUid,
      'batch.kubernetes.io/job-name': sim.name,
      'controller-uid': jobUid,
      'job-name': sim.name,
    };
    const annotations: Record<string, string> = { ...(obj(tmeta.annotations) as Record<string, string>) };
    if (sim.indexed) {
      labels['batch.kubernetes.io/job-completion-index'] = String(index);
      annotations['batch.kubernetes.io/job-completion-index'] = String(index);
    }
    if (sim.perIndex !== null) {
      annotations['batch.kubernetes.io/job-index-failure-count'] = String(state.failures);
      annotations['batch.kubernetes.io/job-index-ignored-failure-count'] = String(state.ignored);
    }
    const containers = arr(tspec.containers).map((c) => ({
      ...obj(c),
      env: [
        ...arr(obj(c).env),
        ...(sim.indexed
          ? [
              {
                name: 'JOB_COMPLETION_INDEX',
                valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']" } },
              },
            ]
          : []),
      ],
    }));
    const pod: KubeObject = {
      metadata: {
        name: podName,
        namespace: sim.namespace,
        uid: randomUUID(),
        creationTimestamp: now(),
        labels,
        annotations,
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: sim.name,
            uid: jobUid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { ...tspec, containers, ...(sim.indexed ? { hostname: `${sim.name}-${index}` } : {}) },
      status: { phase: 'Pending' },
    };
    write('pods', pod, 'ADDED');
    logs.set(key(sim.namespace, podName), '');
    const attempt: PodAttempt = {
      namespace: sim.namespace,
      job: clone(job),
      jobName: sim.name,
      podName,
      index,
      attempt: state.pods,
      failureCount: state.failures,
    };
    const begin = async () => {
      if (closed || sim.finished || !state.running) return;
      // What keeps a pod Pending: a ConfigMap volume whose ConfigMap does not exist (the kubelet retries the
      // mount: FailedMount) or an image the node cannot pull (ErrImagePull, then ImagePullBackOff). It stays
      // so until the cause goes away or the Job's deadline passes
      // (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase).
      const blocker = startBlocker(sim.namespace, tspec);
      if (blocker) {
        const pending = store.get('pods')?.get(key(sim.namespace, podName));
        if (pending && obj(pending.status).phase === 'Pending') {
          write(
            'pods',
            {
              ...pending,
              status: {
                phase: 'Pending',
                containerStatuses: containers.map((c) => ({
                  name: (c as Json).name,
                  ready: false,
                  state: { waiting: { reason: blocker.reason, message: blocker.message } },
                })),
              },
            },
            'MODIFIED',
          );
        }
        blocked.set(key(sim.namespace, podName), () => void begin());
        return;
      }
      blocked.delete(key(sim.namespace, podName));
      const started = now();
      const runningPod = store.get('pods')?.get(key(sim.namespace, podName));
      if (runningPod) {
        write(
          'pods',
          {
            ...runningPod,
            status: {
              phase: 'Running',
              startTime: started,
              containerStatuses: containers.map((c) => ({
                name: (c as Json).name,
                ready: true,
                state: { running: { startedAt: started } },
              })),
            },
          },
          'MODIFIED',
        );
      }
      let outcome: PodOutcome;
      try {
        outcome = await podScript(attempt);
      } catch (err) {
        outcome = {
          result: 'fail',
          exitCode: 1,
          log: `pod script threw: ${err instanceof Error ? err.stack : String(err)}\n`,
        };
      }
      if (!closed) finish(sim, index, podName, outcome, started);
      podEnded();
    };
    setImmediate(() => void begin());
  }

  function podEnded(): void {
    runningPods--;
    if (runningPods === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Why a pod of this spec cannot start now, or null. */
  function startBlocker(namespace: string, podSpec: Json): { reason: string; message: string } | null {
    for (const v of arr(podSpec.volumes).map(obj)) {
      const cm = obj(v.configMap).name;
      if (typeof cm === 'string' && !store.get('configmaps')?.has(key(namespace, cm))) {
        return {
          reason: 'ContainerCreating',
          message: `MountVolume.SetUp failed for volume "${String(v.name)}" : configmap "${cm}" not found`,
        };
      }
    }
    for (const c of arr(podSpec.containers).map(obj)) {
      const image = String(c.image);
      if (options.imagePullable && !options.imagePullable(image)) {
        return { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` };
      }
    }
    return null;
  }

  /** Pods waiting to start, by key: each tries again when a ConfigMap is created. */
  const blocked = new Map<string, () => void>();

  function finish(sim: JobSim, index: number, podName: string, outcome: PodOutcome, started: string): void {
    const state = sim.indexes[index] as IndexState;
    state.running = false;
    const k = key(sim.namespace, podName);
    if (outcome.log) logs.set(k, (logs.get(k) ?? '') + outcome.log);
    const pod = store.get('pods')?.get(k);
    if (pod) {
      const exitCode = outcome.result === 'succeed' ? 0 : outcome.result === 'fail' ? outcome.exitCode : 143;
      const message = outcome.result === 'disrupted' ? undefined : outcome.terminationMessage;
      const containers = arr(obj(pod.spec).containers).map(obj);
      const finished = now();
      const status: Json = {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        startTime: started,
        conditions:
          outcome.result === 'disrupted'
            ? [
                {
                  type: 'DisruptionTarget',
                  status: 'True',
                  reason: 'EvictionByEvictionAPI',
                  message: 'Eviction API: evicting',
                  lastTransitionTime: finished,
                },
              ]
            : [],
        containerStatuses: containers.map((c, i) => ({
          name: c.name,
          ready: false,
          restartCount: 0,
          state: {
            terminated: {
              exitCode,
              reason: exitCode === 0 ? 'Completed' : 'Error',
              // The kubelet keeps at most 4096 bytes of a container's termination message.
              ...(i === 0 && message ? { message: message.slice(0, 4096) } : {}),
              startedAt: started,
              finishedAt: finished,
            },
          },
        })),
      };
      write('pods', { ...pod, status }, 'MODIFIED');
    }
    if (sim.finished) return;
    if (outcome.result === 'succeed') state.done = 'succeeded';
    else {
      const action = pod ? podFailureAction(sim, store.get('pods')?.get(k) ?? pod) : null;
      if (action === 'Ignore') state.ignored++;
      else {
        sim.failedPods++;
        state.failures++;
        if (action === 'FailJob') sim.failJob = 'PodFailurePolicy';
        else if (action === 'FailIndex') state.done = 'failed';
        else if (sim.perIndex !== null) {
          if (state.failures > sim.perIndex) state.done = 'failed';
        } else if (sim.failedPods > sim.backoffLimit) sim.failJob = 'BackoffLimitExceeded';
      }
    }
    sync(sim);
  }

  /** One sync of a Job: start pods for waiting indexes up to parallelism, then update its status. */
  function sync(sim: JobSim): void {
    if (closed || sim.finished) return;
    if (!store.get('jobs')?.has(key(sim.namespace, sim.name))) return;
    sim.started ??= now();
    let active = sim.indexes.filter((s) => s.running).length;
    if (!sim.failJob) {
      for (let i = 0; i < sim.completions && active < sim.parallelism; i++) {
        const s = sim.indexes[i] as IndexState;
        if (s.done || s.running) continue;
        launch(sim, i);
        active++;
      }
    }
    updateJob(sim);
  }

  function startJob(job: KubeObject): void {
    const spec = obj(job.spec);
    const indexed = spec.completionMode === 'Indexed';
    const completions = Number(spec.completions ?? 1);
    const sim: JobSim = {
      namespace: String(job.metadata.namespace),
      name: job.metadata.name,
      indexed,
      completions,
      parallelism: Number(spec.parallelism ?? 1),
      perIndex: spec.backoffLimitPerIndex === undefined ? null : Number(spec.backoffLimitPerIndex),
      backoffLimit: Number(spec.backoffLimit),
      rules: arr(obj(spec.podFailurePolicy).rules).map(obj),
      indexes: Array.from({ length: completions }, () => ({
        failures: 0,
        ignored: 0,
        pods: 0,
        running: false,
        done: null,
      })),
      failedPods: 0,
      failJob: null,
      finished: false,
      started: null,
    };
    sims.set(key(sim.namespace, sim.name), sim);
    setImmediate(() => sync(sim));
  }

  /** What the API server fills in on create. */
  function defaults(r: ResourceName, o: KubeObject, namespace: string): KubeObject {
    const meta = { ...o.metadata, namespace, uid: randomUUID(), creationTimestamp: now(), generation: 1 };
    delete (meta as Json).resourceVersion;
    const out: KubeObject = { ...o, metadata: meta };
    if (r === 'jobs') {
      const spec = { ...obj(o.spec) };
      spec.parallelism ??= 1;
      spec.completions ??= 1;
      spec.completionMode ??= 'NonIndexed';
      spec.backoffLimit ??= spec.backoffLimitPerIndex !== undefined ? 2147483647 : 6;
      spec.suspend ??= false;
      spec.podReplacementPolicy ??= spec.podFailurePolicy ? 'Failed' : 'TerminatingOrFailed';
      const uidLabels = {
        'batch.kubernetes.io/controller-uid': meta.uid,
        'batch.kubernetes.io/job-name': meta.name,
        'controller-uid': meta.uid,
        'job-name': meta.name,
      };
      spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': meta.uid } };
      const template = obj(spec.template);
      spec.template = {
        ...template,
        metadata: { ...obj(template.metadata), labels: { ...obj(obj(template.metadata).labels), ...uidLabels } },
      };
      out.spec = spec;
      out.status = {};
    }
    if (r === 'events') {
      out.count ??= 1;
      out.firstTimestamp ??= now();
      out.lastTimestamp ??= out.firstTimestamp;
    }
    return out;
  }

  function validateNew(r: ResourceName, namespace: string, body: KubeObject): void {
    if (r === 'jobs') validateJob(body);
    else if (r === 'configmaps') validateConfigMap(body);
    else if (r === 'events') validateEvent(body, namespace);
    else if (r === 'leases') validateLease(body);
    else validateName(r, body);
  }

  /**
   * Creates an object: validated, defaulted, stored, watchers told. With a `manager`, the create is its Update
   * operation in metadata.managedFields: it owns what it sent and the defaults the decoder filled in, not what the
   * strategy generates afterwards (a Job's selector and controller-uid labels: PrepareForCreate runs after the field
   * manager in k8s.io/apiserver pkg/endpoints/handlers/create.go).
   */
  function create(r: ResourceName, namespace: string, body: KubeObject, manager: string | null = null): KubeObject {
    validateNew(r, namespace, body);
    if (store.get(r)?.has(key(namespace, body.metadata.name))) throw alreadyExists(r, body.metadata.name);
    const object = defaults(r, body, namespace);
    if (manager !== null) {
      const owned = r === 'jobs' ? withoutGeneratedFields(object) : object;
      const managedFields = managedFieldsAfterUpdate(undefined, owned, manager, RESOURCES[r].apiVersion);
      if (managedFields.length > 0) object.metadata.managedFields = managedFields;
      else delete object.metadata.managedFields;
    }
    const created = write(r, object, 'ADDED');
    if (r === 'jobs') startJob(created);
    if (r === 'configmaps') for (const retry of [...blocked.values()]) retry();
    return created;
  }

  // --- HTTP

  /** Who sent the request (401 without a known token) and whether the grant allows the verb. */
  function authorize(
    req: IncomingMessage,
    verb: string,
    resource: string,
    group: string,
    namespace: string,
  ): { user: string; allowed: boolean } {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const grant = token ? tokens[token] : undefined;
    if (!grant) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    if (grant === 'admin') return { user: 'admin', allowed: true };
    const allowed =
      grant.namespace === namespace &&
      grant.rules.some(
        (rule) =>
          (rule.apiGroups.includes(group) || rule.apiGroups.includes('*')) &&
          (rule.resources.includes(resource) || rule.resources.includes('*')) &&
          (rule.verbs.includes(verb) || rule.verbs.includes('*')),
      );
    return { user: grant.user, allowed };
  }

  async function readBody(req: IncomingMessage): Promise<KubeObject> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (type !== 'application/json') {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      throw new ApiError(400, 'BadRequest', `the object provided is unrecognized: ${(err as Error).message}`);
    }
    const o = obj(body) as KubeObject;
    o.metadata = obj(o.metadata) as KubeObject['metadata'];
    return o;
  }

  function listOf(r: ResourceName, namespace: string, labels: Requirement[], fields: FieldReq[]) {
    const items = [...(store.get(r)?.values() ?? [])]
      .filter(
        (o) =>
          o.metadata.namespace === namespace && matchesLabels(o.metadata.labels, labels) && matchesFields(o, fields),
      )
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .map((o) => {
        // Items of a typed list carry no apiVersion and kind.
        const { apiVersion: _a, kind: _k, ...rest } = clone(o);
        return rest;
      });
    return {
      kind: `${RESOURCES[r].kind}List`,
      apiVersion: RESOURCES[r].apiVersion,
      metadata: { resourceVersion: String(rv) },
      items,
    };
  }

  function startWatch(r: ResourceName, namespace: string, q: URLSearchParams, res: ServerResponse): void {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(r, q.get('fieldSelector') ?? '');
    const from = q.get('resourceVersion') ?? '';
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { resource: r, namespace, labels, fields, res };
    if (from !== '' && from !== '0') {
      const since = Number(from);
      if (!Number.isInteger(since) || since < compactedRv) {
        // As the watch cache answers: a 200 stream holding one ERROR event, then the end.
        send(w, 'ERROR', new ApiError(410, 'Expired', `too old resource version: ${from} (${compactedRv})`).status());
        res.end();
        return;
      }
      for (const c of history) if (c.rv > since) deliver(w, c);
    } else {
      // "Get state and start at most recent": synthetic ADDED events for what exists.
      for (const o of listOf(r, namespace, labels, fields).items) send(w, 'ADDED', withType(r, o as KubeObject));
    }
    watchers.add(w);
    const asked = Number(q.get('timeoutSeconds') ?? '0') * 1000;
    const server = options.watchTimeoutMs ?? 0;
    const timeout = asked > 0 && server > 0 ? Math.min(asked, server) : Math.max(asked, server);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout) : null;
    const done = () => {
      watchers.delete(w);
      if (timer) clearTimeout(timer);
    };
    res.on('close', done);
    res.on('finish', done);
  }

  /**
   * Stores a new version of an existing object, as an update (PUT) and a patch both end: the resourceVersion it
   * carries must be the stored one (409 Conflict otherwise: "the object has been modified";
   * https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions), then the same validation as on
   * create and the Job's immutable fields (422), the stored Job's selector and status kept, uid and
   * creationTimestamp kept. With a `manager`, the write is its Update operation in metadata.managedFields.
   */
  function commitUpdate(
    r: ResourceName,
    namespace: string,
    name: string,
    current: KubeObject,
    body: KubeObject,
    manager: string | null,
  ): KubeObject {
    const sentRv = body.metadata.resourceVersion;
    if (sentRv !== undefined && sentRv !== current.metadata.resourceVersion) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, ...(RESOURCES[r].group ? { group: RESOURCES[r].group } : {}), kind: r },
      );
    }
    if (r === 'leases') validateLease(body);
    else if (r === 'jobs') {
      validateJob(body);
      refuseImmutableJobChange(current, body);
      // What the API server keeps of the stored Job: its generated selector and labels, and its status.
      body.spec = { ...obj(body.spec), selector: obj(current.spec).selector };
      body.status = current.status;
    } else validateConfigMap(body);
    const meta = {
      ...body.metadata,
      namespace,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
    };
    const next: KubeObject = { ...body, metadata: meta };
    if (manager !== null) {
      const managedFields = managedFieldsAfterUpdate(current, next, manager, RESOURCES[r].apiVersion);
      if (managedFields.length > 0) next.metadata.managedFields = managedFields;
      else delete next.metadata.managedFields;
    }
    return write(r, next, 'MODIFIED');
  }

  /**
   * PATCH of a ConfigMap, a Lease or a Job (https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply),
   * in the order of PatchResource in k8s.io/apiserver pkg/endpoints/handlers/patch.go: the authorization filter has
   * checked the verb `patch` (an apply too); then the content type (415), the PatchOptions (422), the patch applied to
   * the stored object (404 when there is none, but for apply, which creates it: 201), the name and namespace of the
   * result (400), then the update's own rules (409 resourceVersion, 422 validation and immutable Job fields). A
   * successful patch is an update: a new resourceVersion, a MODIFIED event (ADDED for a create by apply).
   */
  async function patch(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedKubeRequest,
    r: 'configmaps' | 'leases' | 'jobs',
    namespace: string,
    name: string,
    q: URLSearchParams,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    // The content type as sent, up to a ";" (no trimming, no case folding).
    const type = (req.headers['content-type'] ?? '').split(';')[0] ?? '';
    if (!isPatchType(type)) {
      // negotiation.NewUnsupportedMediaTypeError(patchTypes) in k8s.io/apiserver pkg/endpoints/handlers/negotiation/errors.go.
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
      );
    }
    const apply = type === 'application/apply-patch+yaml';
    const fieldManager = q.get('fieldManager') ?? '';
    const forceText = q.get('force');
    // Query parameters decode as Go's strconv.ParseBool.
    const TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
    const FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];
    if (forceText !== null && !TRUE.includes(forceText) && !FALSE.includes(forceText)) {
      throw new ApiError(400, 'BadRequest', `strconv.ParseBool: parsing ${JSON.stringify(forceText)}: invalid syntax`);
    }
    // ValidatePatchOptions (k8s.io/apimachinery pkg/apis/meta/v1/validation/validation.go): an apply must name its
    // field manager (https://kubernetes.io/docs/reference/using-api/server-side-apply/#managers), and force is for
    // apply only (https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts), both refused as an
    // invalid PatchOptions.
    const optionsInvalid = (field: string, reason: string, message: string) =>
      new ApiError(422, 'Invalid', `PatchOptions.meta.k8s.io "" is invalid: ${field}: ${message}`, {
        group: 'meta.k8s.io',
        kind: 'PatchOptions',
        causes: [{ reason, message, field }],
      });
    if (!apply && forceText !== null) {
      throw optionsInvalid('force', 'FieldValueForbidden', 'Forbidden: may not be specified for non-apply patch');
    }
    if (apply && fieldManager === '') {
      throw optionsInvalid('fieldManager', 'FieldValueRequired', 'Required value: is required for apply patch');
    }
    const current = store.get(r)?.get(key(namespace, name));
    let next: KubeObject;
    if (apply) {
      const config = parseApplyConfiguration(r, raw);
      next = serverSideApply(current, config, fieldManager, TRUE.includes(forceText ?? ''), RESOURCES[r].apiVersion);
    } else {
      // Only apply creates: any other patch of a missing object is 404 (createNewObject of the JSON and strategic
      // patchers).
      if (!current) throw notFound(r, name);
      const patched = patchObject(type, current, raw);
      if (!isMap(patched)) {
        throw new ApiError(
          422,
          'Invalid',
          ` "" is invalid: patch: Invalid value: ${JSON.stringify(JSON.stringify(patched))}: json: cannot unmarshal ${goJsonType(patched)} into Go value of type map[string]interface {}`,
        );
      }
      next = patched as KubeObject;
    }
    next.metadata = obj(next.metadata) as KubeObject['metadata'];
    // EnsureObjectNamespaceMatchesRequestNamespace, then checkName (k8s.io/apiserver pkg/endpoints/handlers/rest.go).
    if (next.metadata.namespace !== undefined && next.metadata.namespace !== namespace) {
      throw new ApiError(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (next.metadata.name !== name) {
      throw new ApiError(
        400,
        'BadRequest',
        `the name of the object (${next.metadata.name ?? ''}) does not match the name on the URL (${name})`,
      );
    }
    if (!current) {
      // Apply creates the object. The server validates it as a create, then authorizes the create: creating through
      // apply needs `create` on top of `patch` (createAuthorizerAttributes, verb "create", checked by
      // withAuthorization in k8s.io/apiserver pkg/endpoints/handlers/patch.go and rest.go), refused as
      // NewForbidden with the authorizer's reason, which RBAC leaves empty.
      validateNew(r, namespace, next);
      if (!authorize(req, 'create', r, RESOURCES[r].group, namespace).allowed) {
        throw new ApiError(403, 'Forbidden', `${qualified(r)} "${name}" is forbidden: `, {
          name,
          ...(RESOURCES[r].group ? { group: RESOURCES[r].group } : {}),
          kind: r,
        });
      }
      const created = create(r, namespace, next);
      record.status = 201;
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(created));
      return;
    }
    const manager = apply ? null : managerOf(fieldManager, req.headers['user-agent']);
    const updated = commitUpdate(r, namespace, name, current, next, manager);
    record.status = 200;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(updated));
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedKubeRequest): Promise<void> {
    expireEvents();
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/version' && req.method === 'GET') {
      // A non-resource URL every authenticated user may read (the system:public-info-viewer ClusterRole:
      // https://kubernetes.io/docs/reference/access-authn-authz/rbac/#discovery-roles), answering version.Info.
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!token || !tokens[token]) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      record.status = 200;
      const v = options.version ?? { major: '1', minor: '33', gitVersion: 'v1.33.1' };
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ...v, platform: 'linux/amd64', goVersion: 'go1.24.2', compiler: 'gc' }));
      return;
    }
    const m =
      /^(\/api\/v1|\/apis\/batch\/v1|\/apis\/coordination\.k8s\.io\/v1)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
        url.pathname,
      );
    const resourceText = m?.[3] ?? '';
    if (!m || !isResource(resourceText) || RESOURCES[resourceText].prefix !== m[1]) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const r: ResourceName = resourceText;
    const namespace = decodeURIComponent(m[2] as string);
    const name = m[4] ? decodeURIComponent(m[4]) : null;
    const sub = m[5] ?? null;
    if (sub && !(r === 'pods' && sub === 'log'))
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const verb =
      method === 'GET'
        ? name
          ? 'get'
          : q.get('watch') === 'true' || q.get('watch') === '1'
            ? 'watch'
            : 'list'
        : method === 'POST'
          ? 'create'
          : method === 'PUT'
            ? 'update'
            : method === 'PATCH'
              ? 'patch'
              : method === 'DELETE'
                ? name
                  ? 'delete'
                  : 'deletecollection'
                : method.toLowerCase();
    const resource = sub ? `${r}/${sub}` : r;
    record.verb = verb;
    record.resource = resource;
    record.name = name;
    const { user, allowed } = authorize(req, verb, resource, RESOURCES[r].group, namespace);
    record.user = user;
    if (!allowed) {
      throw new ApiError(
        403,
        'Forbidden',
        `${qualified(r)}${name ? ` "${name}"` : ''} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${RESOURCES[r].group}" in the namespace "${namespace}"`,
        { ...(name ? { name } : {}), ...(RESOURCES[r].group ? { group: RESOURCES[r].group } : {}), kind: r },
      );
    }
    const fault = faults.find((f) => f.left > 0 && f.verb === verb && f.resource === resource);
    if (fault) {
      fault.left--;
      throw new ApiError(
        fault.status,
        fault.status === 503 ? 'ServiceUnavailable' : 'InternalError',
        `injected fault: HTTP ${fault.status} for ${verb} ${resource}`,
      );
    }
    const reply = (status: number, body: unknown) => {
      record.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    if (verb === 'watch') {
      record.status = 200;
      startWatch(r, namespace, q, res);
      return;
    }
    if (verb === 'list') {
      reply(
        200,
        listOf(
          r,
          namespace,
          parseLabelSelector(q.get('labelSelector') ?? ''),
          parseFieldSelector(r, q.get('fieldSelector') ?? ''),
        ),
      );
      return;
    }
    if (verb === 'get' && sub === 'log') {
      const pod = store.get('pods')?.get(key(namespace, name as string));
      if (!pod) throw notFound('pods', name as string);
      const containers = arr(obj(pod.spec).containers).map((c) => String(obj(c).name));
      const container = q.get('container');
      if (!container && containers.length > 1) {
        throw new ApiError(
          400,
          'BadRequest',
          `a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`,
        );
      }
      if (container && !containers.includes(container)) {
        throw new ApiError(400, 'BadRequest', `container ${container} is not valid for pod ${name}`);
      }
      let text = logs.get(key(namespace, name as string)) ?? '';
      const tail = q.get('tailLines');
      if (tail !== null) text = `${text.split('\n').filter(Boolean).slice(-Number(tail)).join('\n')}\n`;
      record.status = 200;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(text);
      return;
    }
    if (verb === 'get') {
      const o = store.get(r)?.get(key(namespace, name as string));
      if (!o) throw notFound(r, name as string);
      reply(200, o);
      return;
    }
    if (verb === 'create') {
      if (name)
        throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      const body = await readBody(req);
      if (body.kind !== undefined && body.kind !== RESOURCES[r].kind) {
        throw new ApiError(400, 'BadRequest', `the kind "${String(body.kind)}" does not match the resource ${r}`);
      }
      if (body.metadata.namespace !== undefined && body.metadata.namespace !== namespace) {
        throw new ApiError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      reply(201, create(r, namespace, body, managerOf(q.get('fieldManager'), req.headers['user-agent'])));
      return;
    }
    if (verb === 'update') {
      if (r !== 'configmaps' && r !== 'leases' && r !== 'jobs') {
        throw new ApiError(405, 'MethodNotAllowed', 'this double updates configmaps, leases and jobs only');
      }
      const body = await readBody(req);
      const current = store.get(r)?.get(key(namespace, name as string));
      if (!current) throw notFound(r, name as string);
      if (body.metadata.name !== name) {
        throw new ApiError(
          400,
          'BadRequest',
          `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`,
        );
      }
      const manager = managerOf(q.get('fieldManager'), req.headers['user-agent']);
      reply(200, commitUpdate(r, namespace, name as string, current, body, manager));
      return;
    }
    if (verb === 'patch') {
      if (r !== 'configmaps' && r !== 'leases' && r !== 'jobs') {
        throw new ApiError(405, 'MethodNotAllowed', 'this double patches configmaps, leases and jobs only');
      }
      if (!name) {
        throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      }
      await patch(req, res, record, r, namespace, name, q);
      return;
    }
    if (verb === 'delete') {
      const o = store.get(r)?.get(key(namespace, name as string));
      if (!o) throw notFound(r, name as string);
      const gone = write(r, o, 'DELETED');
      const policy = q.get('propagationPolicy');
      // batch/v1 Jobs orphan their pods unless told otherwise.
      if (r === 'jobs' && (policy === 'Background' || policy === 'Foreground')) {
        for (const pod of listOf('pods', namespace, parseLabelSelector(`job-name=${name}`), []).items) {
          write('pods', withType('pods', pod as KubeObject), 'DELETED');
        }
      }
      if (r === 'jobs') sims.delete(key(namespace, name as string));
      reply(200, gone);
      return;
    }
    throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const record: RecordedKubeRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      user: null,
      verb: '',
      resource: '',
      name: null,
      status: 0,
    };
    requests.push(record);
    handle(req, res, record).catch((err: unknown) => {
      const e =
        err instanceof ApiError ? err : new ApiError(500, 'InternalError', `internal error: ${(err as Error).message}`);
      record.status = e.code;
      if (res.headersSent) {
        res.end();
        return;
      }
      res.writeHead(e.code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(e.status()));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const kubeconfig = (token: string, namespace: string) => ({
    apiVersion: 'v1',
    kind: 'Config',
    // Plain HTTP on loopback: client-node accepts an http:// server only with TLS verification off.
    clusters: [{ name: 'double', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'user', user: { token } }],
    contexts: [{ name: 'double', context: { cluster: 'double', user: 'user', namespace } }],
    'current-context': 'double',
  });

  return {
    url,
    requests,
    kubeConfig(token, namespace = 'default') {
      const kc = new KubeConfig();
      kc.loadFromString(JSON.stringify(kubeconfig(token, namespace)));
      return kc;
    },
    kubeconfigText: (token, namespace = 'default') => `${JSON.stringify(kubeconfig(token, namespace), null, 2)}\n`,
    setPodScript(script) {
      podScript = script;
    },
    failNext(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    passDeadline(jobName, namespace = 'nba-backfill') {
      const sim = sims.get(key(namespace, jobName));
      if (!sim || sim.finished) return;
      sim.failJob = 'DeadlineExceeded';
      // Its active pods are terminated: a Pending one never ran, a running one is killed.
      for (const k of [...blocked.keys()]) {
        const pod = store.get('pods')?.get(k);
        if (!pod || obj(pod.metadata.labels)['batch.kubernetes.io/job-name'] !== jobName) continue;
        blocked.delete(k);
        write(
          'pods',
          { ...pod, status: { ...obj(pod.status), phase: 'Failed', reason: 'DeadlineExceeded' } },
          'MODIFIED',
        );
        const index = Number(obj(pod.metadata.labels)['batch.kubernetes.io/job-completion-index'] ?? 0);
        const state = sim.indexes[index];
        if (state) state.running = false;
        podEnded();
      }
      updateJob(sim);
    },
    setWatchDelay(ms) {
      watchDelayMs = ms;
    },
    create: (r, ns, o) => create(r, ns, clone({ ...o, metadata: { ...o.metadata } })),
    get: (r, ns, name) => {
      const o = store.get(r)?.get(key(ns, name));
      return o ? clone(o) : undefined;
    },
    list: (r, ns) => [...(store.get(r)?.values() ?? [])].filter((o) => o.metadata.namespace === ns).map(clone),
    podLog: (ns, name) => logs.get(key(ns, name)),
    compact() {
      history.length = 0;
      compactedRv = rv;
    },
    closeWatches() {
      for (const w of watchers) w.res.end();
      watchers.clear();
    },
    watchCount: () => watchers.size,
    podsIdle: () => (runningPods === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    close: () =>
      new Promise<void>((resolve, reject) => {
        closed = true;
        for (const timer of timers) clearTimeout(timer);
        for (const w of watchers) w.res.end();
        watchers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
