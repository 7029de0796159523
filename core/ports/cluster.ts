// The cluster port: the Kubernetes calls the controller and the CLI's cluster mode make, in one namespace, over
// plain object types holding the fields this project reads (a written object travels whole, whatever its type
// lists). The adapter over @kubernetes/client-node is core/kubernetes/kube.ts; nothing else imports the SDK.

/** metadata of any object. Timestamps are Dates, as the client parses them. */
export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: Date;
  readonly labels?: { readonly [key: string]: string };
  readonly annotations?: { readonly [key: string]: string };
}

export interface ClusterEnvVar {
  readonly name: string;
  readonly value?: string;
}

export interface ClusterContainer {
  readonly name: string;
  readonly image?: string;
  readonly env?: readonly ClusterEnvVar[];
  readonly resources?: unknown;
}

export interface ClusterPodSpec {
  readonly containers: readonly ClusterContainer[];
  readonly serviceAccountName?: string;
  readonly restartPolicy?: string;
}

/** A batch/v1 Job. */
export interface ClusterJob {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
  readonly spec?: {
    readonly completions?: number;
    readonly backoffLimit?: number;
    readonly activeDeadlineSeconds?: number;
    readonly template?: { readonly spec?: ClusterPodSpec };
  };
  readonly status?: {
    readonly conditions?: readonly {
      readonly type: string;
      readonly status: string;
      readonly reason?: string;
      readonly message?: string;
      readonly lastTransitionTime?: Date;
    }[];
    readonly completionTime?: Date;
    readonly completedIndexes?: string;
    readonly failedIndexes?: string;
    readonly succeeded?: number;
    readonly failed?: number;
    readonly active?: number;
  };
}

/** A v1 ConfigMap. */
export interface ClusterConfigMap {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
  readonly data?: { readonly [key: string]: string };
}

/** A coordination.k8s.io/v1 Lease, as leader election uses it. */
export interface ClusterLease {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
  readonly spec?: {
    readonly holderIdentity?: string;
    readonly leaseDurationSeconds?: number;
    /** A Date from the client library, an RFC 3339 string in raw JSON. */
    readonly acquireTime?: Date | string;
    readonly renewTime?: Date | string;
    readonly leaseTransitions?: number;
  };
}

/** A v1 Pod, as far as its logs and how it ended go. */
export interface ClusterPod {
  readonly metadata?: ObjectMeta;
  readonly spec?: ClusterPodSpec;
  readonly status?: {
    readonly phase?: string;
    /** `DisruptionTarget`: the pod was evicted or preempted, its attempt ignored by the pod failure policy. */
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
    readonly containerStatuses?: readonly {
      readonly name: string;
      readonly state?: {
        readonly terminated?: { readonly exitCode: number; readonly reason?: string; readonly message?: string };
      };
    }[];
  };
}

/** A core/v1 Event about an object. */
export interface ClusterEvent {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
  readonly involvedObject: {
    readonly apiVersion?: string;
    readonly kind?: string;
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
  };
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly source?: { readonly component?: string };
  readonly reportingComponent?: string;
  readonly reportingInstance?: string;
  readonly firstTimestamp?: Date;
  readonly lastTimestamp?: Date;
  readonly count?: number;
}

/**
 * Jobs listed, then watched: relisted when the watch expires (410 Gone), resumed after a normal end. `list` is
 * what it holds now; an `error` stops it until `start` is called again.
 */
export interface JobInformer {
  on(verb: 'add' | 'update' | 'delete', cb: (job: ClusterJob) => void): void;
  on(verb: 'error', cb: (err: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  list(namespace?: string): readonly ClusterJob[];
  get(name: string, namespace?: string): ClusterJob | undefined;
}

/**
 * The calls, in one namespace. "Already exists" and "not found" are values; any other failure is an error
 * naming the call, the object and the API server's message.
 */
export interface Cluster {
  readonly namespace: string;
  /** The API server, for messages. */
  readonly server: string;

  listJobs(labelSelector?: string): Promise<ClusterJob[]>;
  getJob(name: string): Promise<ClusterJob | null>;
  /** `created: false` when a Job of that name exists already. */
  createJob(job: ClusterJob): Promise<{ created: boolean; job: ClusterJob | null }>;
  /** `onList` is told how many Jobs each list found. */
  jobInformer(labelSelector: string, onList?: (count: number) => void): JobInformer;

  getConfigMap(name: string): Promise<ClusterConfigMap | null>;
  listConfigMaps(labelSelector: string): Promise<ClusterConfigMap[]>;
  /** False when a ConfigMap of that name exists already. */
  createConfigMap(configMap: ClusterConfigMap): Promise<boolean>;
  /** Creates it, or replaces the one of that name. */
  upsertConfigMap(configMap: ClusterConfigMap): Promise<'created' | 'updated'>;

  /** False when an Event of that name exists already (it was recorded before). */
  createEvent(event: ClusterEvent): Promise<boolean>;

  listPods(labelSelector: string): Promise<ClusterPod[]>;
  /** A pod's log (of `container`, needed when the pod has more than one). */
  podLog(name: string, container?: string): Promise<string>;
}
