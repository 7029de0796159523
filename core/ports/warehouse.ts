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
 * A value of a result as JSON holds it: a STRUCT an object, a LIST an array. The adapters say how their
 * types map (exact numbers too large for a double stay text).
 */
export type ResultValue =
  | null
  | boolean
  | number
  | string
  | readonly ResultValue[]
  | { readonly [field: string]: ResultValue };

/** What a statement returned: its columns in order (names may repeat), and each row's values in that order. */
export interface ResultSet {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly ResultValue[])[];
}

/** A statement `runSql` refused to run because it may change the warehouse. */
export interface RefusedStatement {
  /** The statement's type as the engine names it: INSERT, CREATE, DROP (DuckDB); CREATE_TABLE, SCRIPT (BigQuery). */
  readonly statementType: string;
  /** Its place in a script of several (1 for the first); absent for a single statement. */
  readonly statementNumber?: number;
  /** Why the engine cannot say more, where that helps the reader. */
  readonly detail?: string;
}

/** What running a person's SQL came to: its last statement's result, or the statement refused. */
export type SqlOutcome =
  | { readonly ok: true; readonly result: ResultSet }
  | { readonly ok: false; readonly refused: RefusedStatement };

/**
 * SQL as a person writes it (`backfill query`): run as written (no parameters), one statement or a script.
 */
export interface SqlConsole {
  /**
   * Runs `sql` and returns its last statement's result. Unless `write`, a statement that may change the
   * warehouse is refused before it runs, as the engine itself types the statement (not as a pattern reads the
   * text); a refusal is a value, not an error. Errors of the SQL itself are thrown.
   */
  runSql(sql: string, options: { readonly write: boolean }): Promise<SqlOutcome>;
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
