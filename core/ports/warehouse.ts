// The warehouse port: what the domain asks of DuckDB or BigQuery, and nothing engine-specific.

import type { Row, SqlValue, TableSchema } from '../schema/table.js';

export interface TableRows {
  readonly table: TableSchema;
  readonly rows: readonly Row[];
}

/**
 * SQL handed to `query` is the portable subset both engines read: tables as `dataset.table`,
 * values only as named parameters written `@name` (BigQuery's form; an adapter rewrites them).
 */
export interface Warehouse {
  /** A short description for logs and errors, e.g. `duckdb:.backfill/warehouse.duckdb`. */
  readonly description: string;
  /** Creates datasets/schemas and tables that do not exist yet; never drops or alters data. */
  ensureTables(tables: readonly TableSchema[]): Promise<void>;
  /** Runs a read-only query with named parameters and returns plain rows. */
  query(sql: string, params?: Readonly<Record<string, SqlValue>>): Promise<Row[]>;
  /**
   * Replaces one date of a table with `rows`, atomically: afterwards the date holds exactly `rows`
   * (sorted by the table's key), and if anything fails it holds what it held before. `alsoAppend` rows
   * (the run's history row) commit in the same transaction, so data and its record never disagree.
   */
  replacePartition(
    table: TableSchema,
    date: string,
    rows: readonly Row[],
    alsoAppend?: readonly TableRows[],
  ): Promise<void>;
  /** Appends rows (run history, failure logs). */
  append(table: TableSchema, rows: readonly Row[]): Promise<void>;
  close(): Promise<void>;
}
