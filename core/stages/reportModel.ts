// What the validation report's renderings share: coverage states, per-table summaries, the failing dates and the
// fixes, all derived from the report (nothing stored twice).

import type { IsoDate } from '../dates.js';
import {
  type CoverageCell,
  VALIDATION_CATEGORIES,
  type ValidationCheck,
  type ValidationFix,
  type ValidationReport,
} from './validation.js';
import { mergeFixes } from './validationFixes.js';

export type CoverageClass =
  | 'cov-full'
  | 'cov-high'
  | 'cov-mid'
  | 'cov-low'
  | 'cov-zero'
  | 'cov-none'
  | 'cov-notrun'
  | 'cov-stale';

export function coverageClass(cell: CoverageCell | undefined): CoverageClass {
  // Not run is its own state, never green, whatever the counts say.
  if (cell?.notRun) return 'cov-notrun';
  // Nothing expected (pct null), or a non-numeric pct (0/0 as NaN), says nothing: no data, not red, not green.
  if (!cell || cell.pct === null || !Number.isFinite(cell.pct)) return 'cov-none';
  if (cell.pct >= 100) return 'cov-full';
  if (cell.pct >= 90) return 'cov-high';
  if (cell.pct >= 50) return 'cov-mid';
  if (cell.pct > 0) return 'cov-low';
  return 'cov-zero';
}

/**
 * Worst first: a date's state across its tables is the first of these any table has. No data comes last: it says
 * nothing, so a date is "no data" only when every table is.
 */
export const WORST_FIRST: readonly CoverageClass[] = [
  'cov-zero',
  'cov-notrun',
  'cov-low',
  'cov-mid',
  'cov-high',
  'cov-stale',
  'cov-full',
  'cov-none',
];

/** One decimal at most, never rounding a shortfall up to 100 or a trickle down to 0: those read as "all" and "none". */
export function formatPct(pct: number | null): string {
  if (pct === null || !Number.isFinite(pct)) return '?';
  if (Number.isInteger(pct)) return String(pct);
  const rounded = Math.round(pct * 10) / 10;
  if (rounded >= 100 && pct < 100) return '99.9';
  if (rounded <= 0 && pct > 0) return '0.1';
  return rounded.toFixed(1);
}

export function cellKey(table: string, date: IsoDate): string {
  return `${table}\u0000${date}`;
}

/** The report's coverage cells by table and date, and its stale table-dates. */
export interface CoverageIndex {
  readonly cells: ReadonlyMap<string, CoverageCell>;
  readonly stale: ReadonlySet<string>;
}

export function coverageIndex(report: ValidationReport): CoverageIndex {
  const cells = new Map<string, CoverageCell>();
  for (const cell of report.coverage) cells.set(cellKey(cell.table, cell.date), cell);
  return { cells, stale: new Set((report.stale ?? []).map((s) => cellKey(s.table, s.date))) };
}

/** A table-date's state: stale whatever its coverage, else its coverage's. */
export function tableDateClass(index: CoverageIndex, table: string, date: IsoDate): CoverageClass {
  const key = cellKey(table, date);
  return index.stale.has(key) ? 'cov-stale' : coverageClass(index.cells.get(key));
}

export function cellTitle(table: string, date: IsoDate, index: CoverageIndex): string {
  const cell = index.cells.get(cellKey(table, date));
  const stale = index.stale.has(cellKey(table, date)) ? ', STALE: an input was corrected since it ran' : '';
  if (!cell) return `${table} ${date}: no data${stale}`;
  const counts =
    cell.pct === null ? 'no data (nothing expected)' : `${cell.present}/${cell.expected} (${formatPct(cell.pct)}%)`;
  return `${table} ${date}: ${counts}${cell.notRun ? ', NOT RUN: no run of its processor on this date' : ''}${stale}`;
}

/** A date's worst state across the report's tables. */
export function dateClass(report: ValidationReport, index: CoverageIndex, date: IsoDate): CoverageClass {
  let worst = WORST_FIRST.length - 1;
  for (const table of report.tables) worst = Math.min(worst, WORST_FIRST.indexOf(tableDateClass(index, table, date)));
  return WORST_FIRST[worst] ?? 'cov-none';
}

export interface TableCoverage {
  readonly table: string;
  readonly full: number;
  readonly missing: number;
  /** The first date with the lowest pct, or null when the table has no cells at all. */
  readonly lowest: CoverageCell | null;
}

/** Over report.dates only, so the summary and the calendars describe the same cells. */
export function tableCoverage(report: ValidationReport, index: CoverageIndex): TableCoverage[] {
  return report.tables.map((table) => {
    let full = 0;
    let missing = 0;
    let lowest: CoverageCell | null = null;
    for (const date of report.dates) {
      const cell = index.cells.get(cellKey(table, date));
      const pct = cell?.pct ?? null;
      if (!cell || pct === null || !Number.isFinite(pct)) {
        missing++;
        continue;
      }
      if (pct >= 100) full++;
      if (!lowest || pct < (lowest.pct ?? Number.POSITIVE_INFINITY)) lowest = cell;
    }
    return { table, full, missing, lowest };
  });
}

/** Checks grouped by category in the canonical order, keeping the report's order within a category. */
export function orderedChecks(report: ValidationReport): ValidationCheck[] {
  const rank = (c: ValidationCheck) => {
    const i = VALIDATION_CATEGORIES.indexOf(c.category);
    return i < 0 ? VALIDATION_CATEGORIES.length : i;
  };
  return [...report.checks].sort((a, b) => rank(a) - rank(b));
}

export function seasonsText(report: ValidationReport): string {
  return report.seasons.length > 0 ? report.seasons.join(', ') : 'no seasons';
}

export function rangeText(report: ValidationReport): string {
  const n = report.dates.length;
  const count = `${n} ${n === 1 ? 'date' : 'dates'}`;
  return report.range ? `${report.range.start} to ${report.range.end} (${count})` : `no date range (${count})`;
}

export function verdict(report: ValidationReport): 'PASSED' | 'FAILED' {
  return report.passed ? 'PASSED' : 'FAILED';
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Failing dates

/** A failing check on a date, with the tables (or processors) it fails for there, in the order first met. */
export interface DateCheckFailure {
  readonly check: string;
  readonly tables: readonly string[];
}

/** Every date some listed failure names: the checks failing on it, in the checks' order. */
export function failuresByDate(checks: readonly ValidationCheck[]): Map<IsoDate, DateCheckFailure[]> {
  const byDate = new Map<IsoDate, Map<string, Set<string>>>();
  for (const c of checks) {
    for (const f of c.failures) {
      if (f.date === null) continue;
      let on = byDate.get(f.date);
      if (!on) byDate.set(f.date, (on = new Map()));
      let tables = on.get(c.name);
      if (!tables) on.set(c.name, (tables = new Set()));
      tables.add(f.table);
    }
  }
  return new Map(
    [...byDate.entries()].map(([date, on]) => [
      date,
      [...on.entries()].map(([check, tables]) => ({ check, tables: [...tables] })),
    ]),
  );
}

/** Consecutive failing dates of the report (no passing date between them) that fail the same way. */
export interface FailingRun {
  readonly dates: readonly IsoDate[];
  readonly checks: readonly DateCheckFailure[];
}

function signature(on: readonly DateCheckFailure[]): string {
  return JSON.stringify(on.map((c) => [c.check, [...c.tables].sort()]));
}

export function failingRuns(report: ValidationReport, checks: readonly ValidationCheck[]): FailingRun[] {
  const byDate = failuresByDate(checks);
  const dates = [...new Set([...report.dates, ...byDate.keys()])].sort();
  const runs: { dates: IsoDate[]; checks: DateCheckFailure[]; sig: string }[] = [];
  let last: (typeof runs)[number] | undefined;
  for (const date of dates) {
    const on = byDate.get(date);
    if (!on) {
      last = undefined;
      continue;
    }
    const sig = signature(on);
    if (last && last.sig === sig) last.dates.push(date);
    else runs.push((last = { dates: [date], checks: on, sig }));
  }
  return runs.map(({ dates: d, checks: c }) => ({ dates: d, checks: c }));
}

/** Failures counted but not listed (a report from before every failure was kept): dates may then be missing. */
export function unlistedFailures(checks: readonly ValidationCheck[]): number {
  return checks.reduce((n, c) => n + Math.max(0, c.failureCount - c.failures.length), 0);
}

/** Every check's fixes as one list, a command per kind, season and processor, in the order to run them. */
export function reportFixes(checks: readonly ValidationCheck[]): ValidationFix[] {
  return mergeFixes(checks.flatMap((c) => c.fixes ?? []));
}

/** The fixes (of `fixes`) that cover one of the dates. */
export function fixesOn(fixes: readonly ValidationFix[], dates: readonly IsoDate[]): ValidationFix[] {
  const on = new Set(dates);
  return fixes.filter((f) => f.dates.some((d) => on.has(d)));
}

/** Short text for a list of dates: the date, or "first to last (N dates)". */
export function datesText(dates: readonly IsoDate[]): string {
  if (dates.length === 0) return 'no date';
  if (dates.length === 1) return dates[0] as string;
  return `${dates[0]} to ${dates.at(-1)} (${dates.length} dates)`;
}
