// seasonStatus(observed, selection) as a table: each point of a backfill, the next command the stage order gives,
// and the status snapshots a running command writes (throttled by an injected clock).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import { ALL_TABLES } from '../core/adapters/index.js';
import { BadInputError } from '../core/errors.js';
import { SEASON_TYPE_REGULAR } from '../core/pipeline/seasons.js';
import { type DateSelection, formatPlan, type Plan } from '../core/plan.js';
import { readSnapshot, StatusSnapshots, snapshotPath } from '../core/stages/statusSnapshot.js';
import {
  type ClusterFacts,
  type SeasonObservation,
  type SeasonStatus,
  seasonStatus,
  type ValidationReportRef,
} from '../core/status.js';

const SEASON = '2021-22';
const D = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22', '2021-10-23', '2021-10-24'];
const ALL: DateSelection = { seasonType: 'regular' };
const FLAGS = `--season ${SEASON} --season-type regular`;

const PLAN: Plan = {
  season: SEASON,
  source: 'nba_raw.nbac_schedule',
  totals: { dates: D.length, games: D.length },
  dates: D.map((date, i) => ({
    date,
    seasonType: SEASON_TYPE_REGULAR,
    games: 1,
    gameIds: [`00221000${String(i + 10)}`],
  })),
};

// --- Fixture builders: a season at some point of its backfill

function observed(over: Partial<SeasonObservation> = {}): SeasonObservation {
  return {
    season: SEASON,
    plan: PLAN,
    loadedDates: [],
    failedDates: [],
    gateMissingDates: D,
    stage3CompleteDates: [],
    stage3Failures: [],
    validationReports: [],
    running: null,
    ...over,
  };
}

/** Stage 1 loaded every date and the gate passes. */
const gatePassed = (over: Partial<SeasonObservation> = {}) =>
  observed({ loadedDates: D, gateMissingDates: [], ...over });

function report(passed: boolean, over: Partial<ValidationReportRef> = {}): ValidationReportRef {
  return {
    path: `.backfill/logs/reports/validation-${SEASON}.json`,
    seasons: [SEASON],
    dates: D,
    passed,
    generatedAt: '2024-01-02T00:00:00.000Z',
    ...over,
  };
}

const blocked = {
  date: D[3] as string,
  processor: 'player_game_summary',
  check: 'gap_detection',
  error: 'player_game_summary 2021-10-22: gap in the lookback window',
  finishedAt: '2024-01-01T10:00:00.000Z',
};

interface Case {
  name: string;
  obs: SeasonObservation;
  sel?: DateSelection;
  expected: Partial<SeasonStatus>;
  next: string | null;
  reason: RegExp;
}

const CASES: Case[] = [
  {
    name: 'fresh: nothing ran, so Stage 1 for the selection',
    obs: observed(),
    expected: {
      stage1: { dates: 6, loaded: 0, failed: 0, failedDates: [], neverRun: 6, running: false },
      gate: { passed: null, missingDates: [] },
      stage3: { completeThrough: null, remaining: 6, running: false, stale: [], lastFailure: null },
      validation: { passed: null, report: null },
    },
    next: `backfill stage1 ${FLAGS}`,
    reason: /^6 dates of 6 not loaded by Stage 1 yet$/,
  },
  {
    name: 'Stage 1 part done: Stage 1 again for the selection, the gate not run yet',
    obs: observed({ loadedDates: D.slice(0, 4), gateMissingDates: D.slice(4) }),
    expected: {
      stage1: { dates: 6, loaded: 4, failed: 0, failedDates: [], neverRun: 2, running: false },
      gate: { passed: null, missingDates: [] },
    },
    next: `backfill stage1 ${FLAGS}`,
    reason: /^2 dates of 6 not loaded/,
  },
  {
    name: 'a failed date, with dates never run too: retry comes first',
    obs: observed({ loadedDates: D.slice(0, 3), failedDates: [D[3] as string], gateMissingDates: D.slice(3) }),
    expected: {
      stage1: { dates: 6, loaded: 3, failed: 1, failedDates: [D[3] as string], neverRun: 2, running: false },
    },
    next: `backfill retry --season ${SEASON}`,
    reason: /^1 date failed in Stage 1 \(2021-10-22\)/,
  },
  {
    name: 'a failed date, every other loaded: the gate fails on it and retry is next',
    obs: observed({
      loadedDates: D.filter((d) => d !== D[1]),
      failedDates: [D[1] as string],
      gateMissingDates: [D[1] as string],
    }),
    expected: {
      stage1: { dates: 6, loaded: 5, failed: 1, failedDates: [D[1] as string], neverRun: 0, running: false },
      gate: { passed: false, missingDates: [D[1] as string] },
    },
    next: `backfill retry --season ${SEASON}`,
    reason: /^1 date failed in Stage 1/,
  },
  {
    name: 'gate failed with every date loaded (a game lost): Stage 1 for the missing dates',
    obs: observed({ loadedDates: D, gateMissingDates: [D[1] as string, D[4] as string] }),
    expected: { gate: { passed: false, missingDates: [D[1] as string, D[4] as string] } },
    next: `backfill stage1 --season ${SEASON} --season-type regular --start-date ${D[1]} --end-date ${D[4]}`,
    reason: /^gate failed for 2021-22: 2 dates incomplete \(2021-10-20, 2021-10-23\)/,
  },
  {
    name: 'Stage 3 part way: stage3, complete through its last date',
    obs: gatePassed({ stage3CompleteDates: D.slice(0, 3) }),
    expected: {
      gate: { passed: true, missingDates: [] },
      stage3: { completeThrough: D[2] as string, remaining: 3, running: false, stale: [], lastFailure: null },
    },
    next: `backfill stage3 ${FLAGS}`,
    reason: /^Stage 3 complete through 2021-10-21, 3 dates remaining$/,
  },
  {
    name: 'Stage 3 stopped at a blocked date: stage3 again, with the processor and check',
    obs: gatePassed({ stage3CompleteDates: D.slice(0, 3), stage3Failures: [blocked] }),
    expected: {
      stage3: {
        completeThrough: D[2] as string,
        remaining: 3,
        running: false,
        stale: [],
        lastFailure: { date: blocked.date, processor: blocked.processor, check: blocked.check, error: blocked.error },
      },
    },
    next: `backfill stage3 ${FLAGS}`,
    reason: /^Stage 3 stopped at 2021-10-22: player_game_summary \(gap_detection\); fix the cause/,
  },
  {
    name: 'Stage 3 resumes at the first gap: a later complete date does not count',
    obs: gatePassed({ stage3CompleteDates: [D[0] as string, D[2] as string, D[3] as string] }),
    expected: {
      stage3: { completeThrough: D[0] as string, remaining: 5, running: false, stale: [], lastFailure: null },
    },
    next: `backfill stage3 ${FLAGS}`,
    reason: /complete through 2021-10-19, 5 dates remaining/,
  },
  {
    name: 'Stage 3 complete, validation not run: validate',
    obs: gatePassed({ stage3CompleteDates: D }),
    expected: {
      stage3: { completeThrough: D[5] as string, remaining: 0, running: false, stale: [], lastFailure: null },
      validation: { passed: null, report: null },
    },
    next: `backfill validate ${FLAGS}`,
    reason: /no validation report covers these dates/,
  },
  {
    name: 'validation failed: validate again, with the report',
    obs: gatePassed({ stage3CompleteDates: D, validationReports: [report(false)] }),
    expected: { validation: { passed: false, report: report(false).path } },
    next: `backfill validate ${FLAGS}`,
    reason: /^validation failed \(\.backfill\/logs\/reports\/validation-2021-22\.json\)/,
  },
  {
    name: 'all done: nothing to run',
    obs: gatePassed({ stage3CompleteDates: D, validationReports: [report(true)] }),
    expected: { validation: { passed: true, report: report(true).path } },
    next: null,
    reason: /^nothing to do: every stage of 2021-22 is done and validation passed$/,
  },
  {
    name: 'the newest covering report decides: a failed one after a pass',
    obs: gatePassed({
      stage3CompleteDates: D,
      validationReports: [report(true), report(false, { path: 'new.json', generatedAt: '2024-01-03T00:00:00.000Z' })],
    }),
    expected: { validation: { passed: false, report: 'new.json' } },
    next: `backfill validate ${FLAGS}`,
    reason: /^validation failed \(new\.json\)/,
  },
  {
    name: 'a report of fewer dates than the selection does not count',
    obs: gatePassed({ stage3CompleteDates: D, validationReports: [report(true, { dates: D.slice(0, 5) })] }),
    expected: { validation: { passed: null, report: null } },
    next: `backfill validate ${FLAGS}`,
    reason: /no validation report covers/,
  },
  {
    name: 'a selection: only its dates count, and the commands carry it',
    obs: gatePassed({ stage3CompleteDates: D.slice(0, 4), stage3Failures: [{ ...blocked, date: D[5] as string }] }),
    sel: { seasonType: 'regular', startDate: D[2], endDate: D[4] },
    expected: {
      selection: { seasonType: 'regular', startDate: D[2] as string, endDate: D[4] as string },
      stage1: { dates: 3, loaded: 3, failed: 0, failedDates: [], neverRun: 0, running: false },
      stage3: { completeThrough: D[3] as string, remaining: 1, running: false, stale: [], lastFailure: null },
    },
    next: `backfill stage3 ${FLAGS} --start-date ${D[2]} --end-date ${D[4]}`,
    reason: /complete through 2021-10-22, 1 date remaining/,
  },
  {
    name: 'a command running Stage 3 (from its snapshot): nothing to run, wait for it',
    obs: gatePassed({
      stage3CompleteDates: D.slice(0, 2),
      running: { stage: 'stage3', command: 'backfill stage3 --season 2021-22', pid: 4242 },
    }),
    expected: {
      stage3: { completeThrough: D[1] as string, remaining: 4, running: true, stale: [], lastFailure: null },
    },
    next: null,
    reason: /^`backfill stage3 --season 2021-22` \(pid 4242\) is running Stage 3 for 2021-22: wait for it to end$/,
  },
  {
    name: 'no dates selected (playoffs of a plan without them): nothing to run',
    obs: observed(),
    sel: { seasonType: 'playoffs' },
    expected: { stage1: { dates: 0, loaded: 0, failed: 0, failedDates: [], neverRun: 0, running: false } },
    next: null,
    reason: /^no game dates of 2021-22 selected$/,
  },
];

// --- In a cluster (`status --cluster`): the same view, the next step the cluster's

const NS = 'nba-backfill';
const S3JOB = 'nba-stage3-202122-0a1b2c3d';
const inCluster = (obs: SeasonObservation, over: Partial<ClusterFacts> = {}): SeasonObservation => ({
  ...obs,
  cluster: { namespace: NS, runningJobs: [], stage3Job: null, ...over },
});

const CLUSTER_CASES: Case[] = [
  {
    name: 'no Stage 1 Job yet: apply the season manifest',
    obs: inCluster(observed()),
    expected: { stage1: { dates: 6, loaded: 0, failed: 0, failedDates: [], neverRun: 6, running: false } },
    next: `kubectl apply -f dist/40-stage1-${SEASON}.k8s.yaml`,
    reason: /^6 dates of 6 not loaded by a Stage 1 Job yet: apply the season's Stage 1 manifest$/,
  },
  {
    name: 'a Stage 1 Job running: wait for it, Stage 1 shown running',
    obs: inCluster(observed({ loadedDates: D.slice(0, 2) }), {
      runningJobs: [{ name: 'nba-stage1-202122-098ef6b6', stage: 'stage1' }],
    }),
    expected: { stage1: { dates: 6, loaded: 2, failed: 0, failedDates: [], neverRun: 4, running: true } },
    next: null,
    reason:
      /^Job nba-stage1-202122-098ef6b6 is running Stage 1 for 2021-22 in namespace nba-backfill: wait for it to end/,
  },
  {
    name: 'a failed date: a retry Job in the cluster',
    obs: inCluster(
      observed({ loadedDates: D.slice(1), failedDates: [D[0] as string], gateMissingDates: [D[0] as string] }),
    ),
    expected: {
      stage1: { dates: 6, loaded: 5, failed: 1, failedDates: [D[0] as string], neverRun: 0, running: false },
    },
    next: `backfill retry --season ${SEASON} --cluster --namespace ${NS}`,
    reason: /^1 date failed in Stage 1 \(2021-10-19\): fix the cause, then a retry Job loads them/,
  },
  {
    name: 'the gate failed on dates no Job failed: nothing the cluster runs by itself, the reason says what to do',
    obs: inCluster(observed({ loadedDates: D, gateMissingDates: [D[2] as string] })),
    expected: { gate: { passed: false, missingDates: [D[2] as string] } },
    next: null,
    reason: /^gate failed for 2021-22: 1 date incomplete \(2021-10-21\) though no Job failed them: .*--from-log/,
  },
  {
    name: 'the gate passes and no Stage 3 Job yet: the controller creates it',
    obs: inCluster(gatePassed()),
    expected: { stage3: { completeThrough: null, remaining: 6, running: false, stale: [], lastFailure: null } },
    next: null,
    reason: /^the gate passes for these dates: the controller creates the Stage 3 Job of 2021-22/,
  },
  {
    name: 'the Stage 3 Job running: wait for it, Stage 3 shown running',
    obs: inCluster(gatePassed({ stage3CompleteDates: D.slice(0, 2) }), {
      runningJobs: [{ name: S3JOB, stage: 'stage3' }],
      stage3Job: { name: S3JOB, outcome: null },
    }),
    expected: {
      stage3: { completeThrough: D[1] as string, remaining: 4, running: true, stale: [], lastFailure: null },
    },
    next: null,
    reason: new RegExp(`^Job ${S3JOB} is running Stage 3 for 2021-22 in namespace nba-backfill`),
  },
  {
    name: 'the Stage 3 Job stopped at a blocked date: delete it, the controller creates it again',
    obs: inCluster(gatePassed({ stage3CompleteDates: D.slice(0, 3), stage3Failures: [blocked] }), {
      stage3Job: { name: S3JOB, outcome: 'Failed' },
    }),
    expected: {
      stage3: {
        completeThrough: D[2] as string,
        remaining: 3,
        running: false,
        stale: [],
        lastFailure: { date: blocked.date, processor: blocked.processor, check: blocked.check, error: blocked.error },
      },
    },
    next: `kubectl -n ${NS} delete job ${S3JOB}`,
    reason: new RegExp(
      `^Stage 3 Job ${S3JOB} stopped at 2021-10-22: player_game_summary \\(gap_detection\\); fix the cause, then delete the Job: the controller creates it again and it resumes at the date after 2021-10-21$`,
    ),
  },
  {
    name: 'the Stage 3 Job failed without a run history failure (its pod killed): delete it',
    obs: inCluster(gatePassed(), { stage3Job: { name: S3JOB, outcome: 'Failed' } }),
    expected: { stage3: { completeThrough: null, remaining: 6, running: false, stale: [], lastFailure: null } },
    next: `kubectl -n ${NS} delete job ${S3JOB}`,
    reason: new RegExp(`^Stage 3 Job ${S3JOB} failed with 6 dates not complete; .* resumes at the first date$`),
  },
  {
    name: 'Stage 3 complete, no validation ConfigMap yet: the controller validates',
    obs: inCluster(gatePassed({ stage3CompleteDates: D }), { stage3Job: { name: S3JOB, outcome: 'Complete' } }),
    expected: { validation: { passed: null, report: null } },
    next: null,
    reason: new RegExp(
      `^Stage 3 Job ${S3JOB} is complete: the controller runs the validation \\(ConfigMap ${S3JOB}-validation\\)$`,
    ),
  },
  {
    name: 'validation failed in its ConfigMap: validate again against the warehouse',
    obs: inCluster(
      gatePassed({
        stage3CompleteDates: D,
        validationReports: [report(false, { path: `configmap/${S3JOB}-validation` })],
      }),
      { stage3Job: { name: S3JOB, outcome: 'Complete' } },
    ),
    expected: { validation: { passed: false, report: `configmap/${S3JOB}-validation` } },
    next: `backfill validate ${FLAGS}`,
    reason: new RegExp(`^validation failed \\(configmap/${S3JOB}-validation\\)`),
  },
  {
    name: 'all done in the cluster: nothing to run',
    obs: inCluster(gatePassed({ stage3CompleteDates: D, validationReports: [report(true)] }), {
      stage3Job: { name: S3JOB, outcome: 'Complete' },
    }),
    expected: { validation: { passed: true, report: report(true).path } },
    next: null,
    reason: /^nothing to do: every stage of 2021-22 is done and validation passed$/,
  },
];

describe('seasonStatus', () => {
  it.each(CASES)('$name', ({ obs, sel, expected, next, reason }) => {
    const status = seasonStatus(obs, sel ?? ALL);
    expect(status).toMatchObject(expected);
    expect(status.next).toBe(next);
    expect(status.reason).toMatch(reason);
  });

  it.each(CLUSTER_CASES)('in a cluster: $name', ({ obs, sel, expected, next, reason }) => {
    const status = seasonStatus(obs, sel ?? ALL);
    expect(status).toMatchObject(expected);
    expect(status.next).toBe(next);
    expect(status.reason).toMatch(reason);
  });

  it('refuses a selection outside the season, as the stage commands do', () => {
    expect(() => seasonStatus(observed(), { seasonType: 'regular', startDate: '2023-01-01' })).toThrow(BadInputError);
  });
});

describe('status snapshots', () => {
  let dir: string | undefined;
  let warehouse: DuckDbWarehouse | undefined;
  afterEach(async () => {
    await warehouse?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function setUp(clock: { t: number }) {
    dir = mkdtempSync(join(tmpdir(), 'status-snapshot-'));
    writeFileSync(join(dir, `${SEASON}.json`), formatPlan(PLAN));
    warehouse = await DuckDbWarehouse.open(':memory:');
    await warehouse.ensureTables(ALL_TABLES);
    return new StatusSnapshots({
      warehouse,
      planDir: dir,
      logDir: join(dir, 'logs'),
      command: 'backfill stage3 --season 2021-22',
      pid: 4242,
      now: () => new Date(clock.t),
      onError: (err) => {
        throw err;
      },
    });
  }

  it('writes at the start, then at most once a second while a stage runs, and always at its end', async () => {
    const clock = { t: Date.parse('2024-01-01T00:00:00.000Z') };
    const snapshots = await setUp(clock);
    const file = snapshotPath(join(dir as string, 'logs'), SEASON);
    await snapshots.start(SEASON, 'stage3');
    expect(readSnapshot(file)).toMatchObject({
      writtenAt: '2024-01-01T00:00:00.000Z',
      pid: 4242,
      command: 'backfill stage3 --season 2021-22',
      observation: { season: SEASON, running: { stage: 'stage3', pid: 4242 } },
    });
    clock.t += 999;
    expect(snapshots.update(SEASON, 'stage3')).toBeUndefined();
    clock.t += 1;
    await snapshots.update(SEASON, 'stage3');
    expect(readSnapshot(file)?.writtenAt).toBe('2024-01-01T00:00:01.000Z');
    clock.t += 10;
    await snapshots.flush(SEASON, null);
    expect(readSnapshot(file)).toMatchObject({ writtenAt: '2024-01-01T00:00:01.010Z', observation: { running: null } });
  });

  it('names the file when it is not a snapshot', () => {
    dir = mkdtempSync(join(tmpdir(), 'status-snapshot-'));
    const file = join(dir, 'x.json');
    writeFileSync(file, '{"version": 9}');
    expect(() => readSnapshot(file)).toThrow(`${file}: not a status snapshot of version 1`);
    writeFileSync(file, '{');
    expect(() => readSnapshot(file)).toThrow(`${file}: not a status snapshot`);
  });
});
