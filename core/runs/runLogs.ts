// The per-date logs that runs keep on this machine: every job folder under `<log dir>/jobs/` (Stage 1's, retry's
// and Stage 3's, each named after its run), which of them logged a date, and their JSON lines made readable.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { IsoDate } from '../dates.js';
import { oneLine } from '../errors.js';
import { readJobPlan } from '../jobs/jobPlan.js';

/** A job folder: what its job-plan.json says. */
export interface LocalJob {
  readonly job: string;
  readonly season: string;
  readonly dates: readonly IsoDate[];
  /** null: a folder written before runs had ids (its name is the plan's hash). */
  readonly runId: string | null;
  readonly dir: string;
}

/** One job's log of one date. */
export interface DateLog {
  readonly runId: string | null;
  readonly job: string;
  readonly index: number;
  readonly file: string;
}

/**
 * Every job folder under `<logDir>/jobs`, oldest run first: folders without a run id (older than run ids) first,
 * by the time their plan was written; then by run id, which sorts by the time the run started; then by name, so
 * that in one `backfill run` its Stage 1 job comes before its Stage 3 job.
 */
export function localJobs(logDir: string): LocalJob[] {
  const root = join(logDir, 'jobs');
  if (!existsSync(root)) return [];
  const found: (LocalJob & { readonly writtenMs: number })[] = [];
  for (const job of readdirSync(root)) {
    const dir = join(root, job);
    const planFile = join(dir, 'job-plan.json');
    if (!existsSync(planFile)) continue;
    const plan = readJobPlan(planFile);
    found.push({
      job,
      season: plan.season,
      dates: plan.dates,
      runId: plan.runId ?? null,
      dir,
      writtenMs: statSync(planFile).mtimeMs,
    });
  }
  const key = (j: (typeof found)[number]): [number, string | number, string] =>
    j.runId === null ? [0, j.writtenMs, j.job] : [1, j.runId, j.job];
  return found
    .sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
      return 0;
    })
    .map(({ writtenMs: _w, ...j }) => j);
}

/** The logs of `date` among `jobs` (in their order): each job that planned it and wrote its log file. */
export function dateLogs(jobs: readonly LocalJob[], date: IsoDate): DateLog[] {
  const out: DateLog[] = [];
  for (const j of jobs) {
    const index = j.dates.indexOf(date);
    const file = join(j.dir, `index-${index}.log`);
    if (index >= 0 && existsSync(file)) out.push({ runId: j.runId, job: j.job, index, file });
  }
  return out;
}

/** The logs of the latest run among `logs` (oldest first): a run without an id is its job alone. */
export function latestRun(logs: readonly DateLog[]): DateLog[] {
  const last = logs.at(-1);
  if (!last) return [];
  return logs.filter((l) => (last.runId === null ? l.job === last.job : l.runId === last.runId));
}

const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/**
 * One JSON log line for people: `<time> <LEVEL> <processor>: <message>: <error>` (the processor and the error
 * when the line has them). pino's numeric levels and Cloud Logging's `severity` both read; a line that is not
 * a JSON object (a crash written to the pod's output) comes back as it is.
 */
export function formatLogLine(line: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return line;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return line;
  const r = parsed as Record<string, unknown>;
  const time = typeof r.time === 'string' ? r.time : typeof r.time === 'number' ? new Date(r.time).toISOString() : '-';
  const level =
    typeof r.severity === 'string'
      ? r.severity.toUpperCase()
      : typeof r.level === 'number'
        ? (LEVELS[r.level] ?? String(r.level))
        : typeof r.level === 'string'
          ? r.level.toUpperCase()
          : '-';
  const msg = typeof r.msg === 'string' ? r.msg : typeof r.message === 'string' ? r.message : '';
  const err = r.err as { message?: unknown } | undefined;
  const error = err && typeof err === 'object' && typeof err.message === 'string' ? err.message : undefined;
  const text = [typeof r.processor === 'string' ? r.processor : undefined, msg, error && oneLine(error, 500)]
    .filter((p) => p !== undefined && p !== '')
    .join(': ');
  return `${time} ${level.padEnd(5)} ${text}`;
}

export interface RenderOptions {
  /** The raw JSON lines, not formatted. */
  readonly json?: boolean;
  /** Only the last N lines. */
  readonly tail?: number;
}

/** A log file's text as lines to print (each ending in a newline). */
export function renderLog(text: string, options: RenderOptions = {}): string {
  let lines = text.split('\n').filter((l) => l.trim() !== '');
  if (options.tail !== undefined) lines = lines.slice(Math.max(0, lines.length - options.tail));
  return lines.map((l) => `${options.json ? l : formatLogLine(l)}\n`).join('');
}

/** A job folder as one line of "what exists": `<run id>  <job>  <season>, N dates first..last`. */
export function describeJob(j: LocalJob): string {
  const span = j.dates.length > 1 ? `${j.dates[0]}..${j.dates.at(-1)}` : (j.dates[0] ?? '');
  return `${j.runId ?? '(no run id)'}  ${j.job}  ${j.season}, ${j.dates.length} date(s) ${span}`;
}
