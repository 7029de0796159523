// Imports run one way: entrypoints (jobs/, cli/, controller/, charts-src/) -> domain -> ports. Each rule is a
// case: the files it covers must import nothing from the folders it forbids (read from the sources).

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/workspace.js';

/** Every .ts file under a folder of the repo, as paths relative to the repo. */
function sources(folder: string): string[] {
  const root = join(REPO_ROOT, folder);
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => relative(REPO_ROOT, join(root, f)));
}

/** The repo-relative files a source imports (relative imports only: packages are not arrows between folders). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    out.push(relative(REPO_ROOT, resolve(dirname(join(REPO_ROOT, file)), m[1] as string)));
  }
  return out;
}

const PHASES = ['core/phase1/', 'core/phase2/', 'core/phase3/', 'core/phase4/'];
const ENTRYPOINTS = ['jobs/', 'cli/', 'controller/', 'charts-src/'];

describe('imports run one way', () => {
  it.each([
    { name: 'the pipeline definition imports no implementation', from: 'core/pipeline', forbidden: PHASES },
    { name: 'the schemas import no phase', from: 'core/schema', forbidden: PHASES },
    {
      name: 'the chart imports no stage code and no CLI',
      from: 'charts-src',
      forbidden: ['core/stages/', 'cli/', 'core/adapters/'],
    },
    { name: 'core imports no entrypoint (a pod program lives in jobs/)', from: 'core', forbidden: ENTRYPOINTS },
    { name: 'the Job specs open no adapter', from: 'core/jobs', forbidden: ['core/adapters/', 'core/dateRun.js'] },
  ])('$name', ({ from, forbidden }) => {
    const wrong = sources(from).flatMap((file) =>
      importsOf(file)
        .filter((target) => forbidden.some((f) => target.startsWith(f)))
        .map((target) => `${file} -> ${target}`),
    );
    expect(sources(from).length).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
  });

  it('sees an import that breaks a rule (the scan itself works)', () => {
    expect(importsOf('jobs/phase2-date/runIndex.ts')).toContain('core/adapters/index.js');
    expect(importsOf('core/processors.ts')).toEqual(expect.arrayContaining(['core/phase1/scrapers.js']));
  });
});

describe('URL settings are read once, in core/config.ts', () => {
  it('no other source tells a setting apart by its prefix', () => {
    const byPrefix = /startsWith\('(bigquery|gs|pubsub|duckdb|file|ipc|https?):|\^\((duckdb|file)\|/;
    const readers = ['core', 'cli', 'jobs', 'controller', 'charts-src', 'bench']
      .flatMap(sources)
      .filter((f) => f !== 'core/config.ts' && byPrefix.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
    expect(readers).toEqual([]);
  });
});
