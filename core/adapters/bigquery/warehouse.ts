// The production warehouse: BigQuery datasets and date-partitioned tables made from the same schemas as the
// embedded one, every value a query parameter, and a commit as one multi-statement transaction.

import { randomUUID } from 'node:crypto';
import {
  BigQuery,
  type Dataset,
  type QueryResultsOptions,
  type QueryRowsResponse,
  type TableField,
} from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import type { BigQueryTarget } from '../../config.js';
import { BadInputError, ProcessingError } from '../../errors.js';
import type {
  CommitOutcome,
  PartitionReplace,
  ResultValue,
  SqlConsole,
  SqlOutcome,
  TableRows,
  Warehouse,
  WarehouseChange,
} from '../../ports/warehouse.js';
import {
  type Column,
  type ColumnType,
  qualifiedName,
  type Row,
  type SqlValue,
  sortByKey,
  type TableSchema,
} from '../../schema/table.js';
import {
  BIGQUERY_DIALECT,
  bigQueryParameterName,
  parameterNames,
  qualifyTables,
  renameParameters,
} from '../../sql/dialect.js';
import { exactDecimal, exactInteger } from '../resultValues.js';

/** The four datasets of the platform; SQL names their tables `dataset.table`. */
export const DATASETS = ['nba_raw', 'nba_analytics', 'nba_precompute', 'nba_reference'] as const;

/** Retries of transient errors: exponential backoff with jitter, bounded. */
export interface RetryPolicy {
  /** Tries in all, the first included. @default 7 */
  readonly attempts: number;
  /** @default 1000 */
  readonly baseDelayMs: number;
  /** @default 32000 */
  readonly maxDelayMs: number;
}

export interface BigQueryWarehouseOptions {
  readonly retry?: Partial<RetryPolicy>;
  /** How to wait between tries (tests pass a recorder). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). @default Math.random */
  readonly random?: () => number;
  /**
   * The largest commit sent as one request, in bytes of its rows. BigQuery refuses requests over 10 MB; a
   * larger change is first written to staging tables in chunks, then applied by one transaction.
   * @default 8 MiB
   */
  readonly maxRequestBytes?: number;
  /** An existing client (its project must be the URL's). @default a client on Application Default Credentials */
  readonly client?: BigQuery;
}

const COLUMN_TYPES: Record<ColumnType, string> = {
  STRING: 'STRING',
  INT64: 'INT64',
  FLOAT64: 'FLOAT64',
  BOOL: 'BOOL',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  JSON: 'JSON',
};

/** The REST API answers with legacy type names; both spellings mean the same type. */
const TYPE_ALIASES: Record<string, ColumnType> = {
  STRING: 'STRING',
  INT64: 'INT64',
  INTEGER: 'INT64',
  FLOAT64: 'FLOAT64',
  FLOAT: 'FLOAT64',
  BOOL: 'BOOL',
  BOOLEAN: 'BOOL',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  JSON: 'JSON',
};

/** BigQuery's table schema for one of ours: REQUIRED where our column is not nullable. */
export function tableFields(table: TableSchema, mode: 'schema' | 'staging' = 'schema'): TableField[] {
  return table.columns.map((c) => ({
    name: c.name,
    type: COLUMN_TYPES[c.type],
    mode: mode === 'schema' && !c.nullable ? 'REQUIRED' : 'NULLABLE',
    description: c.description.slice(0, 1024),
  }));
}

/** The table resource created for a schema: partitioned by day on its date column, clustered on its keys. */
export function tableResource(table: TableSchema) {
  return {
    description: table.description,
    schema: { fields: tableFields(table) },
    timePartitioning: { type: 'DAY', field: table.partitionColumn },
    clustering: { fields: table.clusterBy.slice(0, 4) },
  };
}

/** A row parameter's type for the client library: column name to BigQuery type name. */
type ColumnTypes = Record<string, string>;

/** A query text with its parameters, as the client library takes them. */
export interface BigQueryStatement {
  readonly query: string;
  readonly params: Record<string, unknown>;
  readonly types: Record<string, string | ColumnTypes[]>;
}

/** One entry of a commit: a replaced date or appended rows, with where its rows come from. */
export interface CommitEntry {
  readonly kind: 'replace' | 'append';
  readonly table: TableSchema;
  readonly date?: string;
  readonly rows: readonly Row[];
  /** Staging tables holding the rows (a large commit), instead of an ARRAY parameter. */
  staged?: string[];
}

/** The client library's value for one cell of a row parameter. */
function paramValue(table: TableSchema, column: Column, value: SqlValue | undefined): unknown {
  if (value === null || value === undefined) return null;
  const where = `${qualifiedName(table)}.${column.name}`;
  switch (column.type) {
    case 'DATE':
      if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
        throw new BadInputError(`${where}: ${JSON.stringify(value)} is not a date (YYYY-MM-DD)`, { where });
      }
      return BigQuery.date(value);
    case 'TIMESTAMP':
      if (Number.isNaN(new Date(String(value)).getTime())) {
        throw new BadInputError(`${where}: ${JSON.stringify(value)} is not a timestamp`, { where });
      }
      return BigQuery.timestamp(new Date(String(value)));
    case 'INT64':
      if (!Number.isSafeInteger(Number(value))) {
        throw new BadInputError(`${where}: ${JSON.stringify(value)} is not a whole number`, { where });
      }
      return Number(value);
    case 'FLOAT64': {
      const n = Number(value);
      // JSON has no NaN or infinity; BigQuery reads them from these strings.
      return Number.isFinite(n) ? n : String(n);
    }
    case 'BOOL':
      return Boolean(value);
    default:
      return String(value);
  }
}

function rowParam(table: TableSchema, rows: readonly Row[]): { value: unknown[]; type: ColumnTypes[] } {
  const type: ColumnTypes = {};
  for (const c of table.columns) type[c.name] = COLUMN_TYPES[c.type];
  return {
    value: rows.map((row) => Object.fromEntries(table.columns.map((c) => [c.name, paramValue(table, c, row[c.name])]))),
    type: [type],
  };
}

/**
 * A row as a line of a newline-delimited JSON load: each value checked as for a query parameter, written as
 * BigQuery's JSON reader takes it (dates and timestamps as text, NaN and infinities as strings).
 */
export function loadLine(table: TableSchema, row: Row): string {
  const out: Record<string, unknown> = {};
  for (const c of table.columns) {
    const v = paramValue(table, c, row[c.name]);
    out[c.name] =
      v !== null && typeof v === 'object' && 'value' in v ? (v as { value: unknown }).value : (v as unknown);
  }
  return JSON.stringify(out);
}

/** About how many bytes rows take in a request (the REST form names every field of every row). */
export function estimateBytes(table: TableSchema, rows: readonly Row[]): number {
  let n = 0;
  for (const row of rows) {
    n += 24;
    for (const c of table.columns) n += c.name.length + String(row[c.name] ?? 'null').length + 24;
  }
  return n;
}

/** Splits rows into runs of at most `maxBytes` each (one row at least). */
function chunkRows(table: TableSchema, rows: readonly Row[], maxBytes: number): Row[][] {
  const chunks: Row[][] = [];
  let current: Row[] = [];
  let size = 0;
  for (const row of rows) {
    const bytes = estimateBytes(table, [row]);
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(row);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The names BigQuery knows this warehouse's tables by. */
export class BigQueryNames {
  constructor(readonly target: BigQueryTarget) {}

  dataset(dataset: string): string {
    return `${this.target.datasetPrefix}${dataset}`;
  }

  /** A table as SQL names it: `` `project.dataset.table` ``. */
  table(dataset: string, table: string): string {
    return `\`${this.target.project}.${this.dataset(dataset)}.${table}\``;
  }

  of(table: TableSchema): string {
    return this.table(table.dataset, table.name);
  }

  /** The port's SQL in BigQuery's names: tables qualified, parameters that are reserved words renamed. */
  sql(sql: string): string {
    return renameParameters(
      qualifyTables(sql, DATASETS, (d, t) => this.table(d, t)),
      (name) => `@${bigQueryParameterName(name)}`,
    );
  }
}

/**
 * The statements of a commit, as one script: for each replaced date a DELETE of the date's partition and an
 * INSERT of its rows, for each append an INSERT that skips rows already present (a retried commit whose first
 * try did land adds nothing twice), all in one transaction when there is more than one statement.
 */
export function commitStatement(names: BigQueryNames, entries: readonly CommitEntry[]): BigQueryStatement {
  const statements: string[] = [];
  const params: Record<string, unknown> = {};
  const types: Record<string, string | ColumnTypes[]> = {};
  entries.forEach((e, i) => {
    const ref = names.of(e.table);
    const cols = e.table.columns.map((c) => c.name);
    const p = `${e.kind === 'replace' ? 'r' : 'a'}${i}`;
    let from: string;
    if (e.staged) {
      const parts = e.staged.map((s) => `SELECT ${cols.join(', ')} FROM ${s}`);
      from = parts.length === 1 ? `${e.staged[0]} AS r` : `(${parts.join(' UNION ALL ')}) AS r`;
    } else {
      from = `UNNEST(@${p}_rows) AS r`;
      if (e.rows.length > 0) {
        const { value, type } = rowParam(e.table, e.rows);
        params[`${p}_rows`] = value;
        types[`${p}_rows`] = type;
      }
    }
    if (e.kind === 'replace') {
      params[`${p}_date`] = BigQuery.date(e.date as string);
      types[`${p}_date`] = 'DATE';
      statements.push(`DELETE FROM ${ref} WHERE ${e.table.partitionColumn} = @${p}_date`);
      if (e.rows.length > 0) {
        statements.push(
          `INSERT INTO ${ref} (${cols.join(', ')})\nSELECT ${cols.map((c) => `r.${c}`).join(', ')} FROM ${from}`,
        );
      }
    } else if (e.rows.length > 0) {
      const dates = e.rows.map((r) => String(r[e.table.partitionColumn])).sort();
      params[`${p}_first`] = BigQuery.date(dates[0] as string);
      params[`${p}_last`] = BigQuery.date(dates.at(-1) as string);
      types[`${p}_first`] = 'DATE';
      types[`${p}_last`] = 'DATE';
      const sameKey = e.table.key.map((k) => `t.${k} = r.${k}`).join(' AND ');
      statements.push(
        `INSERT INTO ${ref} (${cols.join(', ')})\nSELECT ${cols.map((c) => `r.${c}`).join(', ')} FROM ${from}\n` +
          `WHERE NOT EXISTS (SELECT 1 FROM ${ref} AS t WHERE t.${e.table.partitionColumn} BETWEEN @${p}_first AND @${p}_last AND ${sameKey})`,
      );
    }
  });
  const body = statements.map((s) => `${s};`).join('\n');
  const query = statements.length > 1 ? `BEGIN TRANSACTION;\n${body}\nCOMMIT TRANSACTION;` : body;
  return { query, params, types };
}

/** The statement that writes one chunk of rows to a staging table (the job's destination, truncated). */
export function stagingStatement(table: TableSchema, rows: readonly Row[]): BigQueryStatement {
  const { value, type } = rowParam(table, rows);
  return {
    query: `SELECT ${table.columns.map((c) => `r.${c.name}`).join(', ')} FROM UNNEST(@rows) AS r`,
    params: { rows: value },
    types: { rows: type },
  };
}

/** What a failed request says: HTTP status, BigQuery's reasons, its message, or a network error code. */
interface Failure {
  readonly status: number | undefined;
  readonly reasons: readonly string[];
  readonly message: string;
  readonly network: string | undefined;
}

function failureOf(err: unknown): Failure {
  const e = (err ?? {}) as { code?: unknown; errors?: unknown; message?: unknown };
  const errors = Array.isArray(e.errors) ? (e.errors as { reason?: unknown; message?: unknown }[]) : [];
  return {
    status: typeof e.code === 'number' ? e.code : undefined,
    network: typeof e.code === 'string' ? e.code : undefined,
    reasons: errors.map((x) => String(x.reason ?? '')).filter((r) => r !== ''),
    message: typeof e.message === 'string' ? e.message : String(err),
  };
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_REASONS = new Set([
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'backendError',
  'internalError',
  'jobBackendError',
  'jobInternalError',
  'jobRateLimitExceeded',
]);
/**
 * Reasons of a failed job that say the request itself was wrong (https://cloud.google.com/bigquery/docs/error-messages).
 * quotaExceeded is not among them: a daily quota does not come back within a run, but the input was fine.
 */
const BAD_REQUEST_REASONS = new Set(['invalid', 'invalidQuery', 'notFound', 'duplicate']);
const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'ECONNREFUSED']);
/** Concurrent DML and transactions on one table: BigQuery aborts one of them; it succeeds when tried again. */
const CONCURRENT_UPDATE =
  /could not serialize access|concurrent update|transaction is aborted|too many DML statements/i;

/** An upload answered without its job, which BigQuery does not know: the data never arrived, so send it again. */
class UnansweredUpload extends Error {
  override readonly name = 'UnansweredUpload';
}

export function isTransient(err: unknown): boolean {
  const f = failureOf(err);
  return (
    err instanceof UnansweredUpload ||
    (f.status !== undefined && TRANSIENT_STATUS.has(f.status)) ||
    f.reasons.some((r) => TRANSIENT_REASONS.has(r)) ||
    CONCURRENT_UPDATE.test(f.message) ||
    (f.network !== undefined && TRANSIENT_NETWORK.has(f.network))
  );
}

function describeFailure(f: Failure): string {
  const tags = [f.status !== undefined ? `HTTP ${f.status}` : f.network, ...f.reasons].filter(Boolean);
  return tags.length > 0 ? `${f.message} (${tags.join(', ')})` : f.message;
}

/** A client row value as one of ours: dates and timestamps as their text, big numbers as numbers. */
function plainValue(value: unknown): SqlValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number(value);
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'object' && 'value' in value && typeof value.value === 'string') return value.value;
  if (typeof value === 'object' && value.constructor?.name === 'Big') return Number(String(value));
  return JSON.stringify(value);
}

/**
 * A value of a person's query (`runSql`) as JSON holds it, by its field's type: INT64 and NUMERIC as numbers
 * where a double holds them exactly, else as text; FLOAT64's NaN and infinities as text; BYTES as base64;
 * DATE, DATETIME, TIME and TIMESTAMP as the ISO text the client keeps (TIMESTAMP in UTC); a STRUCT an object,
 * an ARRAY an array.
 */
export function resultValue(value: unknown, field: TableField): ResultValue {
  if (value === null || value === undefined) return null;
  if (field.mode === 'REPEATED' && Array.isArray(value)) {
    return value.map((v) => resultValue(v, { ...field, mode: 'NULLABLE' }));
  }
  const wrapped = typeof value === 'object' && 'value' in value ? (value as { value: unknown }).value : undefined;
  switch (field.type) {
    case 'INTEGER':
    case 'INT64':
      return exactInteger(String(wrapped ?? value));
    case 'NUMERIC':
    case 'BIGNUMERIC': {
      // The client's Big prints exponents for very small or large values; toFixed() never does.
      const big = value as { toFixed?: () => string };
      return exactDecimal(typeof big.toFixed === 'function' ? big.toFixed() : String(value));
    }
    case 'FLOAT':
    case 'FLOAT64':
      return typeof value === 'number' && Number.isFinite(value) ? value : String(value);
    case 'RECORD':
    case 'STRUCT': {
      const record = value as Record<string, unknown>;
      return Object.fromEntries(
        (field.fields ?? []).map((f) => [String(f.name), resultValue(record[String(f.name)], f)]),
      );
    }
    case 'BYTES':
      return Buffer.isBuffer(value) ? value.toString('base64') : String(value);
    default:
      if (wrapped !== undefined) return String(wrapped);
      return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
        ? value
        : JSON.stringify(value);
  }
}

/** What a page of jobs.getQueryResults says besides its rows. */
interface ResultsPage {
  readonly schema?: { readonly fields?: TableField[] };
  readonly numDmlAffectedRows?: string | null;
}

/**
 * The statement types (JobStatistics2.statementType, which a dry run reports without running anything:
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobStatistics2) that only read. A script is
 * typed SCRIPT as a whole, whatever its statements, so it cannot be told to only read.
 */
const READ_STATEMENT_TYPES: ReadonlySet<string> = new Set(['SELECT', 'ASSERT']);

/** Runs mutations of a table one at a time in this process (BigQuery aborts concurrent ones on a table). */
class TableLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const before = sorted.map((k) => this.tails.get(k) ?? Promise.resolve());
    let release = () => {};
    const done = new Promise<void>((r) => {
      release = r;
    });
    for (const k of sorted) this.tails.set(k, done);
    try {
      await Promise.all(before);
      return await fn();
    } finally {
      release();
      for (const k of sorted) if (this.tails.get(k) === done) this.tails.delete(k);
    }
  }
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 7, baseDelayMs: 1000, maxDelayMs: 32_000 };
const STAGING_TTL_MS = 24 * 3600_000;

export class BigQueryWarehouse implements Warehouse, SqlConsole {
  readonly dialect = BIGQUERY_DIALECT;
  /** Partitions are replaced by load jobs of their own, then rows appended (see commit). */
  readonly commitsAtomically = false;
  readonly description: string;
  readonly names: BigQueryNames;
  private readonly retry: RetryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly maxRequestBytes: number;
  private readonly locks = new TableLocks();

  constructor(
    readonly target: BigQueryTarget,
    private readonly client: BigQuery,
    options: BigQueryWarehouseOptions = {},
  ) {
    this.names = new BigQueryNames(target);
    this.description = `bigquery://${target.project}?location=${target.location}${target.datasetPrefix ? `&datasetPrefix=${target.datasetPrefix}` : ''}`;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = options.random ?? Math.random;
    this.maxRequestBytes = options.maxRequestBytes ?? 8 * 1024 * 1024;
  }

  /**
   * Runs `fn`, trying again after transient errors (rate limits, 5xx, backend errors, concurrent updates)
   * with exponential backoff. Other errors, and the last transient one, reach the caller with BigQuery's
   * message and `what` was being done: bad requests as BadInputError, the rest as ProcessingError.
   */
  private async withRetry<T>(
    what: string,
    fn: () => Promise<T>,
    tries?: { most: number },
    attempts = this.retry.attempts,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await fn();
        if (tries) tries.most = Math.max(tries.most, attempt);
        return value;
      } catch (err) {
        if (err instanceof BadInputError || err instanceof ProcessingError) throw err;
        const f = failureOf(err);
        const transient = isTransient(err);
        if (transient && attempt < attempts) {
          const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
          await this.sleep(Math.round(ceiling * (0.5 + this.random() / 2)));
          continue;
        }
        const message = `BigQuery ${this.description}: ${what} failed${transient ? ` after ${attempt} attempts` : ''}: ${describeFailure(f)}`;
        // A job that was created and then failed (a load) carries no HTTP status: its reason tells.
        const badRequest =
          f.status !== undefined
            ? f.status >= 400 && f.status < 500
            : f.reasons.some((r) => BAD_REQUEST_REASONS.has(r));
        if (!transient && badRequest) {
          throw new BadInputError(message, { where: what, cause: err });
        }
        throw new ProcessingError(message, { transient, cause: err });
      }
    }
  }

  async ensureTables(tables: readonly TableSchema[]): Promise<void> {
    for (const dataset of new Set(tables.map((t) => t.dataset))) {
      const name = this.names.dataset(dataset);
      await this.withRetry(`create dataset ${this.target.project}:${name}`, () => this.ensureDataset(name));
    }
    for (const table of tables) {
      await this.withRetry(`create table ${this.names.of(table)}`, () => this.ensureTable(table));
    }
  }

  /** The resource's metadata, or undefined when it does not exist (one GET). */
  private async metadataOf(resource: {
    getMetadata(): Promise<unknown[]>;
  }): Promise<Record<string, unknown> | undefined> {
    try {
      const [meta] = await resource.getMetadata();
      return meta as Record<string, unknown>;
    } catch (err) {
      if (failureOf(err).status === 404) return undefined;
      throw err;
    }
  }

  private async ensureDataset(name: string): Promise<void> {
    const meta = await this.metadataOf(this.client.dataset(name, { location: this.target.location }));
    if (meta) {
      const location = String(meta.location ?? '');
      if (location.toUpperCase() !== this.target.location.toUpperCase()) {
        throw new BadInputError(
          `BigQuery dataset ${this.target.project}:${name} is in ${location}, not in the configured location ${this.target.location}`,
          { where: `${this.target.project}:${name}` },
        );
      }
      return;
    }
    try {
      await this.client.createDataset(name, {
        location: this.target.location,
        description: 'nba-backfill: created by the BigQuery warehouse adapter',
      });
    } catch (err) {
      // Another pod created it between our look and our create.
      if (failureOf(err).status !== 409) throw err;
    }
  }

  private async ensureTable(table: TableSchema): Promise<void> {
    const dataset = this.client.dataset(this.names.dataset(table.dataset), { location: this.target.location });
    const ref = dataset.table(table.name);
    let meta = await this.metadataOf(ref);
    if (!meta) {
      try {
        await dataset.createTable(table.name, tableResource(table));
        return;
      } catch (err) {
        if (failureOf(err).status !== 409) throw err;
        meta = await this.metadataOf(ref);
      }
    }
    // Never altered: an existing table must already hold every column with its type, partitioned as ours.
    const schema = meta?.schema as { fields?: TableField[] } | undefined;
    const fields = new Map((schema?.fields ?? []).map((f) => [String(f.name), TYPE_ALIASES[String(f.type)]]));
    const wrong = table.columns
      .filter((c) => fields.get(c.name) !== c.type)
      .map((c) => `${c.name} ${c.type} (found ${fields.get(c.name) ?? 'nothing'})`);
    const partitionField = (meta?.timePartitioning as { field?: string } | undefined)?.field;
    if (partitionField !== table.partitionColumn) wrong.push(`partitioned by ${partitionField ?? 'nothing'}`);
    if (wrong.length > 0) {
      throw new BadInputError(
        `BigQuery table ${this.names.of(table)} exists but differs from its schema: ${wrong.join(', ')}; it is never altered here, migrate or drop it`,
        { where: this.names.of(table) },
      );
    }
  }

  async query(sql: string, params: Readonly<Record<string, SqlValue>> = {}): Promise<Row[]> {
    const statement = this.queryStatement(sql, params);
    const rows = await this.withRetry(`query ${oneLineSql(sql)}`, async () => {
      const [result] = await this.client.query({
        query: statement.query,
        params: Object.keys(statement.params).length > 0 ? statement.params : undefined,
        types: Object.keys(statement.types).length > 0 ? statement.types : undefined,
        location: this.target.location,
        labels: { app: 'nba-backfill' },
      });
      return result as Record<string, unknown>[];
    });
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plainValue(v)])));
  }

  /**
   * Runs a person's SQL as a query job, with the warehouse's table names. Unless `write`, a dry run first asks
   * BigQuery the statement's type (nothing runs, nothing is billed), and anything but a SELECT or ASSERT is
   * refused; BigQuery has no read-only connection, so the dry run is the guard. A job that may write is never
   * tried again after a transient failure: the first try may have landed.
   */
  async runSql(sql: string, options: { readonly write: boolean }): Promise<SqlOutcome> {
    const query = this.names.sql(sql);
    const what = `query ${oneLineSql(sql)}`;
    const job = { query, location: this.target.location, labels: { app: 'nba-backfill' } };
    if (!options.write) {
      const statementType = await this.withRetry(`dry run of ${what}`, async () => {
        const [dry] = await this.client.createQueryJob({ ...job, dryRun: true });
        const stats = dry.metadata?.statistics as { query?: { statementType?: string } } | undefined;
        return stats?.query?.statementType ?? '';
      });
      if (!READ_STATEMENT_TYPES.has(statementType)) {
        return {
          ok: false,
          refused: {
            statementType: statementType || 'a statement of no type',
            ...(statementType === 'SCRIPT'
              ? { detail: 'BigQuery types a script of several statements as a whole; run its queries one at a time' }
              : {}),
          },
        };
      }
    }
    const result = await this.withRetry(
      what,
      async () => {
        const [running] = await this.client.createQueryJob(job);
        let fields: TableField[] = [];
        const rows: ResultValue[][] = [];
        let dmlAffected: string | undefined;
        // Page by page (autoPaginate would keep the rows and drop the schema that names the columns); INT64
        // wrapped, since the client throws on one beyond 2^53 otherwise.
        let next: QueryResultsOptions | null = { autoPaginate: false, wrapIntegers: true };
        while (next) {
          const answer: QueryRowsResponse = await running.getQueryResults(next);
          const [page, nextQuery, response]: [unknown[], unknown, ResultsPage | undefined] = [
            answer[0],
            answer[1],
            answer[2] as ResultsPage | undefined,
          ];
          if (response?.schema?.fields) fields = response.schema.fields;
          dmlAffected = response?.numDmlAffectedRows ?? dmlAffected;
          for (const row of page as Record<string, unknown>[]) {
            rows.push(fields.map((f) => resultValue(row[String(f.name)], f)));
          }
          next = nextQuery ? (nextQuery as QueryResultsOptions) : null;
        }
        // A DML statement returns no rows; say how many it changed, as DuckDB's Count does.
        if (fields.length === 0 && dmlAffected !== undefined) {
          return { columns: ['num_dml_affected_rows'], rows: [[exactInteger(dmlAffected)]] };
        }
        return { columns: fields.map((f) => String(f.name)), rows };
      },
      undefined,
      options.write ? 1 : undefined,
    );
    return { ok: true, result };
  }

  /** The request a query makes: BigQuery's table names, and each parameter the SQL uses, typed. */
  queryStatement(sql: string, params: Readonly<Record<string, SqlValue>>): BigQueryStatement {
    const out: Record<string, unknown> = {};
    const types: Record<string, string> = {};
    for (const name of parameterNames(sql)) {
      if (!(name in params)) {
        throw new BadInputError(`query parameter @${name} has no value in: ${oneLineSql(sql)}`, { where: `@${name}` });
      }
      const value = params[name] ?? null;
      const bqName = bigQueryParameterName(name);
      out[bqName] = typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
      // STRING parameters coerce to DATE and TIMESTAMP where the SQL compares them with such columns.
      if (value === null || typeof value === 'string') types[bqName] = 'STRING';
      if (typeof value === 'number' && !Number.isFinite(value)) types[bqName] = 'FLOAT64';
    }
    return { query: this.names.sql(sql), params: out, types };
  }

  /** See the port; reports the most tries one of its jobs needed. */
  async commit(change: WarehouseChange): Promise<CommitOutcome | undefined> {
    for (const r of change.replace) {
      const stray = r.rows.find((row) => row[r.table.partitionColumn] !== r.date);
      if (stray) {
        throw new BadInputError(
          `${qualifiedName(r.table)}: a row for ${String(stray[r.table.partitionColumn])} was handed to the replace of ${r.date}`,
          { where: qualifiedName(r.table) },
        );
      }
    }
    const entries: CommitEntry[] = [
      ...change.replace.map(
        (r: PartitionReplace): CommitEntry => ({
          kind: 'replace',
          table: r.table,
          date: r.date,
          rows: sortByKey(r.table, r.rows),
        }),
      ),
      ...change.append
        .filter((a: TableRows) => a.rows.length > 0)
        .map((a: TableRows): CommitEntry => ({ kind: 'append', table: a.table, rows: a.rows })),
    ];
    if (entries.length === 0) return undefined;
    for (const e of entries.filter((x) => x.kind === 'append')) {
      const missing = e.rows.find((row) => typeof row[e.table.partitionColumn] !== 'string');
      if (missing) {
        throw new BadInputError(`${qualifiedName(e.table)}: a row has no ${e.table.partitionColumn}`, {
          where: qualifiedName(e.table),
        });
      }
    }
    const what = `commit of ${entries
      .map((e) =>
        e.kind === 'replace'
          ? `${qualifiedName(e.table)} ${e.date}`
          : `${e.rows.length} rows appended to ${qualifiedName(e.table)}`,
      )
      .join(', ')}`;
    // Each replaced partition first, each by a job of its own and all at once: BigQuery cancels a mutating
    // transaction that meets another on its table, which pods writing the same tables would do all day.
    const tries = { most: 1 };
    // A table with one date (Stage 1) takes a load into that partition; a table with many (a Stage 3 batch)
    // takes a handful of jobs for all of them, not a handful per date.
    const byTable = new Map<TableSchema, CommitEntry[]>();
    for (const e of entries) if (e.kind === 'replace') byTable.set(e.table, [...(byTable.get(e.table) ?? []), e]);
    await Promise.all(
      [...byTable].map(([table, replaces]) => {
        const [only] = replaces;
        return replaces.length === 1 && only
          ? this.replacePartition(table, only.date as string, only.rows, what, tries)
          : this.replaceDates(table, replaces, what, tries);
      }),
    );
    const appends = entries.filter((e) => e.kind === 'append');
    if (appends.length === 0) return { tries: tries.most };
    // Then the appends (run history last: the date's commit marker), one INSERT each, which never conflict.
    await this.locks.run(
      appends.map((e) => qualifiedName(e.table)),
      async () => {
        const bytes = appends.reduce((n, e) => n + estimateBytes(e.table, e.rows), 0);
        const staging = bytes > this.maxRequestBytes ? await this.stage(appends, what) : [];
        try {
          for (const e of appends) {
            const statement = commitStatement(this.names, [e]);
            await this.withRetry(what, () => this.runScript(statement), tries);
          }
        } finally {
          await this.dropStaging(staging);
        }
      },
    );
    return { tries: tries.most };
  }

  /**
   * Replaces many days of a table in four jobs, whatever their number: the rows are loaded into a staging
   * table, then one DELETE of those days' partitions and one INSERT from the staging table, each a DML
   * statement outside any transaction (BigQuery queues DML on a table and lets statements on different
   * partitions run together: https://cloud.google.com/bigquery/docs/data-manipulation-language). Between the
   * two the days are empty, which the run history's pending markers cover (see RunBatch.commit).
   */
  private async replaceDates(
    table: TableSchema,
    replaces: readonly CommitEntry[],
    what: string,
    tries: { most: number },
  ): Promise<void> {
    const dates = replaces.map((r) => r.date as string).sort();
    const rows = replaces.flatMap((r) => sortByKey(table, r.rows));
    const dataset = this.client.dataset(this.names.dataset(table.dataset), { location: this.target.location });
    const name = `_staging_${randomUUID().replace(/-/g, '').slice(0, 16)}_${table.name}`;
    if (rows.length > 0) {
      await this.withRetry(`${what}: create staging table ${name}`, async () => {
        try {
          await dataset.createTable(name, {
            schema: { fields: tableFields(table, 'staging') },
            expirationTime: String(Date.now() + STAGING_TTL_MS),
          });
        } catch (err) {
          if (failureOf(err).status !== 409) throw err;
        }
      });
    }
    try {
      if (rows.length > 0) {
        const data = rows.map((r) => loadLine(table, r)).join('\n');
        await this.withRetry(
          `${what}: load ${rows.length} rows of ${qualifiedName(table)} into ${name}`,
          () => this.loadInto(dataset.table(name), tableFields(table, 'staging'), data),
          tries,
        );
      }
      const ref = this.names.of(table);
      const day = table.partitionColumn;
      const remove: BigQueryStatement = {
        query:
          `DELETE FROM ${ref} WHERE ${day} BETWEEN @first AND @last ` +
          `AND ${day} IN (SELECT x.d FROM UNNEST(@dates) AS x)`,
        params: {
          first: BigQuery.date(dates[0] as string),
          last: BigQuery.date(dates.at(-1) as string),
          dates: dates.map((d) => ({ d: BigQuery.date(d) })),
        },
        types: { first: 'DATE', last: 'DATE', dates: [{ d: 'DATE' }] },
      };
      await this.withRetry(
        `${what}: delete ${dates.length} days of ${qualifiedName(table)}`,
        () => this.runScript(remove),
        tries,
      );
      if (rows.length > 0) {
        const cols = table.columns.map((c) => c.name).join(', ');
        const insert: BigQueryStatement = {
          query: `INSERT INTO ${ref} (${cols})\nSELECT ${cols} FROM ${this.names.table(table.dataset, name)}`,
          params: {},
          types: {},
        };
        await this.withRetry(
          `${what}: insert ${rows.length} rows into ${qualifiedName(table)}`,
          () => this.runScript(insert),
          tries,
        );
      }
    } finally {
      if (rows.length > 0) await this.dropStaging([{ dataset, name }]);
    }
  }

  /**
   * A load job of newline-delimited JSON into a table (or a `table$YYYYMMDD` partition), truncating it, under
   * a job id of our own; then waits for the job to end. An upload answered without its job (a 200 whose body
   * is empty or not a job, as a proxy or a cut connection can hand back) is not trusted: the job is looked up
   * by its id, and if BigQuery does not know it, the load is sent again (WRITE_TRUNCATE makes that safe).
   */
  private async loadInto(target: ReturnType<Dataset['table']>, fields: TableField[], data: string): Promise<void> {
    const jobId = `nba_load_${randomUUID().replaceAll('-', '')}`;
    const answered = await this.upload(
      {
        configuration: {
          load: {
            destinationTable: { projectId: this.target.project, datasetId: target.dataset.id, tableId: target.id },
            sourceFormat: 'NEWLINE_DELIMITED_JSON',
            writeDisposition: 'WRITE_TRUNCATE',
            createDisposition: 'CREATE_NEVER',
            schema: { fields },
          },
        },
        jobReference: { projectId: this.target.project, jobId, location: this.target.location },
      },
      data,
    );
    try {
      await this.client.job(jobId, { location: this.target.location }).promise();
    } catch (err) {
      if (!answered && failureOf(err).status === 404) {
        throw new UnansweredUpload(
          `the upload of load job ${jobId} was answered without the job, and BigQuery does not know it`,
        );
      }
      throw err;
    }
  }

  /**
   * Sends a job and its data as one multipart upload to jobs.insert's upload URI
   * (https://cloud.google.com/bigquery/docs/reference/api-uploads), with the client's credentials and headers.
   * Resolves true when the answer is the job, false when it holds none; an error answer rejects with its
   * HTTP status and BigQuery's reasons, as the client's own errors carry them.
   */
  private async upload(job: object, data: string): Promise<boolean> {
    const request = await new Promise<{ uri: string; headers?: Record<string, string>; qs?: Record<string, string> }>(
      (resolve, reject) => {
        this.client.makeAuthenticatedRequest(
          {
            method: 'POST',
            uri: `${this.client.apiEndpoint}/upload/bigquery/v2/projects/${encodeURIComponent(this.target.project)}/jobs`,
            qs: { uploadType: 'multipart' },
          },
          { onAuthenticated: (err, opts) => (err ? reject(err) : resolve(opts as never)) },
        );
      },
    );
    const url = new URL(request.uri);
    for (const [k, v] of Object.entries(request.qs ?? {})) url.searchParams.set(k, String(v));
    const boundary = randomUUID();
    const body = [
      `--${boundary}`,
      'Content-Type: application/json',
      '',
      JSON.stringify(job),
      `--${boundary}`,
      'Content-Type: application/octet-stream',
      '',
      data,
      `--${boundary}--`,
      '',
    ].join('\r\n');
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { ...request.headers, 'Content-Type': `multipart/related; boundary=${boundary}` },
        body,
      });
    } catch (err) {
      // fetch reports a refused or reset connection as a TypeError whose cause carries the code.
      const code = (err as { cause?: { code?: unknown } }).cause?.code;
      throw Object.assign(new Error(`upload failed: ${err instanceof Error ? err.message : String(err)}`), {
        code: typeof code === 'string' ? code : undefined,
      });
    }
    const text = await res.text();
    let answer: { jobReference?: { jobId?: unknown }; error?: { message?: string; errors?: unknown[] } } | null = null;
    try {
      answer = text ? JSON.parse(text) : null;
    } catch {
      answer = null;
    }
    if (!res.ok) {
      throw Object.assign(new Error(answer?.error?.message ?? `HTTP ${res.status}: ${text.slice(0, 200)}`), {
        code: res.status,
        errors: answer?.error?.errors ?? [],
      });
    }
    return typeof answer?.jobReference?.jobId === 'string';
  }

  /**
   * Replaces one day of a table: a load job of its rows into `table$YYYYMMDD` with WRITE_TRUNCATE, which
   * BigQuery applies atomically when the job completes and never cancels for a concurrent write
   * (https://cloud.google.com/bigquery/docs/load-data-partitioned-tables). A day without rows is emptied by
   * one DELETE of that partition, which queues behind other DML rather than failing.
   */
  private async replacePartition(
    table: TableSchema,
    date: string,
    rows: readonly Row[],
    what: string,
    tries: { most: number },
  ): Promise<void> {
    if (rows.length === 0) {
      const statement = commitStatement(this.names, [{ kind: 'replace', table, date, rows: [] }]);
      await this.withRetry(what, () => this.runScript(statement), tries);
      return;
    }
    const data = sortByKey(table, rows)
      .map((r) => loadLine(table, r))
      .join('\n');
    const target = this.client
      .dataset(this.names.dataset(table.dataset), { location: this.target.location })
      .table(`${table.name}$${date.replaceAll('-', '')}`);
    await this.withRetry(
      `${what}: load ${qualifiedName(table)} ${date}`,
      () => this.loadInto(target, tableFields(table), data),
      tries,
    );
  }

  async append(table: TableSchema, rows: readonly Row[]): Promise<void> {
    await this.commit({ replace: [], append: [{ table, rows }] });
  }

  private async runScript(statement: BigQueryStatement): Promise<void> {
    await this.client.query({
      query: statement.query,
      params: Object.keys(statement.params).length > 0 ? statement.params : undefined,
      types: Object.keys(statement.types).length > 0 ? statement.types : undefined,
      location: this.target.location,
      labels: { app: 'nba-backfill' },
    });
  }

  /**
   * Writes the rows of a too-large commit to staging tables, one per chunk, each by a query job that
   * truncates its destination (so a retried chunk never doubles). They expire by themselves within a day.
   */
  private async stage(entries: CommitEntry[], what: string): Promise<{ dataset: Dataset; name: string }[]> {
    const id = randomUUID().replace(/-/g, '').slice(0, 16);
    const created: { dataset: Dataset; name: string }[] = [];
    for (const [i, e] of entries.entries()) {
      if (e.rows.length === 0) continue;
      const dataset = this.client.dataset(this.names.dataset(e.table.dataset), { location: this.target.location });
      e.staged = [];
      for (const [j, chunk] of chunkRows(e.table, e.rows, this.maxRequestBytes).entries()) {
        const name = `_staging_${id}_${i}_${j}`;
        await this.withRetry(`${what}: create staging table ${name}`, async () => {
          try {
            await dataset.createTable(name, {
              schema: { fields: tableFields(e.table, 'staging') },
              expirationTime: String(Date.now() + STAGING_TTL_MS),
            });
          } catch (err) {
            if (failureOf(err).status !== 409) throw err;
          }
        });
        created.push({ dataset, name });
        const statement = stagingStatement(e.table, chunk);
        await this.withRetry(`${what}: stage ${chunk.length} rows in ${name}`, async () => {
          // createQueryJob would send its `types` option on to the API, which refuses unknown fields.
          const [job] = await this.client.createJob({
            configuration: {
              query: {
                query: statement.query,
                useLegacySql: false,
                parameterMode: 'NAMED',
                queryParameters: Object.entries(statement.params).map(([name, value]) => ({
                  ...BigQuery.valueToQueryParameter_(value, statement.types[name]),
                  name,
                })),
                destinationTable: { projectId: this.target.project, datasetId: dataset.id, tableId: name },
                writeDisposition: 'WRITE_TRUNCATE',
                createDisposition: 'CREATE_NEVER',
              },
              labels: { app: 'nba-backfill' },
            },
            location: this.target.location,
          });
          await job.getQueryResults({ maxResults: 0 });
        });
        e.staged.push(this.names.table(e.table.dataset, name));
      }
    }
    return created;
  }

  private async dropStaging(tables: readonly { dataset: Dataset; name: string }[]): Promise<void> {
    for (const t of tables) {
      // Best effort: a staging table left behind expires within a day.
      await t.dataset
        .table(t.name)
        .delete()
        .catch(() => undefined);
    }
  }

  /**
   * Nothing to do: a BigQuery job's result is in BigQuery's replicated managed storage once the job reports
   * done; there is no local log of committed work that a crash or a damaged disk here could lose.
   */
  async checkpoint(): Promise<void> {}

  async close(): Promise<void> {}
}

function oneLineSql(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 160 ? `${flat.slice(0, 159)}…` : flat;
}

/**
 * Credentials for a local emulator (BIGQUERY_EMULATOR_HOST): a fixed token, never checked and never
 * refreshed over the network. Without any, the client sends a load's multipart upload with no headers object
 * and crashes inside teeny-request ("Cannot set properties of undefined (setting 'Content-Type')").
 */
function emulatorAuth(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'emulator', expiry_date: Date.UTC(2100, 0, 1) });
  return auth;
}

/**
 * Opens the BigQuery warehouse of a parsed `bigquery://<project>[?location=US&datasetPrefix=<p>]` setting. Credentials
 * are Application Default Credentials (Workload Identity on GKE, `gcloud auth application-default login` on a
 * workstation); no key file is read here. BIGQUERY_EMULATOR_HOST points the client at a local server.
 */
export async function openBigQueryWarehouse(
  target: BigQueryTarget,
  options: BigQueryWarehouseOptions = {},
): Promise<BigQueryWarehouse> {
  // The client's own retries are off: ours back off with jitter, bounded, and know BigQuery's reasons.
  const client =
    options.client ??
    new BigQuery({
      projectId: target.project,
      location: target.location,
      retryOptions: { autoRetry: false },
      ...(process.env.BIGQUERY_EMULATOR_HOST ? { authClient: emulatorAuth() } : {}),
    });
  return new BigQueryWarehouse(target, client, options);
}
