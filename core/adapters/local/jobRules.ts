// The local job runtime's rules as decisions without I/O, in the manner of the Job controller's
// pod_failure_policy.go: which pod failure policy rule an attempt matches; whether its index then succeeded,
// failed, is retried, or the attempt is ignored; when the active deadline has passed; the Job's conditions.

import { constants } from 'node:os';
import type { PodFailurePolicyRule } from '../../jobs/spec.js';
import type { JobCondition } from '../../ports/jobRuntime.js';

/** How one attempt (a pod) ended: its exit code, or the signal that killed it. */
export interface AttemptResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A pod killed by a signal reports 128 + the signal's number, as a container's exit code does. */
export function withSignalCode(r: AttemptResult): AttemptResult {
  if (r.exitCode !== null || !r.signal) return r;
  return { exitCode: 128 + (constants.signals[r.signal] ?? 0), signal: r.signal };
}

/**
 * Whether a rule matches a failed attempt: a DisruptionTarget rule matches a disrupted pod (and nothing else);
 * an exit code rule matches a non-zero exit code In (or NotIn) its values.
 */
export function ruleMatches(rule: PodFailurePolicyRule, r: AttemptResult, disrupted: boolean): boolean {
  if (rule.onPodConditions?.some((c) => c.type === 'DisruptionTarget')) return disrupted;
  if (rule.onExitCodes && r.exitCode !== null && r.exitCode !== 0) {
    const hit = rule.onExitCodes.values.includes(r.exitCode);
    return rule.onExitCodes.operator === 'In' ? hit : !hit;
  }
  return false;
}

/** What the runtime's index loop holds between attempts. */
export interface IndexCounts {
  /** Attempts counted as failures so far. */
  readonly failures: number;
  /** Disruptions ignored so far. */
  readonly ignored: number;
}

export interface IndexLimits {
  readonly rules: readonly PodFailurePolicyRule[];
  readonly backoffLimitPerIndex: number;
  /** Disruptions ignored per index before they count as failures. */
  readonly maxIgnoredDisruptions: number;
}

export type AttemptDecision =
  | { readonly kind: 'succeeded' }
  /** A disruption an Ignore rule matched: not counted, the index runs again. */
  | { readonly kind: 'ignored' }
  /** A counted failure within the backoff limit: the index runs again. */
  | { readonly kind: 'retry' }
  | {
      readonly kind: 'failed';
      readonly reason: 'PodFailurePolicy' | 'BackoffLimitExceeded';
      /** A FailJob rule matched: the whole Job fails, no new index starts. */
      readonly failJob: boolean;
    };

/**
 * The decision on one ended attempt, given the index's counts before it. Locally a SIGTERM from outside is what
 * an eviction is in the cluster, so it is a disruption while fewer than the maximum were ignored.
 */
export function decideAttempt(limits: IndexLimits, before: IndexCounts, r: AttemptResult): AttemptDecision {
  if (r.exitCode === 0) return { kind: 'succeeded' };
  const disrupted = r.signal === 'SIGTERM' && before.ignored < limits.maxIgnoredDisruptions;
  const rule = limits.rules.find((x) => ruleMatches(x, r, disrupted));
  if (rule?.action === 'Ignore') return { kind: 'ignored' };
  if (rule?.action === 'FailIndex' || rule?.action === 'FailJob') {
    return { kind: 'failed', reason: 'PodFailurePolicy', failJob: rule.action === 'FailJob' };
  }
  if (before.failures + 1 > limits.backoffLimitPerIndex) {
    return { kind: 'failed', reason: 'BackoffLimitExceeded', failJob: false };
  }
  return { kind: 'retry' };
}

/** The moment (ms) the active deadline passes, counted from the Job's start as the Job controller does. */
export function deadlineOf(startMs: number, activeDeadlineSeconds: number): number {
  return startMs + activeDeadlineSeconds * 1000;
}

/** Past the deadline from the moment it is reached (the Job controller's `duration >= allowedDuration`). */
export function pastDeadline(nowMs: number, deadlineMs: number): boolean {
  return nowMs >= deadlineMs;
}

/** What the Job's run came to, for its conditions. */
export interface JobOutcome {
  readonly completions: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Why the whole Job failed (DeadlineExceeded, PodFailurePolicy), if it did. */
  readonly jobFailedBy: string | undefined;
  /** Set when the Job was asked to stop: the reason it was given (a signal's name). */
  readonly stopped: { readonly reason: unknown } | null;
}

/**
 * The Job's conditions: Suspended when it was stopped with indexes not done; Failed (after FailureTarget) when
 * an index failed, the Job failed as a whole, or indexes were left undone; else Complete (after
 * SuccessCriteriaMet).
 */
export function jobConditions(o: JobOutcome): JobCondition[] {
  const unfinished = o.completions - o.succeeded - o.failed;
  if (o.stopped && unfinished > 0) {
    return [
      {
        type: 'Suspended',
        status: 'True',
        reason: 'Interrupted',
        message: `stopped on request (${String(o.stopped.reason ?? 'abort')}): ${unfinished} of ${o.completions} indexes not completed`,
      },
    ];
  }
  // A failed index is one not succeeded: `succeeded < completions` covers it.
  if (o.jobFailedBy || o.succeeded < o.completions) {
    const reason = o.jobFailedBy ?? 'FailedIndexes';
    return [
      { type: 'FailureTarget', status: 'True', reason },
      { type: 'Failed', status: 'True', reason, message: 'Job has failed indexes' },
    ];
  }
  return [
    { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached' },
    { type: 'Complete', status: 'True', reason: 'CompletionsReached' },
  ];
}
