// Files written whole or not at all (a full disk, real and injected), and committed data that survives a damaged
// DuckDB WAL because each stage ends with a checkpoint; a failed COMMIT keeps its own reason.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse, inTransaction } from '../core/adapters/duckdb/warehouse.js';
import { type FileIo, FileWriteError, NODE_FILE_IO, writeFileAtomic } from '../core/files.js';
import { formatPlan, type Plan, planPath, writePlan } from '../core/plan.js';
import type { TableSchema } from '../core/schema/table.js';
import { writeReports } from '../core/stages/report.js';
import type { ValidationReport } from '../core/stages/validation.js';
import { CLI, createWorkspace, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'files-wal-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Everything in a folder but the files a test put there itself: a leftover temporary file shows up here. */
const leftovers = (dir: string, keep: readonly string[]) => readdirSync(dir).filter((f) => !keep.includes(f));

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('writeFileAtomic with an injected failure', () => {
  // Each step of the write fails in turn; the write step fails after half the bytes went out, as a full disk does.
  const failures: [string, Partial<FileIo>][] = [
    [
      'the folder cannot be made',
      {
        mkdir: () => {
          throw enospc();
        },
      },
    ],
    [
      'the temporary file cannot be created',
      {
        open: () => {
          throw enospc();
        },
      },
    ],
    [
      'the disk fills half-way through the write',
      {
        write: (fd, data, offset) => {
          if (offset > 0) throw enospc();
          return NODE_FILE_IO.write(fd, data.subarray(0, Math.floor(data.length / 2)), 0);
        },
      },
    ],
    [
      'fsync fails',
      {
        fsync: () => {
          throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        },
      },
    ],
    [
      'the rename fails',
      {
        rename: () => {
          throw Object.assign(new Error('EXDEV: cross-device link'), { code: 'EXDEV' });
        },
      },
    ],
  ];

  it.each(failures)(
    '%s: the old file stays byte-identical, no temporary file is left, the error names the path',
    (_name, broken) => {
      const dir = tempDir();
      const path = join(dir, '2021-22.json');
      const old = '{"season":"2021-22","dates":[1,2,3]}\n';
      writeFileSync(path, old);
      const io: FileIo = { ...NODE_FILE_IO, ...broken };
      let caught: unknown;
      try {
        writeFileAtomic(path, `{"season":"2021-22","dates":[${'9,'.repeat(5000)}9]}\n`, io);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(FileWriteError);
      expect((caught as FileWriteError).message).toMatch(new RegExp(`^could not write ${path}: `));
      expect((caught as FileWriteError).path).toBe(path);
      expect(readFileSync(path, 'utf8')).toBe(old);
      expect(leftovers(dir, ['2021-22.json'])).toEqual([]);
    },
  );

  it('replaces the old file whole, keeps its mode, and leaves nothing else in the folder', () => {
    const dir = tempDir();
    const path = join(dir, 'summary.json');
    writeFileSync(path, 'old', { mode: 0o600 });
    writeFileAtomic(path, 'new text\n');
    expect(readFileSync(path, 'utf8')).toBe('new text\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(leftovers(dir, ['summary.json'])).toEqual([]);
    writeFileAtomic(join(dir, 'a', 'b', 'c.json'), 'x');
    expect(readFileSync(join(dir, 'a', 'b', 'c.json'), 'utf8')).toBe('x');
  });
});

/** Mounts a tmpfs of `size` at a new folder, or says why it cannot (not root, no mount in the sandbox). */
function mountTmpfs(size: string): { dir: string } | { reason: string } {
  const dir = mkdtempSync(join(tmpdir(), 'files-wal-tmpfs-'));
  const out = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (out.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { reason: `mount -t tmpfs is not allowed here: ${(out.stderr || String(out.error)).trim()}` };
  }
  return { dir };
}

function unmount(dir: string): void {
  spawnSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
}

/** Fills a file system: writes a filler file until the device says it is full. */
function fill(dir: string): void {
  try {
    writeFileSync(join(dir, 'filler'), Buffer.alloc(64 << 20));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
}

const tmpfs = mountTmpfs('64k');
const noMount = 'reason' in tmpfs ? tmpfs.reason : undefined;
// Unmounted at the end of the file even when a filter skips the tests that use it.
afterAll(() => {
  if ('dir' in tmpfs) unmount(tmpfs.dir);
});
if (noMount) process.stderr.write(`filesAndWal: the tmpfs tests are skipped: ${noMount}\n`);

const plan = (games: number): Plan => ({
  season: '2021-22',
  source: 'nba_raw.nbac_schedule',
  totals: { dates: games, games },
  dates: Array.from({ length: games }, (_v, i) => ({
    date: `2021-10-${String(19 + (i % 10)).padStart(2, '0')}`,
    seasonType: 'Regular Season' as const,
    games: 1,
    gameIds: [`00221${String(i).padStart(5, '0')}`],
  })),
});

describe.skipIf(noMount !== undefined)('a full disk (a real 64k tmpfs)', () => {
  const root = 'dir' in tmpfs ? tmpfs.dir : '';
  afterEach(() => {
    rmSync(join(root, 'filler'), { force: true });
  });

  it('a plan too big for the disk leaves the old plan byte-identical; the error names the plan file', async () => {
    const planDir = join(root, 'plans');
    const path = await writePlan(planDir, plan(2));
    const old = readFileSync(path);
    expect(old.toString('utf8')).toBe(formatPlan(plan(2)));
    fill(root);
    await expect(writePlan(planDir, plan(400))).rejects.toThrow(
      new RegExp(`^could not write ${planPath(planDir, '2021-22')}: ENOSPC`),
    );
    expect(readFileSync(path).equals(old)).toBe(true);
    expect(leftovers(planDir, ['2021-22.json'])).toEqual([]);
  });

  it('reports: the old report stays whole and the error names the report file', () => {
    const dir = join(root, 'reports');
    const report = (detail: string): ValidationReport => ({
      seasons: ['2021-22'],
      range: { start: '2021-10-19', end: '2021-10-19' },
      dates: ['2021-10-19'],
      generatedAt: '2024-01-01T00:00:00.000Z',
      passed: false,
      checks: [
        {
          name: 'c',
          category: 'ranges',
          description: 'd',
          passed: false,
          failureCount: 1,
          failures: [{ table: 't', date: '2021-10-19', key: 'k', detail }],
        },
      ],
      coverage: [],
      tables: [],
    });
    const paths = writeReports(report('small'), dir, 'validation-2021-22');
    const old = readFileSync(paths.json);
    fill(root);
    expect(() => writeReports(report('x'.repeat(200_000)), dir, 'validation-2021-22')).toThrow(
      new RegExp(`^could not write ${paths.json}: ENOSPC`),
    );
    expect(readFileSync(paths.json).equals(old)).toBe(true);
  });

  it('DuckDB: a COMMIT that fails on the full disk reports the disk, not the ROLLBACK after it', async () => {
    const table: TableSchema = {
      dataset: 'nba_test',
      name: 'rows',
      description: 't',
      columns: [
        { name: 'game_date', type: 'DATE', description: 'd' },
        { name: 'v', type: 'STRING', description: 'v' },
      ],
      partitionColumn: 'game_date',
      key: ['v'],
      clusterBy: [],
    };
    const big = mountTmpfs('1m');
    if ('reason' in big) throw new Error(big.reason);
    try {
      const w = await DuckDbWarehouse.open(join(big.dir, 'w.duckdb'));
      try {
        await w.ensureTables([table]);
        await w.checkpoint();
        fill(big.dir);
        const rows = Array.from({ length: 20_000 }, (_v, i) => ({
          game_date: '2021-10-19',
          v: `${i}${'x'.repeat(40)}`,
        }));
        const err = await w.commit({ replace: [{ table, date: '2021-10-19', rows }], append: [] }).then(
          () => undefined,
          (e: unknown) => e as Error & { rollbackError?: Error },
        );
        expect(err?.message).toMatch(/No space left on device/);
        expect(err?.message).not.toMatch(/cannot rollback/);
        // The rollback's own failure is kept as secondary information.
        expect(err?.rollbackError?.message).toMatch(/cannot rollback - no transaction is active/);
      } finally {
        await w.close().catch(() => undefined);
      }
    } finally {
      unmount(big.dir);
    }
  });

  it('stage3 --summary-file on the full disk: exit 1 naming the file, the old summary unchanged', async () => {
    await ensureBuilt();
    const ws = createWorkspace();
    try {
      cpSync(join(REPO_ROOT, 'plans'), join(ws.dir, 'plans'), { recursive: true });
      const summary = join(root, 'stage3-2021-22.json');
      const old = '{"status":"succeeded","season":"2021-22"}\n';
      writeFileSync(summary, old);
      fill(root);
      // Nothing is loaded, so the gate fails and Stage 3 writes a gate_failed summary: which cannot fit.
      const out = await ws.cli([
        'stage3',
        '--season',
        '2021-22',
        '--end-date',
        '2021-10-20',
        '--summary-file',
        summary,
      ]);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(new RegExp(`could not write ${summary}: ENOSPC`));
      expect(readFileSync(summary, 'utf8')).toBe(old);
    } finally {
      ws.remove();
    }
  });
});

describe('inTransaction: the reason of a failure is kept', () => {
  const cases: [string, { failOn: string[] }, string, string | undefined][] = [
    ['the body fails, the rollback succeeds', { failOn: ['body'] }, 'body failed', undefined],
    ['COMMIT fails, then ROLLBACK fails', { failOn: ['COMMIT', 'ROLLBACK'] }, 'COMMIT failed', 'ROLLBACK failed'],
    ['the body fails, then ROLLBACK fails', { failOn: ['body', 'ROLLBACK'] }, 'body failed', 'ROLLBACK failed'],
  ];
  it.each(cases)('%s', async (_name, { failOn }, thrown, secondary) => {
    const ran: string[] = [];
    const exec = async (sql: string) => {
      ran.push(sql);
      if (failOn.includes(sql)) throw new Error(`${sql} failed`);
    };
    const err = await inTransaction(exec, async () => {
      ran.push('body');
      if (failOn.includes('body')) throw new Error('body failed');
    }).then(
      () => undefined,
      (e: unknown) => e as Error & { rollbackError?: Error },
    );
    expect(err?.message).toBe(thrown);
    expect(err?.rollbackError?.message).toBe(secondary);
    expect(ran.at(-1)).toBe('ROLLBACK');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The WAL

/** Flips `count` bytes of a file at a fraction of its length: 0 is the WAL header, 0.5 the middle. */
function flipBytes(path: string, at: number, count = 64): void {
  const bytes = readFileSync(path);
  const start = Math.min(Math.floor(bytes.length * at), Math.max(0, bytes.length - count));
  for (let i = start; i < Math.min(start + count, bytes.length); i++) bytes[i] = (bytes[i] as number) ^ 0xff;
  writeFileSync(path, bytes);
}

/**
 * A process that commits `dates` dates of rows through DuckDbWarehouse, checkpoints or not, and is then killed
 * (SIGKILL: no close, so no checkpoint at shutdown), as a run killed mid-stage is.
 */
function commitThenDie(path: string, dates: number, checkpoint: boolean): void {
  const warehouse = join(REPO_ROOT, 'build', 'core', 'adapters', 'duckdb', 'warehouse.js');
  const script = `
    import { DuckDbWarehouse } from ${JSON.stringify(warehouse)};
    const table = { dataset: 'nba_test', name: 'rows', description: 't', partitionColumn: 'game_date', key: ['v'], clusterBy: [],
      columns: [{ name: 'game_date', type: 'DATE', description: 'd' }, { name: 'v', type: 'STRING', description: 'v' }] };
    const w = await DuckDbWarehouse.open(${JSON.stringify(path)});
    await w.ensureTables([table]);
    for (let d = 0; d < ${dates}; d++) {
      const date = '2021-11-' + String(d + 1).padStart(2, '0');
      await w.commit({ replace: [{ table, date, rows: Array.from({ length: 100 }, (_v, i) => ({ game_date: date, v: 'r' + i })) }], append: [] });
    }
    if (${checkpoint}) await w.checkpoint();
    process.kill(process.pid, 'SIGKILL');`;
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(out.signal, out.stderr).toBe('SIGKILL');
}

async function countRows(path: string): Promise<number> {
  const w = await DuckDbWarehouse.open(path);
  try {
    const [tables] = await w.query(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'nba_test' AND table_name = 'rows'",
    );
    if (Number(tables?.n) === 0) return 0;
    const [row] = await w.query('SELECT count(*) AS n FROM nba_test.rows');
    return Number(row?.n);
  } finally {
    await w.close();
  }
}

describe('what DuckDB does with a damaged WAL (the reason for our checkpoints)', () => {
  beforeAll(ensureBuilt, 120_000);

  it('without a checkpoint, a WAL whose header is damaged opens as an empty warehouse: every commit lost', async () => {
    const path = join(tempDir(), 'w.duckdb');
    commitThenDie(path, 5, false);
    expect(statSync(`${path}.wal`).size).toBeGreaterThan(0);
    flipBytes(`${path}.wal`, 0);
    expect(await countRows(path)).toBe(0);
    // The first open that writes (every command creates its tables) then drops the damaged WAL: the commits
    // are gone for good, and nothing said so.
    const w = await DuckDbWarehouse.open(path);
    await w.query('CREATE SCHEMA IF NOT EXISTS nba_test');
    await w.close();
    expect(existsSync(`${path}.wal`)).toBe(false);
  });

  it('without a checkpoint, 64 bytes flipped mid-WAL: the open fails, naming the damaged WAL and what to do', async () => {
    const path = join(tempDir(), 'w.duckdb');
    commitThenDie(path, 5, false);
    flipBytes(`${path}.wal`, 0.5);
    await expect(DuckDbWarehouse.open(path)).rejects.toThrow(
      new RegExp(`write-ahead log ${path}\\.wal is damaged: .*Corrupt WAL file.*move it away`),
    );
    expect(existsSync(`${path}.wal`)).toBe(true);
  });

  it('without a checkpoint, a WAL cut short keeps only its complete entries: later commits lost', async () => {
    const path = join(tempDir(), 'w.duckdb');
    commitThenDie(path, 5, false);
    const wal = readFileSync(`${path}.wal`);
    writeFileSync(`${path}.wal`, wal.subarray(0, Math.floor(wal.length / 2)));
    const n = await countRows(path);
    expect(n).toBeLessThan(500);
  });

  it.each([
    ['the header', 0],
    ['the middle', 0.5],
  ])('after a checkpoint, damage to %s of the WAL (if any) loses nothing', async (_where, at) => {
    const path = join(tempDir(), 'w.duckdb');
    commitThenDie(path, 5, true);
    if (existsSync(`${path}.wal`)) flipBytes(`${path}.wal`, at);
    expect(await countRows(path)).toBe(500);
  });
});

async function stage1Counts(path: string) {
  const w = await DuckDbWarehouse.open(path);
  try {
    const [row] = await w.query(
      `SELECT (SELECT count(*) FROM nba_reference.processor_run_history WHERE status = 'success') AS runs,
              (SELECT count(*) FROM nba_reference.processor_run_history WHERE status <> 'success') AS failed_runs,
              (SELECT count(DISTINCT game_date) FROM nba_raw.nbac_player_boxscore) AS box_dates,
              (SELECT count(*) FROM nba_raw.nbac_player_boxscore) AS box_rows,
              (SELECT count(*) FROM nba_raw.nbac_gamebook_player_stats) AS gamebook_rows`,
    );
    return {
      runs: Number(row?.runs),
      failedRuns: Number(row?.failed_runs),
      boxDates: Number(row?.box_dates),
      boxRows: Number(row?.box_rows),
      gamebookRows: Number(row?.gamebook_rows),
    };
  } finally {
    await w.close();
  }
}

describe('stage1 checkpoints: killed right after it, a damaged WAL loses nothing', () => {
  let ws: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspace();
    cpSync(join(REPO_ROOT, 'plans'), join(ws.dir, 'plans'), { recursive: true });
  }, 120_000);
  afterAll(() => ws?.remove());

  /** Runs stage1 and kills it (SIGKILL) once it prints its summary, which comes after its checkpoint. */
  function stage1ThenKill(args: readonly string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { METADATA_SERVER_DETECTION: 'none', NO_COLOR: '1' };
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BACKFILL_')) env[k] = v;
      const child = spawn(process.execPath, [CLI, 'stage1', ...args], { cwd: ws.dir, env });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (/dates loaded/.test(stdout)) child.kill('SIGKILL');
      });
      child.on('error', reject);
      child.on('close', (code, signal) =>
        signal === 'SIGKILL' ? resolve(stdout) : reject(new Error(`stage1 ended ${code}: ${stdout}`)),
      );
    });
  }

  it('the run history and raw rows of every date are in the database file itself', async () => {
    const out = await stage1ThenKill(['--season', '2021-22', '--end-date', '2021-10-21', '--retry-delay-ms', '0']);
    expect(out).toMatch(/3 of 3 dates loaded/);
    const db = join(ws.dir, '.backfill', 'warehouse.duckdb');
    const wal = `${db}.wal`;
    // After the checkpoint the WAL holds no committed data: none, or an empty one.
    if (existsSync(wal)) expect(statSync(wal).size).toBeLessThan(1024);
    // What the killed run left, read intact from a copy: the reference.
    const intact = join(tempDir(), 'warehouse.duckdb');
    cpSync(db, intact);
    if (existsSync(wal)) cpSync(wal, `${intact}.wal`);
    if (existsSync(wal) && statSync(wal).size > 0) flipBytes(wal, 0);
    const damaged = await stage1Counts(db);
    expect(damaged).toEqual(await stage1Counts(intact));
    expect(damaged).toMatchObject({ boxDates: 3, failedRuns: 0 });
    expect(damaged.runs).toBeGreaterThan(0);
  });
});
