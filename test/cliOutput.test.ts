// What the commands print and where: help with examples, global options and exit codes; --format json as one
// document on stdout with the words on stderr; colour only when asked for; run --dry-run writing nothing.

import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../cli/help.js';
import { createWorkspace, createWorkspaceWithPlans, ensureBuilt, type Workspace } from './support/workspace.js';

const COMMANDS = [
  'run',
  'plan',
  'stage1',
  'failures',
  'retry',
  'gate',
  'logs',
  'stage3',
  'validate',
  'status',
  'process',
  'query',
  'pipeline',
];
const GLOBAL = ['--warehouse <url>', '--config <file>', '--faults <file|json>', '--log-level <level>'];
/** The first two regular-season dates of 2021-22, and the third. */
const TWO = ['--season', '2021-22', '--season-type', 'regular', '--end-date', '2021-10-20'];

let ws: Workspace;
beforeAll(async () => {
  await ensureBuilt();
  ws = createWorkspaceWithPlans();
});
afterAll(() => ws?.remove());

/** Every file under `dir` with its size and modification time: what "writes nothing" is checked against. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out[`${relative(dir, p)}/`] = 'dir';
        walk(p);
      } else {
        const s = statSync(p);
        out[relative(dir, p)] = `${s.size} ${s.mtimeMs}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** The long option names a command's help lists (its own and the global ones). */
function optionsOf(help: string): Set<string> {
  return new Set([...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1] as string));
}

describe('--help of every command', () => {
  it.each(COMMANDS)('%s: examples that use its options, the global options, exit codes 0/1/2', async (name) => {
    const out = await ws.cli([name, '--help']);
    expect(out.code).toBe(0);
    const help = out.stdout;
    expect(help).toContain('Global Options:');
    for (const g of GLOBAL) expect(help).toContain(g);
    expect(help).toMatch(/Exit codes:\n {2}0 {2}success\n {2}1 {2}\S.*\n {2}2 {2}bad input or usage/);
    const examples = EXAMPLES[name] ?? [];
    expect(examples.length).toBeGreaterThanOrEqual(2);
    expect(help).toContain(`Examples:\n${examples.map((e) => `  $ ${e}`).join('\n')}`);
    // Each example is this command, and names only options its help lists.
    const known = optionsOf(help);
    for (const e of examples) {
      expect(e.startsWith(`backfill ${name}`)).toBe(true);
      for (const flag of e.match(/(?<=\s)--[\w-]+/g) ?? []) expect(known, `${e}: ${flag}`).toContain(flag);
    }
  });

  it('marks required options, and only those', async () => {
    const stage1 = (await ws.cli(['stage1', '--help'])).stdout;
    expect(stage1).toMatch(/--season <season>\s+\(required\) season/);
    expect(stage1).not.toMatch(/--season-type <type>\s+\(required\)/);
    const status = (await ws.cli(['status', '--help'])).stdout;
    expect(status).not.toContain('(required)');
  });

  it('names 130 and 143 on the commands that stop between dates, and only there', async () => {
    expect((await ws.cli(['stage3', '--help'])).stdout).toContain('130, 143  interrupted by SIGINT, SIGTERM');
    expect((await ws.cli(['gate', '--help'])).stdout).not.toContain('130, 143');
  });
});

describe('--format', () => {
  it.each(['run', 'stage1', 'stage3', 'validate', 'pipeline'])(
    '%s refuses a format it does not print (exit 2, the choices)',
    async (name) => {
      const args = name === 'pipeline' ? [name] : [name, '--season', '2021-22'];
      const out = await ws.cli([...args, '--format', 'yaml']);
      expect(out.code).toBe(2);
      expect(out.stderr).toContain("argument 'yaml' is invalid. Allowed choices are table, json.");
      expect(out.stdout).toBe('');
    },
  );

  it('pipeline --format json: its seasons, phases and processors, upstream as lists', async () => {
    const out = await ws.cli(['pipeline', '--format', 'json']);
    expect(out.code).toBe(0);
    const doc = JSON.parse(out.stdout) as { processors: { processor: string; upstream: string[] }[] };
    const summary = doc.processors.find((p) => p.processor === 'player_game_summary');
    expect(summary?.upstream).toContain('nba_raw.nbac_player_boxscore');
    expect(doc.processors).toHaveLength(14);
  });
});

describe('stdout holds the result, stderr the rest', () => {
  it('stage1, stage3, validate and run in JSON: one document on stdout, progress and words on stderr', async () => {
    const s1 = await ws.cli(['stage1', ...TWO, '--format', 'json']);
    expect(s1.code, s1.stderr).toBe(0);
    const one = JSON.parse(s1.stdout);
    expect(one).toMatchObject({ interrupted: null, resume: null, exitCode: 0 });
    expect(one.seasons[0]).toMatchObject({ season: '2021-22', dates: 2, loaded: 2, failed: [], notLoaded: [] });
    expect(s1.stderr).toContain('[stage1 2021-22] 2/2 done, 0 failed');
    expect(s1.stderr).toContain('2 of 2 dates loaded');

    const s3 = await ws.cli(['stage3', ...TWO, '--format', 'json']);
    expect(s3.code, s3.stderr).toBe(0);
    const three = JSON.parse(s3.stdout);
    expect(three.seasons[0]).toMatchObject({ status: 'succeeded', season: '2021-22', completedThrough: '2021-10-20' });
    expect(three.seasons[0].summaryFile).toMatch(/summary\.json$/);

    const v = await ws.cli(['validate', ...TWO, '--format', 'json']);
    expect(v.code, v.stderr).toBe(0);
    const report = JSON.parse(v.stdout);
    expect(report).toMatchObject({ passed: true, exitCode: 0 });
    expect(report.files.html).toMatch(/validation-2021-22\.html$/);
    expect(v.stderr).toContain('VALIDATION PASSED');

    const run = await ws.cli(['run', ...TWO, '--format', 'json']);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ dryRun: false, outcome: 'passed', next: [], exitCode: 0 });
    expect(doc.decisions.map((d: { stage: string }) => d.stage)).toEqual([
      'stage 1',
      'quality gate',
      'gate verdict',
      'stage 3',
      'stage 4',
    ]);
    expect(doc.seasons[0]).toMatchObject({
      season: '2021-22',
      plan: { selected: 2 },
      stage1: { loaded: 2, unchanged: ['2021-10-19', '2021-10-20'] },
      gate: { passed: true },
      stage3: { status: 'succeeded' },
      validation: { passed: true },
    });
    expect(run.stderr).toContain('== stage 1 2021-22');
  });

  it('run stopped at the gate, in JSON: the failed date, the outcome and the commands that fix it', async () => {
    const failing = createWorkspaceWithPlans();
    try {
      const out = await failing.cli([
        'run',
        ...TWO,
        '--retry-delay-ms',
        '0',
        '--faults',
        '{"permanent":["2021-10-20"]}',
        '--format',
        'json',
      ]);
      expect(out.code, out.stderr).toBe(1);
      const doc = JSON.parse(out.stdout);
      expect(doc).toMatchObject({ outcome: 'gate_failed', exitCode: 1 });
      expect(doc.next).toEqual([
        'backfill retry --season 2021-22',
        'backfill stage1 --season 2021-22 --start-date 2021-10-20 --end-date 2021-10-20',
        'backfill gate --season 2021-22 --season-type regular',
      ]);
      expect(doc.seasons[0].stage1.failed.map((f: { date: string }) => f.date)).toEqual(['2021-10-20']);
      expect(doc.seasons[0]).toMatchObject({ gate: { passed: false }, stage3: null, validation: null });
      expect(out.stderr).toContain('Stopped at the gate.');
    } finally {
      failing.remove();
    }
  });

  it('in the table format the summary is on stdout and the progress on stderr', async () => {
    const out = await ws.cli(['stage1', ...TWO]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('2 of 2 dates loaded');
    expect(out.stdout).not.toContain('done, 0 failed');
    expect(out.stderr).toContain('[stage1 2021-22] 2/2 done, 0 failed, 0 retried, 0 remaining');
  });
});

describe('colour', () => {
  const GREEN_PASSED = '\x1b[1m\x1b[32mPASSED\x1b[0m';
  it('FORCE_COLOR colours the verdict where there is no terminal; NO_COLOR wins; neither: plain', async () => {
    const forced = await ws.cli(['validate', ...TWO], { NO_COLOR: '', FORCE_COLOR: '1' });
    expect(forced.stdout).toContain(`VALIDATION ${GREEN_PASSED}`);
    const both = await ws.cli(['validate', ...TWO], { NO_COLOR: '1', FORCE_COLOR: '1' });
    expect(both.stdout).toContain('VALIDATION PASSED');
    expect(both.stdout).not.toContain('\x1b[');
    const piped = await ws.cli(['validate', ...TWO], { NO_COLOR: '' });
    expect(piped.stdout).not.toContain('\x1b[');
  });
});

describe('run --dry-run', () => {
  it('on a fresh workspace: what would run, and not a file written (no plan, no log, no warehouse)', async () => {
    const fresh = createWorkspaceWithPlans();
    try {
      const before = tree(fresh.dir);
      const out = await fresh.cli(['run', '--season', '2021-22', '--season-type', 'regular', '--dry-run']);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toContain('DRY RUN: nothing is loaded or written');
      expect(out.stdout).toMatch(/stage 1 {5}would load 165 dates: 165 never loaded, 0 failing now, 0 loaded already/);
      expect(out.stdout).toMatch(/stage 3 {5}would run 165 dates from 2021-10-19 to 2022-04-10; 0 complete/);
      expect(tree(fresh.dir)).toEqual(before);
    } finally {
      fresh.remove();
    }
  });

  it('without a plan file it says the dates are known only once the schedule is loaded', async () => {
    const bare = createWorkspace();
    try {
      const out = await bare.cli(['run', '--season', '2022-23', '--dry-run', '--format', 'json']);
      expect(out.code, out.stderr).toBe(0);
      const doc = JSON.parse(out.stdout);
      expect(doc.seasons[0]).toMatchObject({
        season: '2022-23',
        plan: { committed: false, dates: null },
        stage1: null,
      });
      expect(out.stderr).toContain('no plan file');
      expect(tree(bare.dir)).toEqual({});
    } finally {
      bare.remove();
    }
  });

  it('after two dates are complete: Stage 3 would resume at the third, and the warehouse is untouched', async () => {
    const before = tree(ws.dir);
    const out = await ws.cli([
      'run',
      '--season',
      '2021-22',
      '--season-type',
      'regular',
      '--dry-run',
      '--format',
      'json',
    ]);
    expect(out.code, out.stderr).toBe(0);
    const season = JSON.parse(out.stdout).seasons[0];
    expect(season.stage1.loaded).toEqual(['2021-10-19', '2021-10-20']);
    expect(season.stage1.neverLoaded).toHaveLength(163);
    expect(season.stage3).toMatchObject({ complete: 2, stale: [], from: '2021-10-21' });
    expect(season.stage3.dates).toHaveLength(163);
    expect(season.validate).toEqual({ dates: 165 });
    expect(tree(ws.dir)).toEqual(before);
  });

  it('while another process writes the warehouse: exit 1, naming the file, the holder and what to do', async () => {
    const out = await ws.withAdapters(() => ws.cli(['run', '--season', '2021-22', '--dry-run']));
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(
      /^error: run --dry-run cannot read \S+warehouse\.duckdb: another process \(PID \d+\) is writing it.*run it again when that process has ended/,
    );
    expect(out.stdout).toBe('');
  });

  it('refuses what run refuses: an unknown season, a date outside it (exit 2)', async () => {
    const season = await ws.cli(['run', '--season', '2031-32', '--dry-run']);
    expect(season.code).toBe(2);
    const date = await ws.cli(['run', '--season', '2021-22', '--end-date', '2023-01-01', '--dry-run']);
    expect(date.code).toBe(2);
    expect(date.stderr).toContain('--end-date 2023-01-01 is outside season 2021-22');
  });
});

describe('validate, failing', () => {
  it('prints the command that fixes each failure, with its dates, and exits 1', async () => {
    const out = await ws.cli([
      'validate',
      '--season',
      '2021-22',
      '--season-type',
      'regular',
      '--end-date',
      '2021-10-21',
    ]);
    expect(out.code, out.stderr).toBe(1);
    expect(out.stdout).toContain('To fix, in this order (Phase 1-2 before Phase 3-4), then validate again:\n');
    expect(out.stdout).toContain('  backfill stage1 --season 2021-22 --start-date 2021-10-21 --end-date 2021-10-21\n');
    expect(out.stdout).toContain('VALIDATION FAILED');
  });
});
