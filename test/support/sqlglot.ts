// sqlglot for the tests: one long-lived python3 process (test/support/sqlglot_bigquery.py) that parses
// BigQuery SQL, checks it and rewrites it for DuckDB, spoken to in JSON lines.

import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'sqlglot_bigquery.py');

/**
 * The python interpreter that can import sqlglot. Debian's python3-sqlglot installs for the system python
 * (/usr/bin/python3), which a pyenv or venv `python3` earlier on PATH does not see; SQLGLOT_PYTHON overrides.
 */
export function sqlglotPython(): string {
  const candidates = [process.env.SQLGLOT_PYTHON, 'python3', '/usr/bin/python3', '/usr/local/bin/python3', 'python'];
  const tried: string[] = [];
  for (const candidate of candidates) {
    if (!candidate || tried.includes(candidate)) continue;
    tried.push(candidate);
    const out = spawnSync(candidate, ['-c', 'import sqlglot'], { encoding: 'utf8' });
    if (out.status === 0) return candidate;
  }
  throw new Error(
    `no python with sqlglot found (tried ${tried.join(', ')}): install Debian's python3-sqlglot ` +
      '(apt-get install -y python3-sqlglot) or set SQLGLOT_PYTHON to an interpreter that has it',
  );
}

export interface TableRef {
  readonly project: string | null;
  readonly dataset: string | null;
  readonly table: string;
}

/** What sqlglot found in one statement. */
export interface StatementInfo {
  /** select, insert, delete, begin, commit, rollback, ... */
  readonly kind: string;
  /** The type BigQuery's dry run reports for it alone (JobStatistics2.statementType): SELECT, CREATE_TABLE, ... */
  readonly statementType: string;
  readonly tables: readonly TableRef[];
  readonly parameters: readonly string[];
  /** Things GoogleSQL does not accept or that break the project's rules (a value written into the SQL). */
  readonly problems: readonly string[];
  /** Tables read without a constant filter on their partition column. */
  readonly unprunedScans: readonly string[];
  /** The table an INSERT or DELETE writes. */
  readonly target?: TableRef;
  /** The table or view a CREATE makes (it need not exist yet). */
  readonly creates?: TableRef;
  /** The statement for DuckDB, when asked. */
  readonly duckdb?: string;
  /** The tables the statement reads, for bytes billed (with `duckdb`). */
  readonly scans?: readonly TableScan[];
}

/** One table a statement reads. */
export interface TableScan {
  readonly dataset: string;
  readonly table: string;
  /** The columns referenced from it; null: all of them (`SELECT *`). */
  readonly columns: readonly string[] | null;
  /** The partitions read, as a DuckDB condition on the partition column; null: every partition. */
  readonly where: string | null;
  /** A DELETE's target: every column of the partitions it deletes from counts as well. */
  readonly whole: boolean;
}

export interface ScalarParameter {
  readonly type: string;
  readonly value: string | number | boolean | null;
}

export interface PrepareRequest {
  readonly sql: string;
  readonly project: string;
  /** `dataset.table` -> partition column, for the pruning check. */
  readonly tables?: Readonly<Record<string, string>>;
  /** Rewrite for DuckDB too (needs every parameter). @default true */
  readonly transpile?: boolean;
  readonly scalars?: Readonly<Record<string, ScalarParameter>>;
  /** ARRAY parameters read with UNNEST(@name), as the DuckDB tables holding their rows. */
  readonly arrays?: Readonly<Record<string, string>>;
}

export class SqlglotError extends Error {
  override readonly name = 'SqlglotError';
}

export class Sqlglot {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly version: string,
  ) {}

  static async start(): Promise<Sqlglot> {
    const child = spawn(sqlglotPython(), [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const glot = new Sqlglot(child, '');
    createInterface({ input: child.stdout }).on('line', (line) => glot.answer(line));
    child.stderr.on('data', (d: Buffer) => {
      glot.stderr = (glot.stderr + d.toString()).slice(-4000);
    });
    child.on('exit', (code) => {
      for (const w of glot.waiting.values()) w.reject(new SqlglotError(`sqlglot exited (${code}): ${glot.stderr}`));
      glot.waiting.clear();
    });
    const pong = (await glot.call('ping', {})) as { sqlglot: string };
    (glot as { version: string }).version = pong.sqlglot;
    return glot;
  }

  private answer(line: string): void {
    const msg = JSON.parse(line) as { id: number; ok: boolean; result?: unknown; error?: string };
    const w = this.waiting.get(msg.id);
    if (!w) return;
    this.waiting.delete(msg.id);
    if (msg.ok) w.resolve(msg.result);
    else w.reject(new SqlglotError(msg.error ?? 'sqlglot failed'));
  }

  private call(op: string, body: object): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...body })}\n`);
    });
  }

  /** Parses BigQuery SQL (one statement or a script) and checks it; rewrites it for DuckDB unless told not to. */
  async prepare(request: PrepareRequest): Promise<StatementInfo[]> {
    const result = (await this.call('prepare', request)) as { statements: StatementInfo[] };
    return result.statements;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    await exited;
  }
}
