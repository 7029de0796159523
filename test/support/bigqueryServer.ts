// A local double of the BigQuery REST API (v2) for the client library (BIGQUERY_EMULATOR_HOST): it checks
// every request (method, path, body shape, typed parameters, every statement parsed by sqlglot's BigQuery
// dialect with no value written into the SQL) and answers as the API does. It runs queries too: sqlglot
// rewrites each statement for DuckDB and an in-memory DuckDB executes it, transactions included.
// Shapes follow the REST reference: datasets.insert/get, tables.insert/get/delete, jobs.query,
// jobs.getQueryResults, jobs.insert (dry runs too), jobs.get; errors are `{error: {code, message, errors: [{reason}]}}`.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DuckDBConnection, DuckDBInstance, DuckDBTypeId } from '@duckdb/node-api';
import { z } from 'zod';
import {
  ContentionError,
  type JobKind,
  type JobRecord,
  type Latencies,
  type ModeledStatement,
  MUTATING_KINDS,
  NO_LATENCY,
  TableContention,
} from './bigqueryContention.js';
import { type ScalarParameter, Sqlglot, SqlglotError, type StatementInfo, type TableScan } from './sqlglot.js';

/** A request as the double saw it. */
export interface ObservedRequest {
  readonly method: string;
  /** The path after `/projects/<project>/`, e.g. `queries`, `datasets/nba_raw/tables/x`. */
  readonly route: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** The data part of an upload (a load job's rows). */
  readonly upload?: string;
  status?: number;
}

/** One statement the double parsed, with what sqlglot found in it. */
export interface ObservedStatement {
  readonly sql: string;
  readonly info: StatementInfo;
}

/** An error the double answers instead of (or after) doing what a request asks. */
export interface Fault {
  /** Which requests fail. @default every request */
  readonly match?: (req: ObservedRequest) => boolean;
  readonly status: number;
  readonly reason: string;
  readonly message?: string;
  /** Do the work first, then answer with the error: the caller cannot tell that it landed. */
  readonly afterExecute?: boolean;
  /**
   * Answer 200 with an empty body instead of the error (what a proxy or a cut connection can hand the
   * client): with `afterExecute` the job was created and runs, without it nothing was done.
   */
  readonly emptyAnswer?: boolean;
  /** How many matching requests fail. @default 1 */
  times?: number;
}

export interface BigQueryDoubleOptions {
  readonly project: string;
  /** The location datasets get when a request names none. @default 'US' */
  readonly defaultLocation?: string;
  /** Rows per page of query results (the API pages large results). @default 500 */
  readonly pageRows?: number;
}

/**
 * How jobs take time and contend for tables (bigqueryContention.ts). With no latency (the default) a job
 * takes no modeled time, but jobs in flight together still contend: a transaction is cancelled when another
 * open one mutated its table.
 */
export interface BigQueryTiming {
  /** Modeled latency per job kind, in ms. @default 0 for every kind */
  readonly latencyMs?: Partial<Latencies>;
  /** The clock of the job log's start and end times. @default performance.now */
  readonly now?: () => number;
  /** Waits out a latency. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** The UTC day daily quotas count in. @default today */
  readonly day?: () => string;
  /** Load and copy jobs a table takes a day (BigQuery: 1,500). @default 1500 */
  readonly tableOperationsPerDay?: number;
  /** Called after each statement of a script (see TableContention): tests hold a transaction open here. */
  readonly onStatement?: (job: JobRecord, index: number, statement: ModeledStatement) => Promise<void> | void;
}

// ---- request shapes (REST reference: Dataset, Table, QueryRequest, Job, QueryParameter) ----

interface ParamType {
  type: string;
  arrayType?: ParamType;
  structTypes?: { name?: string; type: ParamType; description?: string }[];
}
const ParamTypeSchema: z.ZodType<ParamType> = z.lazy(() =>
  z.strictObject({
    type: z.enum([
      'STRING',
      'INT64',
      'FLOAT64',
      'BOOL',
      'DATE',
      'TIMESTAMP',
      'JSON',
      'NUMERIC',
      'BYTES',
      'ARRAY',
      'STRUCT',
    ]),
    arrayType: ParamTypeSchema.optional(),
    structTypes: z
      .array(z.strictObject({ name: z.string().optional(), type: ParamTypeSchema, description: z.string().optional() }))
      .optional(),
  }),
);
interface ParamValue {
  value?: string | number | boolean | null;
  arrayValues?: ParamValue[];
  structValues?: Record<string, ParamValue>;
}
const ParamValueSchema: z.ZodType<ParamValue> = z.lazy(() =>
  z.strictObject({
    value: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
    arrayValues: z.array(ParamValueSchema).optional(),
    structValues: z.record(z.string(), ParamValueSchema).optional(),
  }),
);
const QueryParameterSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  parameterType: ParamTypeSchema,
  parameterValue: ParamValueSchema,
});
const TableRefSchema = z.strictObject({ projectId: z.string(), datasetId: z.string(), tableId: z.string() });
const QueryRequestSchema = z.strictObject({
  kind: z.literal('bigquery#queryRequest').optional(),
  query: z.string().min(1),
  useLegacySql: z.literal(false),
  parameterMode: z.enum(['named', 'NAMED']).optional(),
  queryParameters: z.array(QueryParameterSchema).optional(),
  location: z.string().optional(),
  formatOptions: z.strictObject({ useInt64Timestamp: z.boolean().optional() }).optional(),
  requestId: z.string().max(36).optional(),
  labels: z.record(z.string().regex(/^[a-z0-9_-]{1,63}$/), z.string().regex(/^[a-z0-9_-]{0,63}$/)).optional(),
  maxResults: z.number().int().nonnegative().optional(),
  timeoutMs: z.number().int().nonnegative().optional(),
  useQueryCache: z.boolean().optional(),
  jobCreationMode: z.string().optional(),
  defaultDataset: z.strictObject({ projectId: z.string().optional(), datasetId: z.string() }).optional(),
  dryRun: z.boolean().optional(),
});
const QueryJobSchema = z.strictObject({
  query: z.string().min(1),
  useLegacySql: z.literal(false),
  parameterMode: z.enum(['named', 'NAMED']).optional(),
  queryParameters: z.array(QueryParameterSchema).optional(),
  destinationTable: TableRefSchema.optional(),
  writeDisposition: z.enum(['WRITE_TRUNCATE', 'WRITE_APPEND', 'WRITE_EMPTY']).optional(),
  createDisposition: z.enum(['CREATE_IF_NEEDED', 'CREATE_NEVER']).optional(),
});
/** A table, or one day of it with a partition decorator (`table$YYYYMMDD`). */
const DecoratedTableRefSchema = z.strictObject({
  projectId: z.string(),
  datasetId: z.string(),
  tableId: z.string().regex(/^[A-Za-z0-9_]{1,1024}(\$\d{8})?$/),
});
const LoadJobSchema = z.strictObject({
  destinationTable: DecoratedTableRefSchema,
  // The adapter sends newline-delimited JSON; the double reads no other format.
  sourceFormat: z.literal('NEWLINE_DELIMITED_JSON'),
  writeDisposition: z.enum(['WRITE_TRUNCATE', 'WRITE_APPEND', 'WRITE_EMPTY']).optional(),
  createDisposition: z.enum(['CREATE_IF_NEEDED', 'CREATE_NEVER']).optional(),
  schema: z.strictObject({ fields: z.array(z.lazy(() => FieldSchema)).min(1) }),
});
const CopyJobSchema = z.strictObject({
  sourceTable: DecoratedTableRefSchema,
  destinationTable: DecoratedTableRefSchema,
  writeDisposition: z.enum(['WRITE_TRUNCATE', 'WRITE_APPEND', 'WRITE_EMPTY']).optional(),
  createDisposition: z.enum(['CREATE_IF_NEEDED', 'CREATE_NEVER']).optional(),
  operationType: z.literal('COPY').optional(),
});
const JobInsertSchema = z.strictObject({
  jobReference: z.strictObject({ projectId: z.string(), jobId: z.string(), location: z.string().optional() }),
  configuration: z
    .strictObject({
      query: QueryJobSchema.optional(),
      load: LoadJobSchema.optional(),
      copy: CopyJobSchema.optional(),
      labels: z.record(z.string(), z.string()).optional(),
      dryRun: z.boolean().optional(),
    })
    .refine((c) => [c.query, c.load, c.copy].filter(Boolean).length === 1, {
      message: 'a job configuration has exactly one of query, load and copy',
    }),
});
const FieldSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,299}$/),
  type: z.enum(['STRING', 'INT64', 'INTEGER', 'FLOAT64', 'FLOAT', 'BOOL', 'BOOLEAN', 'DATE', 'TIMESTAMP', 'JSON']),
  mode: z.enum(['NULLABLE', 'REQUIRED']).optional(),
  description: z.string().max(1024).optional(),
});
const TableInsertSchema = z.strictObject({
  tableReference: z.strictObject({
    projectId: z.string(),
    datasetId: z.string(),
    tableId: z.string().regex(/^[A-Za-z0-9_]{1,1024}$/),
  }),
  description: z.string().optional(),
  schema: z.strictObject({ fields: z.array(FieldSchema).min(1) }),
  timePartitioning: z.strictObject({ type: z.literal('DAY'), field: z.string() }).optional(),
  clustering: z.strictObject({ fields: z.array(z.string()).min(1).max(4) }).optional(),
  expirationTime: z.string().regex(/^\d+$/).optional(),
});
const DatasetInsertSchema = z.strictObject({
  datasetReference: z.strictObject({
    datasetId: z.string().regex(/^[A-Za-z0-9_]{1,1024}$/),
    projectId: z.string().optional(),
  }),
  location: z.string().optional(),
  description: z.string().optional(),
});

type Field = z.infer<typeof FieldSchema>;

interface TableState {
  dataset: string;
  table: string;
  fields: Field[];
  timePartitioning?: { type: string; field: string } | undefined;
  clustering?: { fields: string[] } | undefined;
  description?: string | undefined;
  expirationTime?: string | undefined;
  creationTime: string;
}

interface JobResult {
  jobId: string;
  location: string;
  statementType: string;
  fields: { name: string; type: string; mode: string }[];
  /** Each row's values as the API writes them (micros for timestamps, converted on the way out). */
  rows: (string | null)[][];
  dmlAffected?: number;
  query: unknown;
  error?: { status: number; reason: string; message: string; location?: string | undefined };
  polls: number;
  /** A load or copy job's configuration as sent (a query job's is built from `query`). */
  configuration?: Record<string, unknown>;
  /** Rows a load job wrote. */
  outputRows?: number;
  /** Set while the job runs: jobs.get answers RUNNING until it settles. */
  running?: Promise<unknown>;
  /** Bytes the query or DML job processed and was billed for (`bytesBilled`), for its statistics. */
  bytesProcessed?: number;
  bytesBilled?: number;
}

const LEGACY_TYPE: Record<string, string> = { INT64: 'INTEGER', FLOAT64: 'FLOAT', BOOL: 'BOOLEAN' };
const LEGACY_TO_STANDARD: Record<string, string> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' };
const DUCK_TYPE: Record<string, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  INTEGER: 'BIGINT',
  FLOAT64: 'DOUBLE',
  FLOAT: 'DOUBLE',
  BOOL: 'BOOLEAN',
  BOOLEAN: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMPTZ',
  JSON: 'VARCHAR',
  NUMERIC: 'DOUBLE',
};
const CLUSTERABLE = new Set(['STRING', 'INT64', 'INTEGER', 'BOOL', 'BOOLEAN', 'DATE', 'TIMESTAMP']);
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    /** Where the error applies: a quota's name for quotaExceeded, e.g. `load_job_per_table.long`. */
    readonly location?: string,
  ) {
    super(message);
  }
}

/** What differs between a table's schema and the one a job sends (names, types, modes), or null. */
function schemaMismatch(table: readonly Field[], sent: readonly Field[]): string | null {
  const norm = (f: Field) => `${f.name} ${LEGACY_TYPE[f.type] ?? f.type} ${f.mode ?? 'NULLABLE'}`;
  for (let i = 0; i < Math.max(table.length, sent.length); i++) {
    const [a, b] = [table[i], sent[i]];
    if (!a) return `Field ${b?.name} is not in the table`;
    if (!b) return `Field ${a.name} is missing in new schema`;
    if (norm(a) !== norm(b)) return `Field ${a.name} has changed from ${norm(a)} to ${norm(b)}`;
  }
  return null;
}

/**
 * The rows of newline-delimited JSON, each checked against the table's fields: an unknown field, a missing
 * REQUIRED value or a value of the wrong type fails the whole job, as BigQuery's "JSON table encountered too
 * many errors, giving up" does with no bad records allowed (https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-json).
 */
function parseNdjson(data: string, fields: readonly Field[]): Record<string, unknown>[] {
  const byName = new Map(fields.map((f) => [f.name, f]));
  const rows: Record<string, unknown>[] = [];
  for (const [n, line] of data.split('\n').entries()) {
    if (line.trim() === '') continue;
    const bad = (why: string) =>
      new ApiFailure(
        400,
        'invalid',
        `Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: ${n + 1}; errors: 1. ${why}`,
      );
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw bad(`JSON parsing error in row starting at line ${n + 1}`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw bad(`row ${n + 1} is not a JSON object`);
    const record = row as Record<string, unknown>;
    for (const name of Object.keys(record)) if (!byName.has(name)) throw bad(`No such field: ${name}.`);
    for (const f of fields) {
      const v = record[f.name];
      if (v === null || v === undefined) {
        if (f.mode === 'REQUIRED') throw bad(`Missing required field: ${f.name}.`);
        continue;
      }
      try {
        checkScalar(f.name, LEGACY_TO_STANDARD[f.type] ?? f.type, {
          value: typeof v === 'object' ? JSON.stringify(v) : (v as string),
        });
      } catch {
        throw bad(`Could not convert value to ${f.type} for field ${f.name}: ${JSON.stringify(v)}.`);
      }
    }
    rows.push(record);
  }
  return rows;
}

/** A JSON cell as the text duckLiteral takes. */
function jsonCell(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** How long jobs.query and jobs.getQueryResults wait for a job by default, and at most ("the call is not
 * guaranteed to wait for the specified timeout; it typically returns after around 200 seconds":
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query, QueryRequest.timeoutMs). */
const DEFAULT_WAIT_MS = 10_000;
const MAX_WAIT_MS = 200_000;

/** The promise's value, or null once `ms` have passed first (a settled rejection propagates). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const MIB = 1024 * 1024;
/** "a minimum 10 MB data processed per table referenced by the query, and with a minimum 10 MB data processed per query" */
const MIN_BILLED = 10 * MIB;

/**
 * Bytes billed for one statement from the bytes it processed in each table it references: "Charges are
 * rounded up to the nearest MB, with a minimum 10 MB data processed per table referenced by the query, and
 * with a minimum 10 MB data processed per query" (https://cloud.google.com/bigquery/pricing, on-demand
 * compute pricing). A statement that references no table processes nothing and bills nothing.
 */
export function billedBytes(perTable: readonly number[]): number {
  if (perTable.length === 0) return 0;
  const total = perTable.reduce((sum, bytes) => sum + Math.max(MIN_BILLED, bytes), 0);
  return Math.ceil(Math.max(MIN_BILLED, total) / MIB) * MIB;
}

/**
 * A DuckDB expression for the logical bytes of one value of a column: "STRING | 2 logical bytes + the UTF-8
 * encoded string size", INT64, FLOAT64, DATE and TIMESTAMP 8, BOOL 1, JSON the size of its UTF-8 text, and
 * "A NULL value for any data type is calculated as 0 logical bytes"
 * (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types, "Data type sizes").
 */
function logicalBytes(field: Field): string {
  const col = quote(field.name);
  const size =
    field.type === 'STRING'
      ? `2 + strlen(${col})`
      : field.type === 'JSON'
        ? `strlen(CAST(${col} AS VARCHAR))`
        : field.type === 'BOOL' || field.type === 'BOOLEAN'
          ? '1'
          : '8';
  return `CASE WHEN ${col} IS NULL THEN 0 ELSE ${size} END`;
}
const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A scalar parameter value as BigQuery checks it against its declared type. */
function checkScalar(name: string, type: string, value: ParamValue | undefined): string | null {
  const v = value?.value;
  if (v === undefined || v === null) return null;
  const s = String(v);
  const bad = () =>
    new ApiFailure(400, 'invalidQuery', `Invalid value for query parameter ${name} of type ${type}: ${s}`);
  if (type === 'INT64' && !/^-?\d+$/.test(s)) throw bad();
  if (type === 'FLOAT64' && Number.isNaN(Number(s)) && !/^(NaN|-?Infinity)$/.test(s)) throw bad();
  if (type === 'BOOL' && !/^(true|false)$/i.test(s)) throw bad();
  if (type === 'DATE' && !/^\d{4}-\d{1,2}-\d{1,2}$/.test(s)) throw bad();
  if (type === 'TIMESTAMP' && Number.isNaN(new Date(s).getTime())) throw bad();
  if (type === 'JSON') {
    try {
      JSON.parse(s);
    } catch {
      throw bad();
    }
  }
  return s;
}

function duckLiteral(type: string, value: string | null): string {
  if (value === null) return 'NULL';
  switch (type) {
    case 'BOOL':
      return value.toLowerCase() === 'true' ? 'TRUE' : 'FALSE';
    case 'DATE':
      return `DATE ${sqlString(value)}`;
    case 'STRING':
    case 'JSON':
      return sqlString(value);
    default:
      return `CAST(${sqlString(value)} AS ${DUCK_TYPE[type] ?? 'VARCHAR'})`;
  }
}

/** The API's type name for a DuckDB result column (legacy names, as query results carry them). */
function resultType(typeId: DuckDBTypeId): string {
  switch (typeId) {
    case DuckDBTypeId.BOOLEAN:
      return 'BOOLEAN';
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
      return 'INTEGER';
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.DECIMAL:
      return 'FLOAT';
    case DuckDBTypeId.DATE:
      return 'DATE';
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return 'TIMESTAMP';
    default:
      return 'STRING';
  }
}

/** A promise chain: the double runs one job at a time, as one BigQuery table takes one transaction. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export class BigQueryDouble {
  readonly requests: ObservedRequest[] = [];
  readonly statements: ObservedStatement[] = [];
  /** Everything a request did that the real API would refuse or that breaks the adapter's contract. */
  readonly violations: string[] = [];
  readonly datasets = new Map<string, { location: string; description?: string | undefined; creationTime: string }>();
  readonly tables = new Map<string, TableState>();
  private readonly jobs = new Map<string, JobResult>();
  /** Jobs inserted and not yet started: called once a job has passed its checks and begins to run. */
  private readonly starting = new Map<string, () => void>();
  private readonly faults: Fault[] = [];
  private readonly serial = new Serial();
  private paramTables = 0;
  /** Load and copy jobs per `day table`, failed ones included (see countTableOperation). */
  private readonly tableOperations = new Map<string, number>();
  private readonly day: () => string;
  /** Daily quotas, lowered by tests to reach them. */
  readonly quota: { tableOperationsPerDay: number };
  /** Every job, in order of creation, with its kind, tables, start, end and error. */
  readonly jobLog: JobRecord[] = [];
  private readonly contention: TableContention;
  private readonly now: () => number;
  /** Queries answered `jobComplete: false` first, so the client polls jobs.getQueryResults. */
  slowQueries = 0;
  /** How long each jobs.query takes, to let concurrent requests overlap. */
  queryDelayMs = 0;
  /** The most jobs.query requests that were in flight at once. */
  maxConcurrentQueries = 0;
  private concurrentQueries = 0;
  private server: Server | undefined;

  private constructor(
    readonly options: Required<BigQueryDoubleOptions>,
    private readonly glot: Sqlglot,
    private readonly duck: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    timing: BigQueryTiming,
  ) {
    this.now = timing.now ?? (() => performance.now());
    this.day = timing.day ?? (() => new Date().toISOString().slice(0, 10));
    this.quota = { tableOperationsPerDay: timing.tableOperationsPerDay ?? 1500 };
    this.contention = new TableContention({
      project: options.project,
      latencies: { ...NO_LATENCY, ...timing.latencyMs },
      ...(timing.sleep ? { sleep: timing.sleep } : {}),
      ...(timing.onStatement ? { onStatement: timing.onStatement } : {}),
    });
  }

  /** Transactions cancelled for a concurrent update against a table they mutated. */
  get abortedTransactions(): number {
    return this.contention.aborted;
  }

  /** The most mutating DML statements queued at once behind one table. */
  get maxQueuedDml(): number {
    return this.contention.maxQueued;
  }

  static async start(options: BigQueryDoubleOptions & BigQueryTiming): Promise<BigQueryDouble> {
    const glot = await Sqlglot.start();
    const duck = await DuckDBInstance.create(':memory:');
    const conn = await duck.connect();
    // BigQuery's TIMESTAMP is UTC: DuckDB's TIMESTAMPTZ shown in UTC prints as BigQuery casts to STRING.
    await conn.run("SET TimeZone = 'UTC'");
    const { latencyMs, now, sleep, onStatement, day, tableOperationsPerDay, ...rest } = options;
    const double = new BigQueryDouble({ defaultLocation: 'US', pageRows: 500, ...rest }, glot, duck, conn, {
      ...(day ? { day } : {}),
      ...(tableOperationsPerDay !== undefined ? { tableOperationsPerDay } : {}),
      ...(latencyMs ? { latencyMs } : {}),
      ...(now ? { now } : {}),
      ...(sleep ? { sleep } : {}),
      ...(onStatement ? { onStatement } : {}),
    });
    double.server = createServer((req, res) => void double.handle(req, res));
    await new Promise<void>((resolve) => double.server?.listen(0, '127.0.0.1', resolve));
    return double;
  }

  /** The value for BIGQUERY_EMULATOR_HOST. */
  get url(): string {
    const address = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  get sqlglotVersion(): string {
    return this.glot.version;
  }

  /** Makes matching requests fail, once or `times` times. */
  inject(fault: Fault): void {
    this.faults.push({ times: 1, ...fault });
  }

  /** Forgets faults not yet used. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Rows of a table, straight from the double's storage (for assertions). */
  async rows(dataset: string, table: string, orderBy = ''): Promise<Record<string, unknown>[]> {
    return this.serial.run(async () => {
      const reader = await this.conn.runAndReadAll(
        `SELECT * FROM ${quote(dataset)}.${quote(table)}${orderBy ? ` ORDER BY ${orderBy}` : ''}`,
      );
      return reader.getRowObjectsJson() as Record<string, unknown>[];
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    await this.glot.close();
    this.conn.closeSync();
    this.duck.closeSync();
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let text = Buffer.concat(chunks).toString('utf8');
    // A load from memory arrives at the upload endpoint as multipart/related: the job, then the data
    // (https://cloud.google.com/bigquery/docs/reference/api-uploads).
    const upload = /^\/upload\/bigquery\/v2\//.test(url.pathname);
    let data: string | undefined;
    if (upload) {
      const parts = multipartParts(text, req.headers['content-type']);
      text = parts?.[0] ?? '';
      data = parts?.[1];
      if (url.searchParams.get('uploadType') !== 'multipart' || parts?.length !== 2) {
        this.violations.push(`upload ${url.search} without a two-part multipart/related body`);
        text = '';
      }
    }
    const path = url.pathname.replace(/^(\/upload)?\/bigquery\/v2/, '');
    const m = /^\/projects\/([^/]+)\/(.*)$/.exec(path);
    const observed: ObservedRequest = {
      method: req.method ?? 'GET',
      route: m?.[2] ?? path,
      query: Object.fromEntries(url.searchParams),
      body: text ? safeJson(text) : undefined,
      ...(upload ? { upload: data ?? '' } : {}),
    };
    this.requests.push(observed);
    const send = (status: number, body?: unknown) => {
      observed.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    try {
      if (!m) throw new ApiFailure(404, 'notFound', `Not found: URL ${url.pathname}`);
      if (m[1] !== this.options.project) {
        throw new ApiFailure(404, 'notFound', `Not found: Project ${m[1]}`);
      }
      if (text && observed.body === undefined) throw new ApiFailure(400, 'parseError', 'Parse Error: body is not JSON');
      const fault = this.faults.find((f) => (f.times ?? 1) > 0 && (!f.match || f.match(observed)));
      if (fault) fault.times = (fault.times ?? 1) - 1;
      if (fault?.emptyAnswer && !fault.afterExecute) return send(200);
      if (fault && !fault.afterExecute) throw faultError(fault);
      const [status, body] = await this.route(observed);
      if (fault?.emptyAnswer) return send(200);
      if (fault) {
        // "After it executed": a job the request started has run to its end when the answer is lost.
        const started = (body as { jobReference?: { jobId?: string } } | undefined)?.jobReference?.jobId;
        if (started) await this.settled(started);
        throw faultError(fault);
      }
      send(status, body);
    } catch (err) {
      const failure =
        err instanceof ApiFailure
          ? err
          : new ApiFailure(
              500,
              'internalError',
              `the double failed: ${err instanceof Error ? err.message : String(err)}`,
            );
      if (failure.reason === 'internalError' && !(err instanceof ApiFailure)) this.violations.push(failure.message);
      send(failure.status, {
        error: {
          code: failure.status,
          message: failure.message,
          errors: [{ message: failure.message, domain: 'global', reason: failure.reason }],
          status: STATUS_NAMES[failure.status] ?? 'UNKNOWN',
        },
      });
    }
  }

  private async route(r: ObservedRequest): Promise<[number, unknown?]> {
    const parts = r.route.split('/').map(decodeURIComponent);
    const is = (method: string, ...shape: (string | null)[]) =>
      r.method === method && parts.length === shape.length && shape.every((s, i) => s === null || s === parts[i]);
    if (is('POST', 'datasets')) return [200, this.insertDataset(r.body)];
    if (is('GET', 'datasets', null)) return [200, this.getDataset(parts[1] as string)];
    if (is('POST', 'datasets', null, 'tables')) return [200, await this.insertTable(parts[1] as string, r.body)];
    if (is('GET', 'datasets', null, 'tables', null))
      return [200, this.getTable(parts[1] as string, parts[3] as string)];
    if (is('DELETE', 'datasets', null, 'tables', null)) {
      await this.deleteTable(parts[1] as string, parts[3] as string);
      return [204];
    }
    if (is('POST', 'queries')) {
      this.concurrentQueries++;
      this.maxConcurrentQueries = Math.max(this.maxConcurrentQueries, this.concurrentQueries);
      try {
        if (this.queryDelayMs > 0) await new Promise((res) => setTimeout(res, this.queryDelayMs));
        return [200, await this.query(r.body)];
      } finally {
        this.concurrentQueries--;
      }
    }
    if (is('GET', 'queries', null)) return [200, await this.queryResults(parts[1] as string, r.query)];
    if (is('POST', 'jobs')) return [200, await this.insertJob(r.body, r.upload)];
    if (is('GET', 'jobs', null)) return [200, this.getJob(parts[1] as string)];
    this.violations.push(`unexpected request ${r.method} ${r.route}`);
    throw new ApiFailure(404, 'notFound', `Not found: ${r.method} ${r.route} (not an API the adapter should call)`);
  }

  private parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const message = `Invalid ${what}: ${issue?.path.join('.')}: ${issue?.message}`;
      this.violations.push(message);
      throw new ApiFailure(400, 'invalid', message);
    }
    return parsed.data;
  }

  // ---- datasets and tables ----

  private insertDataset(body: unknown) {
    const d = this.parse(DatasetInsertSchema, body, 'Dataset');
    const id = d.datasetReference.datasetId;
    if (this.datasets.has(id)) {
      throw new ApiFailure(409, 'duplicate', `Already Exists: Dataset ${this.options.project}:${id}`);
    }
    this.datasets.set(id, {
      location: d.location ?? this.options.defaultLocation,
      description: d.description,
      creationTime: String(Date.now()),
    });
    return this.getDataset(id);
  }

  private getDataset(id: string) {
    const d = this.datasets.get(id);
    if (!d) throw new ApiFailure(404, 'notFound', `Not found: Dataset ${this.options.project}:${id}`);
    return {
      kind: 'bigquery#dataset',
      id: `${this.options.project}:${id}`,
      datasetReference: { datasetId: id, projectId: this.options.project },
      location: d.location,
      description: d.description,
      creationTime: d.creationTime,
      lastModifiedTime: d.creationTime,
      etag: randomUUID(),
    };
  }

  private async insertTable(dataset: string, body: unknown) {
    const t = this.parse(TableInsertSchema, body, 'Table');
    if (!this.datasets.has(dataset)) {
      throw new ApiFailure(404, 'notFound', `Not found: Dataset ${this.options.project}:${dataset}`);
    }
    if (t.tableReference.datasetId !== dataset || t.tableReference.projectId !== this.options.project) {
      this.violations.push(`tables.insert for ${dataset} names ${JSON.stringify(t.tableReference)}`);
      throw new ApiFailure(400, 'invalid', 'Invalid table reference: it does not match the request path');
    }
    const key = `${dataset}.${t.tableReference.tableId}`;
    if (this.tables.has(key)) {
      throw new ApiFailure(409, 'duplicate', `Already Exists: Table ${this.options.project}:${key}`);
    }
    const byName = new Map(t.schema.fields.map((f) => [f.name, f]));
    if (byName.size !== t.schema.fields.length) throw new ApiFailure(400, 'invalid', 'Duplicate column names');
    if (t.timePartitioning) {
      const f = byName.get(t.timePartitioning.field);
      if (!f || (f.type !== 'DATE' && f.type !== 'TIMESTAMP')) {
        throw new ApiFailure(
          400,
          'invalid',
          `The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME: ${t.timePartitioning.field}`,
        );
      }
    }
    for (const c of t.clustering?.fields ?? []) {
      const f = byName.get(c);
      if (!f)
        throw new ApiFailure(400, 'invalid', `The field specified for clustering cannot be found in the schema: ${c}`);
      if (!CLUSTERABLE.has(f.type))
        throw new ApiFailure(400, 'invalid', `Field ${c} of type ${f.type} cannot be clustered`);
    }
    await this.serial.run(() => this.createDuckTable(dataset, t.tableReference.tableId, t.schema.fields));
    this.tables.set(key, {
      dataset,
      table: t.tableReference.tableId,
      fields: t.schema.fields,
      timePartitioning: t.timePartitioning,
      clustering: t.clustering,
      description: t.description,
      expirationTime: t.expirationTime,
      creationTime: String(Date.now()),
    });
    return this.getTable(dataset, t.tableReference.tableId);
  }

  private async createDuckTable(dataset: string, table: string, fields: readonly Field[]): Promise<void> {
    await this.conn.run(`CREATE SCHEMA IF NOT EXISTS ${quote(dataset)}`);
    const cols = fields.map((f) => `${quote(f.name)} ${DUCK_TYPE[f.type]}${f.mode === 'REQUIRED' ? ' NOT NULL' : ''}`);
    await this.conn.run(`CREATE OR REPLACE TABLE ${quote(dataset)}.${quote(table)} (${cols.join(', ')})`);
  }

  private getTable(dataset: string, table: string) {
    const t = this.tables.get(`${dataset}.${table}`);
    if (!t) throw new ApiFailure(404, 'notFound', `Not found: Table ${this.options.project}:${dataset}.${table}`);
    return {
      kind: 'bigquery#table',
      id: `${this.options.project}:${dataset}.${table}`,
      tableReference: { projectId: this.options.project, datasetId: dataset, tableId: table },
      type: 'TABLE',
      location: this.datasets.get(dataset)?.location,
      description: t.description,
      schema: {
        fields: t.fields.map((f) => ({ ...f, type: LEGACY_TYPE[f.type] ?? f.type, mode: f.mode ?? 'NULLABLE' })),
      },
      timePartitioning: t.timePartitioning,
      clustering: t.clustering,
      expirationTime: t.expirationTime,
      creationTime: t.creationTime,
      etag: randomUUID(),
    };
  }

  private async deleteTable(dataset: string, table: string): Promise<void> {
    const key = `${dataset}.${table}`;
    if (!this.tables.has(key)) throw new ApiFailure(404, 'notFound', `Not found: Table ${this.options.project}:${key}`);
    this.tables.delete(key);
    await this.serial.run(() => this.conn.run(`DROP TABLE ${quote(dataset)}.${quote(table)}`));
  }

  // ---- queries ----

  /**
   * jobs.query: waits for the job up to `timeoutMs` (10 s by default), then answers `jobComplete: false` and
   * lets it run on ("How long to wait for the query to complete, in milliseconds, before the request times
   * out and returns [...] the default value is 10 seconds. [...] the call is not guaranteed to wait for the
   * specified timeout": https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query).
   */
  private async query(body: unknown) {
    const q = this.parse(QueryRequestSchema, body, 'QueryRequest');
    const jobId = `job_${randomUUID().replace(/-/g, '')}`;
    const run = this.runJob(q.query, q.queryParameters ?? [], q.location, undefined, jobId);
    const job = await within(run, Math.min(q.timeoutMs ?? DEFAULT_WAIT_MS, MAX_WAIT_MS));
    if (job === null) {
      const location = q.location ?? this.options.defaultLocation;
      const base: JobResult = { jobId, location, statementType: 'SELECT', fields: [], rows: [], query: null, polls: 0 };
      const settled = run.then(
        (done) => this.jobs.set(jobId, done),
        (err: unknown) => {
          const f = err instanceof ApiFailure ? err : new ApiFailure(500, 'backendError', String(err));
          const error = { status: f.status, reason: f.reason, message: f.message, location: f.location };
          this.jobs.set(jobId, { ...base, error });
        },
      );
      this.jobs.set(jobId, { ...base, running: settled });
      return {
        kind: 'bigquery#queryResponse',
        jobReference: { projectId: this.options.project, jobId, location },
        jobComplete: false,
      };
    }
    if (this.slowQueries > 0) {
      this.slowQueries--;
      job.polls = 1;
      return {
        kind: 'bigquery#queryResponse',
        jobReference: { projectId: this.options.project, jobId: job.jobId, location: job.location },
        jobComplete: false,
      };
    }
    return this.resultPage(
      job,
      { ...stringRecord(q.formatOptions), maxResults: q.maxResults },
      'bigquery#queryResponse',
    );
  }

  /**
   * jobs.getQueryResults: waits for a running job up to `timeoutMs` (10 s by default), then answers
   * `jobComplete: false` ("Specifies the maximum amount of time, in milliseconds, that the client is willing
   * to wait for the query to complete. By default, this limit is 10 seconds":
   * https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/getQueryResults).
   */
  private async queryResults(jobId: string, query: Readonly<Record<string, string>>) {
    let job = this.jobs.get(jobId);
    if (!job) throw new ApiFailure(404, 'notFound', `Not found: Job ${this.options.project}:${jobId}`);
    if (job.running) {
      await within(job.running, Math.min(Number(query.timeoutMs ?? DEFAULT_WAIT_MS), MAX_WAIT_MS));
      job = this.jobs.get(jobId) as JobResult;
      if (job.running) {
        return {
          kind: 'bigquery#getQueryResultsResponse',
          jobReference: { projectId: this.options.project, jobId, location: job.location },
          jobComplete: false,
        };
      }
    }
    if (query.location && query.location !== job.location) {
      throw new ApiFailure(404, 'notFound', `Not found: Job ${this.options.project}:${query.location}.${jobId}`);
    }
    if (job.error) throw new ApiFailure(job.error.status, job.error.reason, job.error.message);
    if (job.polls > 0) {
      job.polls--;
      return {
        kind: 'bigquery#getQueryResultsResponse',
        jobReference: { projectId: this.options.project, jobId, location: job.location },
        jobComplete: false,
      };
    }
    return this.resultPage(
      job,
      {
        useInt64Timestamp: query['formatOptions.useInt64Timestamp'],
        maxResults: query.maxResults === undefined ? undefined : Number(query.maxResults),
        pageToken: query.pageToken,
      },
      'bigquery#getQueryResultsResponse',
    );
  }

  private resultPage(
    job: JobResult,
    opts: { useInt64Timestamp?: unknown; maxResults?: number | undefined; pageToken?: string | undefined },
    kind: string,
  ) {
    const start = opts.pageToken ? Number(opts.pageToken) : 0;
    const size = Math.min(opts.maxResults ?? this.options.pageRows, this.options.pageRows);
    const page = job.rows.slice(start, start + size);
    const micros = String(opts.useInt64Timestamp) === 'true';
    const out: Record<string, unknown> = {
      kind,
      jobReference: { projectId: this.options.project, jobId: job.jobId, location: job.location },
      totalRows: String(job.rows.length),
      totalBytesProcessed: String(job.bytesProcessed ?? 0),
      jobComplete: true,
      cacheHit: false,
    };
    if (job.fields.length > 0) out.schema = { fields: job.fields };
    if (page.length > 0) {
      out.rows = page.map((row) => ({
        f: row.map((v, i) => ({
          v: v !== null && job.fields[i]?.type === 'TIMESTAMP' && !micros ? String(Number(BigInt(v)) / 1e6) : v,
        })),
      }));
    }
    if (start + size < job.rows.length) out.pageToken = String(start + size);
    if (job.dmlAffected !== undefined) out.numDmlAffectedRows = String(job.dmlAffected);
    return out;
  }

  private async insertJob(body: unknown, upload?: string) {
    const j = this.parse(JobInsertSchema, body, 'Job');
    if (j.jobReference.projectId !== this.options.project) {
      throw new ApiFailure(400, 'invalid', `Job reference project ${j.jobReference.projectId} is not the request's`);
    }
    if (this.jobs.has(j.jobReference.jobId)) {
      throw new ApiFailure(409, 'duplicate', `Already Exists: Job ${this.options.project}:${j.jobReference.jobId}`);
    }
    const { query: q, load, copy } = j.configuration;
    if (j.configuration.dryRun) {
      if (!q) throw new ApiFailure(400, 'invalid', 'Invalid Job: the double dry-runs query jobs only');
      return this.dryRunJob(j.jobReference, q);
    }
    if (load && upload === undefined) {
      // The adapter loads from memory: a load without uploaded data would read Cloud Storage URIs.
      throw new ApiFailure(400, 'invalid', 'Invalid Job: a load job needs sourceUris or uploaded data');
    }
    if (!load && upload !== undefined) throw new ApiFailure(400, 'invalid', 'Invalid Job: only a load job takes data');
    const location = j.jobReference.location ?? this.options.defaultLocation;
    const jobId = j.jobReference.jobId;
    // Set before the job begins, which may be at once (a load has nothing to prepare).
    const started = new Promise<null>((resolve) => this.starting.set(jobId, () => resolve(null)));
    const run = load
      ? this.runLoad(jobId, location, load, upload ?? '')
      : copy
        ? this.runCopy(jobId, location, copy)
        : this.runJob(
            (q as NonNullable<typeof q>).query,
            q?.queryParameters ?? [],
            j.jobReference.location,
            q?.destinationTable
              ? { ...q.destinationTable, write: q.writeDisposition, create: q.createDisposition }
              : undefined,
            jobId,
          );
    const configuration = load ? { load, jobType: 'LOAD' } : copy ? { copy, jobType: 'COPY' } : undefined;
    const settled = run
      .catch((err: unknown) => {
        if (!(err instanceof ApiFailure) || (err.status !== 400 && err.status !== 403)) throw err;
        // A job that ran and failed is created all the same; its status says why (jobs.get answers 200).
        const failed: JobResult = {
          jobId,
          location,
          statementType: 'SELECT',
          fields: [],
          rows: [],
          query: q,
          polls: 0,
          error: { status: err.status, reason: err.reason, message: err.message, location: err.location },
        };
        return failed;
      })
      .then((job) => {
        if (configuration) job.configuration = configuration;
        this.jobs.set(jobId, job);
        return job;
      });
    // jobs.insert answers as soon as the job is created, with `status.state` PENDING or RUNNING; the client
    // polls jobs.get (or jobs.getQueryResults) until DONE ("Starts a new asynchronous job":
    // https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/insert; JobStatus.state "Running state of
    // the job. Valid states include 'PENDING', 'RUNNING', and 'DONE'":
    // https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobStatus). A job refused by its checks
    // before it starts answers at once, as before.
    const first = await Promise.race([settled, started]).finally(() => this.starting.delete(jobId));
    if (first !== null) return this.jobResource(first);
    // It may have ended in the meantime.
    const ended = this.jobs.get(jobId);
    if (ended) return this.jobResource(ended);
    const placeholder: JobResult = {
      jobId,
      location,
      statementType: load ? 'LOAD' : copy ? 'COPY' : 'SELECT',
      fields: [],
      rows: [],
      query: q,
      polls: 0,
      running: settled,
      ...(configuration ? { configuration } : {}),
    };
    this.jobs.set(jobId, placeholder);
    // A job that fails for a reason the double does not model still ends, as BigQuery's backend error does.
    settled.catch((err: unknown) => {
      const message = `the double failed: ${err instanceof Error ? err.message : String(err)}`;
      this.violations.push(message);
      this.jobs.set(jobId, {
        ...placeholder,
        running: undefined,
        error: { status: 500, reason: 'backendError', message },
      });
    });
    return this.jobResource(placeholder);
  }

  /** Resolves when the job has settled (at once for a job that is not running). */
  async settled(jobId: string): Promise<void> {
    await this.jobs.get(jobId)?.running?.catch(() => undefined);
  }

  // ---- load and copy jobs ----

  /** A table reference's table and partition: `t$20211019` is day 2021-10-19 of `t`. */
  private decorated(ref: { projectId: string; datasetId: string; tableId: string }) {
    const [table, day] = ref.tableId.split('$') as [string, string | undefined];
    const key = `${ref.datasetId}.${table}`;
    const state = this.tables.get(key);
    if (!state) throw new ApiFailure(404, 'notFound', `Not found: Table ${this.options.project}:${key}`);
    const partition = day ? `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)}` : undefined;
    if (partition !== undefined) {
      if (!state.timePartitioning) {
        throw new ApiFailure(400, 'invalid', `Cannot use a partition decorator on ${key}: it is not partitioned`);
      }
      if (Number.isNaN(Date.parse(`${partition}T00:00:00Z`))) {
        throw new ApiFailure(400, 'invalid', `Invalid partition decorator: ${ref.tableId}`);
      }
    }
    return { key, state, partition, target: `${quote(state.dataset)}.${quote(state.table)}` };
  }

  /**
   * Counts a load or copy job against its destination's daily table operations, failed jobs too: "Load jobs,
   * including failed load jobs, count toward the limit on the number of table operations per day for the
   * destination table" (1,500 a day; https://cloud.google.com/bigquery/quotas, "Load jobs"; "Copy jobs count
   * toward these limits whether they succeed or fail", "Copy jobs"). Past it, BigQuery fails the job with
   * quotaExceeded (https://cloud.google.com/bigquery/docs/troubleshoot-quotas).
   */
  private countTableOperation(key: string): void {
    const day = this.day();
    const counter = `${day} ${key}`;
    const used = (this.tableOperations.get(counter) ?? 0) + 1;
    this.tableOperations.set(counter, used);
    if (used > this.quota.tableOperationsPerDay) {
      throw new ApiFailure(
        403,
        'quotaExceeded',
        'Quota exceeded: Your table exceeded quota for imports or query appends per table. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas',
        'load_job_per_table.long',
      );
    }
  }

  /**
   * A load job of newline-delimited JSON rows. With a partition decorator and WRITE_TRUNCATE it replaces
   * exactly that day, atomically ("Creation, truncation and append actions occur as one atomic update upon
   * job completion": JobConfigurationLoad.writeDisposition, https://cloud.google.com/bigquery/docs/reference/rest/v2/Job),
   * and a row of another day fails the whole job ("the partition ID specified in the decorator must match the
   * data being written": https://cloud.google.com/bigquery/docs/load-data-partitioned-tables).
   */
  private async runLoad(
    jobId: string,
    location: string,
    load: z.infer<typeof LoadJobSchema>,
    data: string,
  ): Promise<JobResult> {
    const { key, state, partition, target } = this.decorated(load.destinationTable);
    if (load.createDisposition !== 'CREATE_NEVER') {
      this.violations.push(`load into ${key} without createDisposition CREATE_NEVER`);
    }
    return this.recorded(jobId, 'load', [key], async () => {
      this.countTableOperation(key);
      // "For normal tables, WRITE_TRUNCATE will always overwrite the schema" (JobConfigurationLoad.schemaUpdateOptions):
      // the adapter must send the table's own schema, which the double then requires.
      const mismatch = schemaMismatch(state.fields, load.schema.fields);
      if (mismatch)
        throw new ApiFailure(
          400,
          'invalid',
          `Provided Schema does not match Table ${this.options.project}:${key}. ${mismatch}`,
        );
      const rows = parseNdjson(data, state.fields);
      const pcol = state.timePartitioning?.field;
      if (partition !== undefined && pcol) {
        const stray = rows.find((r) => r[pcol] !== partition);
        if (stray) {
          throw new ApiFailure(
            400,
            'invalid',
            `Some rows belong to different partitions rather than destination partition ${partition.replaceAll('-', '')}`,
          );
        }
      }
      await this.contention.pause('load');
      await this.serial.run(() =>
        this.replaceRows(target, state, load.writeDisposition ?? 'WRITE_APPEND', partition, rows),
      );
      if ((load.writeDisposition ?? 'WRITE_APPEND') === 'WRITE_TRUNCATE') this.contention.committedWrite(key);
      const job: JobResult = { jobId, location, statementType: 'LOAD', fields: [], rows: [], query: null, polls: 0 };
      job.outputRows = rows.length;
      this.jobs.set(jobId, job);
      return job;
    });
  }

  /**
   * A copy job: with decorators on both sides and WRITE_TRUNCATE it replaces one day of the destination with
   * one day of the source ("Use partition decorators to copy tables"; "the partition specifications for the
   * source and destination tables must match": https://cloud.google.com/bigquery/docs/managing-partitioned-tables).
   */
  private async runCopy(jobId: string, location: string, copy: z.infer<typeof CopyJobSchema>): Promise<JobResult> {
    const source = this.decorated(copy.sourceTable);
    const dest = this.decorated(copy.destinationTable);
    return this.recorded(jobId, 'copy', [source.key, dest.key], async () => {
      this.countTableOperation(dest.key);
      const mismatch = schemaMismatch(dest.state.fields, source.state.fields);
      if (mismatch)
        throw new ApiFailure(400, 'invalid', `Schema of ${source.key} does not match ${dest.key}: ${mismatch}`);
      if ((source.partition === undefined) !== (dest.partition === undefined)) {
        throw new ApiFailure(
          400,
          'invalid',
          'Partition decorators must be given on both the source and the destination',
        );
      }
      await this.contention.pause('copy');
      const pcol = source.state.timePartitioning?.field;
      await this.serial.run(async () => {
        const where =
          source.partition !== undefined && pcol ? ` WHERE ${quote(pcol)} = DATE ${sqlString(source.partition)}` : '';
        const reader = await this.conn.runAndReadAll(`SELECT * FROM ${source.target}${where}`);
        const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
        const destCol = dest.state.timePartitioning?.field;
        const moved =
          dest.partition !== undefined && destCol ? rows.map((r) => ({ ...r, [destCol]: dest.partition })) : rows;
        if (source.partition !== dest.partition && dest.partition !== undefined) {
          throw new ApiFailure(
            400,
            'invalid',
            `Some rows belong to different partitions rather than destination partition ${dest.partition.replaceAll('-', '')}`,
          );
        }
        await this.replaceRows(dest.target, dest.state, copy.writeDisposition ?? 'WRITE_EMPTY', dest.partition, moved);
      });
      if (copy.writeDisposition === 'WRITE_TRUNCATE') this.contention.committedWrite(dest.key);
      const job: JobResult = { jobId, location, statementType: 'COPY', fields: [], rows: [], query: null, polls: 0 };
      this.jobs.set(jobId, job);
      return job;
    });
  }

  /** Runs a job with its entry in the job log: start, end, and the error it failed with. */
  private async recorded<T>(id: string, kind: JobKind, tables: string[], run: () => Promise<T>): Promise<T> {
    const record: JobRecord = { id, kind, tables, seq: this.jobLog.length + 1, start: this.now() };
    this.jobLog.push(record);
    this.starting.get(id)?.();
    try {
      return await run();
    } catch (err) {
      if (err instanceof ApiFailure) record.error = { reason: err.reason, message: err.message };
      throw err;
    } finally {
      record.end = this.now();
    }
  }

  /** Writes rows as a disposition says, in one DuckDB transaction: all of it lands, or none. */
  private async replaceRows(
    target: string,
    state: TableState,
    disposition: string,
    partition: string | undefined,
    rows: readonly Record<string, unknown>[],
  ): Promise<void> {
    const pcol = state.timePartitioning?.field;
    const scope = partition !== undefined && pcol ? ` WHERE ${quote(pcol)} = DATE ${sqlString(partition)}` : '';
    if (disposition === 'WRITE_EMPTY') {
      const reader = await this.conn.runAndReadAll(`SELECT COUNT(*) FROM ${target}${scope}`);
      if (Number(reader.getRowsJS()[0]?.[0] ?? 0) > 0) {
        throw new ApiFailure(
          400,
          'duplicate',
          `Already Exists: Table ${this.options.project}:${state.dataset}.${state.table}`,
        );
      }
    }
    await this.conn.run('BEGIN TRANSACTION');
    try {
      if (disposition === 'WRITE_TRUNCATE') await this.conn.run(`DELETE FROM ${target}${scope}`);
      const names = state.fields.map((f) => quote(f.name)).join(', ');
      for (let i = 0; i < rows.length; i += 250) {
        const values = rows
          .slice(i, i + 250)
          .map((row) => `(${state.fields.map((f) => duckLiteral(f.type, jsonCell(row[f.name]))).join(', ')})`);
        await this.conn.run(`INSERT INTO ${target} (${names}) VALUES ${values.join(', ')}`);
      }
      await this.conn.run('COMMIT');
    } catch (err) {
      await this.conn.run('ROLLBACK');
      if (err instanceof ApiFailure) throw err;
      throw new ApiFailure(
        400,
        'invalid',
        `Error while reading data, error message: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      );
    }
  }

  private getJob(jobId: string) {
    const job = this.jobs.get(jobId);
    if (!job) throw new ApiFailure(404, 'notFound', `Not found: Job ${this.options.project}:${jobId}`);
    return this.jobResource(job);
  }

  private jobResource(job: JobResult) {
    const error = job.error
      ? {
          reason: job.error.reason,
          message: job.error.message,
          ...(job.error.location ? { location: job.error.location } : {}),
        }
      : undefined;
    return {
      kind: 'bigquery#job',
      id: `${this.options.project}:${job.location}.${job.jobId}`,
      jobReference: { projectId: this.options.project, jobId: job.jobId, location: job.location },
      configuration: job.configuration ?? { query: job.query, jobType: 'QUERY' },
      status: job.running
        ? { state: 'RUNNING' }
        : error
          ? { state: 'DONE', errorResult: error, errors: [error] }
          : { state: 'DONE' },
      statistics: {
        creationTime: String(Date.now()),
        ...(job.running
          ? {}
          : job.outputRows !== undefined
            ? { load: { outputRows: String(job.outputRows), inputFiles: '1' } }
            : {
                query: {
                  statementType: job.statementType,
                  totalBytesProcessed: String(job.bytesProcessed ?? 0),
                  totalBytesBilled: String(job.bytesBilled ?? 0),
                },
              }),
      },
    };
  }

  /** A job's query parameters, checked: scalars by value, ARRAY<STRUCT> ones as the DuckDB tables to hold them. */
  private jobParameters(parameters: readonly z.infer<typeof QueryParameterSchema>[]) {
    const scalars: Record<string, ScalarParameter> = {};
    const arrays: Record<
      string,
      { table: string; structTypes: NonNullable<ParamType['structTypes']>; rows: ParamValue[] }
    > = {};
    for (const p of parameters) {
      if (scalars[p.name] || arrays[p.name])
        throw new ApiFailure(400, 'invalidQuery', `Duplicate query parameter ${p.name}`);
      const t = p.parameterType;
      if (t.type === 'ARRAY') {
        const structTypes = t.arrayType?.type === 'STRUCT' ? t.arrayType.structTypes : undefined;
        if (!structTypes || structTypes.some((s) => !s.name || s.type.type === 'ARRAY' || s.type.type === 'STRUCT')) {
          throw new ApiFailure(
            400,
            'invalidQuery',
            `the double takes ARRAY<STRUCT<scalar fields>> parameters only: ${p.name}`,
          );
        }
        arrays[p.name] = {
          table: `__param_${p.name}_${++this.paramTables}`,
          structTypes,
          rows: p.parameterValue.arrayValues ?? [],
        };
      } else if (t.type === 'STRUCT') {
        throw new ApiFailure(400, 'invalidQuery', `the double takes no STRUCT parameter: ${p.name}`);
      } else {
        scalars[p.name] = { type: t.type, value: checkScalar(p.name, t.type, p.parameterValue) };
      }
    }
    return { scalars, arrays };
  }

  /**
   * Parses a query (one statement or a script) with sqlglot's BigQuery dialect and checks it as BigQuery would
   * before running anything: syntax, parameters, the tables it names (in the job's location). A dry run skips
   * what only limits the double's execution (the statement kinds DuckDB runs here), and the table a CREATE
   * makes need not exist.
   */
  private async checkQuery(
    sql: string,
    params: ReturnType<BigQueryDouble['jobParameters']>,
    where: string,
    dryRun: boolean,
  ): Promise<StatementInfo[]> {
    const { scalars, arrays } = params;
    const partitions: Record<string, string> = {};
    for (const [key, t] of this.tables) if (t.timePartitioning) partitions[key] = t.timePartitioning.field;
    let infos: StatementInfo[];
    try {
      infos = await this.glot.prepare({
        sql,
        project: this.options.project,
        tables: partitions,
        transpile: !dryRun,
        scalars,
        arrays: Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, v.table])),
      });
    } catch (err) {
      const message = err instanceof SqlglotError ? err.message : String(err);
      const notFound = /Query parameter '(\w+)' not found/.exec(message);
      if (notFound) throw new ApiFailure(400, 'invalidQuery', `Query parameter '${notFound[1]}' not found`);
      if (/^(ParseError|TokenError)/.test(message)) {
        this.violations.push(`sqlglot (BigQuery dialect) cannot parse: ${message}\n${sql}`);
        throw new ApiFailure(400, 'invalidQuery', `Syntax error: ${message}`);
      }
      this.violations.push(`the double could not rewrite for DuckDB: ${message}\n${sql}`);
      throw new ApiFailure(400, 'invalidQuery', `BigQuery double: cannot run this on DuckDB: ${message}`);
    }
    for (const info of infos) this.statements.push({ sql, info });
    const problems = infos.flatMap((i) => i.problems);
    if (problems.length > 0) {
      this.violations.push(`${problems.join('; ')}\n${sql}`);
      throw new ApiFailure(400, 'invalidQuery', `BigQuery double: ${problems.join('; ')}`);
    }
    const used = new Set(infos.flatMap((i) => i.parameters));
    for (const name of [...Object.keys(scalars), ...Object.keys(arrays)]) {
      if (!used.has(name)) this.violations.push(`parameter @${name} is sent but not used by: ${sql}`);
    }
    for (const info of infos) {
      if (!dryRun && !['select', 'insert', 'delete', 'begin', 'commit', 'rollback'].includes(info.kind)) {
        throw new ApiFailure(400, 'invalidQuery', `BigQuery double: ${info.kind} statements are not supported here`);
      }
      for (const ref of info.tables) {
        const key = `${ref.dataset}.${ref.table}`;
        const c = info.creates;
        if (dryRun && c && c.dataset === ref.dataset && c.table === ref.table) continue;
        const dataset = this.datasets.get(ref.dataset ?? '');
        if (!this.tables.has(key) || !dataset) {
          throw new ApiFailure(
            404,
            'notFound',
            `Not found: Table ${ref.project}:${key} was not found in location ${where}`,
          );
        }
        if (dataset.location !== where) {
          throw new ApiFailure(
            404,
            'notFound',
            `Not found: Dataset ${ref.project}:${ref.dataset} was not found in location ${where}`,
          );
        }
      }
    }
    return infos;
  }

  /**
   * A dry run (JobConfiguration.dryRun): the query is checked as it would be for a run, and then nothing runs
   * and no job is kept; a valid query is answered with a mostly empty job whose statistics give its type,
   * an invalid one with the error a run would get
   * (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfiguration). The type is
   * JobStatistics2.statementType: SELECT, INSERT, UPDATE, DELETE, MERGE, CREATE_TABLE,
   * CREATE_TABLE_AS_SELECT, CREATE_VIEW, DROP_TABLE, ALTER_TABLE, ...; a script of several statements is
   * SCRIPT as a whole (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobStatistics2). The
   * double does not estimate the bytes a dry run reports: 0.
   */
  private async dryRunJob(
    reference: { projectId: string; location?: string | undefined },
    query: z.infer<typeof QueryJobSchema>,
  ) {
    const location = reference.location ?? this.options.defaultLocation;
    const infos = await this.checkQuery(query.query, this.jobParameters(query.queryParameters ?? []), location, true);
    const statementType = infos.length === 1 ? (infos[0] as StatementInfo).statementType : 'SCRIPT';
    return {
      kind: 'bigquery#job',
      jobReference: { projectId: this.options.project, location },
      configuration: { query, dryRun: true, jobType: 'QUERY' },
      status: { state: 'DONE' },
      statistics: {
        creationTime: String(Date.now()),
        totalBytesProcessed: '0',
        query: { statementType, totalBytesProcessed: '0', totalBytesBilled: '0' },
      },
    };
  }

  /**
   * Checks a query and its parameters, then runs it on DuckDB: one statement or a script, with BEGIN
   * TRANSACTION ... COMMIT TRANSACTION holding or rolling back together, as BigQuery does.
   */
  private async runJob(
    sql: string,
    parameters: readonly z.infer<typeof QueryParameterSchema>[],
    location: string | undefined,
    destination:
      | {
          projectId: string;
          datasetId: string;
          tableId: string;
          write?: string | undefined;
          create?: string | undefined;
        }
      | undefined,
    jobId = `job_${randomUUID().replace(/-/g, '')}`,
  ): Promise<JobResult> {
    const where = location ?? this.options.defaultLocation;
    const params = this.jobParameters(parameters);
    const { arrays } = params;
    const infos = await this.checkQuery(sql, params, where, false);
    if (destination) {
      const key = `${destination.datasetId}.${destination.tableId}`;
      if (!this.tables.has(key) && destination.create === 'CREATE_NEVER') {
        throw new ApiFailure(404, 'notFound', `Not found: Table ${destination.projectId}:${key}`);
      }
      if (infos.length !== 1 || infos[0]?.kind !== 'select') {
        throw new ApiFailure(400, 'invalidQuery', 'A destination table needs a single SELECT');
      }
    }
    const job = await this.contend(jobId, infos, destination !== undefined, () =>
      this.serial.run(() => this.execute(jobId, where, infos, arrays, destination)),
    );
    job.query = { query: sql };
    this.jobs.set(job.jobId, job);
    return job;
  }

  /**
   * Runs a checked job under BigQuery's rules for jobs that write the same table (bigqueryContention.ts):
   * its modeled latency first, with a transaction's locks taken statement by statement, or a mutating DML
   * statement's place in its table's queue; then `execute` on DuckDB. The job log records it either way.
   */
  private async contend(
    jobId: string,
    infos: readonly StatementInfo[],
    hasDestination: boolean,
    execute: () => Promise<JobResult>,
  ): Promise<JobResult> {
    const statements: ModeledStatement[] = infos.map((i) => ({
      kind: i.kind,
      target: i.target ? `${i.target.dataset}.${i.target.table}` : undefined,
    }));
    const first = statements[0];
    const kind: JobKind =
      infos.length > 1 ? 'script' : first && first.kind !== 'select' && !hasDestination ? 'dml' : 'query';
    const record: JobRecord = {
      id: jobId,
      kind,
      tables: [...new Set(infos.flatMap((i) => i.tables.map((t) => `${t.dataset}.${t.table}`)))],
      seq: this.jobLog.length + 1,
      start: this.now(),
    };
    this.jobLog.push(record);
    this.starting.get(jobId)?.();
    let end: ((ok: boolean) => void) | undefined;
    try {
      if (kind === 'script') end = await this.contention.script(record, statements);
      else if (kind === 'dml' && first?.target && MUTATING_KINDS.has(first.kind))
        end = await this.contention.dml(first.target);
      else await this.contention.pause(kind);
      const job = await execute();
      record.bytesBilled = job.bytesBilled ?? 0;
      end?.(true);
      return job;
    } catch (err) {
      end?.(false);
      const failure = err instanceof ContentionError ? new ApiFailure(err.status, err.reason, err.message) : err;
      if (failure instanceof ApiFailure) record.error = { reason: failure.reason, message: failure.message };
      throw failure;
    } finally {
      record.end = this.now();
    }
  }

  private async execute(
    jobId: string,
    location: string,
    infos: readonly StatementInfo[],
    arrays: Record<string, { table: string; structTypes: NonNullable<ParamType['structTypes']>; rows: ParamValue[] }>,
    destination: { datasetId: string; tableId: string; write?: string | undefined } | undefined,
  ): Promise<JobResult> {
    const job: JobResult = { jobId, location, statementType: 'SCRIPT', fields: [], rows: [], query: null, polls: 0 };
    for (const a of Object.values(arrays)) await this.loadParameterTable(a.table, a.structTypes, a.rows);
    let inTransaction = false;
    try {
      for (const [n, info] of infos.entries()) {
        const sql = info.duckdb as string;
        try {
          if (info.kind === 'begin') {
            if (inTransaction) throw new Error('Nested transactions are not supported');
            inTransaction = true;
          }
          if ((info.kind === 'commit' || info.kind === 'rollback') && !inTransaction) {
            throw new Error(`${info.kind.toUpperCase()} TRANSACTION without BEGIN TRANSACTION`);
          }
          if (destination && info.kind === 'select') {
            await this.writeDestination(destination, sql);
            continue;
          }
          await this.bill(job, info.scans ?? []);
          const reader = await this.conn.runAndReadAll(sql);
          if (info.kind === 'commit' || info.kind === 'rollback') inTransaction = false;
          if (info.kind === 'select') Object.assign(job, readResult(reader), { statementType: 'SELECT' });
          else if (info.kind === 'insert' || info.kind === 'delete') {
            const affected = Number((reader.getRowsJS()[0]?.[0] as bigint | number | undefined) ?? 0);
            Object.assign(job, { fields: [], rows: [], dmlAffected: infos.length === 1 ? affected : undefined });
            job.statementType = infos.length === 1 ? info.kind.toUpperCase() : 'SCRIPT';
          }
        } catch (err) {
          const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
          throw new ApiFailure(400, 'invalidQuery', `Query error: ${message} at [statement ${n + 1}]`);
        }
      }
    } finally {
      // A transaction the script left open is rolled back, as BigQuery does when a script ends or fails.
      if (inTransaction) await this.conn.run('ROLLBACK');
      for (const a of Object.values(arrays)) await this.conn.run(`DROP TABLE IF EXISTS ${quote(a.table)}`);
    }
    return job;
  }

  /**
   * Adds what one statement processes and bills to its job, measured on the tables as they are when it
   * starts. BigQuery counts the referenced columns of the partitions a statement scans, and for a DELETE
   * also every column of the partitions it deletes from ("q' + t'":
   * https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax, "On-demand query size
   * calculation"). A table read twice counts once, over the union of what each read needs.
   */
  private async bill(job: JobResult, scans: readonly TableScan[]): Promise<void> {
    const byTable = new Map<
      string,
      { fields: Field[]; where: string[] | null; whole: string[] | null; all: boolean }
    >();
    for (const scan of scans) {
      const state = this.tables.get(`${scan.dataset}.${scan.table}`);
      if (!state) continue;
      const key = `${scan.dataset}.${scan.table}`;
      const seen = byTable.get(key) ?? { fields: [], where: [], whole: [], all: false };
      const wanted = scan.columns === null ? null : new Set(scan.columns);
      for (const f of state.fields as Field[]) {
        if ((wanted === null || wanted.has(f.name)) && !seen.fields.includes(f)) seen.fields.push(f);
      }
      seen.where = scan.where === null || seen.where === null ? null : [...seen.where, scan.where];
      if (scan.whole) seen.whole = scan.where === null || seen.whole === null ? null : [...seen.whole, scan.where];
      seen.all ||= scan.whole;
      byTable.set(key, seen);
    }
    const perTable: number[] = [];
    for (const [key, t] of byTable) {
      const state = this.tables.get(key) as TableState;
      const from = `${quote(state.dataset)}.${quote(state.table)}`;
      const sum = (fields: readonly Field[], where: string[] | null) =>
        `(SELECT COALESCE(SUM(${fields.length > 0 ? fields.map(logicalBytes).join(' + ') : '0'}), 0) FROM ${from}${
          where === null ? '' : ` WHERE ${where.join(' OR ')}`
        })`;
      const parts = [sum(t.fields, t.where)];
      if (t.all) parts.push(sum(state.fields as Field[], t.whole));
      const reader = await this.conn.runAndReadAll(`SELECT CAST(${parts.join(' + ')} AS BIGINT)`);
      perTable.push(Number(reader.getRowsJS()[0]?.[0] ?? 0));
    }
    job.bytesProcessed = (job.bytesProcessed ?? 0) + perTable.reduce((a, b) => a + b, 0);
    job.bytesBilled = (job.bytesBilled ?? 0) + billedBytes(perTable);
  }

  private async loadParameterTable(
    table: string,
    structTypes: NonNullable<ParamType['structTypes']>,
    rows: readonly ParamValue[],
  ): Promise<void> {
    const cols = structTypes.map((s) => `${quote(s.name as string)} ${DUCK_TYPE[s.type.type] ?? 'VARCHAR'}`);
    await this.conn.run(`CREATE TEMP TABLE ${quote(table)} (${cols.join(', ')})`);
    for (let i = 0; i < rows.length; i += 250) {
      const values = rows.slice(i, i + 250).map((row, k) => {
        const fields = row.structValues;
        if (!fields)
          throw new ApiFailure(400, 'invalidQuery', `Array element ${i + k} of a STRUCT array has no structValues`);
        const extra = Object.keys(fields).filter((f) => !structTypes.some((s) => s.name === f));
        if (extra.length > 0)
          throw new ApiFailure(400, 'invalidQuery', `Struct value has fields not in its type: ${extra.join(', ')}`);
        return `(${structTypes
          .map((s) => duckLiteral(s.type.type, checkScalar(s.name as string, s.type.type, fields[s.name as string])))
          .join(', ')})`;
      });
      if (values.length > 0) await this.conn.run(`INSERT INTO ${quote(table)} VALUES ${values.join(', ')}`);
    }
  }

  /** A query job with a destination: WRITE_TRUNCATE replaces the table's rows and schema with the result's. */
  private async writeDestination(
    destination: { datasetId: string; tableId: string; write?: string | undefined },
    sql: string,
  ) {
    const key = `${destination.datasetId}.${destination.tableId}`;
    const target = `${quote(destination.datasetId)}.${quote(destination.tableId)}`;
    if (destination.write !== 'WRITE_TRUNCATE') {
      throw new Error(`the double supports WRITE_TRUNCATE destinations only, not ${destination.write}`);
    }
    await this.conn.run(`CREATE OR REPLACE TABLE ${target} AS ${sql}`);
    const reader = await this.conn.runAndReadAll(`SELECT * FROM ${target} LIMIT 0`);
    const state = this.tables.get(key);
    const fields: Field[] = reader.columnNames().map((name, i) => ({
      name,
      type: resultType(reader.columnTypes()[i]?.typeId ?? DuckDBTypeId.VARCHAR) as Field['type'],
      mode: 'NULLABLE',
    }));
    if (state) state.fields = fields;
    else {
      this.tables.set(key, {
        dataset: destination.datasetId,
        table: destination.tableId,
        fields,
        creationTime: String(Date.now()),
      });
    }
  }
}

/** A DuckDB result as the API's schema and `f`/`v` cells (every value a string; timestamps in micros). */
function readResult(reader: Awaited<ReturnType<DuckDBConnection['runAndReadAll']>>) {
  const types = reader.columnTypes().map((t) => t.typeId);
  const fields = reader.columnNames().map((name, i) => ({
    name,
    type: resultType(types[i] ?? DuckDBTypeId.VARCHAR),
    mode: 'NULLABLE',
  }));
  const json = reader.getRowsJson() as unknown[][];
  const raw = reader.getRows();
  const rows = json.map((row, r) =>
    row.map((v, i): string | null => {
      if (v === null || v === undefined) return null;
      if (fields[i]?.type === 'TIMESTAMP') {
        const cell = raw[r]?.[i] as { micros: bigint } | undefined;
        return cell ? String(cell.micros) : null;
      }
      if (fields[i]?.type === 'FLOAT') {
        const n = Number(v);
        return Number.isNaN(n) ? 'NaN' : Number.isFinite(n) ? String(n) : n > 0 ? 'Infinity' : '-Infinity';
      }
      return String(v);
    }),
  );
  return { fields, rows };
}

function faultError(f: Fault): ApiFailure {
  return new ApiFailure(f.status, f.reason, f.message ?? `${f.reason}: injected by the test`);
}

/** The parts of a multipart/related body, each without its headers; null when it is not one. */
function multipartParts(body: string, contentType: string | undefined): string[] | null {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType ?? '')?.[1];
  if (!contentType?.startsWith('multipart/related') || !boundary) return null;
  const parts: string[] = [];
  for (const raw of body.split(`--${boundary}`).slice(1)) {
    if (raw.startsWith('--')) break;
    const at = raw.indexOf('\r\n\r\n');
    if (at < 0) return null;
    parts.push(raw.slice(at + 4).replace(/\r\n$/, ''));
  }
  return parts;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function stringRecord(o: object | undefined): Record<string, unknown> {
  return { ...(o ?? {}) };
}
