// Stage 4 validation: what a report holds. The checks live in validate.ts, the fixes in validationFixes.ts, the
// renderings in report.ts.

import type { IsoDate } from '../dates.js';

export const VALIDATION_CATEGORIES = ['completeness', 'row_counts', 'nulls', 'ranges', 'consistency'] as const;
export type ValidationCategory = (typeof VALIDATION_CATEGORIES)[number];

/** One thing found wrong: where (table, date, row) and what. */
export interface ValidationFailure {
  readonly table: string;
  readonly date: IsoDate | null;
  /** The row's identity when there is one, e.g. `game_id=0022100001, player_id=201939`. */
  readonly key: string | null;
  readonly detail: string;
}

/**
 * Most failures a check keeps in `failures` (validate.ts): more than a whole season's rows of the largest table
 * (player_composite_factors, 44,084 rows in the 2021-22 regular season), so one season's list is always complete;
 * the bound keeps a multi-season report where every row fails within memory. `failureCount` is always exact.
 */
export const FAILURES_KEPT = 50_000;

/**
 * The kinds of fix, in the order to run them: Phase 1-2 first (`retry` a failed date, `load` a date never run,
 * `reload` a date whose rows are missing or wrong though its runs succeeded), then Phase 3-4 (`recompute` one
 * processor, then `stage3`, which also recomputes what the earlier fixes made stale).
 */
export const FIX_KINDS = ['retry', 'load', 'reload', 'recompute', 'stage3'] as const;
export type FixKind = (typeof FIX_KINDS)[number];

/**
 * A command that fixes a group of a check's failures (validationFixes.ts), e.g. `backfill stage1 --season
 * 2021-22 --start-date 2022-04-16 --end-date 2022-06-16` for dates whose Phase 1-2 never ran.
 */
export interface ValidationFix {
  readonly kind: FixKind;
  readonly season: string;
  /** The processor a `recompute` runs again. */
  readonly processor?: string;
  /** The command line to run, as `backfill ...`. */
  readonly command: string;
  /** Why this command fixes these failures, and what to do before or after it. */
  readonly reason: string;
  /** The dates of the failures it fixes, sorted. */
  readonly dates: readonly IsoDate[];
  /** The tables (or processors) of the failures it fixes, in the order first met. */
  readonly tables: readonly string[];
}

export interface ValidationCheck {
  readonly name: string;
  readonly category: ValidationCategory;
  readonly description: string;
  readonly passed: boolean;
  /** How many failures in all; `failures` lists them all, up to FAILURES_KEPT. */
  readonly failureCount: number;
  readonly failures: readonly ValidationFailure[];
  /**
   * The commands that fix the failures, in the order to run them; empty when the check passed. Reports written
   * before fixes were suggested have none. @default []
   */
  readonly fixes?: readonly ValidationFix[];
}

/**
 * Coverage of one table on one date, in percent (100 = everything expected is there). `pct` null: nothing was
 * expected (a table-date with no data, never "100% covered"). `notRun`: the table's processor has no run on
 * the date (Stage 3 not run there yet, say), whatever the counts say.
 */
export interface CoverageCell {
  readonly table: string;
  readonly date: IsoDate;
  readonly expected: number;
  readonly present: number;
  readonly pct: number | null;
  readonly notRun?: boolean;
}

export interface ValidationReport {
  readonly seasons: readonly string[];
  readonly range: { readonly start: IsoDate; readonly end: IsoDate } | null;
  readonly dates: readonly IsoDate[];
  readonly generatedAt: string;
  readonly passed: boolean;
  /** Every check, each failing one with all its failures (up to FAILURES_KEPT) and the commands that fix them. */
  readonly checks: readonly ValidationCheck[];
  /** Tables in pipeline order, each with one cell per date. */
  readonly tables: readonly string[];
  readonly coverage: readonly CoverageCell[];
  /**
   * The Phase 3-4 table-dates whose results read an input corrected since (core/runs/versions.ts): the
   * runs_current check's failures, all of them. @default []
   */
  readonly stale?: readonly { readonly table: string; readonly date: IsoDate }[];
}
