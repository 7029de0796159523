// How BigQuery lets jobs that write the same table run side by side, for the BigQuery double
// (bigqueryServer.ts). The double executes every statement on one DuckDB connection, one job at a time; what
// overlaps is the jobs' modeled time (their latencies), and the rules below decide, at each statement's
// modeled moment, what BigQuery would let through, queue or cancel. Each rule cites the page it comes from.

import { randomUUID } from 'node:crypto';

/** Kinds of job, each with its own modeled latency. */
export type JobKind = 'query' | 'dml' | 'script' | 'load' | 'copy';

/** Modeled latency per job kind in ms; a script's is per statement. */
export interface Latencies {
  readonly query: number;
  readonly dml: number;
  readonly scriptStatement: number;
  readonly load: number;
  readonly copy: number;
}

export const NO_LATENCY: Latencies = { query: 0, dml: 0, scriptStatement: 0, load: 0, copy: 0 };

/** One job as the double ran it. */
export interface JobRecord {
  readonly id: string;
  readonly kind: JobKind;
  /** `dataset.table` of every table the job references. */
  readonly tables: readonly string[];
  /** Order of creation (the log's own clock: tests compare these, never times). */
  readonly seq: number;
  /** From the double's clock, for modeled wall time (first start to last end). */
  readonly start: number;
  end?: number;
  /** Set when the job ran a transaction (BEGIN TRANSACTION). */
  transactionId?: string;
  error?: { readonly reason: string; readonly message: string };
  /** What a query, DML or script job was billed for (bytes); loads and copies are free. */
  bytesBilled?: number;
}

/** An error the double answers as BigQuery does: HTTP status, `errors[0].reason`, message. */
export class ContentionError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * DML statements that change or remove rows: those that conflict. "An INSERT DML statement that inserts rows
 * to a table doesn't conflict with any other concurrently running DML statement."
 * (https://cloud.google.com/bigquery/docs/data-manipulation-language, "DML statement conflicts")
 */
export const MUTATING_KINDS: ReadonlySet<string> = new Set(['delete', 'update', 'merge']);

/**
 * "BigQuery runs up to 2 of them concurrently, after which up to 20 are queued as PENDING."
 * (https://cloud.google.com/bigquery/docs/data-manipulation-language, "Queued DML statements")
 */
export const DML_RUNNING_PER_TABLE = 2;
export const DML_QUEUED_PER_TABLE = 20;

/** A statement of a job as the contention rules see it. */
export interface ModeledStatement {
  readonly kind: string;
  /** `dataset.table` an INSERT, DELETE, UPDATE or MERGE writes. */
  readonly target?: string | undefined;
}

interface TableState {
  /** The open transaction that has mutated the table, if any. */
  holder?: string;
  /** Mutating DML statements outside a transaction, running now. */
  running: number;
  /** Those waiting their turn, first first. */
  readonly queue: (() => void)[];
  /** The `tick` of the last committed mutation. */
  lastMutation: number;
}

export interface ContentionOptions {
  readonly project: string;
  readonly latencies: Latencies;
  /** Waits out a modeled latency. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Called after each statement of a script has taken its modeled time and its rules were applied (the
   * transaction holds what it mutated): a test holds a transaction open here until another job has run.
   */
  readonly onStatement?: (job: JobRecord, index: number, statement: ModeledStatement) => Promise<void> | void;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class TableContention {
  private readonly tables = new Map<string, TableState>();
  /** Counts commits of mutations, to order them against transactions' starts. */
  private tick = 0;
  /** Transactions cancelled for a concurrent update. */
  aborted = 0;
  /** The most mutating DML statements that waited in one table's queue at once. */
  maxQueued = 0;

  constructor(private readonly options: ContentionOptions) {}

  private state(table: string): TableState {
    let s = this.tables.get(table);
    if (!s) {
      s = { running: 0, queue: [], lastMutation: 0 };
      this.tables.set(table, s);
    }
    return s;
  }

  private sleep(ms: number): Promise<void> | undefined {
    return ms > 0 ? (this.options.sleep ?? realSleep)(ms) : undefined;
  }

  private aborting(table: string, transactionId: string): ContentionError {
    this.aborted++;
    // The text BigQuery sends (https://cloud.google.com/bigquery/docs/troubleshoot-queries, "Transaction is
    // aborted due to concurrent update"), as an invalidQuery 400 like any failed query.
    return new ContentionError(
      400,
      'invalidQuery',
      `Transaction is aborted due to concurrent update against table ${this.options.project}:${table}. Transaction ID: ${transactionId}`,
    );
  }

  /**
   * Models a script's statements in order and returns what ends it: `commit(ok)` after the double executed
   * it. "If a transaction mutates (update or deletes) rows in a table, then other transactions or DML
   * statements that mutate rows in the same table cannot run concurrently. Conflicting transactions are
   * cancelled." (https://cloud.google.com/bigquery/docs/transactions, "Transaction concurrency"). A
   * transaction is also cancelled at COMMIT when a mutation of a table it mutated committed after it began
   * (BigQuery's snapshot isolation, same page: "all reads return a consistent snapshot").
   */
  async script(job: JobRecord, statements: readonly ModeledStatement[]): Promise<(ok: boolean) => void> {
    let transaction: string | undefined;
    let began = 0;
    const held: string[] = [];
    const release = (committed: boolean) => {
      for (const table of held) {
        const s = this.state(table);
        if (committed) s.lastMutation = ++this.tick;
        if (s.holder === transaction) delete s.holder;
        this.wake(table);
      }
      held.length = 0;
    };
    try {
      for (const [index, statement] of statements.entries()) {
        await this.sleep(this.options.latencies.scriptStatement);
        if (statement.kind === 'begin') {
          transaction = randomUUID();
          job.transactionId = transaction;
          began = this.tick;
        } else if (transaction && MUTATING_KINDS.has(statement.kind) && statement.target) {
          const s = this.state(statement.target);
          if ((s.holder !== undefined && s.holder !== transaction) || s.running > 0) {
            throw this.aborting(statement.target, transaction);
          }
          if (s.holder === undefined) {
            s.holder = transaction;
            held.push(statement.target);
          }
        } else if (transaction && statement.kind === 'commit') {
          const stale = held.find((t) => this.state(t).lastMutation > began);
          if (stale) throw this.aborting(stale, transaction);
        } else if (statement.kind === 'rollback') {
          release(false);
          transaction = undefined;
        }
        await this.options.onStatement?.(job, index, statement);
      }
    } catch (err) {
      release(false);
      throw err;
    }
    return (ok) => release(ok);
  }

  /**
   * Admits a mutating DML statement outside a transaction and returns what ends it. "Conflicting DML
   * statements that run outside of a transaction are queued to run later, subject to queuing limits."
   * (https://cloud.google.com/bigquery/docs/transactions); "BigQuery runs up to 2 of them concurrently,
   * after which up to 20 are queued as PENDING. [...] Additional statements past the maximum queue length for
   * each table fail" (https://cloud.google.com/bigquery/docs/data-manipulation-language).
   */
  async dml(table: string): Promise<(ok: boolean) => void> {
    const s = this.state(table);
    // First come, first run: a statement queues behind those already waiting.
    if (s.running >= DML_RUNNING_PER_TABLE || s.holder !== undefined || s.queue.length > 0) {
      if (s.queue.length >= DML_QUEUED_PER_TABLE) {
        // The message BigQuery sends, with reason resourcesExceeded (400), as clients report it.
        throw new ContentionError(
          400,
          'resourcesExceeded',
          `Resources exceeded during query execution: Too many DML statements outstanding against table ${this.options.project}:${table}, limit is ${DML_QUEUED_PER_TABLE}.`,
        );
      }
      // wake() counts this statement as running when it lets it go.
      await new Promise<void>((resolve) => {
        s.queue.push(resolve);
        this.maxQueued = Math.max(this.maxQueued, s.queue.length);
      });
    } else s.running++;
    await this.sleep(this.options.latencies.dml);
    return (ok) => {
      s.running--;
      if (ok) s.lastMutation = ++this.tick;
      this.wake(table);
    };
  }

  /** Lets queued statements of a table run while it allows more. */
  private wake(table: string): void {
    const s = this.state(table);
    while (s.running < DML_RUNNING_PER_TABLE && s.holder === undefined && s.queue.length > 0) {
      s.running++;
      s.queue.shift()?.();
    }
  }

  /**
   * Notes a load or copy that truncated a table (or a day of it): an open transaction that mutated the table
   * loses at COMMIT. Such jobs themselves are never cancelled: each commits at its end, and "If a transaction
   * only reads a table or appends new rows to it, any operation can be performed concurrently"
   * (https://cloud.google.com/bigquery/docs/transactions).
   */
  committedWrite(table: string): void {
    this.state(table).lastMutation = ++this.tick;
  }

  /** Waits out the modeled latency of a job that contends with nothing (a query). */
  async pause(kind: Exclude<JobKind, 'script'>): Promise<void> {
    await this.sleep(this.options.latencies[kind]);
  }
}
