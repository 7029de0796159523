// The small seam between the SQL engines: the few constructs DuckDB and BigQuery spell differently.

export interface SqlDialect {
  readonly name: 'duckdb' | 'bigquery';
  /** Whole days from `earlier` to `later` (DATE expressions). */
  dateDiffDays(later: string, earlier: string): string;
  /** A DATE `days` after `expr` (negative for before). */
  dateAddDays(expr: string, days: number): string;
  /** A parameter or expression read as a DATE. */
  asDate(expr: string): string;
  /** True when a FLOAT64 expression is neither NaN nor infinite. */
  isFinite(expr: string): string;
}

export const DUCKDB_DIALECT: SqlDialect = {
  name: 'duckdb',
  dateDiffDays: (later, earlier) => `DATE_DIFF('day', ${earlier}, ${later})`,
  dateAddDays: (expr, days) =>
    `CAST(${expr} ${days < 0 ? '-' : '+'} INTERVAL ${Math.abs(Math.trunc(days))} DAY AS DATE)`,
  asDate: (expr) => `CAST(${expr} AS DATE)`,
  isFinite: (expr) => `isfinite(${expr})`,
};

export const BIGQUERY_DIALECT: SqlDialect = {
  name: 'bigquery',
  dateDiffDays: (later, earlier) => `DATE_DIFF(${later}, ${earlier}, DAY)`,
  dateAddDays: (expr, days) => `DATE_ADD(${expr}, INTERVAL ${Math.trunc(days)} DAY)`,
  asDate: (expr) => `CAST(${expr} AS DATE)`,
  isFinite: (expr) => `(NOT IS_NAN(${expr}) AND NOT IS_INF(${expr}))`,
};
