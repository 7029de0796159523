// Where a command's JSON log goes (the logFile setting): the log folder's backfill.log by default, standard
// error, standard output (the Stage 3 pod's) or a file; and `stage3 --job-name`, which names the Job in its lines.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, createWorkspaceWithPlans, ensureBuilt, type Workspace } from './support/workspace.js';

type Line = Record<string, unknown>;
const PROCESS = ['process', '--phase', '1', '--date', '2021-10-19', '--skip-downstream-trigger'];

/** The JSON lines of a stream or file, and its other lines. */
function split(text: string): { json: Line[]; other: string[] } {
  const all = text.split('\n').filter(Boolean);
  return {
    json: all.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line),
    other: all.filter((l) => !l.startsWith('{')),
  };
}

describe('the logFile setting', () => {
  let ws: Workspace;
  beforeAll(ensureBuilt, 120_000);
  afterEach(() => ws?.remove());

  const processorLines = (lines: Line[]) => lines.filter((l) => l.msg === 'processor succeeded');
  const read = (ws: Workspace, path: string) => readFileSync(join(ws.dir, path), 'utf8');

  it.each([
    {
      name: 'unset: the log folder',
      args: [] as string[],
      env: {} as Record<string, string>,
      where: (_out: CliResult, ws: Workspace) => read(ws, '.backfill/logs/backfill.log'),
    },
    { name: '- : standard error', args: ['--log-file', '-'], env: {}, where: (out: CliResult) => out.stderr },
    {
      name: '/dev/stderr: standard error',
      args: [],
      env: { BACKFILL_LOG_FILE: '/dev/stderr' },
      where: (out: CliResult) => out.stderr,
    },
    {
      name: "/dev/stdout: standard output, after the command's own lines",
      args: ['--log-file', '/dev/stdout'],
      env: {} as Record<string, string>,
      where: (out: CliResult) => out.stdout,
    },
    {
      name: 'a file in a folder not there yet',
      args: ['--log-file', 'logs/here/x.log'],
      env: {} as Record<string, string>,
      where: (_out: CliResult, ws: Workspace) => read(ws, 'logs/here/x.log'),
    },
    {
      name: 'the flag over the environment',
      args: ['--log-file', 'flag.log'],
      env: { BACKFILL_LOG_FILE: '-' },
      where: (_out: CliResult, ws: Workspace) => read(ws, 'flag.log'),
    },
  ])('$name', async (c) => {
    ws = createWorkspaceWithPlans();
    const out = await ws.cli([...PROCESS, ...c.args], c.env);
    expect(out.code).toBe(0);
    const { json } = split(c.where(out, ws));
    // One line per Phase 1 scraper, each graded and with the command, processor and date.
    expect(processorLines(json).length).toBeGreaterThanOrEqual(2);
    for (const l of json) expect(l).toMatchObject({ service: 'nba-backfill', command: 'process', severity: 'INFO' });
    // Nowhere else: the other stream has no JSON line, and the default file is only written by default.
    const streams = [out.stdout, out.stderr].filter((s) => s !== c.where(out, ws));
    for (const s of streams) expect(split(s).json).toEqual([]);
    expect(existsSync(join(ws.dir, '.backfill/logs/backfill.log'))).toBe(
      c.args.length === 0 && !('BACKFILL_LOG_FILE' in c.env),
    );
    // The command's output for people stays on stdout.
    expect(split(out.stdout).other.length).toBeGreaterThan(0);
  });
});

describe('backfill stage3 --job-name', () => {
  let ws: Workspace;
  beforeAll(ensureBuilt, 120_000);
  afterEach(() => ws?.remove());

  it.each([
    {
      name: 'with --season all',
      args: ['--season', 'all', '--job-name', 'nba-stage3-202122-abc'],
      message: /--job-name nba-stage3-202122-abc names one season's Stage 3 Job: give --season S/,
    },
    {
      name: 'not a DNS-1123 label',
      args: ['--season', '2021-22', '--job-name', 'Stage3_Job'],
      message: /job name "Stage3_Job": must be lowercase letters, digits and '-'/,
    },
    {
      name: 'longer than 63 characters',
      args: ['--season', '2021-22', '--job-name', `nba-stage3-${'x'.repeat(60)}`],
      message: /has 71 characters: at most 63/,
    },
  ])('refuses a job name $name (exit 2), before anything runs', async (c) => {
    ws = createWorkspaceWithPlans();
    const out = await ws.cli(['stage3', ...c.args]);
    expect(out.stderr).toMatch(c.message);
    expect(out.code).toBe(2);
    expect(existsSync(join(ws.dir, '.backfill/logs/jobs'))).toBe(false);
  });
});
