// Stage 3's `pubsub` Phase 4 mode: Phase 4 runs in subscribers of Phase 3's completion messages, and Stage 3
// waits until run history shows Phase 4 done for the date, with a timeout and no fixed sleep.
//
// "Done" is read from run history only: every Phase 4 processor's latest run of the date succeeded and
// finished no earlier than the date's last Phase 3 run. A Phase 4 run older than Phase 3 describes inputs that
// have since been replaced, so it does not count (a re-run of Phase 3 asks for Phase 4 again). The Stage 3 pod
// and the subscribers compare finish times written by their own clocks: the skew between them must stay below
// the time from Phase 3's commit to the end of a Phase 4 run (seconds), which NTP-synced nodes give.

import type { Logger } from 'pino';
import { CheckData, CheckedWarehouse } from '../checks/data.js';
import { type DateRunResult, type ProcessorFailure, runInOneCommit } from '../dateRun.js';
import { type IsoDate, isIsoDate, sortableTime } from '../dates.js';
import { BadInputError, messageOf, ProcessingError } from '../errors.js';
import { processorsOfPhase } from '../pipeline/definition.js';
import type { PipelinePorts } from '../pipeline/processor.js';
import { locateDate, requireDateInSeason } from '../pipeline/seasons.js';
import {
  type EventBus,
  type EventHandler,
  type ReceivedEvent,
  TOPIC_PHASE3_COMPLETE,
  TOPIC_PHASE4_COMPLETE,
} from '../ports/events.js';
import type { Warehouse } from '../ports/warehouse.js';
import { phaseProcessors } from '../processors.js';
import type { RunOptions } from '../runner.js';
import { type LatestRun, latestRuns, type Trigger } from '../runs/history.js';

/** The subscription the Phase 4 subscribers share on nba-phase3-analytics-complete. */
export const PHASE4_SUBSCRIPTION = `${TOPIC_PHASE3_COMPLETE}-phase4`;

const PHASE3_NAMES = processorsOfPhase(3).map((d) => d.name);
const PHASE4_NAMES = processorsOfPhase(4).map((d) => d.name);

/** Why a Phase 4 processor does not count as done for a date. */
export type Phase4Gap =
  | { readonly processor: string; readonly state: 'no_run' }
  | { readonly processor: string; readonly state: 'older_than_phase3'; readonly finishedAt: string }
  | { readonly processor: string; readonly state: 'failed' | 'blocked'; readonly error: string | null };

/** Where a date's Phase 4 stands in run history. */
export interface Phase4Progress {
  readonly date: IsoDate;
  /** Every Phase 3 processor's latest run of the date succeeded. */
  readonly phase3Complete: boolean;
  /** When the date's last Phase 3 run finished, as run history writes it; null without Phase 3 runs. */
  readonly phase3FinishedAt: string | null;
  /** Phase 3 is complete and no Phase 4 processor has a gap. */
  readonly done: boolean;
  readonly gaps: readonly Phase4Gap[];
}

function describeGap(gap: Phase4Gap): string {
  switch (gap.state) {
    case 'no_run':
      return `${gap.processor} (no run)`;
    case 'older_than_phase3':
      return `${gap.processor} (its latest run, ${gap.finishedAt}, is older than Phase 3's)`;
    default:
      return `${gap.processor} (${gap.state}: ${gap.error ?? 'no message'})`;
  }
}

/** Reads the date's latest Phase 3-4 runs and says whether Phase 4 is done, and if not, what is missing. */
export async function phase4Progress(warehouse: Warehouse, date: IsoDate): Promise<Phase4Progress> {
  // Straight from the warehouse, never through a checks cache: the subscribers write from other processes.
  const runs = await latestRuns(warehouse, { start: date, end: date }, [3, 4]);
  const latest = new Map<string, LatestRun>(runs.map((r) => [r.processorName, r]));
  const phase3 = PHASE3_NAMES.map((n) => latest.get(n));
  const phase3Complete = phase3.every((r) => r?.status === 'success');
  // Finish times are compared as times (the printed strings drop a fraction's trailing zeros).
  const phase3FinishedAt = phase3.reduce<string | null>(
    (max, r) => (r && (max === null || sortableTime(r.finishedAt) > sortableTime(max)) ? r.finishedAt : max),
    null,
  );
  const gaps: Phase4Gap[] = [];
  for (const processor of PHASE4_NAMES) {
    const run = latest.get(processor);
    if (!run) gaps.push({ processor, state: 'no_run' });
    else if (phase3FinishedAt !== null && sortableTime(run.finishedAt) < sortableTime(phase3FinishedAt)) {
      gaps.push({ processor, state: 'older_than_phase3', finishedAt: run.finishedAt });
    } else if (run.status !== 'success') gaps.push({ processor, state: run.status, error: run.errorMessage });
  }
  return { date, phase3Complete, phase3FinishedAt, done: phase3Complete && gaps.length === 0, gaps };
}

/** Stage 3 could not see Phase 4 done for a date: it timed out, or a subscriber's Phase 4 run was blocked. */
export class Phase4WaitError extends ProcessingError {
  readonly date: IsoDate;
  readonly reason: 'timeout' | 'blocked';
  /** For Stage 3's summary: `phase4_timeout` or `phase4_blocked`. */
  readonly check: string;
  /** The first Phase 4 processor not done. */
  readonly processor: string;
  readonly gaps: readonly Phase4Gap[];

  constructor(date: IsoDate, reason: 'timeout' | 'blocked', gaps: readonly Phase4Gap[], waitedMs: number) {
    const missing = gaps.map(describeGap).join(', ');
    super(
      reason === 'timeout'
        ? `Phase 4 of ${date} is not done after waiting ${waitedMs} ms (phase4Mode pubsub): still missing ${missing}. ` +
            `Phase 4 runs in the subscribers of ${TOPIC_PHASE3_COMPLETE} (jobs/phase4-subscriber, subscription ` +
            `${PHASE4_SUBSCRIPTION}): are they running, and what do their logs say about ${date}?`
        : `Phase 4 of ${date} was blocked in its subscriber (phase4Mode pubsub): ${missing}`,
      { transient: reason === 'timeout' },
    );
    this.date = date;
    this.reason = reason;
    this.check = reason === 'timeout' ? 'phase4_timeout' : 'phase4_blocked';
    this.processor = gaps[0]?.processor ?? PHASE4_NAMES[0] ?? 'phase4';
    this.gaps = gaps;
  }
}

/**
 * Wakes a waiting Stage 3 as soon as a Phase 4 completion message for its date arrives, so it need not wait
 * for its next poll. Optional: without it the wait polls with backoff alone.
 */
export class Phase4Wakeups {
  private readonly waiting = new Map<IsoDate, Set<() => void>>();
  private stopSubscription: (() => Promise<void>) | undefined;

  /** Subscribes `subscription` (one per Stage 3 pod, e.g. `nba-phase4-precompute-complete-stage3-2021-22`). */
  static async start(events: EventBus, subscription: string): Promise<Phase4Wakeups> {
    const wakeups = new Phase4Wakeups();
    wakeups.stopSubscription = await events.subscribe(TOPIC_PHASE4_COMPLETE, subscription, async (event) => {
      const date = event.data.date;
      if (typeof date !== 'string') return;
      for (const wake of wakeups.waiting.get(date) ?? []) wake();
    });
    return wakeups;
  }

  /** Resolves after `ms`, or earlier when a Phase 4 completion for `date` arrives. */
  wait(date: IsoDate, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(date);
      if (!set) this.waiting.set(date, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(date) === waiters) this.waiting.delete(date);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  async stop(): Promise<void> {
    for (const waiters of this.waiting.values()) for (const wake of [...waiters]) wake();
    await this.stopSubscription?.();
  }
}

export interface AwaitPhase4Options {
  /** How long to wait for the date (config `phase4TimeoutMs`). */
  readonly timeoutMs: number;
  /** The first pause between reads of run history; each next pause doubles. @default 250 */
  readonly pollMs?: number;
  /** @default 5000 */
  readonly maxPollMs?: number;
  /** Wakes the wait when a Phase 4 completion for the date arrives. */
  readonly wakeups?: Phase4Wakeups;
  /** @default Date.now */
  readonly now?: () => number;
  /** How a pause is waited; tests inject one. @default wakeups.wait, else setTimeout */
  readonly sleep?: (date: IsoDate, ms: number) => Promise<void>;
}

export type Phase4Wait =
  | { readonly ok: true; readonly progress: Phase4Progress; readonly waitedMs: number; readonly polls: number }
  | { readonly ok: false; readonly error: Phase4WaitError; readonly progress: Phase4Progress };

/**
 * Waits until run history shows Phase 4 done for the date (after its Phase 3 committed and published), reading
 * it with growing pauses: 250 ms, 500 ms, ... up to 5 s. Fails at once when a Phase 4 run newer than Phase 3
 * was blocked by its defensive checks (the subscriber's redeliveries cannot fix the data), and after
 * `timeoutMs` otherwise; a failed run is waited through, since its message is redelivered.
 */
export async function awaitPhase4(
  warehouse: Warehouse,
  date: IsoDate,
  options: AwaitPhase4Options,
): Promise<Phase4Wait> {
  const now = options.now ?? Date.now;
  const sleep =
    options.sleep ??
    ((d: IsoDate, ms: number) =>
      options.wakeups ? options.wakeups.wait(d, ms) : new Promise<void>((r) => setTimeout(r, ms)));
  const started = now();
  const deadline = started + options.timeoutMs;
  let pause = options.pollMs ?? 250;
  const maxPause = options.maxPollMs ?? 5000;
  for (let polls = 1; ; polls++) {
    const progress = await phase4Progress(warehouse, date);
    if (progress.done) return { ok: true, progress, waitedMs: now() - started, polls };
    const blocked = progress.gaps.filter((g) => g.state === 'blocked');
    if (blocked.length > 0) {
      return { ok: false, error: new Phase4WaitError(date, 'blocked', blocked, now() - started), progress };
    }
    const left = deadline - now();
    if (left <= 0) {
      return { ok: false, error: new Phase4WaitError(date, 'timeout', progress.gaps, now() - started), progress };
    }
    await sleep(date, Math.min(pause, left));
    pause = Math.min(pause * 2, maxPause);
  }
}

/** Phase 4 for one date, in one commit (the feature store reads the cache and factors of the same batch). */
export function runPhase4(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  options: RunOptions,
): Promise<DateRunResult> {
  return runInOneCommit(ports, log, date, phaseProcessors(4), options);
}

export interface RemotePhase4RunOptions extends RunOptions {
  readonly phase4: AwaitPhase4Options;
}

/**
 * Stage 3's step for a date in `pubsub` mode, in place of `runPhases3And4`: Phase 3 committed in one batch and
 * its completions published to nba-phase3-analytics-complete (whatever `skipDownstreamTrigger` says: here the
 * publish is the hand-over), then a wait until run history shows Phase 4 done. `rows` has Phase 3's rows only.
 */
export async function runPhase3WithRemotePhase4(
  ports: PipelinePorts,
  log: Logger,
  date: IsoDate,
  options: RemotePhase4RunOptions,
): Promise<DateRunResult> {
  const { phase4, ...runOptions } = options;
  const phase3 = await runInOneCommit(ports, log, date, phaseProcessors(3), {
    ...runOptions,
    skipDownstreamTrigger: false,
  });
  if (!phase3.ok) return phase3;
  const rows = phase3.rows;
  const failures = phase3.failures;
  const wait = await awaitPhase4(ports.warehouse, date, phase4);
  if (!wait.ok) {
    log.error({ err: wait.error, date, gaps: wait.error.gaps }, 'phase 4 not done');
    return { date, ok: false, failures: [{ processor: wait.error.processor, error: wait.error, runId: '' }], rows };
  }
  log.info({ date, waitedMs: wait.waitedMs, polls: wait.polls }, 'phase 4 done (pubsub)');
  return { date, ok: true, failures, rows };
}

/**
 * Whether a Phase 4 run of the date read an input that has changed since, read fresh from run history (other
 * processes write it). A run stale only because a Phase 3 run it read is stale is not run again here: it
 * would read the same stale rows; Stage 3 recomputes from that Phase 3 date.
 */
async function phase4Stale(warehouse: Warehouse, date: IsoDate): Promise<boolean> {
  const { season } = requireDateInSeason(date);
  const stale = await new CheckData(warehouse).staleRuns(season.label);
  return stale.some((s) => s.date === date && s.cause === 'input' && PHASE4_NAMES.includes(s.processor));
}

export interface Phase4SubscriberOptions {
  /** What run history records as the runs' trigger. @default { command: 'phase4-subscriber', stage: 'stage3' } */
  readonly trigger?: Trigger;
  /** @default true */
  readonly strictMode?: boolean;
}

/** What the handler did with one message. */
export type Phase4HandlerOutcome = 'ran' | 'already_done' | 'phase3_incomplete' | 'not_a_success';

/**
 * The handler for nba-phase3-analytics-complete: runs Phase 4 for the message's date and resolves (ack) only
 * after it succeeded; throws (nack, redelivered) when it failed. Phase 3 publishes one message per processor,
 * three per date: messages of one date are handled one after another, and each first reads run history, so
 * Phase 4 runs once the date's Phase 3 is complete and not again for a redelivery or a sibling message. Across
 * subscriber replicas the same date may run twice at worst, which its date-replacing commits make harmless.
 */
export function phase4Handler(
  ports: PipelinePorts,
  log: Logger,
  options: Phase4SubscriberOptions = {},
  onOutcome?: (date: IsoDate, outcome: Phase4HandlerOutcome, event: ReceivedEvent) => void,
): EventHandler {
  const trigger = options.trigger ?? { command: 'phase4-subscriber', stage: 'stage3' };
  const chains = new Map<IsoDate, Promise<unknown>>();

  const handleDate = async (date: IsoDate, event: ReceivedEvent, msgLog: Logger): Promise<Phase4HandlerOutcome> => {
    const progress = await phase4Progress(ports.warehouse, date);
    if (!progress.phase3Complete) {
      // A processor run on its own published early; the date's last Phase 3 message brings it back.
      msgLog.info('phase 3 of the date is not complete: nothing to do yet');
      return 'phase3_incomplete';
    }
    // Done by time (Phase 4 ran after Phase 3) and, for a message that carries data versions, current: a Phase 4
    // run that read a corrected input since is run again (core/runs/versions.ts).
    if (progress.done && !(event.data.fingerprint !== undefined && (await phase4Stale(ports.warehouse, date)))) {
      msgLog.info('phase 4 of the date is already done');
      return 'already_done';
    }
    // A cache of the checks' reads for this date only: other processes write between messages.
    const fresh = { ...ports, warehouse: new CheckedWarehouse(ports.warehouse) };
    const result = await runPhase4(fresh, msgLog, date, {
      trigger,
      strictMode: options.strictMode ?? true,
      attempt: event.deliveryAttempt,
    });
    if (!result.ok) {
      const f = result.failures[0] as ProcessorFailure;
      throw new ProcessingError(`Phase 4 of ${date} failed in ${f.processor}: ${messageOf(f.error)}`, {
        transient: true,
        cause: f.error,
      });
    }
    msgLog.info({ rows: result.rows }, 'phase 4 done');
    return 'ran';
  };

  return async (event) => {
    const { date, success, processor } = event.data;
    const msgLog = log.child({ messageId: event.id, deliveryAttempt: event.deliveryAttempt, date, processor });
    if (typeof date !== 'string' || !isIsoDate(date) || !locateDate(date)) {
      // Redelivery cannot fix it: after the last attempt it goes to the dead-letter topic for a person.
      const error = new BadInputError(
        `message ${event.id} on ${event.topic} has no game date of a season in its body: ${JSON.stringify(event.data).slice(0, 200)}`,
      );
      msgLog.error({ err: error }, 'bad message');
      throw error;
    }
    if (success !== true) {
      msgLog.info('not a success: no phase 4 to run');
      onOutcome?.(date, 'not_a_success', event);
      return;
    }
    const previous = chains.get(date) ?? Promise.resolve();
    const mine = previous.then(
      () => handleDate(date, event, msgLog),
      () => handleDate(date, event, msgLog),
    );
    chains.set(date, mine);
    try {
      const outcome = await mine;
      onOutcome?.(date, outcome, event);
    } catch (err) {
      msgLog.error({ err }, 'phase 4 failed: the message is nacked and comes back');
      throw err;
    } finally {
      if (chains.get(date) === mine) chains.delete(date);
    }
  };
}

/** Subscribes the Phase 4 handler to nba-phase3-analytics-complete; returns the function that stops it. */
export function startPhase4Subscriber(
  ports: PipelinePorts,
  log: Logger,
  options: Phase4SubscriberOptions & { readonly subscription?: string } = {},
): Promise<() => Promise<void>> {
  return ports.events.subscribe(
    TOPIC_PHASE3_COMPLETE,
    options.subscription ?? PHASE4_SUBSCRIPTION,
    phase4Handler(ports, log, options),
  );
}
