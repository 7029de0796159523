// Writing synthesized files into a folder, and comparing a folder with them (for synth:check and the tests).

import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { README } from './charts.js';

/** The files synth owns in a folder: the manifests and the README. Anything else there is left alone. */
export function ownedFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.k8s.yaml') || f === README)
    .sort();
}

/** Writes the files and removes manifests the chart no longer makes (a season dropped, a file renamed). */
export function writeFiles(dir: string, files: ReadonlyMap<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ownedFiles(dir)) if (!files.has(f)) unlinkSync(join(dir, f));
  for (const [f, text] of files) writeFileSync(join(dir, f), text);
}

/** The owned files of a folder, by name. */
export function readFiles(dir: string): Map<string, string> {
  return new Map(ownedFiles(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

export interface Staleness {
  readonly differ: string[];
  readonly missing: string[];
  readonly extra: string[];
}

/** How the files of `dir` differ from `fresh` ones. */
export function compareWith(dir: string, fresh: ReadonlyMap<string, string>): Staleness {
  const present = readFiles(dir);
  const differ: string[] = [];
  const missing: string[] = [];
  for (const [f, text] of fresh) {
    const old = present.get(f);
    if (old === undefined) missing.push(f);
    else if (old !== text) differ.push(f);
  }
  const extra = [...present.keys()].filter((f) => !fresh.has(f));
  return { differ, missing, extra };
}

export function isStale(s: Staleness): boolean {
  return s.differ.length + s.missing.length + s.extra.length > 0;
}

/** One line per stale file, naming it. */
export function describeStaleness(s: Staleness, dirName = 'dist'): string[] {
  return [
    ...s.differ.map((f) => `  ${dirName}/${f} differs from what the chart makes`),
    ...s.missing.map((f) => `  ${dirName}/${f} is missing`),
    ...s.extra.map((f) => `  ${dirName}/${f} is no longer made by the chart`),
  ];
}
