// The validation report as Markdown (a file, and the controller's ConfigMap): the failing dates and fixes, the
// checks, coverage per table, and a sample of each check's failures with where the full list is.

import {
  coverageIndex,
  datesText,
  failingRuns,
  formatPct,
  orderedChecks,
  rangeText,
  reportFixes,
  seasonsText,
  tableCoverage,
  unlistedFailures,
  verdict,
} from './reportModel.js';
import type { ValidationCheck, ValidationReport } from './validation.js';

/** Failures listed per failing check: a sample (the file may go into a ConfigMap); the JSON and HTML list them all. */
const MARKDOWN_FAILURES_SHOWN = 20;

export interface MarkdownOptions {
  /**
   * Where the full failure lists are, as a reader finds them, e.g. "`validation-2021-22.json` and
   * `validation-2021-22.html` beside this file". @default the JSON and HTML reports `backfill validate` writes
   */
  readonly fullListsIn?: string;
}

/** A pipe would end the cell and a newline the row, so both are neutralised. */
function mdCell(value: string): string {
  return value.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function mdRow(cells: readonly string[]): string {
  return `| ${cells.map(mdCell).join(' | ')} |`;
}

function failingDatesLines(report: ValidationReport, checks: readonly ValidationCheck[]): string[] {
  const runs = failingRuns(report, checks);
  if (runs.length === 0) return [];
  const failing = runs.reduce((n, r) => n + r.dates.length, 0);
  const lines = ['## Failing dates', '', `${failing} of ${report.dates.length} dates fail:`, ''];
  for (const r of runs) lines.push(`- ${datesText(r.dates)}: ${r.checks.map((c) => c.check).join(', ')}`);
  const unlisted = unlistedFailures(checks);
  if (unlisted > 0)
    lines.push('', `${unlisted} failure(s) counted are not listed in this report: their dates may be missing.`);
  lines.push('');
  return lines;
}

function fixLines(checks: readonly ValidationCheck[]): string[] {
  const fixes = reportFixes(checks);
  if (fixes.length === 0) return [];
  const lines = [
    '## How to fix',
    '',
    'In this order (Phase 1-2 before Phase 3-4), then validate again with the same selection:',
    '',
  ];
  fixes.forEach((f, i) => {
    lines.push(`${i + 1}. \`${f.command}\``, `   ${f.reason}. (${datesText(f.dates)})`);
  });
  lines.push('');
  return lines;
}

/** Where the failures beyond the sample are: all in the full reports, or counted and not kept (an older report). */
function sampleNote(shown: number, listed: number, count: number, fullLists: string): string {
  const head = `Showing ${shown} of ${count}`;
  if (listed >= count) return `${head}: all ${count} are in ${fullLists}.`;
  if (listed > shown) return `${head}: ${fullLists} list the first ${listed}; the others were counted, not kept.`;
  return `${head}: the others were counted, not kept in this report.`;
}

export function reportMarkdown(report: ValidationReport, options: MarkdownOptions = {}): string {
  const index = coverageIndex(report);
  const checks = orderedChecks(report);
  const passedChecks = checks.filter((c) => c.passed).length;
  const fullLists = options.fullListsIn ?? 'the JSON and HTML reports that `backfill validate` writes';
  const lines: string[] = [];

  lines.push(`# NBA backfill validation: ${seasonsText(report)} — ${verdict(report)}`, '');
  lines.push(`- Dates: ${rangeText(report)}`);
  lines.push(`- Checks: ${passedChecks} of ${checks.length} passed`);
  lines.push(`- Generated: ${report.generatedAt}`, '');

  lines.push(...failingDatesLines(report, checks), ...fixLines(checks));

  lines.push('## Checks', '');
  if (checks.length === 0) {
    lines.push('No checks were run.');
  } else {
    lines.push('| Category | Check | Result | Failures | Description |', '| --- | --- | :---: | ---: | --- |');
    for (const c of checks) {
      lines.push(mdRow([c.category, c.name, c.passed ? '✅' : '❌', String(c.failureCount), c.description]));
    }
  }
  lines.push('');

  lines.push('## Coverage', '');
  const coverage = tableCoverage(report, index);
  if (coverage.length === 0) {
    lines.push('No tables were covered.');
  } else {
    lines.push('| Table | Dates at 100% | Lowest coverage | On |', '| --- | ---: | ---: | --- |');
    for (const t of coverage) {
      const lowest = t.lowest ? `${formatPct(t.lowest.pct)}%` : 'no data';
      lines.push(mdRow([t.table, `${t.full} / ${report.dates.length}`, lowest, t.lowest?.date ?? '—']));
    }
    const gaps = coverage.filter((t) => t.missing > 0);
    if (gaps.length > 0) {
      lines.push('', `Dates without coverage data: ${gaps.map((t) => `${t.table} (${t.missing})`).join(', ')}.`);
    }
    const staleDates = [...new Set((report.stale ?? []).map((x) => x.date))].sort();
    if (staleDates.length > 0) {
      lines.push(
        '',
        `Stale (an input corrected since they ran): ${staleDates.length} date(s) from ${staleDates[0]}; recompute with \`backfill stage3\`.`,
      );
    }
  }
  lines.push('');

  lines.push('## Failures', '');
  const failing = checks.filter((c) => !c.passed);
  if (failing.length === 0) lines.push('None.', '');
  for (const c of failing) {
    lines.push(`### ${c.category} / ${c.name} (${c.failureCount})`, '');
    for (const f of c.fixes ?? []) lines.push(`Fix: \`${f.command}\` (${datesText(f.dates)})`, '');
    const shown = c.failures.slice(0, MARKDOWN_FAILURES_SHOWN);
    if (shown.length === 0) {
      lines.push('No failure details were recorded.');
    } else {
      lines.push('| Table | Date | Key | Detail |', '| --- | --- | --- | --- |');
      for (const f of shown) lines.push(mdRow([f.table, f.date ?? '—', f.key ?? '—', f.detail]));
      if (c.failureCount > shown.length)
        lines.push('', sampleNote(shown.length, c.failures.length, c.failureCount, fullLists));
    }
    lines.push('');
  }

  return `${lines.join('\n').trimEnd()}\n`;
}
