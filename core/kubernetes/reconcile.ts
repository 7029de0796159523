// The backfill's decisions, for the controller and for `backfill run` alike: a pure function from what an
// executor observed (Jobs, their plans, gate verdicts, Stage 3 outcomes, reports made) to the actions that move
// each season forward, each with the reason a person reads. No I/O, no clock, no executor: the controller's
// Kubernetes executor and the local one (core/ports/executor.ts) observe and act; every decision is here and
// tested as a table.

import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { IsoDate } from '../dates.js';
import type { GateResult } from '../gate.js';
import { parseIndexes } from '../jobs/indexes.js';
import type { JobPlan } from '../jobs/spec.js';
import type { Stage3Summary } from '../stages/stage3.js';
import { COMPONENT_STAGE1, COMPONENT_STAGE3, kubectlLogsCommand, listDates, type ReportKind } from './contract.js';

/** One entry of `status.conditions`. */
export interface JobCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
}

/** The fields of a batch/v1 Job the controller decides on. */
export interface ObservedJob {
  readonly name: string;
  readonly uid: string;
  /** `stage1` (Stage 1 and retry Jobs) or `stage3`. */
  readonly component: string;
  readonly season: string;
  /** The ConfigMap holding the job plan (Stage 1 and retry Jobs). */
  readonly planConfigMap: string | null;
  readonly completions: number;
  readonly createdAt: string;
  /** When it reached Complete or Failed (ISO), if it did. */
  readonly finishedAt: string | null;
  /** `status.completedIndexes`, e.g. "0-3,5" (empty when none). */
  readonly completedIndexes: string;
  /** `status.failedIndexes` (null when the Job has no backoffLimitPerIndex). */
  readonly failedIndexes: string | null;
  readonly succeeded: number;
  readonly failed: number;
  readonly active: number;
  readonly conditions: readonly JobCondition[];
  /**
   * Where each index's logs are, when the executor knows (the local runtime's log files); without it, the
   * kubectl command that shows them in the namespace.
   */
  readonly indexLogs?: readonly string[];
}

/** A job plan ConfigMap as read: the plan, or why it could not be used. */
export type PlanLookup =
  | { readonly ok: true; readonly plan: JobPlan }
  | { readonly ok: false; readonly problem: string };

/** A season's Stage 3 Job spec ConfigMap as read. */
export type Stage3Spec =
  | { readonly ok: true; readonly jobName: string; readonly manifest: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly problem: string };

/** A report ConfigMap the controller wrote earlier (so that a restart does not report twice). */
export interface ObservedReport {
  readonly name: string;
  readonly kind: ReportKind;
  readonly season: string;
  readonly jobUid: string | null;
  readonly gateKey: string | null;
  readonly gatePassed: boolean | null;
}

/** How the Stage 3 pod ended: its container's termination state. */
export interface Stage3Termination {
  readonly podName: string;
  readonly exitCode: number | null;
  readonly reason: string | null;
  /** The termination message: the runner's JSON summary. */
  readonly message: string | null;
}

/** A gate result computed by this controller process, for the set of finished jobs named by `key`. */
export interface GateOutcome {
  readonly key: string;
  readonly result: GateResult;
}

export interface ObservedState {
  readonly namespace: string;
  readonly jobs: readonly ObservedJob[];
  /** Plan ConfigMaps by name. */
  readonly plans: ReadonlyMap<string, PlanLookup>;
  /** Stage 3 spec ConfigMaps by season. */
  readonly stage3Specs: ReadonlyMap<string, Stage3Spec>;
  /** How the pod of a finished Stage 3 Job ended, by Job name (null: no pod left to read). */
  readonly stage3Pods: ReadonlyMap<string, Stage3Termination | null>;
  readonly reports: readonly ObservedReport[];
  /** Gate results computed in this process, by season. */
  readonly gates: ReadonlyMap<string, GateOutcome>;
  /**
   * The dates each season is to load, when this executor starts Stage 1 itself (`backfill run`): a season with
   * dates and no Stage 1 Job gets one. Absent in the cluster, where Stage 1 Jobs come from the manifests.
   */
  readonly selection?: ReadonlyMap<string, readonly IsoDate[]>;
}

/** One index of a Stage 1 Job that did not complete. */
export interface FailedIndex {
  readonly index: number;
  /** Its date from the plan (null when the plan cannot be read). */
  readonly date: IsoDate | null;
  /** Failed by the Job controller (`failed`), or never completed before the Job ended (`unfinished`). */
  readonly state: 'failed' | 'unfinished';
  /** The command that shows its pods' logs. */
  readonly logs: string;
}

/**
 * What every decision carries: its season and why it was taken, in words both modes print (`why`, as `reason`
 * already names a Job condition's reason on some actions).
 */
interface Decided {
  readonly season: string;
  readonly why: string;
}

export type Action = Decided &
  (
    | { readonly kind: 'startStage1'; readonly season: string; readonly dates: readonly IsoDate[] }
    | {
        readonly kind: 'reportStage1Failures';
        readonly season: string;
        readonly job: string;
        readonly jobUid: string;
        readonly outcome: 'Complete' | 'Failed';
        /** The reason of the Failed condition (FailedIndexes, DeadlineExceeded, ...). */
        readonly reason: string | null;
        readonly completedIndexes: string;
        readonly failedIndexes: string;
        readonly failed: readonly FailedIndex[];
      }
    | { readonly kind: 'runGate'; readonly season: string; readonly key: string; readonly dates: readonly IsoDate[] }
    | {
        readonly kind: 'publishGate';
        readonly season: string;
        readonly key: string;
        /** The finished Job whose end ran the gate: the Event is attached to it. */
        readonly lastJob: { readonly name: string; readonly uid: string };
        readonly result: GateResult;
      }
    | {
        readonly kind: 'createStage3Job';
        readonly season: string;
        readonly job: string;
        readonly manifest: Readonly<Record<string, unknown>>;
      }
    | {
        readonly kind: 'reportStage3Failure';
        readonly season: string;
        readonly job: string;
        readonly jobUid: string;
        /** The reason and message of the Job's Failed condition. */
        readonly reason: string | null;
        readonly conditionMessage: string | null;
        readonly termination: Stage3Termination | null;
        /** The termination message read as the runner's summary (null when absent or not a summary). */
        readonly summary: Stage3Summary | null;
      }
    | {
        readonly kind: 'validate';
        readonly season: string;
        readonly job: string;
        readonly jobUid: string;
        readonly dates: readonly IsoDate[];
        readonly summary: Stage3Summary | null;
      }
    /** Something only a person can fix (a missing ConfigMap, an unreadable plan): logged, nothing else. */
    | { readonly kind: 'warn'; readonly season: string; readonly subject: string; readonly message: string }
  );

export type ActionKind = Action['kind'];

// ---------------------------------------------------------------------------------------------------------------
// Helpers, each pure.

const isTrue = (job: ObservedJob, type: string) => job.conditions.some((c) => c.type === type && c.status === 'True');

/** `Complete` or `Failed` once the Job reached a terminal condition; null while it runs (FailureTarget included). */
export function jobOutcome(job: ObservedJob): 'Complete' | 'Failed' | null {
  if (isTrue(job, 'Failed')) return 'Failed';
  if (isTrue(job, 'Complete')) return 'Complete';
  return null;
}

function condition(job: ObservedJob, type: string): JobCondition | undefined {
  return job.conditions.find((c) => c.type === type && c.status === 'True');
}

/**
 * The indexes of a finished Job that did not complete: those in `failedIndexes`, and, when the Job failed
 * for another reason (its deadline), those that never completed.
 */
export function failedIndexesOf(job: ObservedJob, plan: JobPlan | null, namespace: string): FailedIndex[] {
  const completed = new Set(parseIndexes(job.completedIndexes));
  const failed = new Set(parseIndexes(job.failedIndexes));
  const out: FailedIndex[] = [];
  const outcome = jobOutcome(job);
  for (let index = 0; index < job.completions; index++) {
    if (completed.has(index)) continue;
    const state = failed.has(index) ? 'failed' : outcome === 'Failed' ? 'unfinished' : null;
    if (!state) continue;
    out.push({
      index,
      date: plan?.dates[index] ?? null,
      state,
      logs: job.indexLogs?.[index] ?? kubectlLogsCommand(namespace, job.name, index),
    });
  }
  return out;
}

/** Names the set of finished Stage 1 Jobs of a season: the gate runs again only when this changes. */
export function gateKey(finished: readonly ObservedJob[]): string {
  const ids = finished.map((j) => `${j.name}:${j.uid}`).sort();
  return createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 16);
}

const Stage3SummarySchema = z.object({
  status: z.enum(['succeeded', 'failed', 'gate_failed', 'interrupted']),
  season: z.string(),
  dates: z.number(),
  processed: z.number(),
  resumedFrom: z.string().nullable(),
  completedThrough: z.string().nullable(),
  failedDate: z.string().optional(),
  processor: z.string().optional(),
  check: z.string().optional(),
  error: z.string().optional(),
  datesComplete: z.number().optional(),
  msPerDate: z.array(z.number()).optional(),
});

/** The Stage 3 runner's summary from a termination message; null when the message is not one. */
export function parseStage3Summary(message: string | null | undefined): Stage3Summary | null {
  try {
    // No message: "null" parses to what is no summary, and "undefined" or "" does not parse.
    const parsed = Stage3SummarySchema.safeParse(JSON.parse(String(message)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** -1, 0 or 1 as text `x` sorts before, with or after `y` (ISO timestamps sort as text). */
const cmp = (x: string, y: string): number => {
  if (x < y) return -1;
  // `x > y` as false (0 for 1) is equivalent: V8 sorts lists under 64 by binary insertion, asking only whether the
  // result is below 0. Its twin, true, is killed (1 for 0 breaks the ties); Stryker's disable takes both.
  // Stryker disable next-line ConditionalExpression: equivalent, see above
  return x > y ? 1 : 0;
};
/** Timestamps have whole seconds: on a tie a retry Job counts as the later one (it follows a Stage 1 Job). */
const isRetry = (j: ObservedJob) => (j.name.startsWith('nba-retry-') ? 1 : 0);
const byCreation = (a: ObservedJob, b: ObservedJob) =>
  cmp(a.createdAt, b.createdAt) || isRetry(a) - isRetry(b) || cmp(a.name, b.name);
/**
 * By end time (only finished Jobs, which have one, are sorted so); a stable sort keeps the creation order of Jobs
 * that ended in the same second.
 */
const byFinish = (a: ObservedJob, b: ObservedJob) => cmp(String(a.finishedAt), String(b.finishedAt));

/**
 * The dates of a season whose latest attempt failed: a date counts as fixed once a Job that finished later
 * completed its index. Jobs whose plan cannot be read are left out.
 */
export function openFailedDates(jobs: readonly ObservedJob[], plans: ReadonlyMap<string, PlanLookup>): IsoDate[] {
  const latest = new Map<IsoDate, boolean>();
  const finished = jobs
    .filter((j) => j.component === COMPONENT_STAGE1 && jobOutcome(j) !== null)
    .sort(byCreation)
    .sort(byFinish);
  for (const job of finished) {
    const lookup = job.planConfigMap ? plans.get(job.planConfigMap) : undefined;
    if (!lookup?.ok) continue;
    const completed = new Set(parseIndexes(job.completedIndexes));
    lookup.plan.dates.forEach((date, index) => {
      latest.set(date, completed.has(index));
    });
  }
  return [...latest.entries()]
    .filter(([, ok]) => !ok)
    .map(([d]) => d)
    .sort();
}

/** The dates a gate found incomplete: a missing game in a critical table, or a failed or missing run. */
export function gateMissingDates(result: GateResult): IsoDate[] {
  return [
    ...new Set([...result.tables.flatMap((t) => t.missingDates), ...result.runProblems.map((r) => r.date)]),
  ].sort();
}

/** The first and last of some sorted dates: `2021-10-19..2021-11-01`, or the one date. */
const span = (dates: readonly IsoDate[]) => (dates.length === 1 ? String(dates[0]) : `${dates[0]}..${dates.at(-1)}`);

/** `1 date`, `3 dates`. */
const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Why a gate verdict is what it is, e.g. "gate failed for 2021-22: 3 dates incomplete (...)". */
export function gateReason(season: string, result: GateResult): string {
  if (result.passed)
    return `gate passed for ${season}: ${count(result.dates, 'date')}, ${count(result.games, 'game')} complete`;
  const missing = gateMissingDates(result);
  const runs = result.runProblems.length;
  return `gate failed for ${season}: ${count(missing.length, 'date')} incomplete (${listDates(missing)})${runs > 0 ? `, ${count(runs, 'Phase 1-2 run')} failed or missing` : ''}`;
}

/** Why a Stage 3 Job failed: the runner's summary when it left one, else what the Job says. */
function stage3FailureReason(
  season: string,
  job: ObservedJob,
  failed: JobCondition,
  summary: Stage3Summary | null,
): string {
  if (summary?.failedDate) {
    return `Stage 3 of ${season} stopped at ${summary.failedDate}: ${summary.processor} (${summary.check})`;
  }
  if (summary) return `Stage 3 of ${season} ended ${summary.status}${summary.error ? `: ${summary.error}` : ''}`;
  return `Stage 3 job ${job.name} of ${season} failed: ${failed.reason ?? 'no reason given'}${failed.message ? ` (${failed.message})` : ''}`;
}

function reported(state: ObservedState, kind: ReportKind, jobUid: string): boolean {
  return state.reports.some((r) => r.kind === kind && r.jobUid === jobUid);
}

// ---------------------------------------------------------------------------------------------------------------
// The decision, season by season, in the order of the backfill's stages.

/** Stage 1 and retry Jobs that finished: each one's failed dates reported once (per Job uid). */
function stage1Actions(state: ObservedState, season: string, jobs: readonly ObservedJob[]): Action[] {
  const actions: Action[] = [];
  for (const job of jobs) {
    const lookup = job.planConfigMap ? state.plans.get(job.planConfigMap) : undefined;
    if (!lookup?.ok) {
      const message = job.planConfigMap
        ? `job ${job.name}: its plan ConfigMap ${job.planConfigMap} cannot be used: ${lookup?.problem ?? 'not read'}`
        : `job ${job.name}: no plan ConfigMap annotation, so its indexes cannot be turned into dates`;
      actions.push({ kind: 'warn', season, subject: job.name, message, why: message });
    }
    const outcome = jobOutcome(job);
    if (!outcome || reported(state, 'failures', job.uid)) continue;
    const failed = failedIndexesOf(job, lookup?.ok ? lookup.plan : null, state.namespace);
    if (failed.length === 0) continue;
    const reason = condition(job, 'Failed')?.reason ?? null;
    const dated = failed.flatMap((f) => (f.date ? [f.date] : []));
    actions.push({
      kind: 'reportStage1Failures',
      season,
      why: `Stage 1 job ${job.name} of ${season} ended ${outcome}${reason ? ` (${reason})` : ''}: ${count(failed.length, 'date')} not loaded${dated.length > 0 ? ` (${listDates(dated)})` : ''}`,
      job: job.name,
      jobUid: job.uid,
      outcome,
      reason,
      completedIndexes: job.completedIndexes,
      failedIndexes: job.failedIndexes ?? '',
      failed,
    });
  }
  return actions;
}

/** The season's Stage 3 Job, once it exists: its failure reported, or its success validated, once. */
function stage3Actions(state: ObservedState, season: string, job: ObservedJob, dates: readonly IsoDate[]): Action[] {
  const outcome = jobOutcome(job);
  if (!outcome) return [];
  const termination = state.stage3Pods.get(job.name) ?? null;
  const summary = parseStage3Summary(termination?.message);
  if (outcome === 'Failed') {
    if (reported(state, 'stage3-failure', job.uid)) return [];
    // The outcome is Failed, so the condition is there.
    const failed = condition(job, 'Failed') as JobCondition;
    return [
      {
        kind: 'reportStage3Failure',
        season,
        why: stage3FailureReason(season, job, failed, summary),
        job: job.name,
        jobUid: job.uid,
        reason: failed.reason ?? null,
        conditionMessage: failed.message ?? null,
        termination,
        summary,
      },
    ];
  }
  if (reported(state, 'validation', job.uid)) return [];
  const through = summary?.completedThrough ? ` through ${summary.completedThrough}` : '';
  const why = `Stage 3 of ${season} complete${through}: validate ${count(dates.length, 'date')}`;
  return [{ kind: 'validate', season, why, job: job.name, jobUid: job.uid, dates, summary }];
}

/** The actions that move one season forward. */
function seasonActions(state: ObservedState, season: string): Action[] {
  const stage1 = state.jobs.filter((j) => j.season === season && j.component === COMPONENT_STAGE1).sort(byCreation);
  const wanted = state.selection?.get(season) ?? [];
  if (stage1.length === 0 && wanted.length > 0) {
    // Only an executor that starts Stage 1 itself names a selection; in the cluster the manifests create it.
    return [
      {
        kind: 'startStage1',
        season,
        dates: wanted,
        why: `no Stage 1 job for ${season} yet: load ${count(wanted.length, 'date')} (${span(wanted)})`,
      },
    ];
  }
  const actions = stage1Actions(state, season, stage1);
  const plans = stage1.map((j) => (j.planConfigMap ? state.plans.get(j.planConfigMap) : undefined));
  const dates = [...new Set(plans.flatMap((p) => (p?.ok ? p.plan.dates : [])))].sort();

  const spec = state.stage3Specs.get(season);
  const stage3Jobs = state.jobs.filter((j) => j.season === season && j.component === COMPONENT_STAGE3);
  // A spec names the plan's Stage 3 Job; without one, any Stage 3 Job of the season is taken as it.
  const stage3 = spec?.ok ? stage3Jobs.find((j) => j.name === spec.jobName) : stage3Jobs.sort(byCreation).at(-1);
  if (stage3) return [...actions, ...stage3Actions(state, season, stage3, dates)];

  // Before Stage 3: the gate runs once every Stage 1 and retry Job of the season has finished.
  if (stage1.length === 0 || stage1.some((j) => jobOutcome(j) === null)) return actions;
  if (plans.some((p) => !p?.ok)) return actions;
  const key = gateKey(stage1);
  const published = state.reports.find((r) => r.kind === 'gate' && r.season === season);
  let passed: boolean;
  if (published && published.gateKey === key && published.gatePassed !== null) {
    passed = published.gatePassed;
  } else {
    const computed = state.gates.get(season);
    if (!computed || computed.key !== key) {
      const why = `every Stage 1 job of ${season} finished (${count(stage1.length, 'job')}, ${count(dates.length, 'date')}): run the gate`;
      return [...actions, { kind: 'runGate', season, why, key, dates }];
    }
    // stage1 has a Job (checked above). Sorting a copy keeps stage1 in creation order, though nothing reads it after.
    // Stryker disable next-line MethodExpression: equivalent, stage1 is not read after this sort
    const last = [...stage1].sort(byFinish).at(-1) as ObservedJob;
    actions.push({
      kind: 'publishGate',
      season,
      why: gateReason(season, computed.result),
      key,
      lastJob: { name: last.name, uid: last.uid },
      result: computed.result,
    });
    passed = computed.result.passed;
  }
  if (!passed) return actions;
  if (!spec?.ok) {
    const problem = spec ? spec.problem : 'not found';
    const message = `gate passed but no Stage 3 spec: ${problem}`;
    return [...actions, { kind: 'warn', season, subject: `stage3-spec-${season}`, message, why: message }];
  }
  return [
    ...actions,
    {
      kind: 'createStage3Job',
      season,
      why: `gate passed for ${season}: start Stage 3 (job ${spec.jobName})`,
      job: spec.jobName,
      manifest: spec.manifest,
    },
  ];
}

/** Every action the observed state calls for, season by season (in season order). */
export function reconcile(state: ObservedState): Action[] {
  const seasons = new Set(state.jobs.map((j) => j.season));
  // A selected season without dates adds nothing: seasonActions starts no Stage 1 Job for no dates.
  if (state.selection) for (const season of state.selection.keys()) seasons.add(season);
  return [...seasons].sort().flatMap((season) => seasonActions(state, season));
}
