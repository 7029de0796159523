// Interrupted runs: SIGTERM and SIGINT stop between dates and say so (exit code, message, summary, job status);
// a second signal stops at once; SIGKILL anywhere, then the same command again, leaves every table as an
// uninterrupted run leaves it.

import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GracefulStop, type SignalTarget, sameCommand } from '../cli/signals.js';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { backfillFailureLog, processorRunHistory, RAW_TABLES } from '../core/schema/raw.js';
import { qualifiedName, type TableSchema } from '../core/schema/table.js';
import { type StatsServer, startStatsServer } from './support/statsServer.js';
import { createWorkspaceWithPlans, ensureBuilt, startCli, type Workspace } from './support/workspace.js';

// About two weeks of the 2021-22 regular season: 14 game dates.
const range = [
  '--season',
  '2021-22',
  '--season-type',
  'regular',
  '--start-date',
  '2021-10-19',
  '--end-date',
  '2021-11-01',
];
const fast = ['--retry-delay-ms', '0'];

/** The command a run printed to resume it, as arguments for `ws.cli` (its words hold no spaces here). */
function resumeArgs(stdout: string): string[] {
  const m = /To resume:\n {2}backfill (.+)\n/.exec(stdout);
  if (!m) throw new Error(`no resume command in:\n${stdout}`);
  return (m[1] as string).split(' ');
}

/**
 * A content hash per table, from one query ordered by the table's key. Run history differs between a killed and
 * resumed run and an uninterrupted one by design (the resumed run ran some dates twice, with new ids and times),
 * so it is compared as the latest run of each (processor, date), without its ids and times, and with the fingerprint
 * of what it wrote in place of its details: a run again after a kill finds the dates already loaded unchanged and
 * records `unchanged` runs, which carry the fingerprint over and write nothing.
 */
async function tableHashes(ws: Workspace, tables: readonly TableSchema[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const queries: [string, string][] = [];
  for (const t of tables) {
    let from = `SELECT * FROM ${qualifiedName(t)}`;
    let order = [t.partitionColumn, ...t.key];
    if (t === processorRunHistory) {
      // job_name too: each run's Jobs are named after the run (its run id), like run_id an id, not content.
      // What a run wrote is its fingerprint; how it came to be recorded (processed, or unchanged with the
      // fingerprint carried over) differ with how the work was split.
      from = `SELECT * EXCLUDE (run_id, job_name, started_at, finished_at, rn, details, processing_decision),
                     json_extract(CAST(details AS VARCHAR), '$.fingerprint') AS fingerprint FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY processor_name, data_date
                                             ORDER BY started_at DESC, run_id DESC) AS rn
                  FROM nba_reference.processor_run_history) WHERE rn = 1`;
      order = ['data_date', 'processor_name'];
    } else if (t === backfillFailureLog) {
      from = `SELECT * EXCLUDE (recorded_at) FROM ${qualifiedName(t)}`;
    }
    queries.push([
      qualifiedName(t),
      `SELECT COUNT(*) AS n, md5(COALESCE(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY ${order
        .map((c) => `t.${c}`)
        .join(', ')}), '')) AS h FROM (${from}) AS t`,
    ]);
  }
  // One open of the workspace's warehouse for every table, not one `backfill query` process per table.
  return ws.withAdapters(async (a) => {
    for (const [name, sql] of queries) {
      const [row] = await a.warehouse.query(sql);
      out[name] = `${row?.n} rows, ${row?.h}`;
    }
    return out;
  });
}

const ALL_TABLES = [...RAW_TABLES, processorRunHistory, backfillFailureLog, ...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES];
const DERIVED_TABLES = [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES];

describe('GracefulStop', () => {
  const cases: { name: string; signals: ('SIGINT' | 'SIGTERM')[]; exits: number[]; code: number | undefined }[] = [
    { name: 'no signal: nothing aborted, the exit code is the command’s', signals: [], exits: [], code: undefined },
    { name: 'SIGINT asks to stop and makes the exit code 130', signals: ['SIGINT'], exits: [], code: 130 },
    { name: 'SIGTERM asks to stop and makes the exit code 143', signals: ['SIGTERM'], exits: [], code: 143 },
    { name: 'a second SIGTERM exits at once with 143', signals: ['SIGTERM', 'SIGTERM'], exits: [143], code: 143 },
    { name: 'a second SIGINT exits at once with 130', signals: ['SIGINT', 'SIGINT'], exits: [130], code: 130 },
    { name: 'SIGINT then SIGTERM exits at once with 143', signals: ['SIGINT', 'SIGTERM'], exits: [143], code: 130 },
  ];
  it.each(cases)('$name', ({ signals, exits, code }) => {
    const target = new EventEmitter();
    const exited: number[] = [];
    const set: number[] = [];
    const err: string[] = [];
    const stop = new GracefulStop({
      target: target as SignalTarget,
      exit: (c) => exited.push(c),
      setExitCode: (c) => set.push(c),
      err: { write: (t: string) => err.push(t) },
    });
    for (const s of signals) target.emit(s);
    expect(stop.signal.aborted).toBe(signals.length > 0);
    if (signals.length > 0) expect(stop.signal.reason).toBe(signals[0]);
    expect(exited).toEqual(exits);
    expect(stop.exitCode).toBe(code);
    if (signals.length > 0) expect(err[0]).toMatch(new RegExp(`^received ${signals[0]}: stopping between dates`));
    if (signals.length > 1) expect(err[1]).toMatch(/again: stopping now/);
    stop.finish();
    expect(set).toEqual(code === undefined ? [] : [code]);
    expect(target.listenerCount('SIGINT') + target.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('sameCommand', () => {
  it.each<{ name: string; argv: string[]; overrides: Record<string, string>; want: string }>([
    {
      name: 'as typed',
      argv: ['stage3', '--season', '2021-22'],
      overrides: {},
      want: 'backfill stage3 --season 2021-22',
    },
    {
      name: 'an option moved',
      argv: ['stage1', '--start-date', '2021-10-19', '--parallelism', '1'],
      overrides: { '--start-date': '2021-10-22' },
      want: 'backfill stage1 --start-date 2021-10-22 --parallelism 1',
    },
    {
      name: 'an option given as --flag=value',
      argv: ['stage1', '--start-date=2021-10-19'],
      overrides: { '--start-date': '2021-10-22' },
      want: 'backfill stage1 --start-date 2021-10-22',
    },
    {
      name: 'an option added',
      argv: ['stage1', '--season', '2021-22'],
      overrides: { '--start-date': '2021-10-22' },
      want: 'backfill stage1 --season 2021-22 --start-date 2021-10-22',
    },
    {
      name: 'words a shell would split, quoted',
      argv: ['run', '--config', "my dir/it's.json"],
      overrides: {},
      want: `backfill run --config 'my dir/it'\\''s.json'`,
    },
  ])('$name', ({ argv, overrides, want }) => {
    expect(sameCommand(overrides, argv)).toBe(want);
  });
});

describe('SIGTERM during Stage 1', () => {
  let server: StatsServer;
  let ws: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    server = await startStatsServer(new BundledStatsSource());
    ws = createWorkspaceWithPlans();
  });
  afterAll(async () => {
    await server?.close();
    ws?.remove();
  });

  it('starts no new date, ends the one in progress uncommitted, writes the job status, exits 143 and says how to resume', async () => {
    // The fourth date's first request is held: the date is in progress, deterministically, when the signal comes.
    server.injectFaults([{ match: 'DateFrom=10/22/2021', delayMs: 600_000 }]);
    const args = [
      'stage1',
      ...range,
      ...fast,
      '--parallelism',
      '1',
      '--source',
      server.url,
      '--http-min-interval-ms',
      '0',
      '--http-timeout-ms',
      '600000',
    ];
    const run = startCli(ws.dir, args);
    while (!server.requests.some((r) => r.path.includes('DateFrom=10/22/2021'))) {
      if (run.child.exitCode !== null) throw new Error(`stage1 ended early:\n${run.output().stdout}`);
      await new Promise((r) => setImmediate(r));
    }
    run.child.kill('SIGTERM');
    const out = await run.done;

    expect(out.code).toBe(143);
    expect(out.stderr).toMatch(/received SIGTERM: stopping between dates/);
    // The held index's pod got SIGTERM from the runtime: interrupted, neither completed nor failed.
    expect(out.stderr).toMatch(/2021-10-22 \(index 3\) interrupted, not loaded \(exit 143\)/);
    expect(out.stdout).toMatch(
      /3 of 14 dates loaded, 0 failed, INTERRUPTED: 11 not loaded \(2021-10-22 \.\. 2021-11-01\).*completedIndexes "0-2", failedIndexes ""/,
    );
    expect(resumeArgs(out.stdout)).toEqual(args.map((a, i) => (args[i - 1] === '--start-date' ? '2021-10-22' : a)));

    // No new index started after the signal: no request for a later date, no log of a later index.
    const requested = new Set(
      server.requests.flatMap((r) => {
        const m = /DateFrom=(\d\d)\/(\d\d)\/(\d{4})|[?&]date=(\d{4}-\d\d-\d\d)/.exec(r.path);
        return m ? [m[4] ?? `${m[3]}-${m[1]}-${m[2]}`] : [];
      }),
    );
    expect([...requested].sort()).toEqual(['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22']);
    const jobs = readdirSync(join(ws.dir, '.backfill/logs/jobs'));
    expect(jobs).toHaveLength(1);
    const logs = readdirSync(join(ws.dir, '.backfill/logs/jobs', jobs[0] as string)).filter((f) =>
      f.startsWith('index-'),
    );
    expect(logs.sort()).toEqual(['index-0.log', 'index-1.log', 'index-2.log', 'index-3.log']);

    // The job status is written as usual; the interrupted date is not a failure (retry would not pick it up).
    const log = JSON.parse(readFileSync(join(ws.dir, '.backfill/logs/failures', `${jobs[0]}.json`), 'utf8'));
    expect(log).toMatchObject({ completedIndexes: '0-2', failedIndexes: '', failed: [] });
    await ws.withAdapters(async ({ warehouse }) => {
      expect(await warehouse.query('SELECT COUNT(*) AS n FROM nba_reference.backfill_failure_log')).toEqual([{ n: 0 }]);
      // Nothing of the interrupted date committed.
      expect(
        await warehouse.query(
          `SELECT CAST(game_date AS VARCHAR) AS d FROM nba_raw.nbac_player_boxscore GROUP BY ALL ORDER BY d`,
        ),
      ).toEqual([{ d: '2021-10-19' }, { d: '2021-10-20' }, { d: '2021-10-21' }]);
      expect(
        await warehouse.query(
          `SELECT COUNT(*) AS n FROM nba_reference.processor_run_history WHERE data_date >= '2021-10-22'`,
        ),
      ).toEqual([{ n: 0 }]);
    });

    // The printed command loads the rest.
    const resumed = await ws.cli(resumeArgs(out.stdout));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/11 of 11 dates loaded, 0 failed/);
    const dates = await ws.withAdapters((a) =>
      a.warehouse.query(`SELECT COUNT(DISTINCT game_date) AS n FROM nba_raw.nbac_player_boxscore`),
    );
    expect(dates).toEqual([{ n: 14 }]);
  });
});

describe('interrupted and killed runs, then the same command again', () => {
  // One uninterrupted run over the same dates: the tables every other run must end with.
  let whole: Workspace;
  let wholeHashes: Record<string, string>;
  const made: Workspace[] = [];
  const workspace = () => {
    const ws = createWorkspaceWithPlans();
    made.push(ws);
    return ws;
  };
  beforeAll(async () => {
    await ensureBuilt();
    whole = workspace();
    const out = await whole.cli(['run', ...range, ...fast]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    wholeHashes = await tableHashes(whole, ALL_TABLES);
  }, 120_000);
  afterAll(() => {
    for (const ws of made) ws.remove();
  });

  it('SIGINT during Stage 3: exit 130, the summary says interrupted, and resuming gives the same tables', async () => {
    const ws = workspace();
    expect((await ws.cli(['stage1', ...range, ...fast])).code).toBe(0);
    // Each Stage 3 run writes its summary into its own folder, and prints where.
    const summaryOf = (stdout: string) => join(ws.dir, /^summary: (\S+)$/m.exec(stdout)?.[1] ?? 'no summary line');
    const run = startCli(ws.dir, ['stage3', ...range]);
    await run.waitForStderr(/\[stage3 2021-22\] \d+\/14 done/);
    run.child.kill('SIGINT');
    const out = await run.done;

    expect(out.code).toBe(130);
    expect(out.stderr).toMatch(/received SIGINT: stopping between dates/);
    expect(out.stdout).toMatch(/Stage 3 for 2021-22 INTERRUPTED after \d+ date\(s\)/);
    expect(resumeArgs(out.stdout)).toEqual(['stage3', ...range]);
    const summary = JSON.parse(readFileSync(summaryOf(out.stdout), 'utf8'));
    expect(summary).toMatchObject({ status: 'interrupted', season: '2021-22', dates: 14, resumedFrom: null });
    expect(summary.processed).toBeGreaterThan(0);
    expect(summary.processed).toBeLessThan(14);
    // Every date through completedThrough is complete, and no date after it began (nothing partial).
    const done = await ws.withAdapters((a) =>
      a.warehouse.query(
        `SELECT CAST(data_date AS VARCHAR) AS d, COUNT(DISTINCT processor_name) AS n
           FROM nba_reference.processor_run_history WHERE phase >= 3 GROUP BY ALL ORDER BY d`,
      ),
    );
    expect(done).toHaveLength(summary.processed);
    expect(done.at(-1)?.d).toBe(summary.completedThrough);
    expect(new Set(done.map((r) => r.n)).size).toBe(1);

    const resumed = await ws.cli(resumeArgs(out.stdout));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/resumed at 2021-1/);
    expect(JSON.parse(readFileSync(summaryOf(resumed.stdout), 'utf8'))).toMatchObject({
      status: 'succeeded',
      completedThrough: '2021-11-01',
    });
    const derived = await tableHashes(ws, DERIVED_TABLES);
    expect(derived).toEqual(Object.fromEntries(Object.keys(derived).map((k) => [k, wholeHashes[k]])));
  }, 120_000);

  it.each([
    {
      signal: 'SIGINT' as const,
      code: 130,
      hook: /\[stage1 2021-22\] \d+\/14 done/,
      stopped: 'stopped in Stage 1 of 2021-22',
      notReached: '== quality gate',
    },
    {
      signal: 'SIGTERM' as const,
      code: 143,
      hook: /\[stage3 2021-22\] \d+\/14 done/,
      stopped: 'stopped in Stage 3 of 2021-22',
      notReached: '== stage 4',
    },
  ])(
    '$signal of run while the reconcile drives it: exit $code, no later decision, and its resume command ends the run',
    async ({ signal, code, hook, stopped, notReached }) => {
      const ws = workspace();
      const run = startCli(ws.dir, ['run', ...range, ...fast]);
      await run.waitForStderr(hook);
      run.child.kill(signal);
      const out = await run.done;
      expect(out.code, out.stdout + out.stderr).toBe(code);
      expect(out.stdout).toContain(stopped);
      expect(out.stdout).not.toContain(notReached);
      expect(resumeArgs(out.stdout)).toEqual(['run', ...range, ...fast]);

      const resumed = await ws.cli(resumeArgs(out.stdout));
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
      expect(resumed.stdout).toMatch(/== done: every stage PASSED/);
      const derived = await tableHashes(ws, DERIVED_TABLES);
      expect(derived).toEqual(Object.fromEntries(Object.keys(derived).map((k) => [k, wholeHashes[k]])));
    },
    120_000,
  );

  it.each([
    { stage: 'Stage 1', hook: /\[stage1 2021-22\] \d+\/14 done/, notReached: '== quality gate' },
    { stage: 'Stage 3', hook: /\[stage3 2021-22\] \d+\/14 done/, notReached: '== stage 4' },
  ])(
    'SIGKILL of run during $stage, then run again: every table hashes as in an uninterrupted run',
    async ({ hook, notReached }) => {
      const ws = workspace();
      const run = startCli(ws.dir, ['run', ...range, ...fast]);
      await run.waitForStderr(hook);
      run.child.kill('SIGKILL');
      const killed = await run.done;
      expect(killed.code).toBeNull();
      expect(killed.stdout).not.toContain(notReached);
      expect(existsSync(join(ws.dir, '.backfill/warehouse.duckdb'))).toBe(true);

      const again = await ws.cli(['run', ...range, ...fast]);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(await tableHashes(ws, ALL_TABLES)).toEqual(wholeHashes);
    },
    120_000,
  );
});
