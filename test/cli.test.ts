// The built `backfill` CLI as a user runs it: help, usage errors, pipeline, query formats, and Phase 1-2 of a date.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHASES, PROCESSORS, processorsOfPhase } from '../core/pipeline/definition.js';
import { SEASON_LABELS } from '../core/pipeline/seasons.js';
import { type CliResult, createWorkspace, ensureBuilt, type Workspace } from './support/workspace.js';

const DATE = '2021-10-19';
const NO_STACK = /\n\s+at .+:\d+:\d+/;

let ws: Workspace;

beforeAll(async () => {
  await ensureBuilt();
  ws = createWorkspace();
});

afterAll(() => {
  ws?.remove();
});

/** The command names listed under `Commands:` in commander's help. */
function commandsOf(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1] as string);
}

describe('help', () => {
  // One `backfill --help` for every case below: each CLI process costs about a second of loading.
  let help: CliResult;
  let commands: string[];

  beforeAll(async () => {
    help = await ws.cli(['--help']);
    commands = commandsOf(help.stdout).filter((c) => c !== 'help');
  });

  it('backfill --help exits 0 and lists the commands', async () => {
    const out = help;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^Usage: backfill \[options\] \[command\]/);
    expect(out.stderr).toBe('');
    expect(commands).toEqual(expect.arrayContaining(['run', 'plan', 'process', 'query', 'pipeline']));
  });

  it('-h is the same as --help', async () => {
    const short = await ws.cli(['-h']);
    expect(short.code).toBe(0);
    expect(short.stdout).toBe(help.stdout);
  });

  it('every subcommand answers --help with exit 0 and its own usage', async () => {
    expect(commands.length).toBeGreaterThanOrEqual(5);
    for (const c of commands) {
      const out = await ws.cli([c, '--help']);
      expect(out.code, `${c} --help: ${out.stderr}`).toBe(0);
      expect(out.stdout, c).toMatch(new RegExp(`^Usage: backfill ${c} `));
      const viaHelp = await ws.cli(['help', c]);
      expect(viaHelp.code, `help ${c}`).toBe(0);
      expect(viaHelp.stdout, `help ${c}`).toBe(out.stdout);
    }
  });
});

describe('usage errors exit 2 with a message and no stack trace', () => {
  const cases: { name: string; args: string[]; says: string }[] = [
    { name: 'unknown option', args: ['process', '--bogus'], says: "unknown option '--bogus'" },
    { name: 'unknown global option', args: ['--bogus', 'pipeline'], says: "unknown option '--bogus'" },
    { name: 'unknown command', args: ['nope'], says: "unknown command 'nope'" },
    {
      name: 'missing required option of plan',
      args: ['plan'],
      says: "required option '--season <season>' not specified",
    },
    {
      name: 'missing required option of run',
      args: ['run', '--season-type', 'regular'],
      says: "required option '--season <season>' not specified",
    },
    { name: 'missing required argument', args: ['query'], says: "missing required argument 'sql'" },
    {
      name: 'an option value outside its choices',
      args: ['query', 'select 1', '--format', 'xml'],
      says: "argument 'xml' is invalid. Allowed choices are table, json, csv",
    },
    {
      name: 'an option without its value',
      args: ['process', '--date'],
      says: "option '--date <YYYY-MM-DD>' argument missing",
    },
  ];

  it.each(cases)('$name', async ({ args, says }) => {
    const out = await ws.cli(args);
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(says);
    expect(out.stderr).not.toMatch(NO_STACK);
    expect(out.stdout).toBe('');
  });
});

describe('backfill pipeline', () => {
  it('lists every processor with its phase, and every phase and season', async () => {
    const out = await ws.cli(['pipeline']);
    expect(out.code, out.stderr).toBe(0);
    const [, processorTable = ''] = out.stdout.split(/^Processors$/m);
    const listed = processorTable
      .trim()
      .split('\n')
      .slice(2)
      .map((line) => line.split(/\s+/).slice(0, 2));
    expect(listed).toEqual(PROCESSORS.map((p) => [p.name, String(p.phase)]));
    for (const [n, p] of Object.entries(PHASES)) expect(out.stdout).toMatch(new RegExp(`^${n}\\s+${p.name}\\s`, 'm'));
    for (const s of SEASON_LABELS) expect(out.stdout).toMatch(new RegExp(`^${s}\\s`, 'm'));
  });
});

describe('backfill query', () => {
  it('--format json prints the rows as a JSON array', async () => {
    const out = await ws.cli(['query', "select 1 as x, 'a,b' as y", '--format', 'json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual([{ x: 1, y: 'a,b' }]);
  });

  it('--format csv prints a header and quoted cells', async () => {
    const out = await ws.cli(['query', "select 1 as x, 'a,b' as y", '--format', 'csv']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('x,y\n1,"a,b"\n');
  });

  it('--format table (the default) prints an aligned table', async () => {
    const table = await ws.cli(['query', 'select 1 as x', '--format', 'table']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toBe('x\n-\n1\n');
    const byDefault = await ws.cli(['query', 'select 1 as x']);
    expect(byDefault.stdout).toBe(table.stdout);
  });

  it('bad SQL exits 2 with the engine message', async () => {
    const out = await ws.cli(['query', 'selec 1']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/^error: query failed: .*Parser Error: syntax error at or near "selec"/);
    expect(out.stderr).not.toMatch(NO_STACK);
    expect(out.stdout).toBe('');
  });

  it('an unknown table exits 2 with the engine message', async () => {
    const out = await ws.cli(['query', 'select * from nba_raw.nope']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/query failed: .*Catalog Error: Table with name nope does not exist/);
  });
});

describe('backfill process, Phase 1 then Phase 2', () => {
  /** `D  processor  ok  N rows (decision)` lines, by processor. */
  function okLines(stdout: string): Map<string, number> {
    const found = new Map<string, number>();
    for (const m of stdout.matchAll(/^(\S+) {2}(\S+) {2}ok {2}(\d+) rows \((processed|no_games)\)$/gm)) {
      expect(m[1]).toBe(DATE);
      found.set(m[2] as string, Number(m[3]));
    }
    return found;
  }

  it('exit 0 and print one line per processor, with the rows it wrote', async () => {
    const phase1 = await ws.cli(['process', '--phase', '1', '--date', DATE]);
    expect(phase1.code, phase1.stderr).toBe(0);
    const scraped = okLines(phase1.stdout);
    expect([...scraped.keys()]).toEqual(processorsOfPhase(1).map((p) => p.name));
    expect(phase1.stdout.trim().split('\n')).toHaveLength(scraped.size);

    const phase2 = await ws.cli(['process', '--phase', '2', '--date', DATE]);
    expect(phase2.code, phase2.stderr).toBe(0);
    const loaded = okLines(phase2.stdout);
    expect([...loaded.keys()]).toEqual(processorsOfPhase(2).map((p) => p.name));
    expect(phase2.stdout.trim().split('\n')).toHaveLength(loaded.size);

    // Opening night 2021-22: two games, four teams, 47 player rows.
    expect(scraped.get('nbac_team_game_log_scraper')).toBe(4);
    expect(scraped.get('nbac_player_game_log_scraper')).toBe(47);
    expect(loaded.get('nbac_schedule')).toBe(2);

    // The warehouse opened once in this process for every check (`backfill query` itself: 'backfill query').
    const runs = await ws.withAdapters(async ({ warehouse }) => {
      for (const p of processorsOfPhase(2)) {
        if (p.output.kind !== 'table') continue;
        const t = p.output.table;
        const [row] = await warehouse.query(
          `select count(*) as n from ${t.dataset}.${t.name} where ${t.partitionColumn} = DATE '${DATE}'`,
        );
        expect(row?.n, p.name).toBe(loaded.get(p.name));
      }
      return warehouse.query(
        `select processor_name, status from nba_reference.processor_run_history order by phase, processor_name`,
      );
    });
    expect(runs).toHaveLength(scraped.size + loaded.size);
    expect(runs.every((r) => r.status === 'success')).toBe(true);
  });
});
