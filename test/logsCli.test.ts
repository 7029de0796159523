// Runs with their own names, through the real CLI: two runs of the same dates keep their own job folders, logs,
// failure logs and Stage 3 summaries; `backfill logs` shows the latest run (or --all), for people or as JSON.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, createWorkspaceWithPlans, ensureBuilt, type Workspace } from './support/workspace.js';

const range = ['--season', '2021-22', '--start-date', '2021-10-19', '--end-date', '2021-10-21'];
const fast = ['--retry-delay-ms', '0'];
const A = '20260101-000000000-aaaa';
const B = '20260102-000000000-bbbb';
const C = '20260103-000000000-cccc';
const D = '20260104-000000000-dddd';
const E = '20260105-000000000-eeee';
const job = (purpose: string, run: string) => `nba-${purpose}-202122-${run}`;
const runAs = (id: string) => ({ BACKFILL_RUN_ID: id });

describe('two runs of the same dates, then Stage 3', () => {
  let ws: Workspace;
  let a: CliResult;
  let b: CliResult;
  let c: CliResult;
  let d: CliResult;
  let summaryOfC: string;
  const jobs = () => join(ws.dir, '.backfill/logs/jobs');
  const failureLog = (name: string) =>
    JSON.parse(readFileSync(join(ws.dir, '.backfill/logs/failures', `${name}.json`), 'utf8')) as {
      jobName: string;
      failed: { date: string; logs: string }[];
    };
  const indexLog = (name: string, index: number) => readFileSync(join(jobs(), name, `index-${index}.log`), 'utf8');

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    const faults = join(ws.dir, 'faults.json');
    writeFileSync(faults, JSON.stringify({ permanent: ['2021-10-20'] }));
    a = await ws.cli(['stage1', ...range, ...fast, '--faults', faults], runAs(A));
    b = await ws.cli(['stage1', ...range, ...fast], runAs(B));
    c = await ws.cli(['stage3', ...range], runAs(C));
    summaryOfC = readFileSync(join(jobs(), job('stage3', C), 'summary.json'), 'utf8');
    // A second Stage 3 of the same dates, with nothing left to do.
    d = await ws.cli(['stage3', ...range], runAs(D));
  }, 120_000);
  afterAll(() => ws.remove());

  it('gives each run its own job name, job folder and failure log', () => {
    expect(a.code).toBe(1);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout).toContain(`2021-22: job ${job('stage1', A)}: 2 of 3 dates loaded, 1 failed`);
    // The two dates the first run loaded are not written again; the one it failed is.
    expect(b.stdout).toContain(
      `2021-22: job ${job('stage1', B)}: 3 of 3 dates loaded (2 unchanged since their last load: not written again; --force writes them), 0 failed`,
    );
    expect(readdirSync(jobs()).sort()).toEqual([
      job('stage1', A),
      job('stage1', B),
      job('stage3', C),
      job('stage3', D),
    ]);
    // A's failure log still says what failed in A; B's, written by the run that fixed it, lists nothing.
    expect(failureLog(job('stage1', A)).failed.map((f) => [f.date, f.logs])).toEqual([
      ['2021-10-20', join(jobs(), job('stage1', A), 'index-1.log')],
    ]);
    expect(failureLog(job('stage1', B))).toMatchObject({ jobName: job('stage1', B), failed: [] });
    // Each run's pods logged under their own job name only.
    expect(indexLog(job('stage1', A), 1)).toMatch(/injected fault/);
    expect(indexLog(job('stage1', B), 1)).not.toMatch(/injected fault/);
    expect(indexLog(job('stage1', B), 1)).not.toContain(job('stage1', A));
  });

  it('failures, retry --from-log and run history see the latest run', async () => {
    expect((await ws.cli(['failures', '--season', '2021-22'])).stdout).toBe('no failing dates in 2021-22\n');
    const file = join(ws.dir, '.backfill/logs/failures', `${job('stage1', B)}.json`);
    const retry = await ws.cli(['retry', '--from-log', file, ...fast], runAs(E));
    expect(retry.stdout).toBe('2021-22: no failed dates to retry\n');
    expect(retry.code).toBe(0);
    const names = await ws.query(
      `SELECT DISTINCT job_name FROM nba_reference.processor_run_history
        WHERE data_date = DATE '2021-10-20' AND job_name IS NOT NULL ORDER BY job_name`,
    );
    expect(names.map((r) => r.job_name)).toEqual([job('stage1', A), job('stage1', B)]);
  });

  it("Stage 3 keeps one log per date it ran and its summary in its run's folder", async () => {
    expect(c.code, c.stderr).toBe(0);
    const summary = join('.backfill/logs/jobs', job('stage3', C), 'summary.json');
    expect(c.stdout).toContain(`summary: ${summary}\n`);
    expect(JSON.parse(readFileSync(join(ws.dir, summary), 'utf8'))).toMatchObject({ status: 'succeeded' });
    expect(readdirSync(join(jobs(), job('stage3', C))).sort()).toEqual([
      'index-0.log',
      'index-1.log',
      'index-2.log',
      'job-plan.json',
      'summary.json',
    ]);
    expect(indexLog(job('stage3', C), 2)).toMatch(/"processor":"ml_feature_store","date":"2021-10-21"/);
    // The second Stage 3 of the same dates (nothing left to do) wrote its own summary; C's stayed as it was.
    expect(d.stdout).toContain(`summary: ${join('.backfill/logs/jobs', job('stage3', D), 'summary.json')}\n`);
    expect(readFileSync(join(ws.dir, summary), 'utf8')).toBe(summaryOfC);
    expect(readdirSync(join(jobs(), job('stage3', D))).sort()).toEqual(['job-plan.json', 'summary.json']);
  });

  it("`logs <date>` shows the latest run that logged the date: a Stage 3 date's own log", async () => {
    const out = await ws.cli(['logs', '2021-10-20']);
    expect(out.code, out.stderr).toBe(0);
    const file = join('.backfill/logs/jobs', job('stage3', C), 'index-1.log');
    expect(out.stdout.split('\n')[0]).toBe(`== run ${C} (job ${job('stage3', C)}, index 1): ${file}`);
    expect(out.stdout.split('\n').filter((l) => l.startsWith('=='))).toHaveLength(1);
    const processors = ['player_game_summary', 'team_offense_game_summary', 'team_defense_game_summary'];
    for (const p of [...processors, 'player_daily_cache', 'player_composite_factors', 'ml_feature_store']) {
      expect(out.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO  ${p}: processor succeeded$`, 'm'));
    }
  });

  it('--all shows every run oldest first, each headed by its run id; --json the raw lines of the files', async () => {
    const all = await ws.cli(['logs', '2021-10-20', '--all']);
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n').filter((l) => l.startsWith('=='))).toEqual([
      `== run ${A} (job ${job('stage1', A)}, index 1): ${join('.backfill/logs/jobs', job('stage1', A), 'index-1.log')}`,
      `== run ${B} (job ${job('stage1', B)}, index 1): ${join('.backfill/logs/jobs', job('stage1', B), 'index-1.log')}`,
      `== run ${C} (job ${job('stage3', C)}, index 1): ${join('.backfill/logs/jobs', job('stage3', C), 'index-1.log')}`,
    ]);
    expect(all.stdout).toMatch(/ ERROR nbac_player_game_log_scraper: processor failed: injected fault/);
    const json = await ws.cli(['logs', '2021-10-20', '--all', '--json']);
    expect(json.stdout).toBe(
      [indexLog(job('stage1', A), 1), indexLog(job('stage1', B), 1), indexLog(job('stage3', C), 1)].join(''),
    );
    const tail = await ws.cli(['logs', '2021-10-20', '--json', '--tail', '2']);
    expect(tail.stdout).toBe(`${indexLog(job('stage3', C), 1).trimEnd().split('\n').slice(-2).join('\n')}\n`);
  });

  it('a date no run logged, or in no season: exit 2 naming the date and what exists', async () => {
    const none = await ws.cli(['logs', '2021-10-22']);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(
      `error: no run has logs for 2021-10-22 in .backfill/logs/jobs; the jobs there, newest first:\n` +
        `  ${D}  ${job('stage3', D)}  2021-22, 3 date(s) 2021-10-19..2021-10-21\n` +
        `  ${C}  ${job('stage3', C)}  2021-22, 3 date(s) 2021-10-19..2021-10-21\n` +
        `  ${B}  ${job('stage1', B)}  2021-22, 3 date(s) 2021-10-19..2021-10-21\n` +
        `  ${A}  ${job('stage1', A)}  2021-22, 3 date(s) 2021-10-19..2021-10-21\n`,
    );
    const unknown = await ws.cli(['logs', '2021-07-01']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error: unknown date 2021-07-01: it is in no season \(2021-22: 2021-10-19\.\./);
    const other = await ws.cli(['logs', '2021-10-20', '--season', '2022-23']);
    expect(other.code).toBe(2);
    expect(other.stderr).toBe(
      'error: 2021-10-20 is in season 2021-22, not 2022-23: give --season 2021-22, or leave --season out\n',
    );
    const all = await ws.cli(['logs', '2021-10-20', '--season', 'all']);
    expect(all.code).toBe(2);
    expect(all.stderr).toBe(
      'error: --season all: logs reads one date of one season; 2021-10-20 is in 2021-22 (leave --season out, or give --season 2021-22)\n',
    );
    const empty = await ws.cli(['logs', '2021-10-20', '--log-dir', 'nowhere']);
    expect(empty.stderr).toBe('error: no run has logs for 2021-10-20: nowhere/jobs holds no job folder yet\n');
  });
});

describe('`backfill logs` output, exactly', () => {
  let ws: Workspace;
  const T = '2026-12-01T10:15:30.1';
  const line = (ms: number, level: number, msg: string, processor?: string) =>
    JSON.stringify({ level, time: `${T}${ms}0Z`, ...(processor ? { processor } : {}), msg });

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    // Two runs' folders as the runtime writes them, with known lines.
    const write = (name: string, runId: string, dates: string[], logs: Record<number, string[]>) => {
      const dir = join(ws.dir, 'logs', 'jobs', name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'job-plan.json'), JSON.stringify({ jobName: name, season: '2021-22', dates, runId }));
      for (const [i, lines] of Object.entries(logs))
        writeFileSync(join(dir, `index-${i}.log`), `${lines.join('\n')}\n`);
    };
    write(job('stage1', A), A, ['2021-11-01', '2021-11-02'], {
      1: [line(1, 30, 'index started'), line(2, 50, 'processor failed', 'nbac_schedule'), 'killed'],
    });
    write(job('retry', B), B, ['2021-11-02'], {
      0: [line(3, 30, 'index started'), line(4, 30, 'processor succeeded', 'nbac_schedule'), line(5, 30, 'done')],
    });
  });
  afterAll(() => ws.remove());

  const logs = (...args: string[]) => ws.cli(['logs', '2021-11-02', '--log-dir', 'logs', ...args]);
  const headA = `== run ${A} (job ${job('stage1', A)}, index 1): logs/jobs/${job('stage1', A)}/index-1.log\n`;
  const headB = `== run ${B} (job ${job('retry', B)}, index 0): logs/jobs/${job('retry', B)}/index-0.log\n`;

  it.each([
    {
      name: 'the latest run only, by default',
      args: [],
      out: `${headB}${T}30Z INFO  index started\n${T}40Z INFO  nbac_schedule: processor succeeded\n${T}50Z INFO  done\n`,
    },
    {
      name: '--all: every run, oldest first',
      args: ['--all'],
      out:
        `${headA}${T}10Z INFO  index started\n${T}20Z ERROR nbac_schedule: processor failed\nkilled\n` +
        `${headB}${T}30Z INFO  index started\n${T}40Z INFO  nbac_schedule: processor succeeded\n${T}50Z INFO  done\n`,
    },
    {
      name: '--all --tail 1: the last line of each',
      args: ['--all', '--tail', '1'],
      out: `${headA}killed\n${headB}${T}50Z INFO  done\n`,
    },
    {
      name: '--json: the raw lines, no header',
      args: ['--json'],
      out: `${line(3, 30, 'index started')}\n${line(4, 30, 'processor succeeded', 'nbac_schedule')}\n${line(5, 30, 'done')}\n`,
    },
    {
      name: '--json --tail 2 --season 2021-22',
      args: ['--json', '--tail', '2', '--season', '2021-22'],
      out: `${line(4, 30, 'processor succeeded', 'nbac_schedule')}\n${line(5, 30, 'done')}\n`,
    },
  ])('$name', async ({ args, out }) => {
    const r = await logs(...args);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(out);
    expect(r.code).toBe(0);
  });

  it.each([
    { name: '--tail 0', args: ['--tail', '0'], err: 'error: --tail 0: must be a whole number >= 1\n' },
    { name: '--tail x', args: ['--tail', 'x'], err: 'error: --tail x: must be a whole number >= 1\n' },
    {
      name: '--json with --cluster',
      args: ['--json', '--cluster'],
      err: 'error: --json and --tail read the logs on this machine, not with --cluster\n',
    },
  ])('refuses $name: exit 2', async ({ args, err }) => {
    const r = await logs(...args);
    expect(r.stderr).toBe(err);
    expect(r.code).toBe(2);
  });
});

describe('run ids at the Job name limit, through stage1', () => {
  let ws: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
  });
  afterAll(() => ws.remove());
  const one = ['stage1', '--season', '2021-22', '--start-date', '2021-10-19', '--end-date', '2021-10-19', ...fast];

  it('a 45-character run id makes a 63-character job name, which runs', async () => {
    const id = `r${'0'.repeat(43)}9`;
    const out = await ws.cli(one, runAs(id));
    expect(out.code, out.stderr).toBe(0);
    const name = `nba-stage1-202122-${id}`;
    expect(name).toHaveLength(63);
    expect(out.stdout).toContain(`2021-22: job ${name}: 1 of 1 dates loaded`);
    expect(existsSync(join(ws.dir, '.backfill/logs/jobs', name, 'index-0.log'))).toBe(true);
  });

  it.each([
    { name: '46 characters', id: `r${'0'.repeat(44)}9`, says: 'at most 45 characters (it has 46)' },
    { name: 'upper case', id: 'Run-1', says: "a run id is lowercase letters, digits and '-'" },
  ])('a run id of $name: exit 2 naming BACKFILL_RUN_ID, and no job folder', async ({ id, says }) => {
    const out = await ws.cli(one, runAs(id));
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`error: BACKFILL_RUN_ID "${id}": `);
    expect(out.stderr).toContain(says);
    expect(readdirSync(join(ws.dir, '.backfill/logs/jobs')).filter((d) => d.includes(id))).toEqual([]);
  });
});
