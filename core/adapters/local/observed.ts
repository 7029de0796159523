// The local runs in the reconcile's terms: a Stage 1 Job of the local job runtime and a Stage 3 run in this
// process, observed as the controller observes their twins in the cluster. Pure conversions, so that the
// reconcile's table test covers the local executor's observations too.

import type { IsoDate } from '../../dates.js';
import type { ObservedJob, Stage3Termination } from '../../kubernetes/reconcile.js';
import type { IndexedJobStatus } from '../../ports/jobRuntime.js';
import type { Stage3Summary } from '../../stages/stage3.js';

/** The local Stage 1 Job, as the controller would observe it: the runtime's status is Kubernetes' already. */
export function observedStage1Job(status: IndexedJobStatus, season: string, dates: readonly IsoDate[]): ObservedJob {
  const logs: string[] = [];
  for (const r of status.indexes) logs[r.index] = r.logs;
  const terminal = status.conditions.some((c) => c.type === 'Complete' || c.type === 'Failed');
  return {
    name: status.jobName,
    // One Job per season and run: its name is enough to tell it apart here.
    uid: status.jobName,
    component: 'stage1',
    season,
    planConfigMap: status.jobName,
    completions: dates.length,
    createdAt: status.startTime,
    finishedAt: terminal ? status.completionTime : null,
    completedIndexes: status.completedIndexes,
    failedIndexes: status.failedIndexes,
    succeeded: status.succeeded,
    failed: status.failed,
    active: 0,
    conditions: status.conditions,
    indexLogs: logs,
  };
}

/** The local Stage 3 run as a finished single-pod Job whose termination message is the runner's summary. */
export function observedStage3Job(
  name: string,
  season: string,
  summary: Stage3Summary,
): { job: ObservedJob; termination: Stage3Termination } {
  const ok = summary.status === 'succeeded';
  return {
    job: {
      name,
      uid: name,
      component: 'stage3',
      season,
      planConfigMap: null,
      completions: 1,
      createdAt: '',
      finishedAt: '',
      completedIndexes: ok ? '0' : '',
      failedIndexes: null,
      succeeded: ok ? 1 : 0,
      failed: ok ? 0 : 1,
      active: 0,
      conditions: ok
        ? [{ type: 'Complete', status: 'True', reason: 'CompletionsReached' }]
        : [
            {
              type: 'Failed',
              status: 'True',
              reason: 'BackoffLimitExceeded',
              message: 'Job has reached the specified backoff limit',
            },
          ],
    },
    termination: {
      podName: name,
      exitCode: ok ? 0 : 1,
      reason: ok ? 'Completed' : 'Error',
      message: JSON.stringify(summary),
    },
  };
}
