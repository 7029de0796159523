// CLI conventions people expect: a version, formats refused when unknown, progress that adds up.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspaceWithPlans, ensureBuilt, REPO_ROOT, type Workspace } from './support/workspace.js';

let ws: Workspace;
beforeAll(async () => {
  await ensureBuilt();
  ws = createWorkspaceWithPlans();
});
afterAll(() => ws?.remove());

describe('backfill --version', () => {
  it.each(['--version', '-V'])('%s prints the package version and exits 0', async (flag) => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const out = await ws.cli([flag]);
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(`${version}\n`);
  });
});

describe('--format', () => {
  it.each([
    ['gate', ['gate', '--season', '2021-22', '--format', 'yaml'], 'yaml'],
    ['failures', ['failures', '--season', '2021-22', '--format', 'csv'], 'csv'],
  ])('%s refuses a format it does not print, exit 2 naming the choices', async (_name, args, format) => {
    const out = await ws.cli(args);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`argument '${format}' is invalid. Allowed choices are table, json.`);
    expect(out.stdout).toBe('');
  });
});

describe('did you mean', () => {
  it('a mistyped --season-type or processor name: exit 2, the choices, and the one meant', async () => {
    const type = await ws.cli(['stage1', '--season', '2021-22', '--season-type', 'reguler']);
    expect(type.code).toBe(2);
    expect(type.stderr).toContain('Allowed choices are regular, playoffs, all. Did you mean "regular"?');
    const processor = await ws.cli(['process', 'player_game_sumary', '--date', '2021-10-19']);
    expect(processor.code).toBe(2);
    expect(processor.stderr).toContain('unknown processor "player_game_sumary": Did you mean "player_game_summary"?');
  });
});

describe('Stage 3 progress', () => {
  const range = ['--season', '2021-22', '--season-type', 'regular', '--end-date', '2021-10-20'];
  it('counts every date once on a fresh run, and claims nothing remains when every date is complete', async () => {
    expect((await ws.cli(['stage1', ...range, '--retry-delay-ms', '0'])).code).toBe(0);
    const fresh = await ws.cli(['stage3', ...range]);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toContain('2/2 done, 0 failed, 0 retried, 0 remaining');
    expect(fresh.stderr).not.toMatch(/3\/2 done|-1 remaining/);
    const again = await ws.cli(['stage3', ...range]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('remaining');
    expect(again.stdout).toContain('complete through 2021-10-20; 0 date(s) processed');
  });
});
