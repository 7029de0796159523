// The warehouse port: what the domain asks of DuckDB or BigQuery, and nothing engine-specific.

import type { Row, SqlValue, TableSchema } from '../schema/table.js';
import type { SqlDialect } from '../sql/dialect.js';

export interface TableRows {
  readonly table: TableSchema;
  readonly rows: readonly Row[];
}

/** One date of a table, replaced whole. */
export interface PartitionReplace {
  readonly table: TableSchema;
  readonly date: string;
  readonly rows: readonly Row[];
}

export interface WarehouseChange {
  readonly replace: readonly PartitionReplace[];
  readonly append: readonly TableRows[];
}

/**
 * What a commit reports where it is more than one step (BigQuery): the most tries one of its jobs needed
 * (1: none was retried; an aborted transaction, a rate limit or a 5xx retried with backoff adds one each).
 */
export interface CommitOutcome {
  readonly tries: number;
}

/**
 * SQL handed to `query` is the portable subset both engines read: tables as `dataset.table`,
 * values only as named parameters written `@name` (BigQuery's form; an adapter rewrites them).
 */
export interface Warehouse {
  /** A short description for logs and errors, e.g. `duckdb:.backfill/warehouse.duckdb`. */
  readonly description: string;
  /** How this engine spells the constructs the engines disagree on. */
  readonly dialect: SqlDialect;
  /**
   * False when `commit` cannot apply a change in one transaction across tables. BigQuery cancels concurrent
   * mutating transactions on a table, so its adapter replaces each table's date partition with a load job
   * of its own, then appends: the replaced partitions land before the appended rows (run history), and a
   * date counts only once its run history says so (RunBatch writes a pending marker first). @default true
   */
  readonly commitsAtomically?: boolean;
  /** Creates datasets/schemas and tables that do not exist yet; never drops or alters data. */
  ensureTables(tables: readonly TableSchema[]): Promise<void>;
  /** Runs a read-only query with named parameters and returns plain rows. */
  query(sql: string, params?: Readonly<Record<string, SqlValue>>): Promise<Row[]>;
  /**
   * Applies a change in one transaction: each replaced date of a table holds exactly its rows afterwards
   * (sorted by the table's key), the appended rows are added, and if anything fails nothing changes.
   * A processor's rows and its run-history row commit together, so data and record never disagree.
   * Where `commitsAtomically` is false, each replaced partition changes whole or not at all, and the
   * appends happen only after every replace succeeded.
   */
  commit(change: WarehouseChange): Promise<CommitOutcome | undefined>;
  /** Appends rows (run history, failure logs). */
  append(table: TableSchema, rows: readonly Row[]): Promise<void>;
  /**
   * Makes every committed change part of the warehouse's main storage, so that it no longer depends on a
   * log that a crash or a damaged disk could lose (DuckDB: its WAL). Called at the end of each stage.
   */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}
