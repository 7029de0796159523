// The local job runtime's rules as a table, without a pod: which pod failure policy rule matches, what an
// ended attempt does to its index, the active deadline, and the Job's conditions.

import { describe, expect, it } from 'vitest';
import {
  type AttemptDecision,
  type AttemptResult,
  deadlineOf,
  decideAttempt,
  type IndexCounts,
  type IndexLimits,
  type JobOutcome,
  jobConditions,
  pastDeadline,
  ruleMatches,
  withSignalCode,
} from '../core/adapters/local/jobRules.js';
import { buildStage1Job, type PodFailurePolicyRule } from '../core/jobs/spec.js';

const exit = (exitCode: number): AttemptResult => ({ exitCode, signal: null });
const killed = (signal: NodeJS.Signals): AttemptResult => ({ exitCode: null, signal });
/** A pod ended by SIGTERM, as the runtime sees it after withSignalCode. */
const SIGTERMED: AttemptResult = { exitCode: 143, signal: 'SIGTERM' };

const DISRUPTION: PodFailurePolicyRule = { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] };
const in2 = (action: PodFailurePolicyRule['action']): PodFailurePolicyRule => ({
  action,
  onExitCodes: { operator: 'In', values: [2] },
});
const NOT_IN_1_2: PodFailurePolicyRule = { action: 'FailJob', onExitCodes: { operator: 'NotIn', values: [1, 2] } };

describe('withSignalCode: a pod killed by a signal reports 128 + its number', () => {
  it.each([
    { name: 'an exit code is kept', r: exit(1), want: exit(1) },
    { name: 'exit 0 is kept', r: exit(0), want: exit(0) },
    { name: 'SIGTERM is 143', r: killed('SIGTERM'), want: { exitCode: 143, signal: 'SIGTERM' } },
    { name: 'SIGKILL is 137', r: killed('SIGKILL'), want: { exitCode: 137, signal: 'SIGKILL' } },
    {
      name: 'an exit code with a signal is kept',
      r: { exitCode: 3, signal: 'SIGTERM' },
      want: { exitCode: 3, signal: 'SIGTERM' },
    },
    {
      name: 'neither code nor signal stays unknown',
      r: { exitCode: null, signal: null },
      want: { exitCode: null, signal: null },
    },
  ] as { name: string; r: AttemptResult; want: AttemptResult }[])('$name', ({ r, want }) => {
    expect(withSignalCode(r)).toEqual(want);
  });
});

describe('ruleMatches: one pod failure policy rule against one failed attempt', () => {
  it.each([
    { name: 'DisruptionTarget matches a disrupted pod', rule: DISRUPTION, r: SIGTERMED, disrupted: true, want: true },
    {
      name: 'DisruptionTarget does not match a pod not disrupted',
      rule: DISRUPTION,
      r: SIGTERMED,
      disrupted: false,
      want: false,
    },
    {
      name: 'DisruptionTarget decides alone, whatever exit codes the rule also names',
      rule: { ...DISRUPTION, onExitCodes: { operator: 'In', values: [143] } },
      r: SIGTERMED,
      disrupted: false,
      want: false,
    },
    {
      name: 'another pod condition leaves the exit codes to decide',
      rule: {
        action: 'FailIndex',
        onPodConditions: [{ type: 'ConfigIssue' }],
        onExitCodes: { operator: 'In', values: [2] },
      },
      r: exit(2),
      disrupted: false,
      want: true,
    },
    { name: 'In [2] matches exit 2', rule: in2('FailIndex'), r: exit(2), disrupted: false, want: true },
    { name: 'In [2] does not match exit 1', rule: in2('FailIndex'), r: exit(1), disrupted: false, want: false },
    {
      name: 'In [2] matches exit 2 of a disrupted pod too',
      rule: in2('FailIndex'),
      r: exit(2),
      disrupted: true,
      want: true,
    },
    {
      name: 'In [0] never matches exit 0',
      rule: { action: 'FailIndex', onExitCodes: { operator: 'In', values: [0] } },
      r: exit(0),
      disrupted: false,
      want: false,
    },
    { name: 'NotIn [1,2] matches exit 3', rule: NOT_IN_1_2, r: exit(3), disrupted: false, want: true },
    { name: 'NotIn [1,2] does not match exit 2', rule: NOT_IN_1_2, r: exit(2), disrupted: false, want: false },
    { name: 'NotIn [1,2] does not match exit 0', rule: NOT_IN_1_2, r: exit(0), disrupted: false, want: false },
    {
      name: 'NotIn [1,2] does not match an unknown exit',
      rule: NOT_IN_1_2,
      r: { exitCode: null, signal: null },
      disrupted: false,
      want: false,
    },
    {
      name: 'a rule with neither matches nothing',
      rule: { action: 'FailJob' },
      r: exit(1),
      disrupted: true,
      want: false,
    },
  ] as { name: string; rule: PodFailurePolicyRule; r: AttemptResult; disrupted: boolean; want: boolean }[])(
    '$name',
    ({ rule, r, disrupted, want }) => {
      expect(ruleMatches(rule, r, disrupted)).toBe(want);
    },
  );
});

/** The Stage 1 Job's own limits: one retry per index, exit 2 fails the index, 3 disruptions ignored. */
const STAGE1: IndexLimits = (() => {
  const spec = buildStage1Job({ season: '2021-22', dates: ['2021-10-19'], parallelism: 1, env: {} }).spec;
  return {
    rules: spec.podFailurePolicy.rules,
    backoffLimitPerIndex: spec.backoffLimitPerIndex,
    maxIgnoredDisruptions: 3,
  };
})();

const counts = (failures: number, ignored = 0): IndexCounts => ({ failures, ignored });
const RETRY: AttemptDecision = { kind: 'retry' };
const IGNORED: AttemptDecision = { kind: 'ignored' };
const BACKOFF: AttemptDecision = { kind: 'failed', reason: 'BackoffLimitExceeded', failJob: false };
const POLICY: AttemptDecision = { kind: 'failed', reason: 'PodFailurePolicy', failJob: false };

describe('decideAttempt: what an ended attempt does to its index', () => {
  it('uses the Stage 1 Job spec these cases assume', () => {
    expect(STAGE1.backoffLimitPerIndex).toBe(1);
    expect(STAGE1.rules.map((r) => [r.action, r.onPodConditions?.map((c) => c.type), r.onExitCodes?.values])).toEqual([
      ['Ignore', ['DisruptionTarget'], undefined],
      ['FailIndex', [], [2]],
    ]);
  });

  it.each([
    { name: 'exit 0: succeeded', limits: STAGE1, before: counts(0), r: exit(0), want: { kind: 'succeeded' } },
    {
      name: 'exit 0 after a failure: succeeded',
      limits: STAGE1,
      before: counts(1, 3),
      r: exit(0),
      want: { kind: 'succeeded' },
    },
    { name: 'the first failure: retried', limits: STAGE1, before: counts(0), r: exit(1), want: RETRY },
    {
      name: 'the second failure: the backoff limit is exceeded',
      limits: STAGE1,
      before: counts(1),
      r: exit(1),
      want: BACKOFF,
    },
    {
      name: 'exit 2 at the first attempt: failed by the policy',
      limits: STAGE1,
      before: counts(0),
      r: exit(2),
      want: POLICY,
    },
    { name: 'exit 2 at the retry: failed by the policy', limits: STAGE1, before: counts(1), r: exit(2), want: POLICY },
    { name: 'exit 3 is an ordinary failure', limits: STAGE1, before: counts(0), r: exit(3), want: RETRY },
    { name: 'a disruption is ignored', limits: STAGE1, before: counts(0, 0), r: SIGTERMED, want: IGNORED },
    { name: 'the third disruption is ignored', limits: STAGE1, before: counts(1, 2), r: SIGTERMED, want: IGNORED },
    { name: 'the fourth disruption counts: retried', limits: STAGE1, before: counts(0, 3), r: SIGTERMED, want: RETRY },
    {
      name: 'the fourth disruption after a failure: failed',
      limits: STAGE1,
      before: counts(1, 3),
      r: SIGTERMED,
      want: BACKOFF,
    },
    {
      name: 'exit 143 without a signal is no disruption',
      limits: STAGE1,
      before: counts(0),
      r: exit(143),
      want: RETRY,
    },
    {
      name: 'SIGKILL is no disruption',
      limits: STAGE1,
      before: counts(0),
      r: { exitCode: 137, signal: 'SIGKILL' },
      want: RETRY,
    },
    {
      name: 'no rules: only the backoff limit',
      limits: { ...STAGE1, rules: [] },
      before: counts(0),
      r: exit(2),
      want: RETRY,
    },
    {
      name: 'backoffLimitPerIndex 0: the first failure fails',
      limits: { ...STAGE1, backoffLimitPerIndex: 0 },
      before: counts(0),
      r: exit(1),
      want: BACKOFF,
    },
    {
      name: 'backoffLimitPerIndex 2: the second failure is retried',
      limits: { ...STAGE1, backoffLimitPerIndex: 2 },
      before: counts(1),
      r: exit(1),
      want: RETRY,
    },
    {
      name: 'backoffLimitPerIndex 2: the third failure fails',
      limits: { ...STAGE1, backoffLimitPerIndex: 2 },
      before: counts(2),
      r: exit(1),
      want: BACKOFF,
    },
    {
      name: 'no disruption ignored when the maximum is 0',
      limits: { ...STAGE1, maxIgnoredDisruptions: 0 },
      before: counts(0),
      r: SIGTERMED,
      want: RETRY,
    },
    {
      name: 'a FailJob rule fails the whole Job',
      limits: { ...STAGE1, rules: [in2('FailJob')] },
      before: counts(0),
      r: exit(2),
      want: { ...POLICY, failJob: true },
    },
    {
      name: 'a Count rule counts the failure as usual',
      limits: { ...STAGE1, rules: [in2('Count')] },
      before: counts(0),
      r: exit(2),
      want: RETRY,
    },
    {
      name: 'a Count rule at the limit: the backoff limit',
      limits: { ...STAGE1, rules: [in2('Count')] },
      before: counts(1),
      r: exit(2),
      want: BACKOFF,
    },
    {
      name: 'the first matching rule wins',
      limits: { ...STAGE1, rules: [in2('Count'), in2('FailJob')] },
      before: counts(0),
      r: exit(2),
      want: RETRY,
    },
    {
      name: 'a later rule applies when the first does not match',
      limits: { ...STAGE1, rules: [DISRUPTION, in2('FailJob')] },
      before: counts(0),
      r: exit(2),
      want: { ...POLICY, failJob: true },
    },
  ] as { name: string; limits: IndexLimits; before: IndexCounts; r: AttemptResult; want: AttemptDecision }[])(
    '$name',
    ({ limits, before, r, want }) => {
      expect(decideAttempt(limits, before, r)).toEqual(want);
    },
  );
});

describe('the active deadline', () => {
  it.each([
    { name: 'counted from the start', start: 1_000, seconds: 5, want: 6_000 },
    { name: 'no time at all', start: 1_000, seconds: 0, want: 1_000 },
  ])('deadlineOf: $name', ({ start, seconds, want }) => {
    expect(deadlineOf(start, seconds)).toBe(want);
  });

  it.each([
    { name: 'one ms before: not yet', now: 5_999, want: false },
    { name: 'at the deadline: passed (duration >= allowed)', now: 6_000, want: true },
    { name: 'one ms after: passed', now: 6_001, want: true },
  ])('pastDeadline: $name', ({ now, want }) => {
    expect(pastDeadline(now, 6_000)).toBe(want);
  });
});

const COMPLETE = [
  { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached' },
  { type: 'Complete', status: 'True', reason: 'CompletionsReached' },
];
const failedBy = (reason: string) => [
  { type: 'FailureTarget', status: 'True', reason },
  { type: 'Failed', status: 'True', reason, message: 'Job has failed indexes' },
];
const outcome = (o: Partial<JobOutcome>): JobOutcome => ({
  completions: 4,
  succeeded: 4,
  failed: 0,
  jobFailedBy: undefined,
  stopped: null,
  ...o,
});

describe('jobConditions: the Job status at its end', () => {
  it.each([
    { name: 'every index succeeded: Complete', o: outcome({}), want: COMPLETE },
    {
      name: 'one index failed: Failed, FailedIndexes',
      o: outcome({ succeeded: 3, failed: 1 }),
      want: failedBy('FailedIndexes'),
    },
    {
      name: 'the deadline passed: Failed, DeadlineExceeded',
      o: outcome({ succeeded: 0, failed: 4, jobFailedBy: 'DeadlineExceeded' }),
      want: failedBy('DeadlineExceeded'),
    },
    {
      name: 'a FailJob rule with indexes never started: Failed, PodFailurePolicy',
      o: outcome({ succeeded: 1, failed: 1, jobFailedBy: 'PodFailurePolicy' }),
      want: failedBy('PodFailurePolicy'),
    },
    {
      name: 'the Job failed as a whole with every index done',
      o: outcome({ jobFailedBy: 'DeadlineExceeded' }),
      want: failedBy('DeadlineExceeded'),
    },
    {
      name: 'an index left undone without a stop: Failed',
      o: outcome({ succeeded: 3 }),
      want: failedBy('FailedIndexes'),
    },
    {
      name: 'stopped with indexes undone: Suspended, saying how many',
      o: outcome({ succeeded: 1, failed: 1, stopped: { reason: 'SIGTERM' } }),
      want: [
        {
          type: 'Suspended',
          status: 'True',
          reason: 'Interrupted',
          message: 'stopped on request (SIGTERM): 2 of 4 indexes not completed',
        },
      ],
    },
    {
      name: 'stopped without a reason: says abort',
      o: outcome({ succeeded: 3, stopped: { reason: undefined } }),
      want: [
        {
          type: 'Suspended',
          status: 'True',
          reason: 'Interrupted',
          message: 'stopped on request (abort): 1 of 4 indexes not completed',
        },
      ],
    },
    {
      name: 'stopped after every index succeeded: Complete',
      o: outcome({ stopped: { reason: 'SIGINT' } }),
      want: COMPLETE,
    },
    {
      name: 'stopped after every index ended, one failed: Failed',
      o: outcome({ succeeded: 3, failed: 1, stopped: { reason: 'SIGINT' } }),
      want: failedBy('FailedIndexes'),
    },
  ] as { name: string; o: JobOutcome; want: unknown }[])('$name', ({ o, want }) => {
    expect(jobConditions(o)).toEqual(want);
  });
});
