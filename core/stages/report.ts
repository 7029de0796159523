// Stage 4 validation report renderings: JSON for machines, Markdown and a one-page HTML report for people
// (reportMarkdown.ts, reportHtml.ts), written together.

import { basename, join } from 'node:path';
import { writeFileAtomic } from '../files.js';
import { reportHtml } from './reportHtml.js';
import { reportMarkdown } from './reportMarkdown.js';
import type { ValidationReport } from './validation.js';

export { reportHtml } from './reportHtml.js';
export { reportMarkdown } from './reportMarkdown.js';

export function reportJson(report: ValidationReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** The files of one report: JSON, Markdown and HTML, the latest and this run's kept copy. */
export interface ReportFiles {
  readonly json: string;
  readonly markdown: string;
  readonly html: string;
  readonly kept: { readonly json: string; readonly markdown: string; readonly html: string };
}

/**
 * Writes the report as JSON, Markdown and HTML: `<dir>/<baseName>.*`, the latest, which status reads; and a copy
 * kept per run, `<dir>/runs/<baseName>-<generatedAt as YYYYMMDDTHHMMSSmmmZ>.*`, which the next run does not
 * overwrite. Each file is written whole or not at all (see writeFileAtomic); a failure names the file.
 */
export function writeReports(report: ValidationReport, dir: string, baseName: string): ReportFiles {
  const stamp = report.generatedAt.replace(/[-:.]/g, '');
  const at = (folder: string, name: string) => ({
    json: join(folder, `${name}.json`),
    markdown: join(folder, `${name}.md`),
    html: join(folder, `${name}.html`),
  });
  const kept = at(join(dir, 'runs'), `${baseName}-${stamp}`);
  const latest = at(dir, baseName);
  const json = reportJson(report);
  const html = reportHtml(report);
  for (const paths of [latest, kept]) {
    // The Markdown samples each check's failures and names its own JSON and HTML siblings for the rest.
    const fullListsIn = `\`${basename(paths.json)}\` and \`${basename(paths.html)}\` beside this file`;
    writeFileAtomic(paths.json, json);
    writeFileAtomic(paths.markdown, reportMarkdown(report, { fullListsIn }));
    writeFileAtomic(paths.html, html);
  }
  return { ...latest, kept };
}
