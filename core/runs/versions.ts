// Data versions: what a run wrote and what it read, as content hashes in run history, so that a corrected date
// makes exactly the Phase 3-4 runs that read it stale.
//
// - Every run that writes a table records `details.fingerprint`: a hash of the rows it wrote for its date
//   (`rows`, every column) and of which rows they were (`keys`, the table's key columns).
// - Every Phase 3-4 run records `details.inputs`: for each input its definition declares (`reads` in
//   core/pipeline/definition.ts), the window of upstream dates it read and one hash over those dates'
//   fingerprints.
// - A Phase 3-4 run is stale when one of its inputs, hashed again over the same window from the latest
//   fingerprints, differs, or when a run it read from is itself stale.

import { createHash } from 'node:crypto';
import { type IsoDate, sortableTime } from '../dates.js';
import { type InputRead, PROCESSORS, type ProcessorDefinition, writerOf } from '../pipeline/definition.js';
import { getSeason, seasonRange } from '../pipeline/seasons.js';
import type { Warehouse } from '../ports/warehouse.js';
import { processorRunHistory } from '../schema/raw.js';
import { qualifiedName, type Row, type SqlValue, type TableSchema } from '../schema/table.js';
import type { PendingWrites, RunStatus } from './history.js';

/** `keys` only for a table some run reads the keys of (see READ_PARTS). */
export interface Fingerprint {
  readonly rows: string;
  readonly keys?: string;
}

/** The parts of each table that some Phase 3-4 run reads: what a run writing it must fingerprint. */
const READ_PARTS = new Map<TableSchema, Set<'rows' | 'keys'>>();
for (const p of PROCESSORS) {
  // Stryker disable next-line ArrayDeclaration: equivalent, a junk entry (a string's undefined table) that no table is.
  for (const r of p.reads ?? []) {
    let parts = READ_PARTS.get(r.table);
    // Stryker disable next-line ConditionalExpression: equivalent with the pipeline's reads, where a table's parts lost to a new set are never its keys.
    if (!parts) READ_PARTS.set(r.table, (parts = new Set()));
    parts.add(r.part);
  }
}

/**
 * Whether a run writing `table` records a fingerprint: Phase 2's always (a reload compares them), the others'
 * when a Phase 3-4 run reads the table (nothing reads the feature store: hashing its wide rows would be waste).
 */
export function fingerprinted(table: TableSchema, phase: number): boolean {
  return phase === 2 || READ_PARTS.has(table);
}

/** An input of a run as recorded: the upstream table and part, the dates read, and their hash. */
export interface RecordedInput {
  readonly table: string;
  readonly part: 'rows' | 'keys';
  readonly start: IsoDate;
  readonly end: IsoDate;
  readonly hash: string;
}

type Normalize = (value: SqlValue | undefined) => SqlValue;

function normalizer(type: string | undefined): Normalize {
  switch (type) {
    case 'INT64':
    case 'FLOAT64':
      return (v) => (v == null ? null : Number(v));
    case 'BOOL':
      return (v) => (v === null || v === undefined ? null : v === true || v === 'true');
    case 'DATE':
      return (v) => (v === null || v === undefined ? null : String(v).slice(0, 10));
    default:
      return (v) => (v === null || v === undefined ? null : String(v));
  }
}

/** Each table's columns with their normalizers, and its key columns', made once. */
const LAYOUTS = new WeakMap<TableSchema, { all: [string, Normalize][]; keys: [string, Normalize][] }>();

function layoutOf(table: TableSchema) {
  let layout = LAYOUTS.get(table);
  // Stryker disable next-line ConditionalExpression: equivalent, a cache (the layout made again is the same).
  if (!layout) {
    const of = (name: string): [string, Normalize] => [
      name,
      // Stryker disable next-line OptionalChaining: equivalent, every name is one of the table's own columns.
      normalizer(table.columns.find((c) => c.name === name)?.type),
    ];
    layout = {
      all: table.columns.map((c) => of(c.name)),
      keys: [...new Set([table.partitionColumn, ...table.key])].map(of),
    };
    LAYOUTS.set(table, layout);
  }
  return layout;
}

function digest(lines: readonly string[]): string {
  const hash = createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
  return hash.digest('hex').slice(0, 16);
}

/**
 * The fingerprint of a date's rows of a table: order-free (the lines are sorted), independent of how the
 * warehouse types its values (normalized by column type), and equal bits give equal hashes.
 */
export function fingerprintRows(table: TableSchema, rows: readonly Row[]): Fingerprint {
  const { all, keys } = layoutOf(table);
  const line = (row: Row, cols: readonly [string, Normalize][]) => {
    // Stryker disable next-line ArrayDeclaration: equivalent, the size only saves the array growing.
    const values: SqlValue[] = new Array(cols.length);
    for (let i = 0; i < cols.length; i++) {
      const [name, normalize] = cols[i] as [string, Normalize];
      values[i] = normalize(row[name]);
    }
    return JSON.stringify(values);
  };
  const withKeys = READ_PARTS.get(table)?.has('keys') ?? false;
  // Stryker disable next-line ArrayDeclaration: equivalent, as above.
  const rowLines: string[] = new Array(rows.length);
  // Stryker disable next-line ArrayDeclaration: equivalent, as above.
  const keyLines: string[] = new Array(withKeys ? rows.length : 0);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as Row;
    rowLines[i] = line(row, all);
    // Stryker disable next-line ConditionalExpression: equivalent, key lines made without a keys read are never hashed.
    if (withKeys) keyLines[i] = line(row, keys);
  }
  const fingerprint = { rows: digest(rowLines.sort()) };
  return withKeys ? { ...fingerprint, keys: digest(keyLines.sort()) } : fingerprint;
}

/** What the book knows of a (processor, date): its latest run. */
export interface LatestVersion {
  readonly status: RunStatus;
  readonly fingerprint: Fingerprint | null;
  readonly inputs: readonly RecordedInput[] | null;
}

type Versions = Map<string, Map<IsoDate, LatestVersion>>;

function parseDetails(value: unknown): Record<string, unknown> {
  if (value && typeof value === 'object') return value as Record<string, unknown>;
  try {
    const parsed = JSON.parse(String(value ?? '{}')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function asFingerprint(v: unknown): Fingerprint | null {
  const f = v as Partial<Fingerprint> | undefined;
  if (!f || typeof f.rows !== 'string') return null;
  return typeof f.keys === 'string' ? { rows: f.rows, keys: f.keys } : { rows: f.rows };
}

function asInputs(v: unknown): RecordedInput[] | null {
  return Array.isArray(v) ? (v as RecordedInput[]) : null;
}

function versionOf(status: RunStatus, details: Record<string, unknown>): LatestVersion {
  return {
    status,
    fingerprint: status === 'success' ? asFingerprint(details.fingerprint) : null,
    inputs: status === 'success' ? asInputs(details.inputs) : null,
  };
}

/** Whether `a` (finished, run id) is later than `b`: run history's order of runs (see latestRuns). */
function later(a: { f: string; id: string }, b: { f: string; id: string }): boolean {
  // Stryker disable next-line EqualityOperator: equivalent, the same finish time and run id are the same run.
  return `${a.f}|${a.id}` > `${b.f}|${b.id}`;
}

/**
 * The latest version of every (processor, date) of a season, read from run history once and kept up to date
 * with the history rows written through the warehouse it belongs to (see CheckData.learn).
 */
export class VersionBook {
  private readonly seasons = new Map<string, Promise<Versions>>();

  constructor(private readonly warehouse: Warehouse) {}

  versions(season: string): Promise<Versions> {
    let v = this.seasons.get(season);
    if (!v) {
      v = this.load(season);
      this.seasons.set(season, v);
      v.catch(() => this.seasons.delete(season));
    }
    return v;
  }

  private async load(season: string): Promise<Versions> {
    const rows = await this.warehouse.query(
      `SELECT processor_name, CAST(data_date AS STRING) AS d, status, details, CAST(finished_at AS STRING) AS f, run_id
         FROM ${qualifiedName(processorRunHistory)}
        WHERE data_date BETWEEN @start AND @end AND season = @season AND phase >= 2`,
      // The season's dates bound the partitions read (BigQuery bills the partitions a query scans).
      { season, ...seasonRange(getSeason(season)) },
    );
    const latest = new Map<string, Row>();
    for (const r of rows) {
      const key = `${r.processor_name}|${r.d}`;
      const prev = latest.get(key);
      const at = { f: sortableTime(r.f), id: String(r.run_id) };
      if (!prev || later(at, { f: sortableTime(prev.f), id: String(prev.run_id) })) latest.set(key, r);
    }
    const out: Versions = new Map();
    for (const r of latest.values()) {
      const name = String(r.processor_name);
      let byDate = out.get(name);
      if (!byDate) out.set(name, (byDate = new Map()));
      byDate.set(String(r.d), versionOf(r.status as RunStatus, parseDetails(r.details)));
    }
    return out;
  }

  /** Takes in run-history rows just written: each is its (processor, date)'s latest run. */
  learn(rows: readonly Row[]): void {
    for (const r of rows) {
      const loaded = this.seasons.get(String(r.season));
      if (!loaded) continue;
      const version = versionOf(r.status as RunStatus, parseDetails(r.details));
      const name = String(r.processor_name);
      const date = String(r.data_date).slice(0, 10);
      this.seasons.set(
        String(r.season),
        loaded.then((v) => {
          let byDate = v.get(name);
          if (!byDate) v.set(name, (byDate = new Map()));
          byDate.set(date, version);
          return v;
        }),
      );
    }
  }

  /** Forgets a season whose history may have changed in a way not known (a failed commit). */
  forget(rows: readonly Row[]): void {
    for (const r of rows) this.seasons.delete(String(r.season));
  }
}

/** The fingerprint a table holds on a date: the batch's uncommitted run of its writer first, then the book. */
function fingerprintOn(versions: Versions, writer: string, date: IsoDate, pending?: PendingWrites): Fingerprint | null {
  const runs = pending?.runsOn(date);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, an empty list runs no loop.
  if (runs && runs.length > 0) {
    // Stryker disable next-line ArithmeticOperator: equivalent, an index past the end is undefined and skipped.
    for (let i = runs.length - 1; i >= 0; i--) {
      const r = runs[i];
      // Stryker disable next-line OptionalChaining: equivalent, within the list every entry is a run.
      if (r?.processorName === writer) return r.status === 'success' ? asFingerprint(r.details.fingerprint) : null;
    }
  }
  return versions.get(writer)?.get(date)?.fingerprint ?? null;
}

/** The season's game dates in `[start, end]`, from the sorted list `dates`. */
function datesWithin(dates: readonly IsoDate[], start: IsoDate, end: IsoDate): IsoDate[] {
  return dates.filter((d) => d >= start && d <= end);
}

function inputHash(
  versions: Versions,
  table: TableSchema,
  part: 'rows' | 'keys',
  dates: readonly IsoDate[],
  pending?: PendingWrites,
): string {
  // Stryker disable next-line OptionalChaining: unreachable today, every table a Phase 3-4 run reads has a writer.
  const writer = writerOf(table)?.name;
  // Stryker disable next-line all: unreachable today, as above.
  if (!writer) return digest(dates.map((d) => `${d}=none`));
  return digest(dates.map((d) => `${d}=${fingerprintOn(versions, writer, d, pending)?.[part] ?? 'none'}`));
}

/** For a `games` reach: each value of the column's sorted game dates of the season, read once per table. */
export type EntityDates = ReadonlyMap<string, readonly IsoDate[]>;

export async function readEntityDates(
  warehouse: Warehouse,
  table: TableSchema,
  per: string,
  season: string,
): Promise<EntityDates> {
  const rows = await warehouse.query(
    `SELECT DISTINCT ${per} AS k, CAST(${table.partitionColumn} AS STRING) AS d FROM ${qualifiedName(table)}
      WHERE ${table.partitionColumn} BETWEEN @start AND @end AND season = @season`,
    { season, ...seasonRange(getSeason(season)) },
  );
  const out = new Map<string, IsoDate[]>();
  for (const r of rows) {
    const k = String(r.k);
    let list = out.get(k);
    if (!list) out.set(k, (list = []));
    list.push(String(r.d));
  }
  for (const list of out.values()) list.sort();
  return out;
}

/** Per `games` count: each date's first date read, made once per entity list (a season's Stage 3 asks often). */
const STARTS = new WeakMap<EntityDates, Map<number, Map<IsoDate, IsoDate>>>();

/** The first date a `games` reach reads on `date`: the earliest N-th latest earlier date of any value on it. */
function gamesStart(entities: EntityDates, date: IsoDate, games: number): IsoDate {
  let byGames = STARTS.get(entities);
  // Stryker disable next-line ConditionalExpression: equivalent, a cache.
  if (!byGames) STARTS.set(entities, (byGames = new Map()));
  let starts = byGames.get(games);
  // Stryker disable next-line ConditionalExpression: equivalent, a cache.
  if (!starts) {
    starts = new Map();
    for (const list of entities.values()) {
      // Stryker disable next-line EqualityOperator: equivalent, an index past the end sets a key of undefined that no date asks for.
      for (let i = 0; i < list.length; i++) {
        const day = list[i] as IsoDate;
        const first = list[Math.max(0, i - games)] as IsoDate;
        const known = starts.get(day);
        // Stryker disable next-line EqualityOperator: equivalent, an equal first date sets the same value.
        if (known === undefined || first < known) starts.set(day, first);
      }
    }
    byGames.set(games, starts);
  }
  return starts.get(date) ?? date;
}

/** What a run of `def` on `date` needs to record its inputs. */
export interface InputContext {
  readonly versions: Versions;
  /** The season's game dates, sorted. */
  readonly gameDates: readonly IsoDate[];
  /** The values' dates of a `games` reach's table and column. */
  readonly entities: (table: TableSchema, per: string) => Promise<EntityDates>;
  readonly pending?: PendingWrites | undefined;
}

async function windowOf(read: InputRead, date: IsoDate, ctx: InputContext): Promise<[IsoDate, IsoDate]> {
  switch (read.reach.kind) {
    case 'date':
      return [date, date];
    case 'before': {
      const earlier = ctx.gameDates.filter((d) => d < date);
      // An empty window is recorded as the date itself with no dates in it.
      return earlier.length > 0 ? [earlier[0] as IsoDate, earlier.at(-1) as IsoDate] : [date, date];
    }
    case 'games':
      return [gamesStart(await ctx.entities(read.table, read.reach.per), date, read.reach.games), date];
  }
}

function datesOfWindow(read: InputRead, date: IsoDate, window: [IsoDate, IsoDate], gameDates: readonly IsoDate[]) {
  const dates = datesWithin(gameDates, window[0], window[1]);
  return read.reach.kind === 'before' ? dates.filter((d) => d < date) : dates;
}

/** The inputs a run of `def` on `date` read, to record in its details. */
export async function recordInputs(
  def: ProcessorDefinition,
  date: IsoDate,
  ctx: InputContext,
): Promise<RecordedInput[]> {
  const out: RecordedInput[] = [];
  for (const read of def.reads ?? []) {
    const window = await windowOf(read, date, ctx);
    const dates = datesOfWindow(read, date, window, ctx.gameDates);
    out.push({
      table: qualifiedName(read.table),
      part: read.part,
      start: window[0],
      end: window[1],
      hash: inputHash(ctx.versions, read.table, read.part, dates, ctx.pending),
    });
  }
  return out;
}

const TABLES = new Map(
  PROCESSORS.flatMap((p) => (p.output.kind === 'table' ? [[qualifiedName(p.output.table), p.output.table]] : [])),
);

/** A stale run: which processor on which date, and why (the input that changed, or the stale run it read). */
export interface StaleRun {
  readonly processor: string;
  readonly date: IsoDate;
  /** `input`: an input it read has changed since; `upstream`: a run it read is itself stale. */
  readonly cause: 'input' | 'upstream';
  readonly reason: string;
}

/**
 * The stale Phase 3-4 runs of a season, in date and pipeline order. A run recorded without inputs (before
 * data versions existed) is never stale: nothing says what it read.
 */
export function staleRuns(versions: Versions, gameDates: readonly IsoDate[]): StaleRun[] {
  const out: StaleRun[] = [];
  const stale = new Set<string>();
  const phase34 = PROCESSORS.filter((p) => p.phase === 3 || p.phase === 4);
  for (const date of gameDates) {
    for (const def of phase34) {
      const v = versions.get(def.name)?.get(date);
      if (v?.status !== 'success' || !v.inputs) continue;
      for (const input of v.inputs) {
        const table = TABLES.get(input.table);
        // Stryker disable next-line LogicalOperator: equivalent today, every writer is named as its table.
        const writer = table && writerOf(table);
        // Stryker disable next-line LogicalOperator: unreachable today, a recorded input names a table of the pipeline, which has a writer.
        if (!table || !writer) continue;
        // Stryker disable next-line OptionalChaining: equivalent, a run with recorded inputs has reads.
        const read = def.reads?.find((r) => qualifiedName(r.table) === input.table && r.part === input.part);
        const dates = read
          ? datesOfWindow(read, date, [input.start, input.end], gameDates)
          : datesWithin(gameDates, input.start, input.end);
        const upstream = dates.find((d) => stale.has(`${writer.name}|${d}`));
        const reason =
          upstream !== undefined
            ? `it read ${writer.name} of ${upstream}, which is stale`
            : inputHash(versions, table, input.part, dates) !== input.hash
              ? `${input.table} changed between ${input.start} and ${input.end} (${input.part})`
              : null;
        if (reason) {
          stale.add(`${def.name}|${date}`);
          out.push({ processor: def.name, date, cause: upstream !== undefined ? 'upstream' : 'input', reason });
          break;
        }
      }
    }
  }
  return out;
}

/** The stale dates among `stale` runs, sorted. */
export function staleDates(stale: readonly StaleRun[]): IsoDate[] {
  return [...new Set(stale.map((s) => s.date))].sort();
}

/** The content hash of a date's raw files: one over the hashes its scrapers recorded, in pipeline order. */
export function sourceHash(fileHashes: readonly string[]): string {
  return digest(fileHashes);
}

/** A Phase 2 processor's latest run on a date, with what it recorded (see latestPhase2Runs). */
export interface Phase2Latest {
  readonly processorName: string;
  readonly status: RunStatus;
  readonly rowsProcessed: number;
  readonly details: Readonly<Record<string, unknown>>;
  /**
   * The latest run that loaded the date from raw files (one that recorded their `source` hash), when it is not
   * the latest run itself: a later run without a source (the plan's schedule load) wrote the same table since.
   */
  readonly lastLoad?: { readonly details: Readonly<Record<string, unknown>> };
}

/** The latest run of every Phase 2 processor on a date, with its details: one small read of run history. */
export async function latestPhase2Runs(warehouse: Warehouse, date: IsoDate): Promise<Phase2Latest[]> {
  const rows = await warehouse.query(
    `SELECT processor_name, status, rows_processed, details, CAST(finished_at AS STRING) AS f, run_id
       FROM ${qualifiedName(processorRunHistory)} WHERE data_date = @d AND phase = 2`,
    { d: date },
  );
  const latest = new Map<string, Row>();
  const loads = new Map<string, Row>();
  const newer = (r: Row, prev: Row | undefined) =>
    !prev ||
    later({ f: sortableTime(r.f), id: String(r.run_id) }, { f: sortableTime(prev.f), id: String(prev.run_id) });
  for (const r of rows) {
    const name = String(r.processor_name);
    if (newer(r, latest.get(name))) latest.set(name, r);
    if (r.status === 'success' && parseDetails(r.details).source !== undefined && newer(r, loads.get(name)))
      loads.set(name, r);
  }
  return [...latest.values()].map((r) => {
    const load = loads.get(String(r.processor_name));
    return {
      processorName: String(r.processor_name),
      status: r.status as RunStatus,
      rowsProcessed: Number(r.rows_processed),
      details: parseDetails(r.details),
      ...(load && load !== r ? { lastLoad: { details: parseDetails(load.details) } } : {}),
    };
  });
}
