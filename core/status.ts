// Where a season's backfill stands, derived from observed facts: a pure function (no I/O, no clock).

import { type IsoDate, sortableTime } from './dates.js';
import { getSeason } from './pipeline/seasons.js';
import { type DateSelection, type Plan, selectDates } from './plan.js';

/** Why a Phase 3-4 date is not complete: the first processor of the date whose latest run did not succeed. */
export interface Stage3Failure {
  readonly date: IsoDate;
  readonly processor: string;
  /** The defensive check that blocked it (`gap_detection`, ...), or `error` for a failed run. */
  readonly check: string;
  readonly error: string | null;
  readonly finishedAt: string;
}

/** A validation report the validate command wrote (its JSON), as far as status needs it. */
export interface ValidationReportRef {
  readonly path: string;
  readonly seasons: readonly string[];
  readonly dates: readonly IsoDate[];
  readonly passed: boolean;
  readonly generatedAt: string;
}

/** The command whose snapshot this is, while it runs a stage of the season. */
export interface RunningCommand {
  readonly stage: 'stage1' | 'stage3';
  readonly command: string;
  readonly pid: number;
}

/** What a Kubernetes cluster holds about the season (`status --cluster`): its Jobs as the controller sees them. */
export interface ClusterFacts {
  readonly namespace: string;
  /** The season's Stage 1, retry and Stage 3 Jobs that have not ended, oldest first. */
  readonly runningJobs: readonly { readonly name: string; readonly stage: 'stage1' | 'stage3' }[];
  /** The season's newest Stage 3 Job and how it ended (`outcome` null: not yet), or null when it has none. */
  readonly stage3Job: { readonly name: string; readonly outcome: 'Complete' | 'Failed' | null } | null;
}

/**
 * The facts about one season over its whole plan, whatever the selection: the warehouse, the reports and, in a
 * snapshot, the command running; with `cluster`, also the cluster's Jobs (its failed dates and validation
 * ConfigMaps are then in failedDates and validationReports). Plain JSON, so that a running command can write it
 * for `status` to read.
 */
export interface SeasonObservation {
  readonly season: string;
  readonly plan: Plan;
  /** Dates whose every Phase 1-2 processor's latest run succeeded. */
  readonly loadedDates: readonly IsoDate[];
  /** Dates failing now (as `failures` and `retry` see them). */
  readonly failedDates: readonly IsoDate[];
  /** Dates the gate finds incomplete: a game missing from a critical table, or a Phase 1-2 run failed or missing. */
  readonly gateMissingDates: readonly IsoDate[];
  /** Dates whose every Phase 3-4 processor's latest run succeeded. */
  readonly stage3CompleteDates: readonly IsoDate[];
  /**
   * Dates with a Phase 3-4 run that read an input that has changed since (a corrected date), or a stale run's
   * output: Stage 3 recomputes from the first of them. @default []
   */
  readonly staleDates?: readonly IsoDate[];
  /** One per date that Stage 3 tried and did not complete. */
  readonly stage3Failures: readonly Stage3Failure[];
  readonly validationReports: readonly ValidationReportRef[];
  readonly running: RunningCommand | null;
  /** Set when read from a cluster: the next step is then the cluster's (a Job, the controller), not a command here. */
  readonly cluster?: ClusterFacts;
}

/** One season's status: the JSON form `backfill status --format json` prints (documented in README, kept stable). */
export interface SeasonStatus {
  readonly season: string;
  readonly selection: {
    readonly seasonType: DateSelection['seasonType'];
    readonly startDate: IsoDate | null;
    readonly endDate: IsoDate | null;
  };
  readonly stage1: {
    readonly dates: number;
    readonly loaded: number;
    readonly failed: number;
    readonly failedDates: readonly IsoDate[];
    readonly neverRun: number;
    readonly running: boolean;
  };
  /** `passed` null: not run yet, because Stage 1 has dates never run. */
  readonly gate: { readonly passed: boolean | null; readonly missingDates: readonly IsoDate[] };
  readonly stage3: {
    readonly completeThrough: IsoDate | null;
    readonly remaining: number;
    readonly running: boolean;
    /** The selected dates whose Phase 3-4 results are stale (after a correction), sorted. */
    readonly stale: readonly IsoDate[];
    readonly lastFailure: {
      readonly date: IsoDate;
      readonly processor: string;
      readonly check: string;
      readonly error: string | null;
    } | null;
  };
  /** `passed` null: no report covers the selected dates. */
  readonly validation: { readonly passed: boolean | null; readonly report: string | null };
  /** The command to run next, or null when there is nothing to do (or a command is running). */
  readonly next: string | null;
  readonly reason: string;
}

function listed(dates: readonly string[], max = 5): string {
  return dates.slice(0, max).join(', ') + (dates.length > max ? `, ... (${dates.length} dates)` : '');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The flags that repeat a selection on another command's line. */
export function selectionFlags(season: string, sel: DateSelection): string {
  return [
    `--season ${season}`,
    `--season-type ${sel.seasonType}`,
    ...(sel.startDate ? [`--start-date ${sel.startDate}`] : []),
    ...(sel.endDate ? [`--end-date ${sel.endDate}`] : []),
  ].join(' ');
}

/** The newest report whose seasons include the season and whose dates include every selected date. */
function coveringReport(obs: SeasonObservation, dates: readonly IsoDate[]): ValidationReportRef | undefined {
  if (dates.length === 0) return undefined;
  const covering = obs.validationReports.filter((r) => {
    const held = new Set(r.dates);
    return r.seasons.includes(obs.season) && dates.every((d) => held.has(d));
  });
  return covering.sort((a, b) => (a.generatedAt < b.generatedAt ? 1 : a.generatedAt > b.generatedAt ? -1 : 0))[0];
}

/**
 * The season's status for a selection of its plan's dates, and the next command in the stage order: failed
 * dates are retried, dates never run go through Stage 1, a failing gate loads its missing dates again, then
 * Stage 3 until complete, then validation until it passes. A command running the season is waited for.
 * Throws BadInputError when the selection's dates are outside the season (as the stage commands do).
 */
export function seasonStatus(obs: SeasonObservation, sel: DateSelection): SeasonStatus {
  const dates = selectDates(obs.plan, getSeason(obs.season), sel).map((d) => d.date);
  const selected = new Set(dates);
  const inSel = (list: readonly IsoDate[]) => [...new Set(list.filter((d) => selected.has(d)))].sort();
  const failedDates = inSel(obs.failedDates);
  const failed = new Set(failedDates);
  const loaded = inSel(obs.loadedDates).filter((d) => !failed.has(d));
  const neverRun = dates.length - loaded.length - failedDates.length;
  const missing = inSel(obs.gateMissingDates);
  const gatePassed = neverRun > 0 || dates.length === 0 ? null : missing.length === 0;

  const stale = inSel(obs.staleDates ?? []);
  const staleSet = new Set(stale);
  const complete = new Set(obs.stage3CompleteDates.filter((d) => !staleSet.has(d)));
  // Stage 3 resumes at the first date not complete or stale: the dates before it are where it stands.
  const firstIncomplete = dates.findIndex((d) => !complete.has(d));
  const doneCount = firstIncomplete < 0 ? dates.length : firstIncomplete;
  const completeThrough = doneCount > 0 ? (dates[doneCount - 1] as IsoDate) : null;
  const remaining = dates.length - doneCount;
  const failure = obs.stage3Failures
    .filter((f) => selected.has(f.date) && !complete.has(f.date))
    .sort((a, b) => {
      const [x, y] = [sortableTime(a.finishedAt), sortableTime(b.finishedAt)];
      return x < y ? 1 : x > y ? -1 : a.date < b.date ? -1 : 1;
    })[0];
  const lastFailure = failure
    ? { date: failure.date, processor: failure.processor, check: failure.check, error: failure.error }
    : null;

  const report = coveringReport(obs, dates);
  const running = obs.running;
  const clusterRunning = (stage: RunningCommand['stage']) =>
    obs.cluster?.runningJobs.some((j) => j.stage === stage) ?? false;
  const flags = selectionFlags(obs.season, sel);
  const base = {
    season: obs.season,
    selection: { seasonType: sel.seasonType, startDate: sel.startDate ?? null, endDate: sel.endDate ?? null },
    stage1: {
      dates: dates.length,
      loaded: loaded.length,
      failed: failedDates.length,
      failedDates,
      neverRun,
      running: running?.stage === 'stage1' || clusterRunning('stage1'),
    },
    gate: { passed: gatePassed, missingDates: gatePassed === false ? missing : [] },
    stage3: {
      completeThrough,
      remaining,
      running: running?.stage === 'stage3' || clusterRunning('stage3'),
      stale,
      lastFailure,
    },
    validation: { passed: report?.passed ?? null, report: report?.path ?? null },
  };
  const next = obs.cluster
    ? decideNextInCluster(obs.season, flags, base, obs.cluster)
    : decideNext(obs.season, flags, sel.seasonType, base, running);
  return { ...base, ...next };
}

type Base = Omit<SeasonStatus, 'next' | 'reason'>;

/** Whether the first date Stage 3 would run is a stale one (a correction), not a failure or a new date. */
function staleFirst(s: Base): boolean {
  const first = s.stage3.stale[0];
  return first !== undefined && (s.stage3.completeThrough === null || first > s.stage3.completeThrough);
}

function staleReason(s: Base): string {
  const stale = s.stage3.stale;
  return `${plural(stale.length, 'date')} stale after a correction of their inputs (${listed(stale)}): Stage 3 recomputes from ${stale[0]}`;
}

function decideNext(
  season: string,
  flags: string,
  seasonType: DateSelection['seasonType'],
  s: Base,
  running: RunningCommand | null,
): { next: string | null; reason: string } {
  if (running) {
    return {
      next: null,
      reason: `\`${running.command}\` (pid ${running.pid}) is running ${running.stage === 'stage1' ? 'Stage 1' : 'Stage 3'} for ${season}: wait for it to end`,
    };
  }
  if (s.stage1.dates === 0) return { next: null, reason: `no game dates of ${season} selected` };
  if (s.stage1.failed > 0) {
    return {
      next: `backfill retry --season ${season}`,
      reason: `${plural(s.stage1.failed, 'date')} failed in Stage 1 (${listed(s.stage1.failedDates)}): fix the cause, then retry them`,
    };
  }
  if (s.stage1.neverRun > 0) {
    return {
      next: `backfill stage1 ${flags}`,
      reason: `${plural(s.stage1.neverRun, 'date')} of ${s.stage1.dates} not loaded by Stage 1 yet`,
    };
  }
  if (s.gate.passed === false) {
    const m = s.gate.missingDates;
    return {
      next: `backfill stage1 --season ${season} --season-type ${seasonType} --start-date ${m[0]} --end-date ${m.at(-1)}`,
      reason: `gate failed for ${season}: ${plural(m.length, 'date')} incomplete (${listed(m)}); see \`backfill gate ${flags}\``,
    };
  }
  if (s.stage3.remaining > 0) {
    const f = s.stage3.lastFailure;
    return {
      next: `backfill stage3 ${flags}`,
      reason: staleFirst(s)
        ? staleReason(s)
        : f
          ? `Stage 3 stopped at ${f.date}: ${f.processor} (${f.check}); fix the cause, then run it again: it resumes at ${s.stage3.completeThrough ? `the date after ${s.stage3.completeThrough}` : 'the first date'}`
          : `Stage 3 ${s.stage3.completeThrough ? `complete through ${s.stage3.completeThrough}` : 'not started'}, ${plural(s.stage3.remaining, 'date')} remaining`,
    };
  }
  if (s.validation.passed !== true) {
    return {
      next: `backfill validate ${flags}`,
      reason:
        s.validation.passed === false
          ? `validation failed (${s.validation.report}): fix the cause, then validate again`
          : 'Stage 3 is complete and no validation report covers these dates',
    };
  }
  return { next: null, reason: `nothing to do: every stage of ${season} is done and validation passed` };
}

/**
 * The next step in the cluster, in the same stage order: there the controller takes every step it can (the gate
 * when a season's Stage 1 Jobs end, the Stage 3 Job once, the validation), so `next` is what a person does (a
 * retry Job, the season's manifest, deleting a failed Stage 3 Job so that the controller creates it again), or
 * null with the reason saying what the cluster is doing. A Job not ended is waited for.
 */
function decideNextInCluster(
  season: string,
  flags: string,
  s: Base,
  cluster: ClusterFacts,
): { next: string | null; reason: string } {
  const ns = cluster.namespace;
  const newest = cluster.runningJobs.at(-1);
  if (newest) {
    return {
      next: null,
      reason: `Job ${newest.name} is running ${newest.stage === 'stage1' ? 'Stage 1' : 'Stage 3'} for ${season} in namespace ${ns}: wait for it to end (the controller takes the next step)`,
    };
  }
  if (s.stage1.dates === 0) return { next: null, reason: `no game dates of ${season} selected` };
  if (s.stage1.failed > 0) {
    return {
      next: `backfill retry --season ${season} --cluster --namespace ${ns}`,
      reason: `${plural(s.stage1.failed, 'date')} failed in Stage 1 (${listed(s.stage1.failedDates)}): fix the cause, then a retry Job loads them (the controller runs the gate again when it ends)`,
    };
  }
  if (s.stage1.neverRun > 0) {
    return {
      next: `kubectl apply -f dist/40-stage1-${season}.k8s.yaml`,
      reason: `${plural(s.stage1.neverRun, 'date')} of ${s.stage1.dates} not loaded by a Stage 1 Job yet: apply the season's Stage 1 manifest`,
    };
  }
  if (s.gate.passed === false) {
    const m = s.gate.missingDates;
    return {
      next: null,
      reason: `gate failed for ${season}: ${plural(m.length, 'date')} incomplete (${listed(m)}) though no Job failed them: load them again with a retry Job of those dates (\`backfill retry --cluster --from-log FILE\`)`,
    };
  }
  const job = cluster.stage3Job;
  if (s.stage3.remaining > 0) {
    if (!job) {
      return {
        next: null,
        reason: `the gate passes for these dates: the controller creates the Stage 3 Job of ${season} once it has run the gate over the season's ended Stage 1 Jobs`,
      };
    }
    const f = s.stage3.lastFailure;
    return {
      next: `kubectl -n ${ns} delete job ${job.name}`,
      reason: `${f ? `Stage 3 Job ${job.name} stopped at ${f.date}: ${f.processor} (${f.check})` : `Stage 3 Job ${job.name} ${job.outcome === 'Failed' ? 'failed' : 'ended'} with ${plural(s.stage3.remaining, 'date')} not complete`}; fix the cause, then delete the Job: the controller creates it again and it resumes at ${s.stage3.completeThrough ? `the date after ${s.stage3.completeThrough}` : 'the first date'}`,
    };
  }
  if (s.validation.passed === null && job?.outcome === 'Complete') {
    return {
      next: null,
      reason: `Stage 3 Job ${job.name} is complete: the controller runs the validation (ConfigMap ${job.name}-validation)`,
    };
  }
  if (s.validation.passed !== true) {
    return {
      next: `backfill validate ${flags}`,
      reason:
        s.validation.passed === false
          ? `validation failed (${s.validation.report}): fix the cause, then validate again`
          : 'Stage 3 is complete and no validation ConfigMap covers these dates',
    };
  }
  return { next: null, reason: `nothing to do: every stage of ${season} is done and validation passed` };
}
