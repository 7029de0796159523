// What the controller publishes, built as plain objects: the report ConfigMaps (failure log, gate, Stage 3
// failure, validation) and the Events. Pure: the loop hands in the facts and the time.

import type { IsoDate } from '../core/dates.js';
import { oneLine } from '../core/errors.js';
import type { GateResult } from '../core/gate.js';
import {
  ANNOTATION_JOB,
  ANNOTATION_JOB_UID,
  EVENT_COMPONENT,
  LABEL_MANAGED_BY,
  LABEL_REPORT,
  LABEL_SEASON,
  listDates,
  MANAGED_BY_CONTROLLER,
  type ReportKind,
} from '../core/kubernetes/contract.js';
import { type Action, gateMissingDates } from '../core/kubernetes/reconcile.js';
import type { ClusterConfigMap, ClusterEvent } from '../core/ports/cluster.js';
import type { FailureLogEntry } from '../core/stages/failureLog.js';
import type { Stage3Summary } from '../core/stages/stage3.js';
import type { ValidationReport } from '../core/stages/validation.js';

/** A ConfigMap holds at most 1 MiB; reports stay well below it, cutting long lists with a note. */
export const REPORT_BYTES_MAX = 900_000;
/** Event messages are kept short, as `kubectl describe` shows them on one line. */
export const EVENT_MESSAGE_MAX = 1000;

export type Stage1FailureAction = Extract<Action, { kind: 'reportStage1Failures' }>;

/** What the pods of one index did, attempt by attempt (from the Job's pods). */
export interface IndexAttempts {
  /** Exit code of each attempt, oldest first; null for a disrupted attempt (ignored by the pod failure policy). */
  readonly exitCodes: readonly (number | null)[];
}

/** The latest failed Phase 1-2 run of a date, from run history. */
export interface FailedRun {
  readonly processor: string;
  readonly error: string | null;
}

/** The failure log of a finished Job; readable by `backfill retry --from-log` once saved to a file. */
export interface ClusterFailureLog {
  readonly jobName: string;
  readonly season: string;
  readonly completedIndexes: string;
  readonly failedIndexes: string;
  readonly failed: readonly FailureLogEntry[];
  /** Failed indexes whose date is unknown (the plan ConfigMap could not be read). */
  readonly undated: readonly { readonly index: number; readonly logs: string }[];
}

/** Why an index failed, in the local runtime's words. */
function indexReason(
  state: 'failed' | 'unfinished',
  exitCodes: readonly (number | null)[],
  jobReason: string | null,
  permanentExitCode: number,
): string {
  if (state === 'unfinished') return jobReason ?? 'DeadlineExceeded';
  return exitCodes.at(-1) === permanentExitCode ? 'PodFailurePolicy' : 'BackoffLimitExceeded';
}

export function failureLog(
  action: Stage1FailureAction,
  attempts: ReadonlyMap<number, IndexAttempts>,
  runs: ReadonlyMap<IsoDate, FailedRun>,
  permanentExitCode: number,
): ClusterFailureLog {
  const failed: FailureLogEntry[] = [];
  const undated: { index: number; logs: string }[] = [];
  for (const f of action.failed) {
    if (!f.date) {
      undated.push({ index: f.index, logs: f.logs });
      continue;
    }
    const exitCodes = attempts.get(f.index)?.exitCodes ?? [];
    const run = runs.get(f.date);
    failed.push({
      date: f.date,
      index: f.index,
      processor: run?.processor ?? null,
      error: run?.error ?? null,
      attempts: exitCodes.filter((c) => c !== null).length,
      exitCodes,
      reason: indexReason(f.state, exitCodes, action.reason, permanentExitCode),
      logs: f.logs,
    });
  }
  return {
    jobName: action.job,
    season: action.season,
    completedIndexes: action.completedIndexes,
    failedIndexes: action.failedIndexes,
    failed,
    undated,
  };
}

/** The failure log as a person reads it. */
export function failureLogText(log: ClusterFailureLog): string {
  const lines = [
    `Job ${log.jobName} (${log.season}): ${log.failed.length + log.undated.length} date(s) failed`,
    `completedIndexes "${log.completedIndexes}", failedIndexes "${log.failedIndexes}"`,
    '',
  ];
  for (const f of log.failed) {
    lines.push(
      `${f.date}  index ${f.index}  ${f.reason}  attempts ${f.attempts} (exit ${f.exitCodes.map((c) => (c === null ? 'disrupted' : c)).join(', ') || '-'})`,
      `    ${f.processor ?? 'processor unknown'}: ${oneLine(f.error ?? 'no failed run recorded', 300)}`,
      `    logs: ${f.logs}`,
    );
  }
  for (const u of log.undated) lines.push(`index ${u.index} (date unknown)`, `    logs: ${u.logs}`);
  lines.push('', `after fixing the cause: backfill retry --season ${log.season} --cluster`);
  return `${lines.join('\n')}\n`;
}

export interface ReportConfigMapInput {
  readonly name: string;
  readonly namespace: string;
  readonly kind: ReportKind;
  readonly season: string;
  readonly job?: { readonly name: string; readonly uid: string };
  readonly annotations?: Readonly<Record<string, string>>;
  readonly data: Readonly<Record<string, string>>;
}

/** A report ConfigMap, labelled so that the controller finds it again after a restart. */
export function reportConfigMap(input: ReportConfigMapInput): ClusterConfigMap {
  const annotations: Record<string, string> = { ...input.annotations };
  if (input.job) {
    annotations[ANNOTATION_JOB] = input.job.name;
    annotations[ANNOTATION_JOB_UID] = input.job.uid;
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: {
        'app.kubernetes.io/name': 'nba-backfill',
        'app.kubernetes.io/part-of': 'nba-backfill',
        [LABEL_MANAGED_BY]: MANAGED_BY_CONTROLLER,
        [LABEL_REPORT]: input.kind,
        [LABEL_SEASON]: input.season,
      },
      annotations,
    },
    data: Object.fromEntries(Object.entries(input.data).map(([k, v]) => [k, fitConfigMap(v)])),
  };
}

/** Text cut to fit a report ConfigMap, saying so. */
export function fitConfigMap(text: string, max = REPORT_BYTES_MAX): string {
  if (Buffer.byteLength(text) <= max) return text;
  const note = '\n... (cut to fit a ConfigMap)\n';
  return Buffer.from(text)
    .subarray(0, max - note.length)
    .toString()
    .replace(/\uFFFD$/, '')
    .concat(note);
}

export interface JobEventInput {
  readonly name: string;
  readonly namespace: string;
  readonly job: { readonly name: string; readonly uid: string };
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
  readonly now: Date;
  /** The controller's pod (reportingInstance). */
  readonly instance: string;
}

/** A core/v1 Event about a Job, as `kubectl describe job` and `kubectl get events` show it. */
export function jobEvent(input: JobEventInput): ClusterEvent {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: input.name, namespace: input.namespace },
    involvedObject: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: input.job.name,
      namespace: input.namespace,
      uid: input.job.uid,
    },
    type: input.type,
    reason: input.reason,
    message: oneLine(input.message, EVENT_MESSAGE_MAX),
    source: { component: EVENT_COMPONENT },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: input.instance,
    firstTimestamp: input.now,
    lastTimestamp: input.now,
    count: 1,
  };
}

/** The Event message of a failure log: each failed date with the command that shows its logs. */
export function failureEventMessage(log: ClusterFailureLog, configMap: string): string {
  const dates = log.failed.map((f) => `${f.date} (index ${f.index}: ${f.logs})`);
  const undated = log.undated.map((u) => `index ${u.index} (${u.logs})`);
  return `${dates.length + undated.length} date(s) failed: ${[...dates, ...undated].join('; ')}. Failure log: configmap ${configMap}`;
}

/** The gate result, with its long lists cut so that it fits a ConfigMap. */
export function compactGate(result: GateResult, perList = 500): GateResult & { readonly cut: boolean } {
  let cut = false;
  const take = <T>(xs: readonly T[]) => {
    if (xs.length > perList) cut = true;
    return xs.slice(0, perList);
  };
  const tables = result.tables.map((t) => ({
    ...t,
    missingDates: take(t.missingDates),
    missingGames: take(t.missingGames),
  }));
  return { ...result, tables, runProblems: take(result.runProblems), cut };
}

/** The dates the gate found incomplete, across tables and runs: the reconcile's reasons name them too. */
export { gateMissingDates };

export function gateEventMessage(result: GateResult): string {
  if (result.passed) {
    return `Phase 2 gate passed for ${result.seasons.join(', ')}: ${result.dates} dates, ${result.games} final games complete`;
  }
  const missing = gateMissingDates(result);
  const games = new Set(result.tables.flatMap((t) => t.missingGames.map((g) => `${g.date}|${g.gameId}`))).size;
  return `Phase 2 gate failed for ${result.seasons.join(', ')}: ${missing.length} date(s) incomplete (${listDates(missing)}), ${games} game(s) missing, ${result.runProblems.length} failed or missing run(s); Stage 3 waits for a retry`;
}

/** What a failed Stage 3 Job says: the date and reason from its termination message, or the Job's reason. */
export function stage3FailureMessage(action: Omit<Extract<Action, { kind: 'reportStage3Failure' }>, 'why'>): string {
  const s = action.summary;
  if (s && s.status === 'failed') {
    return `Stage 3 of ${s.season} stopped at ${s.failedDate ?? 'an unknown date'} (${s.processor ?? 'unknown processor'}, ${s.check ?? 'error'}): ${s.error ?? 'no error message'}; completed through ${s.completedThrough ?? 'no date'}`;
  }
  if (s && s.status === 'gate_failed')
    return `Stage 3 of ${s.season} refused to start: ${s.error ?? 'the gate failed'}`;
  const raw = action.termination?.message;
  const why = [action.reason, action.conditionMessage].filter(Boolean).join(': ') || 'no reason given';
  return `Stage 3 job ${action.job} failed (${why})${raw ? `; termination message: ${raw}` : action.termination ? `; exit code ${action.termination.exitCode ?? 'unknown'}, no termination message` : '; no pod left to read'}`;
}

/** The validation report's verdict and failing checks, small enough for a ConfigMap and a log line. */
export function validationSummary(report: ValidationReport, stage3: Stage3Summary | null) {
  return {
    seasons: report.seasons,
    range: report.range,
    dates: report.dates.length,
    generatedAt: report.generatedAt,
    passed: report.passed,
    stage3,
    checks: report.checks.map((c) => ({
      name: c.name,
      category: c.category,
      passed: c.passed,
      failureCount: c.failureCount,
      failures: c.failures.slice(0, 5),
    })),
  };
}
