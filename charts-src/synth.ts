// `npm run synth`: writes the manifests into dist/; `--check` synthesizes into a temporary folder and fails,
// naming the files, when dist/ differs; `--out <dir>` writes elsewhere (the kind workflow's variant).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { messageOf } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import { synthesize } from './charts.js';
import { loadChartConfig } from './config.js';
import { compareWith, describeStaleness, isStale, readFiles, writeFiles } from './files.js';

async function main(argv: readonly string[]): Promise<number> {
  const check = argv.includes('--check');
  const outAt = argv.indexOf('--out');
  const out = outAt >= 0 ? argv[outAt + 1] : undefined;
  if (outAt >= 0 && !out) throw new Error('--out needs a folder');
  const dist = join(packageRoot(), 'dist');
  const files = await synthesize(loadChartConfig(process.env));
  if (!check) {
    const dir = out ? resolve(out) : dist;
    writeFiles(dir, files);
    process.stdout.write(`synth: wrote ${files.size} files to ${dir}\n`);
    return 0;
  }
  // The fresh files go through a folder, exactly as `npm run synth` would leave them.
  const tmp = mkdtempSync(join(tmpdir(), 'nba-backfill-synth-'));
  writeFiles(tmp, files);
  const staleness = compareWith(dist, readFiles(tmp));
  if (!isStale(staleness)) {
    rmSync(tmp, { recursive: true, force: true });
    process.stdout.write(`synth:check: dist/ is up to date (${files.size} files)\n`);
    return 0;
  }
  process.stderr.write(
    `synth:check: dist/ is stale:\n${describeStaleness(staleness).join('\n')}\n` +
      `Run \`npm run synth\` and commit dist/ (the fresh files are in ${tmp}; diff -r ${tmp} dist).\n`,
  );
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`synth: ${messageOf(err)}\n`);
    process.exitCode = 2;
  },
);
