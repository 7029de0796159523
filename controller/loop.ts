// The controller loop: the Jobs listed then watched (relisted on 410 Gone, the watch restarted after an
// error), and on every change, and every resync period, one pass: observe -> reconcile -> act, through the
// Kubernetes executor (executor.ts). Level-triggered: a pass looks at the whole state, never at the event that
// woke it, so missed events, a relist or a restart of the controller change nothing.

import { messageOf } from '../core/errors.js';
import { JOB_SELECTOR } from '../core/kubernetes/observe.js';
import { type ActionKind, reconcile } from '../core/kubernetes/reconcile.js';
import type { JobInformer } from '../core/ports/cluster.js';
import type { ActPorts } from './act.js';
import { KubeExecutor } from './executor.js';
import { ControllerMetrics } from './metrics.js';

export interface ControllerOptions extends ActPorts {
  /** A pass at least this often even without events. @default 60000 */
  readonly resyncMs?: number;
  /** Events arriving within this time share one pass. @default 200 */
  readonly debounceMs?: number;
  /** First delay before retrying a failed pass or restarting a failed watch; doubled up to maxRetryMs. @default 1000 */
  readonly retryMs?: number;
  /** @default 30000 */
  readonly maxRetryMs?: number;
}

export interface ControllerStats {
  passes: number;
  failedPasses: number;
  /** Job lists: 1 at start, one more per relist (after 410 Gone or a restarted watch). */
  lists: number;
  watchErrors: number;
  actions: Partial<Record<ActionKind, number>>;
}

export class Controller {
  readonly stats: ControllerStats = { passes: 0, failedPasses: 0, lists: 0, watchErrors: 0, actions: {} };
  /** This controller's Prometheus metrics (its own registry). */
  readonly metrics = new ControllerMetrics();
  private readonly options: ControllerOptions;
  private informer: JobInformer | null = null;
  private readonly executor: KubeExecutor;
  /** Warnings already logged, so that a standing problem is logged once, not every pass. */
  private readonly warned = new Map<string, string>();
  private stopped = true;
  private synced = false;
  private dirty = false;
  private pass: Promise<void> | null = null;
  private passTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private passFailures = 0;
  private watchFailures = 0;
  private lastObservedAt: number | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(options: ControllerOptions) {
    this.options = options;
    this.executor = new KubeExecutor(options, () => [...(this.informer?.list(options.kube.namespace) ?? [])]);
  }

  private get log() {
    return this.options.log;
  }

  private backoff(failures: number): number {
    return Math.min(this.options.maxRetryMs ?? 30_000, (this.options.retryMs ?? 1000) * 2 ** Math.max(0, failures - 1));
  }

  /** Lists the Jobs, starts watching them, and runs a first pass. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    const informer = this.options.kube.jobInformer(JOB_SELECTOR, (count) => {
      this.stats.lists++;
      this.synced = true;
      this.watchFailures = 0;
      this.log.info(
        { jobs: count, lists: this.stats.lists },
        this.stats.lists === 1
          ? 'jobs listed; watching'
          : 'jobs listed again (the watch expired or restarted); watching',
      );
      this.trigger('list');
    });
    for (const verb of ['add', 'update', 'delete'] as const) {
      informer.on(verb, (job) => {
        this.watchFailures = 0;
        this.trigger(`${verb} ${job.metadata?.name ?? ''}`);
      });
    }
    informer.on('error', (err) => this.onWatchError(err));
    this.informer = informer;
    await informer.start();
    const resyncMs = this.options.resyncMs ?? 60_000;
    this.resyncTimer = setInterval(() => this.trigger('resync'), resyncMs);
    this.resyncTimer.unref();
  }

  /** A failed list or watch: logged, and started again after a pause (it resumes, or relists if it must). */
  private onWatchError(err: unknown): void {
    // Stopping aborts the watch request, which reports as an error: not one.
    if (this.stopped) return;
    this.stats.watchErrors++;
    this.metrics.watchRestarted();
    this.watchFailures++;
    const delay = this.backoff(this.watchFailures);
    this.log.warn({ err: messageOf(err), retryInMs: delay }, 'job watch failed; restarting it');
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => {
      this.watchTimer = null;
      if (!this.stopped) void this.informer?.start();
    }, delay);
  }

  /** Asks for a pass (soon; events close together share one). */
  trigger(reason: string): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.pass || this.passTimer) return;
    this.log.debug({ reason }, 'pass requested');
    this.passTimer = setTimeout(() => {
      this.passTimer = null;
      this.pass = this.runPasses().finally(() => {
        this.pass = null;
        if (this.dirty && !this.stopped) this.trigger('more');
        else this.wakeIdle();
      });
    }, this.options.debounceMs ?? 200);
  }

  private async runPasses(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.onePass();
        this.passFailures = 0;
      } catch (err) {
        this.stats.failedPasses++;
        this.metrics.passFailed();
        this.passFailures++;
        const delay = this.backoff(this.passFailures);
        this.log.error({ err: messageOf(err), retryInMs: delay }, 'pass failed; trying again');
        // The retry waits out the pause even if events came in meanwhile: they are part of the next pass.
        this.dirty = false;
        setTimeout(() => this.trigger('retry'), delay).unref();
        return;
      }
    }
  }

  private async onePass(): Promise<void> {
    if (!this.synced) return;
    this.stats.passes++;
    this.metrics.passStarted();
    const state = await this.executor.observe();
    this.lastObservedAt = Date.now();
    this.metrics.observed(state);
    const actions = reconcile(state);
    // A problem that went away is forgotten, so that it is logged again if it comes back.
    const standing = new Set(actions.flatMap((a) => (a.kind === 'warn' ? [a.subject] : [])));
    for (const subject of this.warned.keys()) if (!standing.has(subject)) this.warned.delete(subject);
    for (const action of actions) {
      if (this.stopped) return;
      if (action.kind === 'warn') {
        if (this.warned.get(action.subject) === action.message) continue;
        this.warned.set(action.subject, action.message);
      }
      this.stats.actions[action.kind] = (this.stats.actions[action.kind] ?? 0) + 1;
      // The same words `backfill run` prints for the same decision (a warning is logged by act itself).
      if (action.kind !== 'warn') this.log.info({ decision: action.kind, season: action.season }, action.why);
      await this.executor.act(action);
      this.metrics.acted(action.kind);
      if (action.kind === 'runGate') {
        const gate = this.executor.gateOf(action.season);
        if (gate) this.metrics.gateRan(action.season, gate.result.passed);
        // A gate result is no change in the cluster, so no event will ask for the pass that publishes it.
        this.dirty = true;
      }
      // Reported once per Stage 3 Job (the report ConfigMap keeps later passes from reporting it again).
      if (action.kind === 'validate' || action.kind === 'reportStage3Failure')
        this.metrics.stage3Ended(action.season, action.summary);
    }
  }

  /** Resolves once no pass runs or waits (for tests and a clean stop). */
  idle(): Promise<void> {
    if (!this.pass && !this.passTimer) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Healthy once the Jobs were listed and a pass observed the cluster recently. */
  health(now = Date.now()): { ok: boolean; detail: string } {
    if (this.stopped) return { ok: false, detail: 'stopped' };
    if (!this.synced) return { ok: false, detail: 'jobs not listed yet' };
    const staleMs = 3 * (this.options.resyncMs ?? 60_000);
    if (this.lastObservedAt === null) {
      return this.passFailures > 0
        ? { ok: false, detail: 'no pass has succeeded yet' }
        : { ok: true, detail: 'starting' };
    }
    const age = now - this.lastObservedAt;
    if (age > staleMs) return { ok: false, detail: `last observation ${Math.round(age / 1000)} s ago` };
    return { ok: true, detail: `ok: ${this.stats.passes} passes, last ${Math.round(age / 1000)} s ago` };
  }

  /** Stops watching and waits for a pass in progress to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.passTimer, this.watchTimer]) if (t) clearTimeout(t);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.passTimer = this.watchTimer = this.resyncTimer = null;
    await this.informer?.stop();
    await this.pass;
    this.wakeIdle();
  }
}
