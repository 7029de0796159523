// Stage 4 validation: what a report holds. The checks live in validate.ts, the renderings in report.ts.

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

export interface ValidationCheck {
  readonly name: string;
  readonly category: ValidationCategory;
  readonly description: string;
  readonly passed: boolean;
  /** How many failures in all; `failures` lists at most the first 50. */
  readonly failureCount: number;
  readonly failures: readonly ValidationFailure[];
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
