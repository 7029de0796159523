// Test workspaces: a fresh temp working dir, the built `backfill` CLI run inside it, and its adapters opened on it.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Adapters, openAdapters } from '../../core/adapters/index.js';
import { ConfigSchema, DEFAULTS } from '../../core/config.js';
import { RAW_SOURCES, type RawSourceName } from '../../core/pipeline/definition.js';
import { RAW_TABLES } from '../../core/schema/raw.js';
import { qualifiedName, type Row } from '../../core/schema/table.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO_ROOT, 'build', 'cli', 'main.js');

/** Where the default settings keep the warehouse file and the raw files, relative to a workspace. */
const DEFAULT_LOCAL = (() => {
  const { warehouse, objects } = ConfigSchema.parse(DEFAULTS);
  if (warehouse.kind !== 'duckdb' || objects.kind !== 'file') throw new Error('the defaults are not local');
  return { warehouse: warehouse.path, objects: objects.path };
})();

/** The newest modification time of the TypeScript sources the CLI is built from. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function buildIsCurrent(): boolean {
  if (!existsSync(CLI)) return false;
  const built = statSync(CLI).mtimeMs;
  return ['core', 'cli', 'jobs', 'controller'].every((d) => newestSource(join(REPO_ROOT, d)) <= built);
}

/**
 * Builds the CLI when build/cli/main.js is missing or older than its sources. Test files run in parallel
 * forks, so one of them builds while holding a lock folder and the others wait for it.
 */
export async function ensureBuilt(): Promise<void> {
  if (buildIsCurrent()) return;
  const lock = join(REPO_ROOT, 'build', '.test-build.lock');
  mkdirSync(dirname(lock), { recursive: true });
  let owner = false;
  try {
    mkdirSync(lock);
    owner = true;
  } catch {
    // Another test file is building.
  }
  if (owner) {
    try {
      const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
      const out = spawnSync(npm, ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`npm run build failed:\n${out.stdout}\n${out.stderr}`);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
    return;
  }
  const deadline = Date.now() + 110_000;
  while (existsSync(lock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing after waiting for another test file's build`);
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Workspace {
  /** The working directory the CLI runs in; its defaults put everything under ./.backfill and ./plans. */
  readonly dir: string;
  /** Runs `backfill <args>` in the workspace and waits for it to exit. */
  cli(args: readonly string[], env?: Readonly<Record<string, string>>): Promise<CliResult>;
  /** Runs `backfill query <sql> --format json` and returns its rows; throws when the command fails. */
  query(sql: string): Promise<Row[]>;
  /** The path of a date's raw file under the default object store. */
  rawFile(source: RawSourceName, date: string): string;
  /** Opens the workspace's adapters, runs fn, and closes them: never while a CLI process is running. */
  withAdapters<T>(fn: (adapters: Adapters) => Promise<T>): Promise<T>;
  remove(): void;
}

/** The parent environment without BACKFILL_* settings, so only what a test sets reaches the CLI. */
function cleanEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BACKFILL_')) env[k] = v;
  return { ...env, METADATA_SERVER_DETECTION: 'none', NO_COLOR: '1', ...extra };
}

export function runCli(
  cwd: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** A `backfill` process still running: its output so far, a way to wait for a line of it, and its end. */
export interface RunningCli {
  readonly child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** Resolves once stdout matches `pattern`. */
  waitForStdout(pattern: RegExp): Promise<void>;
  /** Resolves once stderr matches `pattern` (progress lines are there: the run's own progress is the hook). */
  waitForStderr(pattern: RegExp): Promise<void>;
  readonly done: Promise<CliResult>;
}

/** Starts `backfill <args>` in `cwd` without waiting for it, so that a test can signal it mid-way. */
export function startCli(cwd: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const text = { stdout: '', stderr: '' };
  type Stream = keyof typeof text;
  const waiters: { pattern: RegExp; stream: Stream; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pattern.test(text[w.stream])) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.setEncoding('utf8').on('data', (d: string) => {
      text[stream] += d;
      check();
    });
  }
  const done = new Promise<CliResult>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, ...text }));
  });
  const waitFor = (stream: Stream, pattern: RegExp) =>
    Promise.race([
      new Promise<void>((resolve) => {
        waiters.push({ pattern, stream, resolve });
        check();
      }),
      done.then((r) => {
        if (!pattern.test(r[stream]))
          throw new Error(
            `backfill exited ${r.code} before printing ${pattern} on ${stream}:\n${r.stdout}\n${r.stderr}`,
          );
      }),
    ]);
  return {
    child,
    output: () => ({ ...text }),
    waitForStdout: (pattern) => waitFor('stdout', pattern),
    waitForStderr: (pattern) => waitFor('stderr', pattern),
    done,
  };
}

/** A workspace holding a copy of the committed plans, as a user's clone has them. */
export function createWorkspaceWithPlans(): Workspace {
  const ws = createWorkspace();
  cpSync(join(REPO_ROOT, 'plans'), join(ws.dir, 'plans'), { recursive: true });
  return ws;
}

/**
 * A new workspace holding a copy of everything in `base` (warehouse, raw files, logs, plans): one CLI run's
 * results shared by several tests, each free to change its own copy. No CLI process may be running in `base`.
 */
export function copyWorkspace(base: Workspace): Workspace {
  const ws = createWorkspace();
  cpSync(base.dir, ws.dir, { recursive: true });
  return ws;
}

export function createWorkspace(): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'backfill-test-'));
  const ws: Workspace = {
    dir,
    cli: (args, env) => runCli(dir, args, env),
    async query(sql) {
      const out = await runCli(dir, ['query', sql, '--format', 'json']);
      if (out.code !== 0) throw new Error(`backfill query exited ${out.code}: ${out.stderr}\nSQL: ${sql}`);
      return JSON.parse(out.stdout) as Row[];
    },
    rawFile(source, date) {
      const s = RAW_SOURCES[source];
      return join(dir, DEFAULT_LOCAL.objects, s.prefix, `game_date=${date}`, s.file);
    },
    async withAdapters(fn) {
      const adapters = await openAdapters(
        ConfigSchema.parse({
          ...DEFAULTS,
          warehouse: `duckdb:${join(dir, DEFAULT_LOCAL.warehouse)}`,
          objects: `file:${join(dir, DEFAULT_LOCAL.objects)}`,
          planDir: join(dir, DEFAULTS.planDir),
          logDir: join(dir, DEFAULTS.logDir),
        }),
      );
      try {
        return await fn(adapters);
      } finally {
        await adapters.close();
      }
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return ws;
}

/** A parsed NBA.com stats response, as Phase 1 writes it. */
export interface StatsFile {
  resultSets: { name: string; headers: string[]; rowSet: (string | number | null)[][] }[];
  [key: string]: unknown;
}

export function readStatsFile(path: string): StatsFile {
  return JSON.parse(readFileSync(path, 'utf8')) as StatsFile;
}

/** Rewrites a game-log file through `edit`, which gets the first result set and a header-to-index lookup. */
export function editGameLog(
  path: string,
  edit: (set: StatsFile['resultSets'][number], col: (header: string) => number) => void,
): void {
  const body = readStatsFile(path);
  const set = body.resultSets[0];
  if (!set) throw new Error(`${path} has no result set`);
  const col = (header: string) => {
    const i = set.headers.indexOf(header);
    if (i < 0) throw new Error(`${path} has no ${header} column`);
    return i;
  };
  edit(set, col);
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`, 'utf8');
}

/** Every nba_raw table's rows for some dates, ordered by date and key, keyed by `dataset.table`. */
export async function rawTableRows(adapters: Adapters, dates: readonly string[]): Promise<Record<string, Row[]>> {
  const out: Record<string, Row[]> = {};
  const params = Object.fromEntries(dates.map((d, i) => [`d${i}`, d]));
  const list = dates.map((_d, i) => `CAST(@d${i} AS DATE)`).join(', ');
  for (const table of RAW_TABLES) {
    out[qualifiedName(table)] = await adapters.warehouse.query(
      `SELECT * FROM ${qualifiedName(table)} WHERE ${table.partitionColumn} IN (${list})
        ORDER BY ${[table.partitionColumn, ...table.key].join(', ')}`,
      params,
    );
  }
  return out;
}
