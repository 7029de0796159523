// What the defensive checks read: the season's schedule, per-date game coverage of each table, row
// counts and latest runs. A run of many dates (Stage 3, a date range) keeps them between dates and
// re-reads only what a commit changed, so a date's checks cost a few small queries, not a season scan.

import type { IsoDate } from '../dates.js';
import type { CommitOutcome, Warehouse, WarehouseChange } from '../ports/warehouse.js';
import { type LatestRun, latestRuns, type PendingWrites, type RunRecord } from '../runs/history.js';
import { type EntityDates, readEntityDates, type StaleRun, staleRuns, VersionBook } from '../runs/versions.js';
import { nbacSchedule, processorRunHistory } from '../schema/raw.js';
import { qualifiedName, type Row, type SqlValue, type TableSchema } from '../schema/table.js';

export interface ScheduledGame {
  readonly date: IsoDate;
  readonly gameId: string;
  readonly home: string;
  readonly away: string;
}

/** Rows a table holds for one game (or, for per-team tables, the game's teams on its date). */
export interface GameCoverage {
  readonly teams: number;
  readonly rows: number;
}

/** How the checks key a table's rows: by game and team, by team, or not at all. */
function keyColumns(table: TableSchema): string[] {
  return [
    table.columns.some((c) => c.name === 'game_id') ? 'game_id' : null,
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, every table a check reads (the dependencies in core/pipeline/definition.ts) has a team_abbr column.
    table.columns.some((c) => c.name === 'team_abbr') ? 'team_abbr' : null,
  ].filter((c): c is string => c !== null);
}

/** Counts of rows not committed yet, kept while their array lives: a batch's checks ask for them many times. */
const PENDING_COUNTS = new WeakMap<readonly Row[], Map<string, number>>();

function countPendingRows(table: TableSchema, rows: readonly Row[]): Map<string, number> {
  let counts = PENDING_COUNTS.get(rows);
  // Stryker disable next-line ConditionalExpression: equivalent, counting again gives the same counts (the cache only saves time).
  if (!counts) PENDING_COUNTS.set(rows, (counts = countRows(table, rows)));
  return counts;
}

/** Rows per key, counted in code from rows about to be written (or just written). */
function countRows(table: TableSchema, rows: readonly Row[]): Map<string, number> {
  const cols = keyColumns(table);
  const counts = new Map<string, number>();
  for (const row of rows) {
    // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent, no table a check reads lacks both key columns (see keyColumns).
    const key = cols.length === 0 ? '' : cols.map((c) => String(row[c])).join('|');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Each pending run as a LatestRun, made once: a batch's checks read the same runs for many dates. */
const AS_LATEST = new WeakMap<RunRecord, LatestRun>();

function asLatestRun(r: RunRecord): LatestRun {
  let latest = AS_LATEST.get(r);
  // Stryker disable next-line ConditionalExpression: equivalent, converting again gives an equal run (the cache only saves time).
  if (!latest) AS_LATEST.set(r, (latest = toLatestRun(r)));
  return latest;
}

function toLatestRun(r: RunRecord): LatestRun {
  return {
    processorName: r.processorName,
    phase: r.phase,
    dataDate: r.dataDate,
    season: r.season,
    status: r.status,
    errorMessage: r.errorMessage,
    attempt: r.attempt,
    finishedAt: r.finishedAt.toISOString(),
    runId: r.runId,
  };
}

/** What one date's games lack in a table, and the rows it holds for them (see CheckData.gapsAndRows). */
interface DateGaps {
  readonly first: ScheduledGame;
  readonly games: number;
  readonly missing: readonly ScheduledGame[];
  readonly rows: number;
}

const DATE_GAPS = new WeakMap<ReadonlyMap<string, number>, DateGaps>();

/** The part of `games[from..to)`, one date's games, that `counts` (that date's rows per key) covers. */
function dateGaps(
  counts: ReadonlyMap<string, number>,
  games: readonly ScheduledGame[],
  from: number,
  to: number,
  byGame: boolean,
): DateGaps {
  const first = games[from] as ScheduledGame;
  const kept = DATE_GAPS.get(counts);
  // Stryker disable next-line ConditionalExpression,ArithmeticOperator: equivalent when it only stops reuse (`false`, or `to + from` when from > 0): the part is computed again, equal.
  if (kept && kept.first === first && kept.games === to - from) return kept;
  const missing: ScheduledGame[] = [];
  let rows = 0;
  for (let i = from; i < to; i++) {
    const g = games[i] as ScheduledGame;
    const home = counts.get(byGame ? `${g.gameId}|${g.home}` : g.home) ?? 0;
    const away = counts.get(byGame ? `${g.gameId}|${g.away}` : g.away) ?? 0;
    if ((home > 0 ? 1 : 0) + (away > 0 ? 1 : 0) < 2) missing.push(g);
    rows += home + away;
  }
  // Stryker disable next-line ArithmeticOperator: equivalent, a wrong count only stops the part's reuse.
  const part = { first, games: to - from, missing, rows };
  // An empty map stands for a date without rows; it is made per call, so nothing is worth keeping with it.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, whether a part is kept only decides whether it is computed again, to the same value.
  if (counts.size > 0) DATE_GAPS.set(counts, part);
  return part;
}

const TOTALS = new WeakMap<ReadonlyMap<string, number>, number>();

/** The rows of a date's counts, kept with them. */
function totalOf(counts: ReadonlyMap<string, number>): number {
  let n = TOTALS.get(counts);
  // Stryker disable next-line ConditionalExpression: equivalent, summing again gives the same total (the cache only saves time).
  if (n === undefined) {
    n = 0;
    for (const c of counts.values()) n += c;
    TOTALS.set(counts, n);
  }
  return n;
}

export class CheckData {
  private readonly schedules = new Map<string, ScheduledGame[]>();
  /** table -> date -> team (or game|team) -> rows */
  private readonly counts = new Map<string, Map<IsoDate, Map<string, number>>>();
  private readonly runs = new Map<IsoDate, LatestRun[]>();

  /** The latest data versions of the seasons asked for (core/runs/versions.ts), kept like the counts. */
  readonly versions: VersionBook;

  /** `games` reaches' dates per value, by table, column and season; forgotten when the table changes. */
  private readonly entities = new Map<string, Promise<EntityDates>>();

  constructor(readonly warehouse: Warehouse) {
    this.versions = new VersionBook(warehouse);
  }

  entityDates(table: TableSchema, per: string, season: string): Promise<EntityDates> {
    const key = `${qualifiedName(table)}|${per}|${season}`;
    let v = this.entities.get(key);
    if (!v) {
      v = readEntityDates(this.warehouse, table, per, season);
      this.entities.set(key, v);
      v.catch(() => this.entities.delete(key));
    }
    return v;
  }

  /** The season's game dates, sorted, kept until the schedule changes. */
  async gameDates(season: string): Promise<IsoDate[]> {
    const schedule = await this.schedule(season);
    return this.memo(`gameDates|${season}`, () => [...new Set(schedule.map((g) => g.date))]);
  }

  /** The season's stale Phase 3-4 runs (core/runs/versions.ts), as run history says now. */
  async staleRuns(season: string): Promise<StaleRun[]> {
    const [versions, dates] = await Promise.all([this.versions.versions(season), this.gameDates(season)]);
    return staleRuns(versions, dates);
  }

  private forgetEntities(table: TableSchema): void {
    for (const k of [...this.entities.keys()]) if (k.startsWith(`${qualifiedName(table)}|`)) this.entities.delete(k);
  }

  private readonly memos = new Map<string, unknown>();

  /** A value computed from the schedule, kept until the schedule changes (lookback windows). */
  memo<T>(key: string, compute: () => T): T {
    if (!this.memos.has(key)) this.memos.set(key, compute());
    return this.memos.get(key) as T;
  }

  async schedule(season: string): Promise<ScheduledGame[]> {
    let games = this.schedules.get(season);
    if (!games) {
      const rows = await this.warehouse.query(
        `SELECT CAST(game_date AS STRING) AS d, game_id, home_team_abbr, away_team_abbr
           FROM nba_raw.nbac_schedule WHERE season = @season AND game_status = 'Final'
          ORDER BY game_date, game_id`,
        { season },
      );
      games = rows.map((r) => ({
        date: String(r.d),
        gameId: String(r.game_id),
        home: String(r.home_team_abbr),
        away: String(r.away_team_abbr),
      }));
      this.schedules.set(season, games);
    }
    return games;
  }

  /** Rows per team of a table on some dates (keyed `game|team` where the table has game ids). */
  private byDateOf(table: TableSchema): Map<IsoDate, Map<string, number>> {
    const name = qualifiedName(table);
    let byDate = this.counts.get(name);
    if (!byDate) this.counts.set(name, (byDate = new Map()));
    return byDate;
  }

  /**
   * Reads the rows per team (or game and team) of several tables on their dates, in one query: what a
   * processor's checks need for a new date comes back in one round trip instead of one per table.
   */
  async prefetch(
    requests: readonly { readonly table: TableSchema; readonly dates: readonly IsoDate[] }[],
    pending?: PendingWrites,
  ): Promise<void> {
    const parts: string[] = [];
    const params: Record<string, SqlValue> = {};
    const fetched: { table: TableSchema; dates: IsoDate[] }[] = [];
    for (const { table, dates } of requests) {
      const cached = this.byDateOf(table);
      const missing = [...new Set(dates)].filter((d) => !cached.has(d) && !pending?.rowsOf(table, d));
      // A table asked for twice is read once.
      // Stryker disable next-line ConditionalExpression,ArrowFunction: equivalent for the second condition, reading a table twice in one query sets the same counts twice.
      if (missing.length === 0 || fetched.some((f) => f.table === table)) continue;
      const i = fetched.length;
      fetched.push({ table, dates: missing });
      const keyCols = keyColumns(table);
      // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: equivalent, CONCAT of one column is that column, and every table a check reads has a key column.
      const key = keyCols.length > 1 ? `CONCAT(${keyCols.join(", '|', ")})` : (keyCols[0] ?? "''");
      const list = missing.map((d, j) => {
        params[`t${i}d${j}`] = d;
        return this.warehouse.dialect.asDate(`@t${i}d${j}`);
      });
      parts.push(
        `SELECT ${i} AS t, CAST(${table.partitionColumn} AS STRING) AS d, ${key} AS k, COUNT(*) AS n
           FROM ${qualifiedName(table)} WHERE ${table.partitionColumn} IN (${list.join(', ')})
          GROUP BY ${table.partitionColumn}, ${key}`,
      );
    }
    if (parts.length === 0) return;
    const rows: Row[] = await this.warehouse.query(parts.join('\nUNION ALL\n'), params);
    for (const f of fetched) {
      const byDate = this.byDateOf(f.table);
      for (const d of f.dates) byDate.set(d, new Map());
    }
    for (const r of rows) {
      const f = fetched[Number(r.t)];
      // Stryker disable next-line ConditionalExpression,OptionalChaining: equivalent, every row's t and d are ones this query asked for, whose maps were just made.
      if (f) this.byDateOf(f.table).get(String(r.d))?.set(String(r.k), Number(r.n));
    }
  }

  /** Rows per key of a table on each date: the batch's pending rows where it wrote the date, else the cache. */
  private async countsFor(
    table: TableSchema,
    dates: readonly IsoDate[],
    pending?: PendingWrites,
  ): Promise<(date: IsoDate) => Map<string, number>> {
    await this.prefetch([{ table, dates }], pending);
    const byDate = this.byDateOf(table);
    return (date) => {
      const rows = pending?.rowsOf(table, date);
      return rows ? countPendingRows(table, rows) : (byDate.get(date) ?? new Map<string, number>());
    };
  }

  /**
   * The games (of whole dates, in schedule order) of which a table lacks a team's rows, and the rows it holds
   * for them, with the batch's pending rows: what `coverage` tells the gap and completeness checks, summed
   * date by date. A date's part is kept with the counts it came from (replaced, never changed, when the
   * date's rows change), since a season's checks read each date in many windows.
   */
  async gapsAndRows(
    table: TableSchema,
    games: readonly ScheduledGame[],
    pending?: PendingWrites,
  ): Promise<{ missing: ScheduledGame[]; rows: number }> {
    const dates: IsoDate[] = [];
    // Stryker disable next-line ConditionalExpression,UnaryOperator: equivalent, a date listed twice is read once (the reads take each date once).
    for (const g of games) if (dates.at(-1) !== g.date) dates.push(g.date);
    const countsOn = await this.countsFor(table, dates, pending);
    const byGame = table.columns.some((c) => c.name === 'game_id');
    const missing: ScheduledGame[] = [];
    let rows = 0;
    for (let i = 0; i < games.length; ) {
      let end = i + 1;
      // Stryker disable next-line ConditionalExpression,EqualityOperator,OptionalChaining: equivalent, a date's games split into smaller slices sum to the same gaps and rows.
      while (end < games.length && games[end]?.date === games[i]?.date) end++;
      const part = dateGaps(countsOn((games[i] as ScheduledGame).date), games, i, end, byGame);
      missing.push(...part.missing);
      rows += part.rows;
      i = end;
    }
    return { missing, rows };
  }

  /** How completely a table holds each game of the given dates (with the batch's pending rows, if any). */
  async coverage(
    table: TableSchema,
    games: readonly ScheduledGame[],
    pending?: PendingWrites,
  ): Promise<Map<string, GameCoverage>> {
    const countsOn = await this.countsFor(table, [...new Set(games.map((g) => g.date))], pending);
    const byGame = table.columns.some((c) => c.name === 'game_id');
    const out = new Map<string, GameCoverage>();
    for (const g of games) {
      const counts = countsOn(g.date);
      const home = counts.get(byGame ? `${g.gameId}|${g.home}` : g.home) ?? 0;
      const away = counts.get(byGame ? `${g.gameId}|${g.away}` : g.away) ?? 0;
      out.set(g.gameId, { teams: (home > 0 ? 1 : 0) + (away > 0 ? 1 : 0), rows: home + away });
    }
    return out;
  }

  /** Rows a table holds over some dates. */
  async rowCount(table: TableSchema, dates: readonly IsoDate[], pending?: PendingWrites): Promise<number> {
    const countsOn = await this.countsFor(table, dates, pending);
    let n = 0;
    for (const d of dates) n += totalOf(countsOn(d));
    return n;
  }

  /**
   * The latest run of every processor on each of some dates; a run of the pending batch is later than any
   * committed one, so it takes its processor's place.
   */
  async latestRunsOn(dates: readonly IsoDate[], pending?: PendingWrites): Promise<LatestRun[]> {
    const committed = await this.committedRunsOn(dates);
    if (!pending) return committed;
    const overlay = dates.flatMap((d) => pending.runsOn(d).map(asLatestRun));
    // Stryker disable next-line ConditionalExpression: equivalent, with nothing to overlay the filter below keeps every committed run.
    if (overlay.length === 0) return committed;
    const replaced = new Set(overlay.map((r) => `${r.processorName}|${r.dataDate}`));
    return [...committed.filter((r) => !replaced.has(`${r.processorName}|${r.dataDate}`)), ...overlay];
  }

  /**
   * The latest runs of one processor on some dates that did not succeed, as `latestRunsOn` lists them (the
   * committed ones the batch has not replaced, then the batch's), without listing every processor's.
   */
  async failedRunsOf(processorName: string, dates: readonly IsoDate[], pending?: PendingWrites): Promise<LatestRun[]> {
    await this.readRuns(dates);
    const committed: LatestRun[] = [];
    const overlay: LatestRun[] = [];
    for (const d of dates) {
      const mine = pending ? pending.runsOn(d).filter((r) => r.processorName === processorName) : [];
      if (mine.length === 0) {
        // Stryker disable next-line ArrayDeclaration: equivalent, readRuns just set every date's list.
        for (const r of this.runs.get(d) ?? [])
          if (r.processorName === processorName && r.status !== 'success') committed.push(r);
      }
      for (const r of mine) if (r.status !== 'success') overlay.push(asLatestRun(r));
    }
    return [...committed, ...overlay];
  }

  private async committedRunsOn(dates: readonly IsoDate[]): Promise<LatestRun[]> {
    await this.readRuns(dates);
    // Stryker disable next-line ArrayDeclaration: equivalent, readRuns just set every date's list.
    return dates.flatMap((d) => this.runs.get(d) ?? []);
  }

  /** Reads the latest runs of the dates not known yet, in one query. */
  private async readRuns(dates: readonly IsoDate[]): Promise<void> {
    const missing = dates.filter((d) => !this.runs.has(d)).sort();
    if (missing.length > 0) {
      const fetched = await latestRuns(this.warehouse, {
        start: missing[0] as IsoDate,
        end: missing.at(-1) as IsoDate,
      });
      for (const d of missing) this.runs.set(d, []);
      for (const r of fetched) this.runs.get(r.dataDate)?.push(r);
    }
  }

  /**
   * Takes in a commit that succeeded: a replaced date of a table now holds exactly the rows handed to it,
   * so its counts are known without reading them back. Run history is read again when next asked.
   */
  learn(change: WarehouseChange): void {
    for (const r of change.replace) {
      this.byDateOf(r.table).set(r.date, countRows(r.table, r.rows));
      this.forgetEntities(r.table);
      if (r.table === nbacSchedule) {
        this.schedules.clear();
        this.memos.clear();
      }
    }
    for (const a of change.append) {
      if (a.table === processorRunHistory) {
        for (const row of a.rows) this.runs.delete(String(row.data_date));
        this.versions.learn(a.rows);
      } else this.counts.delete(qualifiedName(a.table));
    }
  }

  /** Forgets what a commit may have changed (after a failed commit, whose effect is not known). */
  forget(change: WarehouseChange): void {
    for (const r of change.replace) {
      this.counts.get(qualifiedName(r.table))?.delete(r.date);
      this.forgetEntities(r.table);
      if (r.table === nbacSchedule) {
        this.schedules.clear();
        this.memos.clear();
      }
    }
    for (const a of change.append) {
      if (a.table === processorRunHistory) {
        for (const row of a.rows) this.runs.delete(String(row.data_date));
        this.versions.forget(a.rows);
      } else this.counts.delete(qualifiedName(a.table));
    }
  }
}

/**
 * The warehouse seen through a CheckData: every commit and append goes to the warehouse and then makes the
 * cache forget what it touched. Processors and the run history use it like any warehouse.
 */
export class CheckedWarehouse implements Warehouse {
  readonly data: CheckData;

  constructor(private readonly inner: Warehouse) {
    this.data = new CheckData(inner);
  }

  get description() {
    return this.inner.description;
  }

  get dialect() {
    return this.inner.dialect;
  }

  get commitsAtomically() {
    return this.inner.commitsAtomically;
  }

  ensureTables(tables: readonly TableSchema[]) {
    return this.inner.ensureTables(tables);
  }

  query(sql: string, params?: Readonly<Record<string, SqlValue>>) {
    return this.inner.query(sql, params);
  }

  async commit(change: WarehouseChange): Promise<CommitOutcome | undefined> {
    let outcome: CommitOutcome | undefined;
    try {
      outcome = await this.inner.commit(change);
    } catch (err) {
      this.data.forget(change);
      throw err;
    }
    this.data.learn(change);
    return outcome;
  }

  async append(table: TableSchema, rows: readonly Row[]): Promise<void> {
    try {
      await this.inner.append(table, rows);
    } catch (err) {
      this.data.forget({ replace: [], append: [{ table, rows }] });
      throw err;
    }
    this.data.learn({ replace: [], append: [{ table, rows }] });
  }

  checkpoint() {
    return this.inner.checkpoint();
  }

  close() {
    return this.inner.close();
  }
}

/** The CheckData behind a warehouse, or a fresh one for a single run. */
export function checkDataOf(warehouse: Warehouse): CheckData {
  return warehouse instanceof CheckedWarehouse ? warehouse.data : new CheckData(warehouse);
}
