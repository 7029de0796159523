// The controller loop: the Jobs listed then watched (relisted on 410 Gone, the watch restarted after an
// error), and on every change, and every resync period, one pass: observe -> reconcile -> act, through the
// Kubernetes executor (executor.ts). Level-triggered: a pass looks at the whole state, never at the event that
// woke it, so missed events, a relist or a restart of the controller change nothing.

import { messageOf } from '../core/errors.js';
import { SEASON_LABEL } from '../core/jobs/spec.js';
import { JOB_SELECTOR } from '../core/kubernetes/observe.js';
import { type Action, type ActionKind, reconcile } from '../core/kubernetes/reconcile.js';
import type { JobInformer } from '../core/ports/cluster.js';
import type { ActPorts } from './act.js';
import { KubeExecutor } from './executor.js';
import { ControllerMetrics } from './metrics.js';
import { jobEvent } from './reports.js';

export interface ControllerOptions extends ActPorts {
  /** A pass at least this often even without events. @default 60000 */
  readonly resyncMs?: number;
  /** Events arriving within this time share one pass. @default 200 */
  readonly debounceMs?: number;
  /** First delay before retrying a failed pass or restarting a failed watch; doubled up to maxRetryMs. @default 1000 */
  readonly retryMs?: number;
  /** @default 30000 */
  readonly maxRetryMs?: number;
  /** Whether this controller may act now (it holds the leader Lease). @default always */
  readonly leading?: () => boolean;
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
  /** When the loop last made progress: a pass began or observed, an action began or ended, a warehouse call of an action ended. */
  private lastBeat: number | null = null;
  /** The action in progress, for /healthz. */
  private doing: string | null = null;
  /** Seasons whose last action failed: how often in a row, when to try again, and why. */
  private readonly seasonFailures = new Map<string, { failures: number; retryAt: number; error: string }>();
  private idleWaiters: (() => void)[] = [];

  constructor(options: ControllerOptions) {
    this.options = options;
    // A long action (a gate or a validation on BigQuery can take many minutes) shows its progress through
    // the warehouse calls it makes: each one that ends is a heartbeat.
    const ports = { ...options, warehouse: beating(options.warehouse, () => this.beat()) };
    this.executor = new KubeExecutor(ports, () => [...(this.informer?.list(options.kube.namespace) ?? [])]);
  }

  private clock(): number {
    return this.options.now().getTime();
  }

  private beat(): void {
    this.lastBeat = this.clock();
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
    this.beat();
    const state = await this.executor.observe();
    this.lastObservedAt = this.clock();
    this.beat();
    this.metrics.observed(state);
    const actions = reconcile(state);
    // A problem that went away is forgotten, so that it is logged again if it comes back.
    const standing = new Set(actions.flatMap((a) => (a.kind === 'warn' ? [a.subject] : [])));
    for (const subject of this.warned.keys()) if (!standing.has(subject)) this.warned.delete(subject);
    const failedNow = new Set<string>();
    for (const action of actions) {
      if (this.stopped) return;
      if (this.options.leading && !this.options.leading()) {
        this.log.warn({ pending: action.kind }, 'not holding the leader lease: acting on nothing');
        return;
      }
      const season = action.season;
      // A season whose action failed waits out its pause, and stops for this pass at its first failure; the
      // other seasons go on (their actions do not depend on it).
      if (failedNow.has(season) || (this.seasonFailures.get(season)?.retryAt ?? 0) > this.clock()) continue;
      if (action.kind === 'warn') {
        if (this.warned.get(action.subject) === action.message) continue;
        this.warned.set(action.subject, action.message);
      }
      this.stats.actions[action.kind] = (this.stats.actions[action.kind] ?? 0) + 1;
      // The same words `backfill run` prints for the same decision (a warning is logged by act itself).
      if (action.kind !== 'warn') this.log.info({ decision: action.kind, season: action.season }, action.why);
      this.doing = `${action.kind} ${season}`;
      this.beat();
      try {
        await this.executor.act(action);
      } catch (err) {
        failedNow.add(season);
        await this.seasonFailed(action, err);
        continue;
      } finally {
        this.doing = null;
        this.beat();
      }
      this.seasonFailures.delete(season);
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

  /**
   * An action that failed (a plan that differs between the image and Git, a warehouse that refused an append):
   * logged, counted, told as a Warning Event on the season's newest Job, and retried for that season alone
   * after a pause that doubles with each failure in a row.
   */
  private async seasonFailed(action: Action, err: unknown): Promise<void> {
    const season = action.season;
    const failures = (this.seasonFailures.get(season)?.failures ?? 0) + 1;
    const delay = this.backoff(failures);
    const error = messageOf(err);
    this.seasonFailures.set(season, { failures, retryAt: this.clock() + delay, error });
    this.metrics.actionFailed(action.kind, season);
    this.log.error(
      { season, action: action.kind, err: error, failures, retryInMs: delay },
      `${action.kind} for ${season} failed; the other seasons go on, this one is tried again later`,
    );
    const job = this.newestJobOf(season);
    if (job) {
      const event = jobEvent({
        name: `${job.name}.action-failed.${failures}.${this.clock().toString(36)}`,
        namespace: this.options.kube.namespace,
        job,
        type: 'Warning',
        reason: 'ActionFailed',
        message: `${action.kind} for ${season} failed (${failures} in a row; next try in ${Math.round(delay / 1000)} s): ${error}`,
        now: this.options.now(),
        instance: this.options.instance,
      });
      await this.options.kube.createEvent(event).catch((e: unknown) => {
        this.log.warn({ season, err: messageOf(e) }, 'could not record the failure as an Event');
      });
    }
    setTimeout(() => this.trigger(`retry ${season}`), delay).unref();
  }

  /** The season's most recently created Job (Stage 1, retry or Stage 3), for its Events. */
  private newestJobOf(season: string): { name: string; uid: string } | null {
    const jobs = (this.informer?.list(this.options.kube.namespace) ?? []).filter(
      (j) => j.metadata?.labels?.[SEASON_LABEL] === season && j.metadata?.name && j.metadata?.uid,
    );
    jobs.sort((a, b) =>
      String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')),
    );
    const newest = jobs.at(-1)?.metadata;
    return newest ? { name: newest.name as string, uid: newest.uid as string } : null;
  }

  /** Seasons waiting to retry a failed action, with why (for /healthz and tests). */
  failingSeasons(): Record<string, string> {
    return Object.fromEntries([...this.seasonFailures].map(([season, f]) => [season, f.error]));
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

  /**
   * Healthy once the Jobs were listed and the loop made progress recently: a pass, an action, or a warehouse
   * call of a long action (a gate or a validation) ended within 3 resync periods. How long one pass takes does
   * not matter, so a long gate is not a reason to restart the controller; a call that hangs is.
   */
  health(now = this.clock()): { ok: boolean; detail: string } {
    if (this.stopped) return { ok: false, detail: 'stopped' };
    if (!this.synced) return { ok: false, detail: 'jobs not listed yet' };
    const staleMs = 3 * (this.options.resyncMs ?? 60_000);
    if (this.lastObservedAt === null || this.lastBeat === null) {
      return this.passFailures > 0
        ? { ok: false, detail: 'no pass has succeeded yet' }
        : { ok: true, detail: 'starting' };
    }
    const age = now - this.lastBeat;
    const doing = this.doing ? `; running ${this.doing}` : '';
    const failing = Object.keys(this.failingSeasons());
    const waiting = failing.length > 0 ? `; retrying ${failing.join(', ')}` : '';
    if (age > staleMs) return { ok: false, detail: `no progress for ${Math.round(age / 1000)} s${doing}` };
    return {
      ok: true,
      detail: `ok: ${this.stats.passes} passes, last progress ${Math.round(age / 1000)} s ago${doing}${waiting}`,
    };
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

/**
 * The object with every method that returns a promise wrapped to call `beat` when it settles: the heartbeat of
 * a long action is its calls ending, one after another.
 */
function beating<T extends object>(target: T, beat: () => void): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = value.apply(obj, args);
        if (result instanceof Promise) return result.finally(beat);
        return result;
      };
    },
  });
}
