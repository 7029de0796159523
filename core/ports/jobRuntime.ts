// The job runtime port: runs an Indexed Job and reports its status in Kubernetes' terms.

import type { IndexedJob } from '../jobs/spec.js';

/** What happened to one index, attempt by attempt. */
export interface IndexRecord {
  readonly index: number;
  /** Exit code of each attempt (null when the pod was disrupted and its attempt ignored). */
  readonly exitCodes: readonly (number | null)[];
  /** Attempts that counted against backoffLimitPerIndex. */
  readonly failures: number;
  /**
   * `interrupted`: the run was asked to stop (SIGINT or SIGTERM) and this index's pod was terminated before it
   * finished. Not a failure of the date: the index is in neither completedIndexes nor failedIndexes, so the
   * next Stage 1 of the same dates runs it again.
   */
  readonly state: 'succeeded' | 'failed' | 'interrupted';
  /** Why it failed: BackoffLimitExceeded, FailIndex (pod failure policy) or DeadlineExceeded. */
  readonly reason?: string;
  /** Where a person reads this index's logs (a file, or a kubectl command). */
  readonly logs: string;
}

export interface JobCondition {
  /** `Suspended` (reason `Interrupted`): stopped on request, as a suspended Job stops: no new index, pods ended. */
  readonly type: 'Complete' | 'Failed' | 'FailureTarget' | 'SuccessCriteriaMet' | 'Suspended';
  readonly status: 'True';
  readonly reason?: string;
  readonly message?: string;
}

/** The fields of batch/v1 JobStatus that this project reads, plus the per-index records. */
export interface IndexedJobStatus {
  readonly jobName: string;
  readonly completedIndexes: string;
  readonly failedIndexes: string;
  readonly succeeded: number;
  readonly failed: number;
  readonly conditions: readonly JobCondition[];
  readonly startTime: string;
  readonly completionTime: string;
  readonly indexes: readonly IndexRecord[];
}

export interface IndexEvent {
  readonly index: number;
  readonly exitCode: number | null;
  /**
   * `succeeded` and `failed` are final; `retrying` and `disrupted` mean the index runs again; `interrupted`
   * means the run was asked to stop and this index will not finish in it.
   */
  readonly outcome: 'succeeded' | 'failed' | 'retrying' | 'disrupted' | 'interrupted';
}

export interface JobRunOptions {
  /**
   * Aborted to stop the job between indexes: no new index starts, running pods get SIGTERM, and the status is
   * returned as it then is (with a `Suspended` condition).
   */
  readonly signal?: AbortSignal;
}

export interface JobRuntime {
  readonly description: string;
  run(job: IndexedJob, onIndex?: (event: IndexEvent) => void, options?: JobRunOptions): Promise<IndexedJobStatus>;
  /** Where a person reads an index's logs. */
  logsOf(jobName: string, index: number): string;
}
