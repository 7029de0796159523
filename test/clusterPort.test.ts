// The Kubernetes client sits behind the cluster port (core/ports/cluster.ts), as the other SDKs sit behind
// theirs: only its adapter imports @kubernetes/client-node, and only the entrypoints that pick adapters import
// the adapter; the controller, the CLI commands and core/kubernetes depend on the port.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/workspace.js';

/** Every TypeScript source of the program (not the chart, which builds manifests, nor the tests). */
function sources(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [relative(REPO_ROOT, join(REPO_ROOT, dir, e.name))]
        : [],
  );
}

/** The module specifiers a file imports, statically, by type, or dynamically. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)'([^']+)'/g)].map((m) => m[1] as string);
}

const PROGRAM = ['core', 'cli', 'controller', 'jobs'].flatMap(sources);
const importers = (matches: (specifier: string) => boolean) => PROGRAM.filter((f) => importsOf(f).some(matches)).sort();

describe('the cluster port', () => {
  it.each([
    {
      name: 'only the adapter imports @kubernetes/client-node',
      matches: (s: string) => s.startsWith('@kubernetes/client-node'),
      allowed: ['core/kubernetes/kube.ts'],
    },
    {
      name: 'only the entrypoints that pick adapters import the adapter',
      matches: (s: string) => s.endsWith('/kubernetes/kube.js'),
      allowed: ['cli/context.ts', 'controller/main.ts'],
    },
  ])('$name', ({ matches, allowed }) => {
    expect(importers(matches)).toEqual(allowed);
  });

  it('is what the controller, the CLI cluster mode and core/kubernetes take', () => {
    const port = (s: string) => s.endsWith('/ports/cluster.js');
    expect(importers(port)).toEqual(
      expect.arrayContaining([
        'cli/context.ts',
        'controller/act.ts',
        'controller/loop.ts',
        'core/kubernetes/cluster.ts',
        'core/kubernetes/clusterStatus.ts',
        'core/kubernetes/kube.ts',
        'core/kubernetes/observe.ts',
      ]),
    );
  });

  it('finds imports of every form, so that the rules above can fail', () => {
    expect(importsOf('cli/context.ts')).toEqual(expect.arrayContaining(['../core/kubernetes/kube.js', 'commander']));
    expect(importsOf('core/kubernetes/kube.ts')).toContain('@kubernetes/client-node');
  });
});
