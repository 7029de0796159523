// The Kubernetes adapter: the cluster port (core/ports/cluster.ts) over @kubernetes/client-node, with the API's
// answers turned into values ("already exists", "not found") and every other failure into an error that names
// the call, the object and the API server's own message. The only module that imports the SDK.

import {
  ApiException,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  type CoreV1Event,
  KubeConfig,
  ListWatch,
  type V1ConfigMap,
  type V1Job,
  type V1Lease,
  VersionApi,
  Watch,
} from '@kubernetes/client-node';
import { BadInputError, messageOf, ProcessingError } from '../errors.js';
import type {
  Cluster,
  ClusterConfigMap,
  ClusterEvent,
  ClusterJob,
  ClusterLease,
  ClusterPod,
  JobInformer,
} from '../ports/cluster.js';
import { MIN_KUBERNETES } from './contract.js';

/** A call to the API server failed: its HTTP status (0 when no answer came), the Status reason and message. */
export class KubeApiError extends ProcessingError {
  constructor(
    readonly call: string,
    readonly status: number,
    readonly reason: string | null,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      `Kubernetes API: ${call}: ${status === 0 ? 'no answer' : `HTTP ${status}${reason ? ` ${reason}` : ''}`}: ${detail}`,
      {
        transient: status === 0 || status === 429 || status >= 500,
        cause: options.cause,
      },
    );
  }
}

/** The Status object of a failed call, when the body is one. */
function statusOf(body: unknown): { reason: string | null; message: string | null } {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return { reason: null, message: body.slice(0, 500) || null };
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return { reason: null, message: null };
  const s = parsed as { reason?: unknown; message?: unknown };
  return {
    reason: typeof s.reason === 'string' ? s.reason : null,
    message: typeof s.message === 'string' ? s.message : null,
  };
}

function toError(call: string, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException) {
    const s = statusOf(err.body);
    return new KubeApiError(call, err.code, s.reason, s.message ?? 'no message', { cause: err });
  }
  return new KubeApiError(call, 0, null, messageOf(err), { cause: err });
}

const codeOf = (err: unknown) => (err instanceof ApiException ? err.code : undefined);

/** The Kubernetes calls of this project, in one namespace. */
export class KubeClient implements Cluster {
  readonly namespace: string;
  readonly kubeConfig: KubeConfig;
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;

  constructor(kubeConfig: KubeConfig, namespace: string) {
    this.kubeConfig = kubeConfig;
    this.namespace = namespace;
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  /** From $KUBECONFIG, ~/.kube/config, or the pod's service account in a cluster, as kubectl finds them. */
  static fromDefault(namespace: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    // With no KUBECONFIG, no ~/.kube/config and no service account token, the client library falls back to a
    // made-up cluster at http://localhost:8080, which would fail later as ECONNREFUSED.
    const cluster = kc.getCurrentCluster();
    if (
      !cluster ||
      (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080' && !process.env.KUBECONFIG)
    ) {
      throw new BadInputError(
        'no Kubernetes configuration found: KUBECONFIG is not set, ~/.kube/config does not exist, and this is not a ' +
          'pod with a service account token; set KUBECONFIG (or run `gcloud container clusters get-credentials ...`)',
        { where: 'KUBECONFIG' },
      );
    }
    return new KubeClient(kc, namespace);
  }

  /**
   * Refuses an API server older than MIN_KUBERNETES: the Jobs rely on `backoffLimitPerIndex` and the pod
   * failure policy's `FailIndex` action, beta and on by default since 1.29
   * (https://kubernetes.io/docs/concepts/workloads/controllers/job/#backoff-limit-per-index).
   */
  async requireMinimumVersion(): Promise<string> {
    const info = await this.call('get the server version', () => this.kubeConfig.makeApiClient(VersionApi).getCode());
    const major = Number.parseInt(info.major, 10);
    const minor = Number.parseInt(info.minor, 10);
    const [wantMajor, wantMinor] = MIN_KUBERNETES;
    if (!(major > wantMajor || (major === wantMajor && minor >= wantMinor))) {
      throw new BadInputError(
        `Kubernetes ${info.gitVersion} at ${this.server} is older than ${wantMajor}.${wantMinor}, which the Stage 1 Jobs ` +
          'need (backoffLimitPerIndex and the pod failure policy action FailIndex); upgrade the cluster',
        { where: 'the API server version' },
      );
    }
    return info.gitVersion;
  }

  /** The server this client talks to, for messages. */
  get server(): string {
    return this.kubeConfig.getCurrentCluster()?.server ?? '(none)';
  }

  private async call<T>(call: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toError(call, err);
    }
  }

  /** Runs fn; an answer with one of `codes` becomes `fallback` instead of an error. */
  private async tolerate<T, F>(
    call: string,
    codes: readonly number[],
    fallback: F,
    fn: () => Promise<T>,
  ): Promise<T | F> {
    try {
      return await fn();
    } catch (err) {
      const code = codeOf(err);
      if (code !== undefined && codes.includes(code)) return fallback;
      throw toError(call, err);
    }
  }

  private where(what: string, name?: string): string {
    return `${what}${name ? ` "${name}"` : ''} in namespace ${this.namespace}`;
  }

  // --- Jobs

  async listJobs(labelSelector?: string): Promise<ClusterJob[]> {
    const list = await this.call(`list ${this.where('jobs')}${labelSelector ? ` (${labelSelector})` : ''}`, () =>
      this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector }),
    );
    return list.items;
  }

  async getJob(name: string): Promise<ClusterJob | null> {
    return this.tolerate(`get ${this.where('job', name)}`, [404], null, () =>
      this.batch.readNamespacedJob({ name, namespace: this.namespace }),
    );
  }

  /** Creates a Job; `created: false` when one of that name exists already (HTTP 409 AlreadyExists). */
  async createJob(job: ClusterJob): Promise<{ created: boolean; job: ClusterJob | null }> {
    const name = job.metadata?.name;
    // The object goes as it is: the port's type lists the fields read, a manifest carries all of its own.
    const made = await this.tolerate(`create ${this.where('job', name)}`, [409], null, () =>
      this.batch.createNamespacedJob({ namespace: this.namespace, body: job as V1Job }),
    );
    return { created: made !== null, job: made };
  }

  /**
   * Stage 1 and Stage 3 Jobs, listed then watched (client-node's ListWatch: it relists when the watch answers
   * 410 Gone and resumes from the last resourceVersion after a normal end). `onList` is told of every list.
   */
  jobInformer(labelSelector: string, onList?: (count: number) => void): JobInformer {
    const path = `/apis/batch/v1/namespaces/${this.namespace}/jobs`;
    const list = async () => {
      const jobs = await this.call(`list ${this.where('jobs')} (${labelSelector})`, () =>
        this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector }),
      );
      onList?.(jobs.items.length);
      return jobs;
    };
    const informer = new ListWatch<V1Job>(path, new Watch(this.kubeConfig), list, false, labelSelector);
    return {
      on: (verb: string, cb: (arg: never) => void) => informer.on(verb as 'add', cb as (job: V1Job) => void),
      start: () => informer.start(),
      stop: () => informer.stop(),
      list: (namespace?: string) => informer.list(namespace),
      get: (name: string, namespace?: string) => informer.get(name, namespace),
    } as JobInformer;
  }

  // --- ConfigMaps

  async getConfigMap(name: string): Promise<ClusterConfigMap | null> {
    return this.tolerate(`get ${this.where('configmap', name)}`, [404], null, () =>
      this.core.readNamespacedConfigMap({ name, namespace: this.namespace }),
    );
  }

  async listConfigMaps(labelSelector: string): Promise<ClusterConfigMap[]> {
    const list = await this.call(`list ${this.where('configmaps')} (${labelSelector})`, () =>
      this.core.listNamespacedConfigMap({ namespace: this.namespace, labelSelector }),
    );
    return list.items;
  }

  /** Creates a ConfigMap; false when one of that name exists already. */
  /** The Lease of that name (coordination.k8s.io/v1), or null. */
  async getLease(name: string): Promise<ClusterLease | null> {
    return this.tolerate(`get ${this.where('lease', name)}`, [404], null, () =>
      this.coordination.readNamespacedLease({ name, namespace: this.namespace }),
    );
  }

  /** Creates the Lease; false when one of that name exists (409). */
  async createLease(lease: ClusterLease): Promise<boolean> {
    const made = await this.tolerate(`create ${this.where('lease', lease.metadata?.name)}`, [409], null, () =>
      this.coordination.createNamespacedLease({ namespace: this.namespace, body: lease as V1Lease }),
    );
    return made !== null;
  }

  /** Replaces the Lease at the resourceVersion it carries; null when that version is no longer current (409). */
  async replaceLease(lease: ClusterLease): Promise<ClusterLease | null> {
    const name = lease.metadata?.name ?? '';
    return this.tolerate(`replace ${this.where('lease', name)}`, [409], null, () =>
      this.coordination.replaceNamespacedLease({ name, namespace: this.namespace, body: lease as V1Lease }),
    );
  }

  async createConfigMap(configMap: ClusterConfigMap): Promise<boolean> {
    const made = await this.tolerate(`create ${this.where('configmap', configMap.metadata?.name)}`, [409], null, () =>
      this.core.createNamespacedConfigMap({ namespace: this.namespace, body: configMap as V1ConfigMap }),
    );
    return made !== null;
  }

  /** Creates the ConfigMap, or replaces the one of that name (at its current resourceVersion). */
  async upsertConfigMap(configMap: ClusterConfigMap): Promise<'created' | 'updated'> {
    const name = configMap.metadata?.name ?? '';
    if (await this.createConfigMap(configMap)) return 'created';
    // Optimistic concurrency: replace at the version just read; a concurrent writer makes us read again.
    for (let attempt = 1; ; attempt++) {
      const current = await this.getConfigMap(name);
      if (!current) {
        if (await this.createConfigMap(configMap)) return 'created';
        continue;
      }
      const body = {
        ...configMap,
        metadata: { ...configMap.metadata, resourceVersion: current.metadata?.resourceVersion },
      } as V1ConfigMap;
      const replaced = await this.tolerate(
        `replace ${this.where('configmap', name)}`,
        attempt < 3 ? [409] : [],
        null,
        () => this.core.replaceNamespacedConfigMap({ name, namespace: this.namespace, body }),
      );
      if (replaced) return 'updated';
    }
  }

  // --- Events

  /** Records an Event; false when an Event of that name exists already (it was recorded before). */
  async createEvent(event: ClusterEvent): Promise<boolean> {
    const made = await this.tolerate(`create ${this.where('event', event.metadata?.name)}`, [409], null, () =>
      this.core.createNamespacedEvent({ namespace: this.namespace, body: event as CoreV1Event }),
    );
    return made !== null;
  }

  // --- Pods

  async listPods(labelSelector: string): Promise<ClusterPod[]> {
    const list = await this.call(`list ${this.where('pods')} (${labelSelector})`, () =>
      this.core.listNamespacedPod({ namespace: this.namespace, labelSelector }),
    );
    return list.items;
  }

  /** A pod's log (of `container`, needed when the pod has more than one). */
  async podLog(name: string, container?: string): Promise<string> {
    return this.call(`read the log of ${this.where('pod', name)}`, () =>
      this.core.readNamespacedPodLog({ name, namespace: this.namespace, container }),
    );
  }
}
