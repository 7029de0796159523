// Canary of test/support/loadFailureReporter.ts: a vitest run of a test file that throws at import shows a
// failed test to whoever reads the run's tests (Stryker's vitest runner), and a file that loads does not.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/workspace.js';

const REPORTER = join(REPO_ROOT, 'test', 'support', 'loadFailureReporter.ts');
const VITEST_NODE = pathToFileURL(createRequire(import.meta.url).resolve('vitest/node')).href;

/**
 * Runs vitest on `root` in a child process (a vitest inside this test's worker would share its state), as
 * Stryker's runner does: createVitest, start, then the tests of `state.getFiles()`, which it reads as results.
 */
const RUN = `
const [root, reporters, bail] = JSON.parse(process.argv[1]);
const { createVitest, BaseSequencer } = await import(${JSON.stringify(VITEST_NODE)});
// Files in name order, one at a time, so that which file runs first is known.
class ByName extends BaseSequencer {
  async sort(files) { return [...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId)); }
}
const ctx = await createVitest('test', {
  root, config: false, watch: false, globals: true, include: ['*.test.js'], pool: 'forks', maxWorkers: 1, reporters,
  bail, sequence: { sequencer: ByName },
});
await ctx.start();
const tests = (suite) => suite.tasks.flatMap((t) => (t.type === 'suite' ? tests(t) : [t]));
const files = ctx.state.getFiles().map((f) => ({
  file: f.name,
  tests: tests(f).map((t) => ({ name: t.name, state: t.result?.state, error: t.result?.errors?.[0]?.message })),
}));
await ctx.close();
process.stdout.write('\\n' + JSON.stringify(files));
process.exit(0);
`;

interface FileResult {
  file: string;
  tests: { name: string; state: string | undefined; error: string | undefined }[];
}

function runVitest(root: string, reporters: string[], bail = 0): Promise<FileResult[]> {
  const env = { ...process.env };
  // The nested run is a run of its own, not a worker of this one.
  for (const k of Object.keys(env)) if (k.startsWith('VITEST')) delete env[k];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', RUN, JSON.stringify([root, reporters, bail])],
      { cwd: root, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`nested vitest failed: ${err.message}\n${stderr}`));
        const last = stdout.trimEnd().split('\n').at(-1) ?? '';
        resolve((JSON.parse(last) as FileResult[]).sort((a, b) => a.file.localeCompare(b.file)));
      },
    );
  });
}

describe('the load failure reporter (a workaround for stryker-js #6150)', () => {
  let root: string;
  let plain: FileResult[];
  let reported: FileResult[];
  let bailed: FileResult[];
  let bailedPlain: FileResult[];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'nba-backfill-load-failure-'));
    writeFileSync(join(root, 'broken.test.js'), `throw new Error('the module fails at import');\n`);
    writeFileSync(join(root, 'fine.test.js'), `test('adds', () => { expect(1 + 1).toBe(2); });\n`);
    [plain, reported, bailed, bailedPlain] = await Promise.all([
      runVitest(root, []),
      runVitest(root, [REPORTER]),
      runVitest(root, [REPORTER], 1),
      runVitest(root, [], 1),
    ]);
  }, 120_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('without it, a file that fails to load has no test, so the runner sees no failure (the bug)', () => {
    expect(plain).toEqual([
      { file: 'broken.test.js', tests: [] },
      { file: 'fine.test.js', tests: [{ name: 'adds', state: 'pass', error: undefined }] },
    ]);
  });

  it('with it, that file has one failed test carrying the load error; a file that loads is left as it was', () => {
    expect(reported).toEqual([
      {
        file: 'broken.test.js',
        tests: [{ name: 'the test file loads', state: 'fail', error: 'the module fails at import' }],
      },
      { file: 'fine.test.js', tests: [{ name: 'adds', state: 'pass', error: undefined }] },
    ]);
  });

  it('with bail set, as Stryker sets it, a file that fails to load ends the run: the next file never runs', () => {
    // broken.test.js runs first (files in name order); without the reporter, bail lets fine.test.js run.
    expect(bailed).toEqual([
      {
        file: 'broken.test.js',
        tests: [{ name: 'the test file loads', state: 'fail', error: 'the module fails at import' }],
      },
      // Never collected: no test, so nothing for Stryker to count.
      { file: 'fine.test.js', tests: [] },
    ]);
    expect(bailedPlain[1]).toEqual({
      file: 'fine.test.js',
      tests: [{ name: 'adds', state: 'pass', error: undefined }],
    });
  });
});
