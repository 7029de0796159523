// A Kubernetes API server double over node:http, for tests of the controller and the CLI's cluster mode (no
// control plane can run on these machines). It serves Jobs, Pods (and their logs), ConfigMaps and Events at
// their real REST paths, with resourceVersions, label and field selectors, watch streams (a 410 Expired ERROR
// event for too old a resourceVersion), Status objects for errors, RBAC by bearer token, and the Job
// controller's behaviour for the fields this project uses: Indexed completion, parallelism,
// backoffLimitPerIndex, podFailurePolicy (Ignore, FailIndex, FailJob, Count), backoffLimit, the compressed
// completedIndexes/failedIndexes, the interim and terminal conditions, pod labels and termination messages.
// Pods do not run containers: a script says how each attempt ends, and may do real work first.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

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
      reason: this.reason,
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

  function create(r: ResourceName, namespace: string, body: KubeObject): KubeObject {
    if (r === 'jobs') validateJob(body);
    else if (r === 'configmaps') validateConfigMap(body);
    else if (r === 'events') validateEvent(body, namespace);
    else if (r === 'leases') validateLease(body);
    else validateName(r, body);
    if (store.get(r)?.has(key(namespace, body.metadata.name))) throw alreadyExists(r, body.metadata.name);
    const created = write(r, defaults(r, body, namespace), 'ADDED');
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
      reply(201, create(r, namespace, body));
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
      const sentRv = body.metadata.resourceVersion;
      if (sentRv !== undefined && sentRv !== current.metadata.resourceVersion) {
        throw new ApiError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { name, kind: r },
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
      reply(200, write(r, { ...body, metadata: meta }, 'MODIFIED'));
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
