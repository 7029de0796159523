// reconcile(observed) -> actions, as a table: each stage, each failure, and a restart at each point (the
// observed state after a restart holds only what the cluster holds: the reports written, the Jobs created);
// then the same stages as the local executor of `backfill run` observes them, and the reason of each decision.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { failureLog, failureLogText, fitConfigMap, stage3FailureMessage } from '../controller/reports.js';
import { observedStage1Job, observedStage3Job } from '../core/adapters/local/observed.js';
import type { GateResult } from '../core/gate.js';
import {
  type Action,
  failedIndexesOf,
  type GateOutcome,
  gateKey,
  type JobCondition,
  type ObservedJob,
  type ObservedReport,
  type ObservedState,
  openFailedDates,
  type PlanLookup,
  parseStage3Summary,
  reconcile,
  type Stage3Spec,
  type Stage3Termination,
} from '../core/kubernetes/reconcile.js';
import type { IndexedJobStatus } from '../core/ports/jobRuntime.js';

const NS = 'nba-backfill';
const SEASON = '2021-22';
const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22'];
const STAGE3 = 'nba-stage3-202122-aaaa0000';

// --- Fixture builders

const COMPLETE: JobCondition[] = [
  { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached' },
  { type: 'Complete', status: 'True', reason: 'CompletionsReached' },
];
const failedBy = (reason: string): JobCondition[] => [
  { type: 'FailureTarget', status: 'True', reason },
  { type: 'Failed', status: 'True', reason, message: 'Job has failed indexes' },
];

function job(name: string, over: Partial<ObservedJob> = {}): ObservedJob {
  return {
    name,
    uid: `uid-${name}`,
    component: 'stage1',
    season: SEASON,
    planConfigMap: `${name}-plan`,
    completions: DATES.length,
    createdAt: '2024-01-01T00:00:00Z',
    finishedAt: null,
    completedIndexes: '',
    failedIndexes: '',
    succeeded: 0,
    failed: 0,
    active: 2,
    conditions: [],
    ...over,
  };
}

const done = (j: ObservedJob, at = '2024-01-01T01:00:00Z'): ObservedJob => ({
  ...j,
  completedIndexes: `0-${j.completions - 1}`,
  succeeded: j.completions,
  active: 0,
  finishedAt: at,
  conditions: COMPLETE,
});

const failed = (
  j: ObservedJob,
  completed: string,
  failedIdx: string,
  reason = 'FailedIndexes',
  at = '2024-01-01T01:00:00Z',
): ObservedJob => ({
  ...j,
  completedIndexes: completed,
  failedIndexes: failedIdx,
  active: 0,
  finishedAt: at,
  conditions: failedBy(reason),
});

const STAGE1 = job('nba-stage1-202122-11111111');
const RETRY = job('nba-retry-202122-22222222', { completions: 1, createdAt: '2024-01-01T02:00:00Z' });

function plan(j: ObservedJob, dates: string[]): [string, PlanLookup] {
  return [j.planConfigMap as string, { ok: true, plan: { jobName: j.name, season: j.season, dates } }];
}

const SPEC: Stage3Spec = {
  ok: true,
  jobName: STAGE3,
  manifest: { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: STAGE3 } },
};

function gateResult(missing: string[]): GateResult {
  return {
    passed: missing.length === 0,
    seasons: [SEASON],
    dates: DATES.length,
    games: 40,
    range: { start: DATES[0] as string, end: DATES.at(-1) as string },
    tables: [
      {
        table: 'nba_raw.nbac_player_boxscore',
        expectedGames: 40,
        presentGames: 40 - missing.length,
        coveragePct: 100,
        missingDates: missing,
        missingGames: missing.map((date) => ({ date, gameId: '0022100001' })),
      },
    ],
    runProblems: [],
  };
}

const report = (
  kind: ObservedReport['kind'],
  jobUid: string | null,
  over: Partial<ObservedReport> = {},
): ObservedReport => ({
  name: `r-${kind}`,
  kind,
  season: SEASON,
  jobUid,
  gateKey: null,
  gatePassed: null,
  ...over,
});

function state(over: {
  jobs?: ObservedJob[];
  plans?: [string, PlanLookup][];
  spec?: Stage3Spec | null;
  pods?: [string, Stage3Termination | null][];
  reports?: ObservedReport[];
  gates?: [string, GateOutcome][];
}): ObservedState {
  return {
    namespace: NS,
    jobs: over.jobs ?? [],
    plans: new Map(over.plans ?? [plan(STAGE1, DATES), plan(RETRY, ['2021-10-21'])]),
    stage3Specs: new Map(over.spec === null ? [] : [[SEASON, over.spec ?? SPEC]]),
    stage3Pods: new Map(over.pods ?? []),
    reports: over.reports ?? [],
    gates: new Map(over.gates ?? []),
  };
}

const kinds = (actions: Action[]) => actions.map((a) => a.kind);
const kubectl = (j: string, i: number) =>
  `kubectl logs -n ${NS} -l batch.kubernetes.io/job-name=${j},batch.kubernetes.io/job-completion-index=${i} --tail=-1 --prefix`;

/**
 * The gate key as the controller writes it into its gate report (so a restart finds it again): the first 16 hex
 * digits of the SHA-256 of the sorted `name:uid` lines. Computed here apart from gateKey, and without calling
 * core at load time: Stryker sees a mutant that breaks a file's loading as a survivor.
 */
function key(jobs: readonly ObservedJob[]): string {
  const lines = jobs.map((j) => `${j.name}:${j.uid}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

// --- The stages

const FAILED_S1 = failed(STAGE1, '0,1,3', '2');
const KEY_S1 = key([FAILED_S1]);
const DONE_S1 = done(STAGE1);
const KEY_DONE = key([DONE_S1]);
const DONE_RETRY = done(RETRY, '2024-01-01T03:00:00Z');
const KEY_RETRY = key([FAILED_S1, DONE_RETRY]);
const STAGE3_JOB = job(STAGE3, { component: 'stage3', planConfigMap: null, completions: 1 });
const SUMMARY = {
  status: 'failed',
  season: SEASON,
  dates: 4,
  processed: 2,
  resumedFrom: null,
  completedThrough: '2021-10-20',
  failedDate: '2021-10-21',
  processor: 'player_game_summary',
  check: 'gap_detection',
  error: 'Analytics BLOCKED: Gap Detected - missing dates in lookback window: 2021-10-21',
};
const TERMINATION: Stage3Termination = {
  podName: `${STAGE3}-x1y2z`,
  exitCode: 1,
  reason: 'Error',
  message: JSON.stringify(SUMMARY),
};

describe('reconcile', () => {
  const cases: { name: string; state: ObservedState; expected: Partial<Action>[] }[] = [
    { name: 'nothing in the cluster: nothing to do', state: state({}), expected: [] },
    { name: 'Stage 1 still running: wait', state: state({ jobs: [STAGE1] }), expected: [] },
    {
      name: 'Stage 1 interim FailureTarget (pods still terminating): wait for Failed',
      state: state({
        jobs: [{ ...STAGE1, failedIndexes: '2', conditions: [failedBy('FailedIndexes')[0] as JobCondition] }],
      }),
      expected: [],
    },
    {
      name: 'Stage 1 complete: run the gate over its dates',
      state: state({ jobs: [DONE_S1] }),
      expected: [{ kind: 'runGate', season: SEASON, key: KEY_DONE, dates: DATES }],
    },
    {
      name: 'Stage 1 failed on a date: report it with its logs command, then run the gate',
      state: state({ jobs: [FAILED_S1] }),
      expected: [
        {
          kind: 'reportStage1Failures',
          job: STAGE1.name,
          jobUid: STAGE1.uid,
          outcome: 'Failed',
          reason: 'FailedIndexes',
          failedIndexes: '2',
          failed: [{ index: 2, date: '2021-10-21', state: 'failed', logs: kubectl(STAGE1.name, 2) }],
        },
        { kind: 'runGate', key: KEY_S1 },
      ],
    },
    {
      name: 'restart after the failure report: not reported again',
      state: state({ jobs: [FAILED_S1], reports: [report('failures', STAGE1.uid)] }),
      expected: [{ kind: 'runGate', key: KEY_S1 }],
    },
    {
      name: 'a Job deleted and created again under the same name (new uid): reported again',
      state: state({ jobs: [{ ...FAILED_S1, uid: 'uid-new' }], reports: [report('failures', STAGE1.uid)] }),
      expected: [{ kind: 'reportStage1Failures', jobUid: 'uid-new' }, { kind: 'runGate' }],
    },
    {
      name: 'Stage 1 past its deadline: the dates it never completed are reported as unfinished',
      state: state({ jobs: [failed(STAGE1, '0', '', 'DeadlineExceeded')] }),
      expected: [
        {
          kind: 'reportStage1Failures',
          reason: 'DeadlineExceeded',
          failed: [1, 2, 3].map((i) => ({
            index: i,
            date: DATES[i] as string,
            state: 'unfinished' as const,
            logs: kubectl(STAGE1.name, i),
          })),
        },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'the plan ConfigMap is missing: say so, report the indexes without dates, no gate',
      state: state({ jobs: [FAILED_S1], plans: [] }),
      expected: [
        { kind: 'warn', subject: STAGE1.name },
        {
          kind: 'reportStage1Failures',
          failed: [{ index: 2, date: null, state: 'failed', logs: kubectl(STAGE1.name, 2) }],
        },
      ],
    },
    {
      name: 'gate computed and passed: publish it and create the Stage 3 Job',
      state: state({ jobs: [DONE_S1], gates: [[SEASON, { key: KEY_DONE, result: gateResult([]) }]] }),
      expected: [
        { kind: 'publishGate', key: KEY_DONE, lastJob: { name: STAGE1.name, uid: STAGE1.uid } },
        { kind: 'createStage3Job', job: STAGE3, manifest: SPEC.ok ? SPEC.manifest : {} },
      ],
    },
    {
      name: 'gate computed and failed: publish what is missing, create nothing',
      state: state({
        jobs: [FAILED_S1],
        reports: [report('failures', STAGE1.uid)],
        gates: [[SEASON, { key: KEY_S1, result: gateResult(['2021-10-21']) }]],
      }),
      expected: [{ kind: 'publishGate', key: KEY_S1 }],
    },
    {
      name: 'restart after the gate passed was published, before Stage 3 was created: create it',
      state: state({ jobs: [DONE_S1], reports: [report('gate', null, { gateKey: KEY_DONE, gatePassed: true })] }),
      expected: [{ kind: 'createStage3Job', job: STAGE3 }],
    },
    {
      name: 'restart after a failed gate was published: wait (no gate run, no report)',
      state: state({
        jobs: [FAILED_S1],
        reports: [report('failures', STAGE1.uid), report('gate', null, { gateKey: KEY_S1, gatePassed: false })],
      }),
      expected: [],
    },
    {
      name: 'a retry Job running after a failed gate: wait for it',
      state: state({
        jobs: [FAILED_S1, RETRY],
        reports: [report('failures', STAGE1.uid), report('gate', null, { gateKey: KEY_S1, gatePassed: false })],
      }),
      expected: [],
    },
    {
      name: 'the retry Job finished: the set of finished jobs changed, so the gate runs again',
      state: state({
        jobs: [FAILED_S1, DONE_RETRY],
        reports: [report('failures', STAGE1.uid), report('gate', null, { gateKey: KEY_S1, gatePassed: false })],
        gates: [[SEASON, { key: KEY_S1, result: gateResult(['2021-10-21']) }]],
      }),
      expected: [{ kind: 'runGate', key: KEY_RETRY, dates: DATES }],
    },
    {
      name: 'after the retry the gate passes: published on the retry Job, Stage 3 created',
      state: state({
        jobs: [FAILED_S1, DONE_RETRY],
        reports: [report('failures', STAGE1.uid), report('gate', null, { gateKey: KEY_S1, gatePassed: false })],
        gates: [[SEASON, { key: KEY_RETRY, result: gateResult([]) }]],
      }),
      expected: [
        { kind: 'publishGate', key: KEY_RETRY, lastJob: { name: RETRY.name, uid: RETRY.uid } },
        { kind: 'createStage3Job' },
      ],
    },
    {
      name: 'gate passed but the Stage 3 spec ConfigMap is missing: say so',
      state: state({
        jobs: [DONE_S1],
        spec: null,
        reports: [report('gate', null, { gateKey: KEY_DONE, gatePassed: true })],
      }),
      expected: [{ kind: 'warn', message: 'gate passed but no Stage 3 spec: not found' }],
    },
    {
      name: 'Stage 3 created (restart after creating it): never created twice, no gate',
      state: state({ jobs: [DONE_S1, STAGE3_JOB] }),
      expected: [],
    },
    {
      name: 'Stage 3 failed: its termination message gives the date and reason',
      state: state({
        jobs: [DONE_S1, failed(STAGE3_JOB, '', '', 'BackoffLimitExceeded')],
        pods: [[STAGE3, TERMINATION]],
      }),
      expected: [
        {
          kind: 'reportStage3Failure',
          job: STAGE3,
          reason: 'BackoffLimitExceeded',
          termination: TERMINATION,
          summary: SUMMARY as never,
        },
      ],
    },
    {
      name: 'Stage 3 failed and no pod left to read: reported with the Job reason',
      state: state({ jobs: [DONE_S1, failed(STAGE3_JOB, '', '', 'DeadlineExceeded')], pods: [[STAGE3, null]] }),
      expected: [{ kind: 'reportStage3Failure', reason: 'DeadlineExceeded', termination: null, summary: null }],
    },
    {
      name: 'restart after the Stage 3 failure was reported: nothing',
      state: state({
        jobs: [DONE_S1, failed(STAGE3_JOB, '', '', 'BackoffLimitExceeded')],
        reports: [report('stage3-failure', STAGE3_JOB.uid)],
      }),
      expected: [],
    },
    {
      name: 'Stage 3 succeeded: validate the dates of the Stage 1 jobs',
      state: state({ jobs: [FAILED_S1, DONE_RETRY, done(STAGE3_JOB)], reports: [report('failures', STAGE1.uid)] }),
      expected: [{ kind: 'validate', job: STAGE3, jobUid: STAGE3_JOB.uid, dates: DATES, summary: null }],
    },
    {
      name: 'restart after the validation was published: nothing',
      state: state({ jobs: [DONE_S1, done(STAGE3_JOB)], reports: [report('validation', STAGE3_JOB.uid)] }),
      expected: [],
    },
    {
      name: 'a Stage 3 Job of an older plan does not stand for this plan: the gate decides for the new one',
      state: state({
        jobs: [DONE_S1, done({ ...STAGE3_JOB, name: 'nba-stage3-202122-old00000', uid: 'old' })],
        reports: [report('gate', null, { gateKey: KEY_DONE, gatePassed: true })],
      }),
      expected: [{ kind: 'createStage3Job', job: STAGE3 }],
    },
  ];

  it.each(cases)('$name', ({ state: s, expected }) => {
    const actions = reconcile(s);
    expect(kinds(actions)).toEqual(expected.map((e) => e.kind));
    actions.forEach((a, i) => {
      expect(a).toMatchObject(expected[i] as Action);
    });
  });

  it('takes the seasons in order, each on its own', () => {
    const other = job('nba-stage1-202223-33333333', { season: '2022-23' });
    const actions = reconcile(
      state({
        jobs: [done(other), DONE_S1],
        plans: [plan(STAGE1, DATES), plan(other, ['2022-10-18', '2022-10-19', '2022-10-20', '2022-10-21'])],
      }),
    );
    expect(actions.map((a) => [a.kind, a.season])).toEqual([
      ['runGate', '2021-22'],
      ['runGate', '2022-23'],
    ]);
  });

  it('never creates the Stage 3 Job once it is observed, whatever else was lost in a restart', () => {
    // Every subset of the reports (as if the controller crashed before writing them) with Stage 3 present.
    const all = [
      report('failures', STAGE1.uid),
      report('gate', null, { gateKey: KEY_RETRY, gatePassed: true }),
      report('stage3-failure', STAGE3_JOB.uid),
    ];
    for (let mask = 0; mask < 2 ** all.length; mask++) {
      const reports = all.filter((_r, i) => mask & (1 << i));
      for (const stage3 of [STAGE3_JOB, done(STAGE3_JOB), failed(STAGE3_JOB, '', '', 'BackoffLimitExceeded')]) {
        const actions = reconcile(state({ jobs: [FAILED_S1, DONE_RETRY, stage3], reports }));
        expect(kinds(actions)).not.toContain('createStage3Job');
        expect(kinds(actions)).not.toContain('runGate');
      }
    }
  });
});

describe('the pure helpers', () => {
  it('gateKey names the set of finished jobs, whatever their order, and changes with any of them', () => {
    expect(gateKey([FAILED_S1, DONE_RETRY])).toBe(gateKey([DONE_RETRY, FAILED_S1]));
    expect(gateKey([FAILED_S1])).not.toBe(gateKey([FAILED_S1, DONE_RETRY]));
    expect(gateKey([FAILED_S1])).not.toBe(gateKey([{ ...FAILED_S1, uid: 'other' }]));
  });

  it('failedIndexesOf turns the compressed failedIndexes into dates', () => {
    const f = failedIndexesOf(failed(STAGE1, '0,2', '1,3'), { jobName: STAGE1.name, season: SEASON, dates: DATES }, NS);
    expect(f.map((x) => [x.index, x.date, x.state])).toEqual([
      [1, '2021-10-20', 'failed'],
      [3, '2021-10-22', 'failed'],
    ]);
  });

  it('openFailedDates: a date stays failed until a later job completes it', () => {
    const plans = new Map([plan(STAGE1, DATES), plan(RETRY, ['2021-10-21'])]);
    expect(openFailedDates([failed(STAGE1, '0,1', '2,3')], plans)).toEqual(['2021-10-21', '2021-10-22']);
    expect(openFailedDates([failed(STAGE1, '0,1', '2,3'), DONE_RETRY], plans)).toEqual(['2021-10-22']);
    const retryFailed = failed(RETRY, '', '0', 'FailedIndexes', '2024-01-01T03:00:00Z');
    expect(openFailedDates([failed(STAGE1, '0,1,3', '2'), retryFailed], plans)).toEqual(['2021-10-21']);
    expect(openFailedDates([failed(STAGE1, '0,1,3', '2'), RETRY], plans)).toEqual(['2021-10-21']);
  });

  it('parseStage3Summary reads the runner summary and nothing else', () => {
    expect(parseStage3Summary(JSON.stringify(SUMMARY))).toEqual(SUMMARY);
    expect(parseStage3Summary('OOMKilled')).toBeNull();
    expect(parseStage3Summary('{"status":"weird"}')).toBeNull();
    expect(parseStage3Summary(null)).toBeNull();
  });
});

describe('the reports', () => {
  // Computed inside each test, not at load time (see key()).
  const failureAction = () =>
    reconcile(state({ jobs: [failed(STAGE1, '0,3', '1,2')] }))[0] as Extract<Action, { kind: 'reportStage1Failures' }>;

  it('a failure log names each date, its attempts, reason, failing processor and logs command', () => {
    const log = failureLog(
      failureAction(),
      new Map([
        [1, { exitCodes: [null, 1, 1] }],
        [2, { exitCodes: [2] }],
      ]),
      new Map([['2021-10-20', { processor: 'nbac_player_boxscore', error: 'boom' }]]),
      2,
    );
    expect(log.failed).toEqual([
      {
        date: '2021-10-20',
        index: 1,
        processor: 'nbac_player_boxscore',
        error: 'boom',
        attempts: 2,
        exitCodes: [null, 1, 1],
        reason: 'BackoffLimitExceeded',
        logs: kubectl(STAGE1.name, 1),
      },
      {
        date: '2021-10-21',
        index: 2,
        processor: null,
        error: null,
        attempts: 1,
        exitCodes: [2],
        reason: 'PodFailurePolicy',
        logs: kubectl(STAGE1.name, 2),
      },
    ]);
    expect(failureLogText(log)).toMatch(/2021-10-21 {2}index 2 {2}PodFailurePolicy {2}attempts 1 \(exit 2\)/);
    expect(failureLogText(log)).toContain(`logs: ${kubectl(STAGE1.name, 1)}`);
  });

  it('a Stage 3 failure says the date and reason from the summary, or what the Job says without one', () => {
    const base = {
      kind: 'reportStage3Failure',
      season: SEASON,
      job: STAGE3,
      jobUid: 'u',
      conditionMessage: null,
    } as const;
    expect(
      stage3FailureMessage({
        ...base,
        reason: 'BackoffLimitExceeded',
        termination: TERMINATION,
        summary: SUMMARY as never,
      }),
    ).toBe(
      'Stage 3 of 2021-22 stopped at 2021-10-21 (player_game_summary, gap_detection): Analytics BLOCKED: Gap Detected - missing dates in lookback window: 2021-10-21; completed through 2021-10-20',
    );
    expect(
      stage3FailureMessage({
        ...base,
        reason: 'DeadlineExceeded',
        termination: { podName: 'p', exitCode: 137, reason: 'Error', message: null },
        summary: null,
      }),
    ).toBe(`Stage 3 job ${STAGE3} failed (DeadlineExceeded); exit code 137, no termination message`);
  });

  it('cuts a report to fit a ConfigMap, saying so', () => {
    const big = 'x'.repeat(2000);
    const cut = fitConfigMap(big, 1000);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1000);
    expect(cut).toMatch(/cut to fit a ConfigMap/);
    expect(fitConfigMap('small', 1000)).toBe('small');
  });
});

describe('reconcile at its edges', () => {
  const OTHER = '2022-23';
  const other = job('nba-stage1-202223-33333333', { season: OTHER, completions: 1 });
  const otherPlan = plan(other, ['2022-10-18']);

  it.each([
    {
      name: 'a condition whose status is not True does not end a Job',
      s: state({
        jobs: [
          {
            ...STAGE1,
            conditions: [
              { type: 'Failed', status: 'False' },
              { type: 'Complete', status: 'Unknown' },
            ],
          },
        ],
      }),
      expected: [],
    },
    {
      name: "the reason is the True Failed condition's, not a stale one's nor FailureTarget's",
      s: state({
        jobs: [
          {
            ...FAILED_S1,
            conditions: [
              { type: 'Failed', status: 'False', reason: 'Stale' },
              { type: 'FailureTarget', status: 'True', reason: 'Target' },
              { type: 'Failed', status: 'True', reason: 'DeadlineExceeded' },
            ],
          },
        ],
      }),
      expected: [{ kind: 'reportStage1Failures', reason: 'DeadlineExceeded' }, { kind: 'runGate' }],
    },
    {
      name: 'Complete with an index neither completed nor failed (a success policy): nothing to report',
      s: state({ jobs: [{ ...done(STAGE1), completedIndexes: '0-2' }] }),
      expected: [{ kind: 'runGate' }],
    },
    {
      name: 'Complete with a failed index: reported as Complete, without a Failed reason',
      s: state({ jobs: [{ ...done(STAGE1), completedIndexes: '0,1,3', failedIndexes: '2' }] }),
      expected: [
        {
          kind: 'reportStage1Failures',
          outcome: 'Complete',
          reason: null,
          failed: [{ index: 2, date: DATES[2] as string, state: 'failed', logs: kubectl(STAGE1.name, 2) }],
        },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'a Job without per-index limits (failedIndexes null) past its deadline: every undone index, failedIndexes ""',
      s: state({ jobs: [{ ...failed(STAGE1, '0-2', '', 'DeadlineExceeded'), failedIndexes: null }] }),
      expected: [
        {
          kind: 'reportStage1Failures',
          failedIndexes: '',
          failed: [{ index: 3, date: DATES[3] as string, state: 'unfinished', logs: kubectl(STAGE1.name, 3) }],
        },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'a report of another kind for the same Job does not count as its failure report',
      s: state({ jobs: [FAILED_S1], reports: [report('validation', STAGE1.uid)] }),
      expected: [{ kind: 'reportStage1Failures' }, { kind: 'runGate' }],
    },
    {
      name: 'failures reported in creation order (observed in that order)',
      s: state({ jobs: [FAILED_S1, failed(RETRY, '', '0')] }),
      expected: [
        { kind: 'reportStage1Failures', job: STAGE1.name },
        { kind: 'reportStage1Failures', job: RETRY.name },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'created in the same second: the retry Job counts as the later one (observed in that order)',
      s: state({ jobs: [FAILED_S1, failed({ ...RETRY, createdAt: STAGE1.createdAt }, '', '0')] }),
      expected: [
        { kind: 'reportStage1Failures', job: STAGE1.name },
        { kind: 'reportStage1Failures', job: RETRY.name },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'two Stage 1 Jobs created in the same second: by name (observed in that order)',
      s: state({
        jobs: [failed(STAGE1, '0,1,3', '2'), failed({ ...STAGE1, name: 'nba-stage1-b', uid: 'b' }, '0,1,3', '2')],
        plans: [
          plan(STAGE1, DATES),
          ['nba-stage1-b', { ok: true, plan: { jobName: 'b', season: SEASON, dates: DATES } }],
        ],
      }),
      expected: [
        { kind: 'reportStage1Failures', job: STAGE1.name },
        { kind: 'reportStage1Failures', job: 'nba-stage1-b' },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'failures reported in creation order, whatever the order observed',
      s: state({
        jobs: [failed(RETRY, '', '0'), FAILED_S1],
        reports: [],
      }),
      expected: [
        { kind: 'reportStage1Failures', job: STAGE1.name },
        { kind: 'reportStage1Failures', job: RETRY.name },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'created in the same second: the retry Job counts as the later one',
      s: state({ jobs: [failed({ ...RETRY, createdAt: STAGE1.createdAt }, '', '0'), FAILED_S1] }),
      expected: [
        { kind: 'reportStage1Failures', job: STAGE1.name },
        { kind: 'reportStage1Failures', job: RETRY.name },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'two Stage 1 Jobs created in the same second: by name',
      s: state({
        jobs: [failed({ ...STAGE1, name: 'nba-stage1-b', uid: 'b' }, '0,1,3', '2'), failed(STAGE1, '0,1,3', '2')],
        plans: [
          plan(STAGE1, DATES),
          [`nba-stage1-b`, { ok: true, plan: { jobName: 'b', season: SEASON, dates: DATES } }],
        ],
      }),
      expected: [
        { kind: 'reportStage1Failures', job: STAGE1.name },
        { kind: 'reportStage1Failures', job: 'nba-stage1-b' },
        { kind: 'runGate' },
      ],
    },
    {
      name: 'a plan ConfigMap that cannot be used: says why',
      s: state({ jobs: [STAGE1], plans: [[`${STAGE1.name}-plan`, { ok: false, problem: 'not JSON' }]] }),
      expected: [
        {
          kind: 'warn',
          subject: STAGE1.name,
          message: `job ${STAGE1.name}: its plan ConfigMap ${STAGE1.name}-plan cannot be used: not JSON`,
        },
      ],
    },
    {
      name: 'a plan ConfigMap not found: says it was not read',
      s: state({ jobs: [STAGE1], plans: [] }),
      expected: [
        {
          kind: 'warn',
          message: `job ${STAGE1.name}: its plan ConfigMap ${STAGE1.name}-plan cannot be used: not read`,
        },
      ],
    },
    {
      name: 'a Job without the plan annotation: says so',
      s: state({ jobs: [{ ...STAGE1, planConfigMap: null }] }),
      expected: [
        {
          kind: 'warn',
          message: `job ${STAGE1.name}: no plan ConfigMap annotation, so its indexes cannot be turned into dates`,
        },
      ],
    },
    {
      name: 'one plan of two unreadable: no gate',
      s: state({
        jobs: [FAILED_S1, DONE_RETRY],
        plans: [plan(STAGE1, DATES)],
        reports: [report('failures', STAGE1.uid)],
      }),
      expected: [{ kind: 'warn', subject: RETRY.name }],
    },
    {
      name: "another season's gate report does not stand for this one's",
      s: state({
        jobs: [DONE_S1],
        reports: [report('gate', null, { season: OTHER, gateKey: KEY_DONE, gatePassed: true })],
      }),
      expected: [{ kind: 'runGate', key: KEY_DONE }],
    },
    {
      name: 'a gate report without a result: the gate runs',
      s: state({ jobs: [DONE_S1], reports: [report('gate', null, { gateKey: KEY_DONE, gatePassed: null })] }),
      expected: [{ kind: 'runGate', key: KEY_DONE }],
    },
    {
      name: 'the gate published on the Job that finished last, not the one created last',
      s: state({
        jobs: [failed(STAGE1, '0,1,3', '2', 'FailedIndexes', '2024-01-01T05:00:00Z'), DONE_RETRY],
        reports: [report('failures', STAGE1.uid)],
        gates: [
          [
            SEASON,
            {
              key: key([failed(STAGE1, '0,1,3', '2', 'FailedIndexes', '2024-01-01T05:00:00Z'), DONE_RETRY]),
              result: gateResult(['2021-10-21']),
            },
          ],
        ],
      }),
      expected: [{ kind: 'publishGate', lastJob: { name: STAGE1.name, uid: STAGE1.uid } }],
    },
    {
      name: 'gate passed without a Stage 3 spec that can be used: says why',
      s: state({
        jobs: [DONE_S1],
        spec: { ok: false, problem: 'no job name' },
        reports: [report('gate', null, { gateKey: KEY_DONE, gatePassed: true })],
      }),
      expected: [
        { kind: 'warn', subject: `stage3-spec-${SEASON}`, message: 'gate passed but no Stage 3 spec: no job name' },
      ],
    },
    {
      name: 'only an old Stage 3 Job and no Stage 1 Job: nothing to do',
      s: state({ jobs: [done({ ...STAGE3_JOB, name: 'nba-stage3-202122-old00000', uid: 'old' })] }),
      expected: [],
    },
    {
      name: 'no spec: the Stage 3 Job created last stands for the season',
      s: state({
        spec: null,
        jobs: [
          { ...STAGE3_JOB, name: 'nba-stage3-new', uid: 'new', createdAt: '2024-01-02T00:00:00Z' },
          done({ ...STAGE3_JOB, name: 'nba-stage3-old', uid: 'old' }),
          DONE_S1,
        ],
      }),
      expected: [],
    },
    {
      name: 'no spec and no Stage 3 Job: a Stage 1 Job is not taken for one',
      s: state({ spec: null, jobs: [DONE_S1] }),
      expected: [{ kind: 'runGate', key: KEY_DONE }],
    },
    {
      name: 'Stage 3 failed: the Failed condition gives reason and message',
      s: state({ jobs: [DONE_S1, failed(STAGE3_JOB, '', '', 'BackoffLimitExceeded')], pods: [[STAGE3, null]] }),
      expected: [
        { kind: 'reportStage3Failure', reason: 'BackoffLimitExceeded', conditionMessage: 'Job has failed indexes' },
      ],
    },
    {
      name: 'Stage 3 failed with a bare Failed condition: reason and message null',
      s: state({ jobs: [DONE_S1, { ...done(STAGE3_JOB), conditions: [{ type: 'Failed', status: 'True' }] }] }),
      expected: [{ kind: 'reportStage3Failure', reason: null, conditionMessage: null, termination: null }],
    },
    {
      name: 'Stage 3 succeeded: validates the sorted dates of the plans that can be read',
      s: state({
        jobs: [DONE_S1, done(RETRY, '2024-01-01T03:00:00Z'), done(STAGE3_JOB)],
        plans: [plan(STAGE1, DATES.slice(1)), plan(RETRY, ['2021-10-18', '2021-10-20'])],
      }),
      expected: [{ kind: 'validate', dates: ['2021-10-18', ...DATES.slice(1)] }],
    },
    {
      name: 'Stage 3 succeeded with a plan unreadable: its dates are left out',
      s: state({ jobs: [DONE_S1, DONE_RETRY, done(STAGE3_JOB)], plans: [plan(STAGE1, DATES)] }),
      expected: [{ kind: 'warn' }, { kind: 'validate', dates: DATES }],
    },
    {
      name: "each season's own Jobs: another season's Stage 3 Job and Stage 1 dates are not this one's",
      s: state({
        jobs: [DONE_S1, done(other), done({ ...STAGE3_JOB, season: OTHER })],
        plans: [plan(STAGE1, DATES), otherPlan],
      }),
      expected: [
        { kind: 'runGate', season: SEASON, key: KEY_DONE, dates: DATES },
        { kind: 'validate', season: OTHER, dates: ['2022-10-18'] },
      ],
    },
  ] as { name: string; s: ObservedState; expected: Partial<Action>[] }[])('$name', ({ s, expected }) => {
    const actions = reconcile(s);
    expect(kinds(actions)).toEqual(expected.map((e) => e.kind));
    actions.forEach((a, i) => {
      expect(a).toMatchObject(expected[i] as Action);
    });
  });

  it('gateKey is the first 16 hex digits of the SHA-256 of the sorted name:uid lines', () => {
    expect(gateKey([DONE_RETRY, FAILED_S1])).toBe(key([FAILED_S1, DONE_RETRY]));
    expect(gateKey([FAILED_S1])).toMatch(/^[0-9a-f]{16}$/);
  });

  it('failedIndexesOf a Job still running: its failed indexes, none unfinished', () => {
    expect(failedIndexesOf({ ...STAGE1, failedIndexes: '2' }, null, NS)).toEqual([
      { index: 2, date: null, state: 'failed', logs: kubectl(STAGE1.name, 2) },
    ]);
    expect(failedIndexesOf({ ...STAGE1, completedIndexes: '0' }, null, NS)).toEqual([]);
  });

  it.each(['succeeded', 'failed', 'gate_failed', 'interrupted'])('parseStage3Summary reads status %s', (status) => {
    expect(parseStage3Summary(JSON.stringify({ ...SUMMARY, status }))?.status).toBe(status);
  });

  /** Every order of a list. */
  const orders = <T>(xs: readonly T[]): T[][] =>
    xs.length <= 1
      ? [[...xs]]
      : xs.flatMap((x, i) => orders([...xs.slice(0, i), ...xs.slice(i + 1)]).map((o) => [x, ...o]));

  it('openFailedDates gives the same answer for every order of the Jobs observed', () => {
    // The date of index 2: failed by Stage 1 (ended 01:00); then retries a, b, c, d all ended at 03:00: a created
    // at 02:00, b, c and d at 02:30 (so after a), ordered among themselves by name. The last of them decides.
    const retry = (name: string, createdAt: string, ok: boolean): ObservedJob => {
      const j = { ...RETRY, name, uid: name, createdAt };
      return ok ? done(j, '2024-01-01T03:00:00Z') : failed(j, '', '0', 'FailedIndexes', '2024-01-01T03:00:00Z');
    };
    const a = retry('nba-retry-a', '2024-01-01T02:00:00Z', true);
    const b = retry('nba-retry-b', '2024-01-01T02:30:00Z', false);
    const c = retry('nba-retry-c', '2024-01-01T02:30:00Z', true);
    const d = retry('nba-retry-d', '2024-01-01T02:30:00Z', false);
    const plans = new Map([plan(STAGE1, DATES), plan(RETRY, ['2021-10-21'])]);
    const s1 = failed(STAGE1, '0,1,3', '2');
    for (const jobs of orders([s1, a, b, c])) {
      expect(openFailedDates(jobs, plans), jobs.map((j) => j.name).join(' ')).toEqual([]);
    }
    for (const jobs of orders([s1, a, c, d])) {
      expect(openFailedDates(jobs, plans), jobs.map((j) => j.name).join(' ')).toEqual(['2021-10-21']);
    }
    for (const jobs of orders([s1, c, b])) {
      expect(openFailedDates(jobs, plans), jobs.map((j) => j.name).join(' ')).toEqual([]);
    }
  });

  it('the gate is published on the Job that ended last, whatever the order observed', () => {
    const s1 = failed(STAGE1, '0,1,3', '2', 'FailedIndexes', '2024-01-01T01:00:00Z');
    const r1 = done({ ...RETRY, name: 'nba-retry-a', uid: 'a' }, '2024-01-01T03:00:00Z');
    const r2 = done({ ...RETRY, name: 'nba-retry-b', uid: 'b' }, '2024-01-01T04:00:00Z');
    for (const jobs of orders([s1, r1, r2])) {
      const actions = reconcile(
        state({
          jobs,
          reports: [report('failures', STAGE1.uid)],
          gates: [[SEASON, { key: key(jobs), result: gateResult([]) }]],
        }),
      );
      expect(
        actions.find((x) => x.kind === 'publishGate'),
        jobs.map((j) => j.name).join(' '),
      ).toMatchObject({
        lastJob: { name: 'nba-retry-b', uid: 'b' },
      });
    }
  });

  describe('openFailedDates', () => {
    const plans = new Map([plan(STAGE1, DATES), plan(RETRY, ['2021-10-21'])]);
    it.each([
      {
        name: 'jobs in any order: by end time',
        jobs: () => [DONE_RETRY, failed(STAGE1, '0,1,3', '2')],
        want: [],
      },
      {
        name: 'ended in the same second: the one created later counts',
        jobs: () => [
          failed({ ...RETRY, createdAt: '2024-01-01T00:30:00Z' }, '0', '', 'FailedIndexes', '2024-01-01T01:00:00Z'),
          failed(STAGE1, '0,1,3', '2', 'FailedIndexes', '2024-01-01T01:00:00Z'),
        ],
        want: [],
      },
      {
        name: 'ended in the same second, created in the same second: the retry Job counts',
        jobs: () => [
          done({ ...RETRY, createdAt: STAGE1.createdAt }, '2024-01-01T01:00:00Z'),
          failed(STAGE1, '0,1,3', '2'),
        ],
        want: [],
      },
      {
        name: 'a running Job completes nothing yet',
        jobs: () => [failed(STAGE1, '0,1,3', '2'), { ...RETRY, completedIndexes: '0' }],
        want: ['2021-10-21'],
      },
      {
        name: 'a running Job fails nothing yet',
        jobs: () => [failed(STAGE1, '0,1,3', '2'), { ...RETRY, planConfigMap: 'later', completedIndexes: '' }],
        want: ['2021-10-21'],
      },
      {
        name: 'by end time, not creation: the Stage 1 Job that ended after the retry decides',
        jobs: () => [
          done(STAGE1, '2024-01-01T05:00:00Z'),
          failed(RETRY, '', '0', 'FailedIndexes', '2024-01-01T03:00:00Z'),
        ],
        want: [],
      },
      {
        name: 'only Stage 1 Jobs count',
        jobs: () => [failed(STAGE1, '0,1,3', '2'), done({ ...RETRY, component: 'stage3' }, '2024-01-01T03:00:00Z')],
        want: ['2021-10-21'],
      },
      {
        name: 'a Job whose plan cannot be read is left out',
        jobs: () => [failed(STAGE1, '0,1,3', '2'), done({ ...RETRY, planConfigMap: 'gone' }, '2024-01-01T03:00:00Z')],
        want: ['2021-10-21'],
      },
      {
        name: 'dates sorted, whatever the plan order',
        jobs: () => [failed({ ...STAGE1, planConfigMap: 'reversed' }, '0,3', '1,2')],
        want: ['2021-10-20', '2021-10-21'],
      },
    ])('$name', ({ jobs, want }) => {
      const withReversed = new Map([
        ...plans,
        ['reversed', { ok: true, plan: { jobName: 'r', season: SEASON, dates: [...DATES].reverse() } }] as const,
        ['later', { ok: true, plan: { jobName: 'l', season: SEASON, dates: ['2021-10-25'] } }] as const,
      ]);
      expect(openFailedDates(jobs(), withReversed as ReadonlyMap<string, PlanLookup>)).toEqual(want);
    });
  });
});

// --- The local executor's observations: `backfill run` starts Stage 1 itself and sees its Jobs as the local
// job runtime reports them (converted by core/adapters/local/observed.ts), Stage 3 as a one-pod Job whose
// termination message is the runner's summary, and the reports and gates it made in this run. Fixtures are
// built inside the cases (thunks), never at load time.

const LOCAL_LOG = (i: number) => `.backfill/logs/jobs/${STAGE1.name}/index-${i}.log`;

function localStatus(over: Partial<IndexedJobStatus> = {}): IndexedJobStatus {
  return {
    jobName: STAGE1.name,
    completedIndexes: '0-3',
    failedIndexes: '',
    succeeded: 4,
    failed: 0,
    conditions: [
      { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached' },
      { type: 'Complete', status: 'True', reason: 'CompletionsReached' },
    ],
    startTime: '2024-01-01T00:00:00.000Z',
    completionTime: '2024-01-01T00:01:00.000Z',
    indexes: DATES.map((_d, index) => ({
      index,
      exitCodes: [0],
      failures: 0,
      state: 'succeeded',
      logs: LOCAL_LOG(index),
    })),
    ...over,
  };
}

const localFailed = () =>
  localStatus({
    completedIndexes: '0,1,3',
    failedIndexes: '2',
    succeeded: 3,
    failed: 1,
    conditions: [
      { type: 'FailureTarget', status: 'True', reason: 'FailedIndexes' },
      { type: 'Failed', status: 'True', reason: 'FailedIndexes', message: 'Job has failed indexes' },
    ],
    indexes: DATES.map((_d, index) =>
      index === 2
        ? { index, exitCodes: [2], failures: 1, state: 'failed', reason: 'FailIndex', logs: LOCAL_LOG(index) }
        : { index, exitCodes: [0], failures: 0, state: 'succeeded', logs: LOCAL_LOG(index) },
    ),
  });

function localState(over: {
  selection?: [string, string[]][];
  status?: IndexedJobStatus;
  stage3?: Record<string, unknown>;
  reports?: ObservedReport[];
  gates?: [string, GateOutcome][];
}): ObservedState {
  const jobs: ObservedJob[] = [];
  const pods = new Map<string, Stage3Termination | null>();
  if (over.status) jobs.push(observedStage1Job(over.status, SEASON, DATES));
  if (over.stage3) {
    const { job: j, termination } = observedStage3Job(STAGE3, SEASON, over.stage3 as never);
    jobs.push(j);
    pods.set(STAGE3, termination);
  }
  return {
    namespace: '',
    jobs,
    plans: new Map([[STAGE1.name, { ok: true, plan: { jobName: STAGE1.name, season: SEASON, dates: DATES } }]]),
    stage3Specs: new Map([[SEASON, { ok: true, jobName: STAGE3, manifest: {} }]]),
    stage3Pods: pods,
    reports: over.reports ?? [],
    gates: new Map(over.gates ?? []),
    selection: new Map(over.selection ?? [[SEASON, DATES]]),
  };
}

const LOCAL_KEY = key([{ ...STAGE1, uid: STAGE1.name }]);
const GATE_FAILED_WHY = 'gate failed for 2021-22: 1 date incomplete (2021-10-21)';

describe("reconcile on the local executor's observations (backfill run)", () => {
  const cases: { name: string; state: () => ObservedState; expected: Partial<Action>[] }[] = [
    {
      name: 'nothing run yet: start the Stage 1 job of the selected dates',
      state: () => localState({}),
      expected: [
        {
          kind: 'startStage1',
          season: SEASON,
          dates: DATES,
          why: 'no Stage 1 job for 2021-22 yet: load 4 dates (2021-10-19..2021-10-22)',
        },
      ],
    },
    {
      name: 'one date selected: named alone',
      state: () => localState({ selection: [[SEASON, ['2021-10-19']]] }),
      expected: [{ kind: 'startStage1', why: 'no Stage 1 job for 2021-22 yet: load 1 date (2021-10-19)' }],
    },
    {
      name: 'two seasons selected: a Stage 1 job for each, in season order',
      state: () =>
        localState({
          selection: [
            ['2022-23', ['2022-10-18', '2022-10-19']],
            [SEASON, DATES],
          ],
        }),
      expected: [
        { kind: 'startStage1', season: SEASON },
        { kind: 'startStage1', season: '2022-23', dates: ['2022-10-18', '2022-10-19'] },
      ],
    },
    {
      name: 'a season with no date selected: nothing to do for it',
      state: () => localState({ selection: [[SEASON, []]] }),
      expected: [],
    },
    {
      name: 'Stage 1 interrupted (Suspended): no new job, no gate (the run stops on the signal)',
      state: () =>
        localState({
          status: localStatus({
            completedIndexes: '0-1',
            succeeded: 2,
            conditions: [{ type: 'Suspended', status: 'True', reason: 'Interrupted' }],
          }),
        }),
      expected: [],
    },
    {
      name: 'Stage 1 complete: run the gate over its dates',
      state: () => localState({ status: localStatus() }),
      expected: [
        {
          kind: 'runGate',
          key: LOCAL_KEY,
          dates: DATES,
          why: 'every Stage 1 job of 2021-22 finished (1 job, 4 dates): run the gate',
        },
      ],
    },
    {
      name: 'Stage 1 failed a date: reported with its local log file, then the gate',
      state: () => localState({ status: localFailed() }),
      expected: [
        {
          kind: 'reportStage1Failures',
          job: STAGE1.name,
          outcome: 'Failed',
          reason: 'FailedIndexes',
          failed: [{ index: 2, date: '2021-10-21', state: 'failed', logs: LOCAL_LOG(2) }],
          why: `Stage 1 job ${STAGE1.name} of 2021-22 ended Failed (FailedIndexes): 1 date not loaded (2021-10-21)`,
        },
        { kind: 'runGate', key: LOCAL_KEY },
      ],
    },
    {
      name: 'the gate computed and failed: publish it, naming the incomplete date',
      state: () =>
        localState({
          status: localFailed(),
          reports: [report('failures', STAGE1.name)],
          gates: [[SEASON, { key: LOCAL_KEY, result: gateResult(['2021-10-21']) }]],
        }),
      expected: [{ kind: 'publishGate', key: LOCAL_KEY, why: GATE_FAILED_WHY }],
    },
    {
      name: 'the failed gate published: nothing left to do, so the run stops there',
      state: () =>
        localState({
          status: localFailed(),
          reports: [report('failures', STAGE1.name), report('gate', null, { gateKey: LOCAL_KEY, gatePassed: false })],
        }),
      expected: [],
    },
    {
      name: "the gate computed and passed: publish it and start Stage 3 under the cluster's Job name",
      state: () => localState({ status: localStatus(), gates: [[SEASON, { key: LOCAL_KEY, result: gateResult([]) }]] }),
      expected: [
        { kind: 'publishGate', why: 'gate passed for 2021-22: 4 dates, 40 games complete' },
        { kind: 'createStage3Job', job: STAGE3, why: `gate passed for 2021-22: start Stage 3 (job ${STAGE3})` },
      ],
    },
    {
      name: 'Stage 3 stopped at a date: report it, from the summary',
      state: () => localState({ status: localStatus(), stage3: SUMMARY }),
      expected: [
        {
          kind: 'reportStage3Failure',
          job: STAGE3,
          reason: 'BackoffLimitExceeded',
          summary: SUMMARY as never,
          why: 'Stage 3 of 2021-22 stopped at 2021-10-21: player_game_summary (gap_detection)',
        },
      ],
    },
    {
      name: "Stage 3 refused by its own gate: reported in the runner's words",
      state: () =>
        localState({
          status: localStatus(),
          stage3: { ...SUMMARY, status: 'gate_failed', failedDate: undefined, error: 'the Phase 2 gate failed' },
        }),
      expected: [{ kind: 'reportStage3Failure', why: 'Stage 3 of 2021-22 ended gate_failed: the Phase 2 gate failed' }],
    },
    {
      name: 'the Stage 3 failure reported: nothing left, the run stops',
      state: () => localState({ status: localStatus(), stage3: SUMMARY, reports: [report('stage3-failure', STAGE3)] }),
      expected: [],
    },
    {
      name: 'Stage 3 succeeded: validate the dates',
      state: () =>
        localState({
          status: localStatus(),
          stage3: { ...SUMMARY, status: 'succeeded', completedThrough: '2021-10-22', failedDate: undefined },
        }),
      expected: [
        {
          kind: 'validate',
          job: STAGE3,
          dates: DATES,
          why: 'Stage 3 of 2021-22 complete through 2021-10-22: validate 4 dates',
        },
      ],
    },
    {
      name: 'validated: nothing left, the run is done',
      state: () =>
        localState({
          status: localStatus(),
          stage3: { ...SUMMARY, status: 'succeeded', completedThrough: '2021-10-22', failedDate: undefined },
          reports: [report('validation', STAGE3)],
        }),
      expected: [],
    },
  ];

  it.each(cases)('$name', ({ state: s, expected }) => {
    const actions = reconcile(s());
    expect(kinds(actions)).toEqual(expected.map((e) => e.kind));
    actions.forEach((a, i) => {
      expect(a).toMatchObject(expected[i] as Action);
    });
  });

  it('a selection never starts a second Stage 1 job for a season that has one, whatever its state', () => {
    for (const status of [localStatus(), localFailed(), localStatus({ conditions: [] })]) {
      expect(kinds(reconcile(localState({ status })))).not.toContain('startStage1');
    }
  });
});

describe('the reason of each decision on cluster observations', () => {
  const problem = (date: string) => ({ processor: 'nbac_schedule', date, problem: 'failed' as const, error: 'x' });
  it.each([
    {
      name: 'Stage 1 past its deadline: the dates it never loaded',
      kind: 'reportStage1Failures',
      s: () => state({ jobs: [failed(STAGE1, '0', '', 'DeadlineExceeded')] }),
      why: `Stage 1 job ${STAGE1.name} of 2021-22 ended Failed (DeadlineExceeded): 3 dates not loaded (2021-10-20, 2021-10-21, 2021-10-22)`,
    },
    {
      name: 'Stage 1 failed without a readable plan: how many, no dates',
      kind: 'reportStage1Failures',
      s: () => state({ jobs: [FAILED_S1], plans: [] }),
      why: `Stage 1 job ${STAGE1.name} of 2021-22 ended Failed (FailedIndexes): 1 date not loaded`,
    },
    {
      name: 'a Failed condition without a reason: the outcome alone',
      kind: 'reportStage1Failures',
      s: () => state({ jobs: [{ ...FAILED_S1, conditions: [{ type: 'Failed', status: 'True' }] }] }),
      why: `Stage 1 job ${STAGE1.name} of 2021-22 ended Failed: 1 date not loaded (2021-10-21)`,
    },
    {
      name: 'a warning: its message',
      kind: 'warn',
      s: () => state({ jobs: [FAILED_S1], plans: [] }),
      why: `job ${STAGE1.name}: its plan ConfigMap ${STAGE1.planConfigMap} cannot be used: not read`,
    },
    {
      name: 'two Stage 1 jobs finished: both counted',
      kind: 'runGate',
      s: () => state({ jobs: [FAILED_S1, DONE_RETRY], reports: [report('failures', STAGE1.uid)] }),
      why: 'every Stage 1 job of 2021-22 finished (2 jobs, 4 dates): run the gate',
    },
    {
      name: 'a gate of one date and one game passed: singular words',
      kind: 'publishGate',
      s: () =>
        state({
          jobs: [DONE_S1],
          gates: [[SEASON, { key: KEY_DONE, result: { ...gateResult([]), dates: 1, games: 1 } }]],
        }),
      why: 'gate passed for 2021-22: 1 date, 1 game complete',
    },
    {
      name: 'a gate failed on missing games and failed runs: both said, the dates in order',
      kind: 'publishGate',
      s: () =>
        state({
          jobs: [DONE_S1],
          gates: [
            [
              SEASON,
              {
                key: KEY_DONE,
                result: { ...gateResult(['2021-10-21']), runProblems: [problem('2021-10-19'), problem('2021-10-19')] },
              },
            ],
          ],
        }),
      // Sorted across tables and runs: the run's date comes first.
      why: 'gate failed for 2021-22: 2 dates incomplete (2021-10-19, 2021-10-21), 2 Phase 1-2 runs failed or missing',
    },
    {
      name: 'a gate failed on one failed run only',
      kind: 'publishGate',
      s: () =>
        state({
          jobs: [DONE_S1],
          gates: [
            [
              SEASON,
              { key: KEY_DONE, result: { ...gateResult([]), passed: false, runProblems: [problem('2021-10-19')] } },
            ],
          ],
        }),
      why: 'gate failed for 2021-22: 1 date incomplete (2021-10-19), 1 Phase 1-2 run failed or missing',
    },
    {
      name: 'Stage 3 failed with no pod to read: the Job condition',
      kind: 'reportStage3Failure',
      s: () => state({ jobs: [DONE_S1, failed(STAGE3_JOB, '', '', 'DeadlineExceeded')], pods: [[STAGE3, null]] }),
      why: `Stage 3 job ${STAGE3} of 2021-22 failed: DeadlineExceeded (Job has failed indexes)`,
    },
    {
      name: 'Stage 3 failed with a bare Failed condition',
      kind: 'reportStage3Failure',
      s: () => state({ jobs: [DONE_S1, { ...STAGE3_JOB, conditions: [{ type: 'Failed', status: 'True' }] }] }),
      why: `Stage 3 job ${STAGE3} of 2021-22 failed: no reason given`,
    },
    {
      name: 'Stage 3 interrupted without an error: its status alone',
      kind: 'reportStage3Failure',
      s: () =>
        state({
          jobs: [DONE_S1, failed(STAGE3_JOB, '', '', 'BackoffLimitExceeded')],
          pods: [
            [
              STAGE3,
              {
                ...TERMINATION,
                message: JSON.stringify({ ...SUMMARY, status: 'interrupted', failedDate: undefined, error: undefined }),
              },
            ],
          ],
        }),
      why: 'Stage 3 of 2021-22 ended interrupted',
    },
    {
      name: 'Stage 3 complete without a summary: validate, no date named',
      kind: 'validate',
      s: () => state({ jobs: [DONE_S1, done(STAGE3_JOB)] }),
      why: 'Stage 3 of 2021-22 complete: validate 4 dates',
    },
  ])('$name', ({ s, kind, why }) => {
    const actions = reconcile(s());
    expect(actions.filter((a) => a.kind === kind).map((a) => a.why)).toEqual([why]);
  });
});
