// The local job runtime: runs an Indexed Job's own spec on this machine with Kubernetes' semantics:
// completions, parallelism, backoffLimitPerIndex, the pod failure policy, activeDeadlineSeconds, and a
// status with completedIndexes and failedIndexes in their compressed form. Asked to stop (an AbortSignal), it
// stops as a suspended Job does: no new index, running pods get SIGTERM, and the status is what was done.

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { formatIndexes } from '../../jobs/indexes.js';
import { INDEX_FAILURE_COUNT_ENV, type IndexedJob, JOB_PLAN_ENV } from '../../jobs/spec.js';
import type { IndexEvent, IndexedJobStatus, IndexRecord, JobRunOptions, JobRuntime } from '../../ports/jobRuntime.js';
import type { Warehouse } from '../../ports/warehouse.js';
import { serveWarehouse } from './ipcWarehouse.js';
import {
  type AttemptResult,
  deadlineOf,
  decideAttempt,
  type IndexLimits,
  jobConditions,
  pastDeadline,
  withSignalCode,
} from './jobRules.js';

export interface LocalJobRuntimeOptions {
  /** Where the container's command runs: the package root, as /app is in the image. */
  readonly cwd: string;
  /** Each job gets `<logDir>/jobs/<job name>/`, with one log file per index. */
  readonly logDir: string;
  /**
   * The warehouse the pods write to. A DuckDB file has one writer process, so the runtime holds it and
   * serves the pods over IPC; their BACKFILL_WAREHOUSE becomes `ipc:parent`.
   */
  readonly warehouse: Warehouse;
  /**
   * Variables set over the container's env: where files live on this machine. The job plan, a ConfigMap
   * volume in the cluster, is always `<job folder>/job-plan.json` here. @default {}
   */
  readonly envOverrides?: Readonly<Record<string, string>>;
  /**
   * A fresh process per attempt, as Kubernetes runs a pod. The default keeps `parallelism` warm processes,
   * started with the container's command and env, each running one index at a time, so that 600 dates do
   * not pay Node start-up and data loading 600 times. @default false
   */
  readonly podPerIndex?: boolean;
  /** Pause before an index's retry. @default 1000 */
  readonly retryDelayMs?: number;
  /** Disruptions ignored per index before they count as failures. @default 3 */
  readonly maxIgnoredDisruptions?: number;
  /** The clock (ms since the epoch): the Job's start, its deadline, its completion time. @default Date.now */
  readonly now?: () => number;
  /**
   * Calls `fn` after `ms` and returns what cancels it: the active deadline and the pause before a retry wait on
   * it, so that a test can end the deadline when it chooses. @default setTimeout
   */
  readonly setTimer?: (fn: () => void, ms: number) => () => void;
}

/** The real timer. */
function realTimer(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

/** One warm process: the container's command in worker mode. */
class Worker {
  private child: ChildProcess | undefined;
  private waiting: ((r: AttemptResult) => void) | undefined;

  constructor(private readonly start: () => ChildProcess) {}

  run(index: number, env: Record<string, string>, logFile: string): Promise<AttemptResult> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) this.spawn();
    const child = this.child as ChildProcess;
    return new Promise((resolve) => {
      this.waiting = resolve;
      child.send({ type: 'run', index, env, logFile });
    });
  }

  private spawn(): void {
    const child = this.start();
    child.on('message', (m: { type?: string; exitCode?: number }) => {
      if (m?.type === 'done' && this.waiting) {
        const done = this.waiting;
        this.waiting = undefined;
        done({ exitCode: m.exitCode ?? 1, signal: null });
      }
    });
    child.on('exit', (code, signal) => {
      if (this.waiting) {
        const done = this.waiting;
        this.waiting = undefined;
        done({ exitCode: code, signal });
      }
    });
    this.child = child;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child?.kill(signal);
  }

  stop(): void {
    if (this.child?.connected) this.child.disconnect();
  }
}

/** A pause that ends early when the job is asked to stop. */
function pause(ms: number, signal: AbortSignal | undefined, setTimer: typeof realTimer): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    let cancel = () => {};
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    cancel = setTimer(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class LocalJobRuntime implements JobRuntime {
  readonly description = 'local (Indexed Job semantics on this machine)';

  constructor(private readonly options: LocalJobRuntimeOptions) {}

  jobDir(jobName: string): string {
    return join(this.options.logDir, 'jobs', jobName);
  }

  logsOf(jobName: string, index: number): string {
    return join(this.jobDir(jobName), `index-${index}.log`);
  }

  async run(
    job: IndexedJob,
    onIndex: (event: IndexEvent) => void = () => {},
    options: JobRunOptions = {},
  ): Promise<IndexedJobStatus> {
    const { signal } = options;
    const spec = job.spec;
    const container = spec.template.spec.containers[0];
    if (!container) throw new Error(`job ${job.metadata.name}: no container`);
    if (spec.completionMode !== 'Indexed') throw new Error(`job ${job.metadata.name}: completionMode must be Indexed`);
    const name = job.metadata.name;
    mkdirSync(this.jobDir(name), { recursive: true });
    const now = this.options.now ?? Date.now;
    const setTimer = this.options.setTimer ?? realTimer;
    const startMs = now();
    const deadline = deadlineOf(startMs, spec.activeDeadlineSeconds);
    const retryDelayMs = this.options.retryDelayMs ?? 1000;
    const limits: IndexLimits = {
      rules: spec.podFailurePolicy.rules,
      backoffLimitPerIndex: spec.backoffLimitPerIndex,
      maxIgnoredDisruptions: this.options.maxIgnoredDisruptions ?? 3,
    };
    const n = spec.completions;

    const records: IndexRecord[] = [];
    let failedPods = 0;
    let jobFailedBy: string | undefined;
    const queue = Array.from({ length: n }, (_v, i) => i);
    const workers: Worker[] = [];
    const baseEnv = { ...this.baseEnv(container.env), [JOB_PLAN_ENV]: join(this.jobDir(name), 'job-plan.json') };
    const command = container.command.map((c, i) => (i === 0 && c === 'node' ? process.execPath : c));

    const livePods = new Set<ChildProcess>();
    const spawnPod = (env: Record<string, string>, stdio: number | 'ignore'): ChildProcess => {
      const child = spawn(command[0] as string, command.slice(1), {
        cwd: this.options.cwd,
        env,
        stdio: ['ignore', stdio, stdio, 'ipc'],
        // Its own process group, as a pod is apart from the shell: Ctrl-C reaches only this process, which then
        // stops the pods itself with SIGTERM. Otherwise the pods would die of the same SIGINT, and an attempt
        // that ended before this process saw the signal would count as a failure of its date.
        detached: true,
      });
      livePods.add(child);
      child.on('exit', () => livePods.delete(child));
      serveWarehouse(child, this.options.warehouse);
      return child;
    };

    const attempt = async (slot: number, index: number, failures: number): Promise<AttemptResult> => {
      const podEnv = { JOB_COMPLETION_INDEX: String(index), [INDEX_FAILURE_COUNT_ENV]: String(failures) };
      const logFile = this.logsOf(name, index);
      if (this.options.podPerIndex) {
        const fd = openSync(logFile, 'a');
        try {
          const child = spawnPod({ ...baseEnv, ...podEnv }, fd);
          return await new Promise<AttemptResult>((resolve) => {
            child.on('exit', (exitCode, signal) => resolve({ exitCode, signal }));
          });
        } finally {
          closeSync(fd);
        }
      }
      let worker = workers[slot];
      if (!worker) {
        const workerLog = join(this.jobDir(name), `worker-${slot}.log`);
        worker = new Worker(() => {
          const fd = openSync(workerLog, 'a');
          const child = spawnPod({ ...baseEnv, BACKFILL_LOCAL_WORKER: '1' }, fd);
          child.on('exit', () => closeSync(fd));
          return child;
        });
        workers[slot] = worker;
      }
      return worker.run(index, podEnv, logFile);
    };

    const runIndex = async (slot: number, index: number): Promise<void> => {
      const exitCodes: (number | null)[] = [];
      let failures = 0;
      let ignored = 0;
      // Asked to stop: the index is neither completed nor failed (its date's transaction never committed), so
      // it stays out of both index lists and the next Stage 1 of these dates runs it.
      const interrupted = (exitCode: number | null): void => {
        records.push({
          index,
          exitCodes,
          failures,
          state: 'interrupted',
          reason: 'Interrupted',
          logs: this.logsOf(name, index),
        });
        onIndex({ index, exitCode, outcome: 'interrupted' });
      };
      for (;;) {
        if (signal?.aborted) return interrupted(null);
        if (pastDeadline(now(), deadline) || jobFailedBy === 'DeadlineExceeded') {
          records.push({
            index,
            exitCodes,
            failures,
            state: 'failed',
            reason: 'DeadlineExceeded',
            logs: this.logsOf(name, index),
          });
          jobFailedBy ??= 'DeadlineExceeded';
          onIndex({ index, exitCode: null, outcome: 'failed' });
          return;
        }
        const r = withSignalCode(await attempt(slot, index, failures));
        if (r.exitCode === 0) {
          exitCodes.push(0);
          records.push({ index, exitCodes, failures, state: 'succeeded', logs: this.logsOf(name, index) });
          onIndex({ index, exitCode: 0, outcome: 'succeeded' });
          return;
        }
        if (signal?.aborted) {
          exitCodes.push(r.exitCode);
          return interrupted(r.exitCode);
        }
        const decision = decideAttempt(limits, { failures, ignored }, r);
        if (decision.kind === 'ignored') {
          exitCodes.push(null);
          ignored++;
          onIndex({ index, exitCode: null, outcome: 'disrupted' });
          continue;
        }
        exitCodes.push(r.exitCode);
        failures++;
        failedPods++;
        if (decision.kind === 'failed') {
          if (decision.failJob) jobFailedBy ??= 'PodFailurePolicy';
          records.push({
            index,
            exitCodes,
            failures,
            state: 'failed',
            reason: decision.reason,
            logs: this.logsOf(name, index),
          });
          onIndex({ index, exitCode: r.exitCode, outcome: 'failed' });
          return;
        }
        onIndex({ index, exitCode: r.exitCode, outcome: 'retrying' });
        await pause(retryDelayMs, signal, setTimer);
      }
    };

    const slots = Array.from({ length: Math.min(spec.parallelism, n) }, async (_v, slot) => {
      for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
        if (jobFailedBy === 'PodFailurePolicy' || signal?.aborted) break;
        await runIndex(slot, index);
      }
    });
    const cancelDeadline = setTimer(
      () => {
        jobFailedBy ??= 'DeadlineExceeded';
        for (const w of workers) w.kill('SIGKILL');
        for (const pod of livePods) pod.kill('SIGKILL');
      },
      Math.max(0, deadline - now()),
    );
    // Stop: start no new index, and end the running pods as the cluster ends a suspended Job's pods.
    const stop = () => {
      queue.length = 0;
      for (const pod of livePods) pod.kill('SIGTERM');
    };
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    try {
      await Promise.all(slots);
    } finally {
      cancelDeadline();
      signal?.removeEventListener('abort', stop);
      for (const w of workers) w?.stop();
    }

    records.sort((a, b) => a.index - b.index);
    const succeeded = records.filter((r) => r.state === 'succeeded').map((r) => r.index);
    const failed = records.filter((r) => r.state === 'failed').map((r) => r.index);
    const conditions = jobConditions({
      completions: n,
      succeeded: succeeded.length,
      failed: failed.length,
      jobFailedBy,
      stopped: signal?.aborted ? { reason: signal.reason } : null,
    });
    return {
      jobName: name,
      completedIndexes: formatIndexes(succeeded),
      failedIndexes: formatIndexes(failed),
      succeeded: succeeded.length,
      failed: failedPods,
      conditions,
      startTime: new Date(startMs).toISOString(),
      completionTime: new Date(now()).toISOString(),
      indexes: records,
    };
  }

  /**
   * A pod's environment is the container's env and nothing of this shell's BACKFILL_* settings, plus what
   * the machine needs to run Node (PATH, HOME), plus the runtime's overrides.
   */
  private baseEnv(env: IndexedJob['spec']['template']['spec']['containers'][number]['env']): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith('BACKFILL_') && k !== 'JOB_COMPLETION_INDEX') out[k] = v;
    }
    for (const e of env) {
      if (e.value !== undefined) out[e.name] = e.value;
      else if (e.name !== INDEX_FAILURE_COUNT_ENV)
        throw new Error(`env ${e.name}: only ${INDEX_FAILURE_COUNT_ENV} may come from the downward API`);
    }
    return { ...out, ...this.options.envOverrides };
  }
}
