// The embedded warehouse: one DuckDB file, one connection, writes serialized in this process.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBDateValue,
  DuckDBInstance,
  type DuckDBPreparedStatement,
  type DuckDBResultReader,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
  type DuckDBValueConverter,
  type Json,
  JsonDuckDBValueConverter,
  StatementType,
} from '@duckdb/node-api';
import { ProcessingError, WarehouseLockedError } from '../../errors.js';
import type { ResultValue, SqlConsole, SqlOutcome, Warehouse, WarehouseChange } from '../../ports/warehouse.js';
import {
  type ColumnType,
  qualifiedName,
  type Row,
  type SqlValue,
  sortByKey,
  type TableSchema,
} from '../../schema/table.js';
import { DUCKDB_DIALECT } from '../../sql/dialect.js';
import { exactDecimal, exactInteger, isoInstant } from '../resultValues.js';

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

/**
 * BigQuery's `@name` parameters become DuckDB's `$name`, and the names used are returned (DuckDB refuses a
 * bound parameter the statement does not use). Only SQL itself is rewritten: `'...'` literals (with `''`,
 * and `\'` in `E'...'`), `$tag$...$tag$` literals, `"..."` identifiers, `--` and (nested) `/* *\/` comments
 * are copied as they are, so `SELECT 'user@example.com'` stays what the user wrote. `@@name` (a BigQuery
 * system variable) is not a parameter.
 */
export function rewriteParameters(sql: string): { sql: string; names: Set<string> } {
  const names = new Set<string>();
  let out = '';
  let i = 0;
  const n = sql.length;
  /** Copies from i up to (not including) end. */
  const copyTo = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    const prev = i > 0 ? (sql[i - 1] as string) : '';
    if (c === "'") {
      const escapes = (prev === 'E' || prev === 'e') && !IDENT_PART.test(sql[i - 2] ?? '');
      let j = i + 1;
      while (j < n) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      copyTo(Math.min(j + 1, n));
    } else if (c === '"') {
      let j = i + 1;
      while (j < n && !(sql[j] === '"' && sql[j + 1] !== '"')) j += sql[j] === '"' ? 2 : 1;
      copyTo(Math.min(j + 1, n));
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      copyTo(end < 0 ? n : end);
    } else if (c === '/' && next === '*') {
      let depth = 0;
      let j = i;
      while (j < n) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
          if (depth === 0) break;
        } else j++;
      }
      copyTo(Math.min(j, n));
    } else if (c === '$' && !IDENT_PART.test(prev)) {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))?.[0];
      const end = tag ? sql.indexOf(tag, i + tag.length) : -1;
      copyTo(tag ? (end < 0 ? n : end + tag.length) : i + 1);
    } else if (c === '@' && next === '@') {
      let j = i + 2;
      while (j < n && IDENT_PART.test(sql[j] as string)) j++;
      copyTo(j);
    } else if (c === '@' && next !== undefined && IDENT_START.test(next) && !IDENT_PART.test(prev)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql[j] as string)) j++;
      const name = sql.slice(i + 1, j);
      names.add(name);
      out += `$${name}`;
      i = j;
    } else {
      copyTo(i + 1);
    }
  }
  return { sql: out, names };
}

const namesOf = new Map<string, Set<string>>();

/** The parameters a statement uses, remembered: a backfill asks the same few statements for every date. */
function parameterNames(sql: string): Set<string> {
  let names = namesOf.get(sql);
  if (!names) {
    if (namesOf.size >= 512) namesOf.clear();
    names = rewriteParameters(sql).names;
    namesOf.set(sql, names);
  }
  return names;
}

/** BigQuery's `@name` parameters become DuckDB's `$name` (see rewriteParameters). */
export function toDuckDbSql(sql: string): string {
  return rewriteParameters(sql).sql;
}

/**
 * Runs `body` between BEGIN and COMMIT, and ROLLBACK when anything fails. When COMMIT itself fails (a full
 * disk), DuckDB has already ended the transaction and the ROLLBACK fails with "cannot rollback - no
 * transaction is active": that must not replace the reason. The original error is thrown, the rollback's
 * error attached to it as `rollbackError`.
 */
export async function inTransaction(exec: (sql: string) => Promise<unknown>, body: () => Promise<void>): Promise<void> {
  await exec('BEGIN TRANSACTION');
  try {
    await body();
    await exec('COMMIT');
  } catch (err) {
    try {
      await exec('ROLLBACK');
    } catch (rollbackErr) {
      if (err instanceof Error) Object.assign(err, { rollbackError: rollbackErr });
    }
    throw err;
  }
}

export function createTableSql(table: TableSchema): string {
  const cols = table.columns.map(
    (c) => `  ${c.name} ${DUCKDB_DIALECT.typeName(c.type)}${c.nullable ? '' : ' NOT NULL'}`,
  );
  return `CREATE TABLE IF NOT EXISTS ${qualifiedName(table)} (\n${cols.join(',\n')}\n)`;
}

const DAY_MS = 86_400_000;
/** DuckDB's vector size: the most rows one data chunk holds. */
const CHUNK_ROWS = 2048;

/**
 * A JS value as the DuckDB value of its column type, built directly (no per-value type dispatch at run
 * time): rows are written a whole column at a time, which is what makes a date's commit cheap.
 */
function columnValue(type: ColumnType, value: SqlValue | undefined): DuckDBValue {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'STRING':
    case 'JSON':
      return typeof value === 'string' ? value : String(value);
    case 'INT64':
      return BigInt(value as number);
    case 'FLOAT64':
      return Number(value);
    case 'BOOL':
      if (typeof value !== 'boolean') throw new Error(`${JSON.stringify(value)} is not a boolean`);
      return value;
    case 'DATE': {
      const ms = Date.parse(`${String(value)}T00:00:00Z`);
      if (Number.isNaN(ms)) throw new Error(`${JSON.stringify(value)} is not a date (YYYY-MM-DD)`);
      return new DuckDBDateValue(Math.round(ms / DAY_MS));
    }
    case 'TIMESTAMP': {
      const ms = Date.parse(String(value));
      if (Number.isNaN(ms)) throw new Error(`${JSON.stringify(value)} is not a timestamp`);
      return new DuckDBTimestampValue(BigInt(ms) * 1000n);
    }
  }
}

/**
 * DuckDB values as the port's plain values: JSON's conversion (dates and timestamps as text, non-finite
 * doubles as 'NaN'/'Infinity'), but whole numbers as numbers and the common scalar types without a detour.
 */
const toRowValue: DuckDBValueConverter<Json> = (value, type, converter) => {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UBIGINT:
      return Number(value);
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
      return Number.isFinite(value) ? (value as number) : String(value);
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.VARCHAR:
    case DuckDBTypeId.BOOLEAN:
      return value as Json;
    default:
      return JsonDuckDBValueConverter(value, type, converter);
  }
};

/**
 * DuckDB values as a person's query shows them (`runSql`): JSON's conversion (a STRUCT an object, a LIST an
 * array, dates as `YYYY-MM-DD`), with BIGINT/HUGEINT and DECIMAL as numbers where a double holds them exactly
 * and as text otherwise, and TIMESTAMP/TIMESTAMPTZ as ISO 8601 instants in UTC (the pipeline writes UTC).
 */
const toResultValue: DuckDBValueConverter<Json> = (value, type, converter) => {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.UHUGEINT:
      return exactInteger(value as bigint);
    case DuckDBTypeId.DECIMAL:
      return exactDecimal(String(value));
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) {
        return isoInstant(value.micros) ?? String(value);
      }
      return String(value);
    default:
      return toRowValue(value, type, converter);
  }
};

/**
 * The statement types that only read (DuckDB's own classification of a prepared statement). EXPLAIN is here
 * though EXPLAIN ANALYZE runs its statement: the read-only open refuses that one. Everything else (INSERT,
 * UPDATE, DELETE and TRUNCATE, MERGE INTO, CREATE, ALTER, DROP, COPY, ATTACH, DETACH, EXPORT, VACUUM,
 * ANALYZE, LOAD, PREPARE/EXECUTE...) may write the warehouse or a file, or cannot be told. (A PIVOT without an
 * IN list starts with a CREATE TYPE, so it needs one: `PIVOT t ON c IN ('a', 'b')`.)
 */
const READ_STATEMENTS: ReadonlySet<StatementType> = new Set([
  StatementType.SELECT,
  StatementType.EXPLAIN,
  StatementType.PRAGMA,
  StatementType.CALL,
  StatementType.SET,
  StatementType.VARIABLE_SET,
  StatementType.TRANSACTION,
]);

/** DuckDB's refusal of a setting's change once the configuration is locked, with the setting's name. */
const LOCKED_SETTING = /Cannot change configuration option "(\w+)" - the configuration has been locked/;

/** DuckDB's refusal of a write on a database opened read-only, with the statement's type. */
const READ_ONLY_REFUSAL =
  /Cannot execute statement of type "(\w+)" on database "[^"]*" which is attached in read-only mode/;

/** A promise chain: DuckDB transactions on one connection must not interleave. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * One DuckDB connection with its own queue and prepared statements: a connection runs one statement at a
 * time, and a prepared statement belongs to its connection.
 */
class Session {
  readonly lock = new Mutex();
  private readonly prepared = new Map<string, DuckDBPreparedStatement>();
  /** Operations queued or running, to send a read to the least busy session. */
  pending = 0;

  constructor(readonly conn: DuckDBConnection) {}

  queue<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    return this.lock.run(fn).finally(() => this.pending--);
  }

  /**
   * A backfill asks the same few queries for every date, with other values: each is parsed and planned once
   * and kept as a prepared statement (statements with a NULL value, whose type DuckDB cannot infer, are not).
   */
  async run(sql: string, params: Record<string, SqlValue>) {
    if (Object.values(params).some((v) => v === null)) return this.conn.runAndReadAll(toDuckDbSql(sql), params);
    let prepared = this.prepared.get(sql);
    if (!prepared) {
      prepared = await this.conn.prepare(toDuckDbSql(sql));
      if (this.prepared.size >= 128) {
        const oldest = this.prepared.keys().next().value as string;
        this.prepared.get(oldest)?.destroySync();
        this.prepared.delete(oldest);
      }
      this.prepared.set(sql, prepared);
    }
    prepared.clearBindings();
    if (Object.keys(params).length > 0) prepared.bind(params as Record<string, Exclude<SqlValue, null>>);
    return prepared.runAndReadAll();
  }

  close(): void {
    for (const prepared of this.prepared.values()) prepared.destroySync();
    this.prepared.clear();
    this.conn.closeSync();
  }
}

/**
 * Connections for reads besides the writer's: the independent reads of a Stage 3 date (the checks' coverage,
 * Phase 3's players and teams, Phase 4's inputs: four) run at the same time instead of queueing, and DuckDB
 * spreads them over the machine's cores (measured: 2 readers 48-50 ms a date, 4 readers 40-44 ms). Each
 * read sees every commit finished before it.
 */
const READERS = 4;

/** SQL that may change data: the known partition dates are then read again. */
const MUTATING = /\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|DROP|ALTER|CREATE|COPY|ATTACH|IMPORT|CHECKPOINT)\b/i;

/** How long a writer waits for a file another process holds before calling it taken. */
export const DEFAULT_LOCK_WAIT_MS = 3000;

export interface DuckDbOpenOptions {
  /** Open for reading only (`backfill status`), beside no writer. @default false */
  readonly readOnly?: boolean;
  /** How long to wait for another process's lock to go. @default 3000 for a writer, 0 read-only */
  readonly lockWaitMs?: number;
  /** The pause between attempts; tests inject one. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export class DuckDbWarehouse implements Warehouse, SqlConsole {
  readonly dialect = DUCKDB_DIALECT;
  /** The writer: commits, appends, DDL and any SQL that may change data, one at a time. */
  private readonly writer: Session;
  private readonly readers: readonly Session[];
  /**
   * Per table, the partition dates it holds, read on the first replace of the table and kept up to date by
   * this process's own writes (a DuckDB file has one writer process): a replace of a date the table does not
   * hold yet, the usual case of a backfill, skips its DELETE. Forgotten after a failed commit and after any
   * query that may change data.
   */
  private readonly datesHeld = new Map<string, Set<string>>();
  /** Set by a read-only runSql: DuckDB then refuses any change of a setting on this database (see runSql). */
  private configurationLocked = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readers: readonly DuckDBConnection[],
    readonly description: string,
  ) {
    this.writer = new Session(conn);
    this.readers = readers.map((r) => new Session(r));
  }

  /** The least busy reader. */
  private reader(): Session {
    return this.readers.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  /**
   * Opens (creating if needed) a DuckDB file, or `:memory:`. A file has one writer process. `readOnly` opens an
   * existing file for reads only (`status`); DuckDB still refuses it while another process holds the file for
   * writing, and a writer is refused while a reader holds it.
   */
  static async open(path: string, options: DuckDbOpenOptions = {}): Promise<DuckDbWarehouse> {
    if (path !== ':memory:' && !options.readOnly) mkdirSync(dirname(path), { recursive: true });
    const lockWaitMs = options.lockWaitMs ?? (options.readOnly ? 0 : DEFAULT_LOCK_WAIT_MS);
    const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let instance: DuckDBInstance | undefined;
    // A `backfill status` (a brief read-only open) may hold the file for a moment as a command starts: wait
    // for it a little, with growing pauses, before calling the file taken.
    for (let waited = 0, pause = 50; ; pause = Math.min(pause * 2, 800)) {
      try {
        instance = await DuckDBInstance.create(path, options.readOnly ? { access_mode: 'READ_ONLY' } : undefined);
        break;
      } catch (err) {
        if (!/lock/i.test(err instanceof Error ? err.message : String(err)) || waited >= lockWaitMs) {
          throw DuckDbWarehouse.openError(path, err);
        }
        const ms = Math.min(pause, lockWaitMs - waited);
        await sleep(ms);
        waited += ms;
      }
    }
    return DuckDbWarehouse.connect(instance, path);
  }

  /** Why a DuckDB file did not open, in words that say what to do. */
  private static openError(path: string, err: unknown): Error {
    const msg = err instanceof Error ? err.message : String(err);
    const locked = /lock/i.test(msg);
    const damagedWal = /replaying WAL|Corrupt WAL/i.test(msg);
    if (locked) {
      const pid = /\(PID (\d+)\)/.exec(msg)?.[1];
      return new WarehouseLockedError(
        `the DuckDB file ${path} is open in another process (DuckDB allows one writer per file): ${msg}`,
        path,
        pid === undefined ? undefined : Number(pid),
        err,
      );
    }
    return new ProcessingError(
      damagedWal
        ? `cannot open DuckDB file ${path}: its write-ahead log ${path}.wal is damaged: ${msg}. ` +
            'The work committed up to the last checkpoint (the end of the last stage) is in the database file; ' +
            `keep a copy of ${path}.wal, move it away, and run the interrupted stage again`
        : `cannot open DuckDB file ${path}: ${msg}`,
      { cause: err },
    );
  }

  private static async connect(instance: DuckDBInstance, path: string): Promise<DuckDbWarehouse> {
    const conn = await instance.connect();
    // A backfill commits every date: checkpointing at DuckDB's default 16 MB of WAL stalls a date every few
    // dozen; a larger threshold checkpoints less often (and at close) without weakening any commit.
    await conn.run("SET checkpoint_threshold = '256MB'");
    // One thread per statement: the parallelism is the reader connections' and the Stage 1 pods', and with
    // the backfill's many small statements DuckDB's own worker threads cost more in hand-offs than they save
    // (measured on 2 cores: Stage 3 40-44 against 43-49 ms a date, `run --season all` 58 against 66-74 s).
    await conn.run('SET threads = 1');
    const readers: DuckDBConnection[] = [];
    for (let i = 0; i < READERS; i++) readers.push(await instance.connect());
    return new DuckDbWarehouse(instance, conn, readers, `duckdb:${path}`);
  }

  async ensureTables(tables: readonly TableSchema[]): Promise<void> {
    await this.writer.queue(async () => {
      for (const dataset of new Set(tables.map((t) => t.dataset))) {
        await this.conn.run(`CREATE SCHEMA IF NOT EXISTS ${dataset}`);
      }
      for (const t of tables) await this.conn.run(createTableSql(t));
    });
  }

  async query(sql: string, params: Readonly<Record<string, SqlValue>> = {}): Promise<Row[]> {
    // DuckDB refuses a named parameter the statement does not use; pass only those it does.
    const used = parameterNames(sql);
    const bound = Object.fromEntries(Object.entries(params).filter(([k]) => used.has(k)));
    const mutating = MUTATING.test(sql);
    const session = mutating ? this.writer : this.reader();
    return session.queue(async () => {
      if (mutating) this.datesHeld.clear();
      const reader = await session.run(sql, bound);
      return reader.convertRowObjects(toRowValue) as Row[];
    });
  }

  /**
   * Runs a person's SQL on the writer's connection, statement by statement (a script's `USE` or `SET` holds for
   * the statements after it), each prepared first so that DuckDB types it. Unless `write`, a statement DuckDB
   * does not type as a read is refused before it runs; the statements before it only read. On a file opened
   * read-only DuckDB refuses any write itself, which is refused the same way.
   */
  async runSql(sql: string, options: { readonly write: boolean }): Promise<SqlOutcome> {
    return this.writer.queue(async () => {
      if (options.write) this.datesHeld.clear();
      const statements = await this.conn.extractStatements(sql).catch((err: unknown) => {
        // The parser's own words, without the wrapper of the call that reached it.
        if (err instanceof Error) err.message = err.message.replace(/^Failed to extract statements: /, '');
        throw err;
      });
      // A SET or PRAGMA only reads the warehouse, but some of DuckDB's settings write files (log_query_path,
      // profile_output): unless --write, DuckDB's own configuration lock refuses any change of a setting (a
      // variable, USE and the search path are not settings, and stay allowed). The lock holds for this open
      // database, which a query opens for itself.
      if (!options.write && !this.configurationLocked) {
        await this.conn.run('SET lock_configuration = true');
        this.configurationLocked = true;
      }
      let last: DuckDBResultReader | undefined;
      for (let i = 0; i < statements.count; i++) {
        const statementNumber = statements.count > 1 ? { statementNumber: i + 1 } : {};
        const prepared = await statements.prepare(i);
        try {
          const type = prepared.statementType;
          if (!options.write && !READ_STATEMENTS.has(type)) {
            return { ok: false, refused: { statementType: StatementType[type] ?? String(type), ...statementNumber } };
          }
          last = await prepared.runAndReadAll();
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const locked = LOCKED_SETTING.exec(message);
          if (locked) {
            const detail = `it changes DuckDB's setting ${locked[1]}, and a setting can make DuckDB write files`;
            return { ok: false, refused: { statementType: 'SET', detail, ...statementNumber } };
          }
          const readOnly = READ_ONLY_REFUSAL.exec(message);
          if (!readOnly) throw err;
          return { ok: false, refused: { statementType: readOnly[1] as string, ...statementNumber } };
        } finally {
          prepared.destroySync();
        }
      }
      return {
        ok: true,
        result: {
          columns: last?.columnNames() ?? [],
          rows: (last?.convertRows(toResultValue) ?? []) as ResultValue[][],
        },
      };
    });
  }

  /** One transaction: nothing to report (the outcome is for commits of several steps). */
  async commit(change: WarehouseChange): Promise<undefined> {
    for (const r of change.replace) {
      const stray = r.rows.find((row) => row[r.table.partitionColumn] !== r.date);
      if (stray) {
        throw new Error(
          `${qualifiedName(r.table)}: a row for ${String(stray[r.table.partitionColumn])} was handed to the replace of ${r.date}`,
        );
      }
    }
    await this.writer.queue(async () => {
      try {
        await inTransaction(
          (sql) => this.conn.run(sql),
          async () => {
            // A Stage 3 batch replaces many dates of each table: one DELETE and one appender per table, the
            // dates' rows in the order given (as commits of one date each would lay them out).
            const byTable = new Map<TableSchema, (typeof change.replace)[number][]>();
            for (const r of change.replace) byTable.set(r.table, [...(byTable.get(r.table) ?? []), r]);
            for (const [table, replaces] of byTable) {
              const held = await this.heldDates(table);
              const stale = replaces.filter((r) => held.has(r.date)).map((r) => r.date);
              if (stale.length === 1) {
                // Prepared once per table, like the queries.
                await this.writer.run(`DELETE FROM ${qualifiedName(table)} WHERE ${table.partitionColumn} = @date`, {
                  date: stale[0] as string,
                });
              } else if (stale.length > 1) {
                await this.writer.run(
                  `DELETE FROM ${qualifiedName(table)} WHERE ${table.partitionColumn} IN (${stale.map((_, i) => `CAST(@d${i} AS DATE)`).join(', ')})`,
                  Object.fromEntries(stale.map((d, i) => [`d${i}`, d])),
                );
              }
              await this.appendRows(
                table,
                replaces.flatMap((r) => sortByKey(table, r.rows)),
              );
            }
            for (const a of change.append) await this.appendRows(a.table, a.rows);
          },
        );
      } catch (err) {
        for (const t of [...change.replace, ...change.append]) this.datesHeld.delete(qualifiedName(t.table));
        throw err;
      }
      for (const r of change.replace) {
        const held = this.datesHeld.get(qualifiedName(r.table));
        if (r.rows.length > 0) held?.add(r.date);
        else held?.delete(r.date);
      }
      for (const a of change.append) this.noteAppended(a.table, a.rows);
    });
  }

  async append(table: TableSchema, rows: readonly Row[]): Promise<void> {
    await this.writer.queue(async () => {
      try {
        await this.appendRows(table, rows);
      } catch (err) {
        this.datesHeld.delete(qualifiedName(table));
        throw err;
      }
      this.noteAppended(table, rows);
    });
  }

  /** The partition dates a table holds, read once per table (see datesHeld). */
  private async heldDates(table: TableSchema): Promise<Set<string>> {
    const name = qualifiedName(table);
    let held = this.datesHeld.get(name);
    if (!held) {
      const reader = await this.conn.runAndReadAll(
        `SELECT DISTINCT CAST(${table.partitionColumn} AS VARCHAR) AS d FROM ${name} WHERE ${table.partitionColumn} IS NOT NULL`,
      );
      held = new Set(reader.getRows().map((r) => String(r[0])));
      this.datesHeld.set(name, held);
    }
    return held;
  }

  private noteAppended(table: TableSchema, rows: readonly Row[]): void {
    const held = this.datesHeld.get(qualifiedName(table));
    if (held)
      for (const row of rows) if (row[table.partitionColumn] != null) held.add(String(row[table.partitionColumn]));
  }

  private async appendRows(table: TableSchema, rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    const appender = await this.conn.createAppender(table.name, table.dataset);
    try {
      const types: DuckDBType[] = table.columns.map((_c, i) => appender.columnType(i));
      for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
        const slice = rows.slice(start, start + CHUNK_ROWS);
        const chunk = DuckDBDataChunk.create(types, slice.length);
        table.columns.forEach((c, i) => {
          let at = 0;
          try {
            const values: DuckDBValue[] = new Array(slice.length);
            for (at = 0; at < slice.length; at++) values[at] = columnValue(c.type, (slice[at] as Row)[c.name]);
            chunk.setColumnValues(i, values);
          } catch (err) {
            throw new Error(`row ${start + at + 1}, column ${c.name}: ${err instanceof Error ? err.message : err}`);
          }
        });
        appender.appendDataChunk(chunk);
      }
      appender.closeSync();
    } catch (err) {
      appender.clear();
      throw new Error(`${qualifiedName(table)}: append failed: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Moves every committed change from the WAL into the database file. Our checkpoint threshold is large (see
   * open), so without this a whole stage's work can sit in the WAL, and DuckDB 1.5.6 (measured with
   * @duckdb/node-api 1.5.6-r.1, see test/filesAndWal.test.ts) recovers a damaged WAL badly: 64 flipped bytes
   * inside an entry make the open fail ("Corrupt WAL file: entry at byte position N computed checksum ...
   * does not match"), leaving the WAL in place; a WAL cut short replays its complete entries and silently
   * drops the rest, then deletes the WAL; a damaged WAL header opens as if the WAL were empty, and the next
   * checkpoint deletes it: every change in it is lost with exit 0. A checkpoint writes the changes to the
   * file and removes the WAL. Every reader is held meanwhile, so no read transaction is open across it.
   */
  async checkpoint(): Promise<void> {
    const releases: (() => void)[] = [];
    const held = this.readers.map(
      (r) =>
        new Promise<void>((acquired) => {
          void r.queue(
            () =>
              new Promise<void>((release) => {
                releases.push(release);
                acquired();
              }),
          );
        }),
    );
    try {
      await Promise.all(held);
      await this.writer.queue(async () => {
        try {
          await this.conn.run('CHECKPOINT');
        } catch (err) {
          throw new ProcessingError(
            `${this.description}: CHECKPOINT failed, committed work stays in the WAL until the next checkpoint: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
        }
      });
    } finally {
      for (const release of releases) release();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.queue(async () => r.close())));
    await this.writer.queue(async () => {
      this.writer.close();
      this.instance.closeSync();
    });
  }
}
