// Stage 4 validation report renderings: JSON for machines, Markdown and a one-page HTML heatmap for people.

import { join } from 'node:path';
import type { IsoDate } from '../dates.js';
import { writeFileAtomic } from '../files.js';
import {
  type CoverageCell,
  VALIDATION_CATEGORIES,
  type ValidationCheck,
  type ValidationFailure,
  type ValidationReport,
} from './validation.js';

/** Failures shown per failing check; the report keeps up to 50, but a reader only needs a sample. */
const FAILURES_SHOWN = 20;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function reportJson(report: ValidationReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared summaries

type CoverageClass =
  | 'cov-full'
  | 'cov-high'
  | 'cov-mid'
  | 'cov-low'
  | 'cov-zero'
  | 'cov-none'
  | 'cov-notrun'
  | 'cov-stale';

function coverageClass(cell: CoverageCell | undefined): CoverageClass {
  // Not run is its own state, never green, whatever the counts say.
  if (cell?.notRun) return 'cov-notrun';
  // Nothing expected (pct null), or a non-numeric pct (0/0 as NaN), says nothing: no data, not red, not green.
  if (!cell || cell.pct === null || !Number.isFinite(cell.pct)) return 'cov-none';
  if (cell.pct >= 100) return 'cov-full';
  if (cell.pct >= 90) return 'cov-high';
  if (cell.pct >= 50) return 'cov-mid';
  if (cell.pct > 0) return 'cov-low';
  return 'cov-zero';
}

/** One decimal at most, never rounding a shortfall up to 100 or a trickle down to 0: those read as "all" and "none". */
function formatPct(pct: number | null): string {
  if (pct === null || !Number.isFinite(pct)) return '?';
  if (Number.isInteger(pct)) return String(pct);
  const rounded = Math.round(pct * 10) / 10;
  if (rounded >= 100 && pct < 100) return '99.9';
  if (rounded <= 0 && pct > 0) return '0.1';
  return rounded.toFixed(1);
}

function cellKey(table: string, date: IsoDate): string {
  return `${table}\u0000${date}`;
}

function cellIndex(report: ValidationReport): Map<string, CoverageCell> {
  const index = new Map<string, CoverageCell>();
  for (const cell of report.coverage) index.set(cellKey(cell.table, cell.date), cell);
  return index;
}

interface TableCoverage {
  readonly table: string;
  readonly full: number;
  readonly missing: number;
  /** The first date with the lowest pct, or null when the table has no cells at all. */
  readonly lowest: CoverageCell | null;
}

/** Over report.dates only, so the summary and the heatmap describe the same cells. */
function tableCoverage(report: ValidationReport, cells: Map<string, CoverageCell>): TableCoverage[] {
  return report.tables.map((table) => {
    let full = 0;
    let missing = 0;
    let lowest: CoverageCell | null = null;
    for (const date of report.dates) {
      const cell = cells.get(cellKey(table, date));
      const pct = cell?.pct ?? null;
      if (!cell || pct === null || !Number.isFinite(pct)) {
        missing++;
        continue;
      }
      if (pct >= 100) full++;
      if (!lowest || pct < (lowest.pct ?? Number.POSITIVE_INFINITY)) lowest = cell;
    }
    return { table, full, missing, lowest };
  });
}

/** Checks grouped by category in the canonical order, keeping the report's order within a category. */
function orderedChecks(report: ValidationReport): ValidationCheck[] {
  const rank = (c: ValidationCheck) => {
    const i = VALIDATION_CATEGORIES.indexOf(c.category);
    return i < 0 ? VALIDATION_CATEGORIES.length : i;
  };
  return [...report.checks].sort((a, b) => rank(a) - rank(b));
}

function seasonsText(report: ValidationReport): string {
  return report.seasons.length > 0 ? report.seasons.join(', ') : 'no seasons';
}

function rangeText(report: ValidationReport): string {
  const n = report.dates.length;
  const count = `${n} ${n === 1 ? 'date' : 'dates'}`;
  return report.range ? `${report.range.start} to ${report.range.end} (${count})` : `no date range (${count})`;
}

function verdict(report: ValidationReport): 'PASSED' | 'FAILED' {
  return report.passed ? 'PASSED' : 'FAILED';
}

/**
 * `failureCount` counts every failure; `failures` holds at most the first 50, so "more" is from the count. With no
 * details at all there is nothing for "more" to follow; the heading carries the count.
 */
function hiddenFailures(check: ValidationCheck, shown: number): number {
  return shown === 0 ? 0 : Math.max(0, check.failureCount - shown);
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

/** A pipe would end the cell and a newline the row, so both are neutralised. */
function mdCell(value: string): string {
  return value.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function mdRow(cells: readonly string[]): string {
  return `| ${cells.map(mdCell).join(' | ')} |`;
}

export function reportMarkdown(report: ValidationReport): string {
  const cells = cellIndex(report);
  const checks = orderedChecks(report);
  const passedChecks = checks.filter((c) => c.passed).length;
  const lines: string[] = [];

  lines.push(`# NBA backfill validation: ${seasonsText(report)} — ${verdict(report)}`, '');
  lines.push(`- Dates: ${rangeText(report)}`);
  lines.push(`- Checks: ${passedChecks} of ${checks.length} passed`);
  lines.push(`- Generated: ${report.generatedAt}`, '');

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
  const coverage = tableCoverage(report, cells);
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
    const shown = c.failures.slice(0, FAILURES_SHOWN);
    if (shown.length === 0) {
      lines.push('No failure details were recorded.');
    } else {
      lines.push('| Table | Date | Key | Detail |', '| --- | --- | --- | --- |');
      for (const f of shown) lines.push(mdRow([f.table, f.date ?? '—', f.key ?? '—', f.detail]));
    }
    const more = hiddenFailures(c, shown.length);
    if (more > 0) lines.push('', `... and ${more} more`);
    lines.push('');
  }

  return `${lines.join('\n').trimEnd()}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// HTML

function esc(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const CSS = `
:root { --cell: 10px; --gap: 2px; --label: 240px; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  color: #1f2328; background: #f6f8fa; }
main { max-width: 1400px; margin: 0 auto; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin-bottom: 20px; }
h1 { font-size: 22px; margin: 0 0 4px; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h2 { font-size: 17px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
.muted { color: #656d76; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 13px; font-weight: 700;
  letter-spacing: .04em; color: #fff; }
.badge.pass { background: #1a7f37; }
.badge.fail { background: #cf222e; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 14px; }
.stat { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: #656d76; font-size: 12px; }
.stat.bad b { color: #cf222e; }
.scroll { overflow-x: auto; padding-bottom: 6px; }
.heatmap { display: grid; gap: 1px var(--gap); width: max-content; }
.heatmap .corner, .heatmap .row { position: sticky; left: 0; z-index: 1; background: #fff; }
/* Labels are taller than a cell so underscores and descenders are not clipped; cells centre in the row. */
.heatmap .row { width: var(--label); padding-right: 8px; font: 11px/14px ui-monospace, SFMono-Regular, Menlo,
  monospace; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.heatmap .cell { align-self: center; }
.heatmap .month { font-size: 11px; color: #656d76; white-space: nowrap; overflow: hidden; border-left: 1px solid #8c959f;
  padding-left: 3px; line-height: 16px; }
.cell { width: var(--cell); height: var(--cell); border-radius: 2px; }
.cov-full { background: #1a7f37; }
.cov-high { background: #8fd694; }
.cov-mid { background: #e3b341; }
.cov-low { background: #f0883e; }
.cov-zero { background: #cf222e; }
.cov-none { background: #d0d7de; }
.cov-stale { background: #8250df; }
.cov-notrun { background: repeating-linear-gradient(45deg, #d0d7de 0 2px, #fff 2px 4px); outline: 1px solid #8c959f; }
.legend { display: flex; flex-wrap: wrap; gap: 16px; margin-top: 12px; font-size: 12px; color: #656d76; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend .cell { display: inline-block; }
table.data { border-collapse: collapse; width: 100%; font-size: 13px; }
table.data th, table.data td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #d8dee4;
  vertical-align: top; }
table.data th { background: #f6f8fa; font-weight: 600; }
table.data td.num, table.data th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.data tr.failed td { background: #fff5f5; }
table.data code, .key { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.detail { word-break: break-word; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
.more { color: #656d76; font-style: italic; margin: 6px 0 0; }
`;

function stat(value: string, label: string, bad = false): string {
  return `<div class="stat${bad ? ' bad' : ''}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
}

function monthLabel(date: IsoDate): string {
  const [year, month] = date.split('-');
  return `${MONTHS[Number(month) - 1] ?? month} ${year}`;
}

/** Runs of consecutive dates in the same month, so each label spans exactly its month's columns. */
function monthSpans(dates: readonly IsoDate[]): { label: string; span: number }[] {
  const spans: { key: string; label: string; span: number }[] = [];
  for (const date of dates) {
    const key = date.slice(0, 7);
    const last = spans.at(-1);
    if (last && last.key === key) last.span++;
    else spans.push({ key, label: monthLabel(date), span: 1 });
  }
  return spans;
}

function cellTitle(table: string, date: IsoDate, cell: CoverageCell | undefined): string {
  if (!cell) return `${table} ${date}: no data`;
  const counts =
    cell.pct === null ? 'no data (nothing expected)' : `${cell.present}/${cell.expected} (${formatPct(cell.pct)}%)`;
  return `${table} ${date}: ${counts}${cell.notRun ? ', NOT RUN: no run of its processor on this date' : ''}`;
}

function heatmapHtml(report: ValidationReport, cells: Map<string, CoverageCell>): string {
  if (report.tables.length === 0 || report.dates.length === 0) return '<p class="muted">No coverage data.</p>';
  const stale = new Set((report.stale ?? []).map((s) => cellKey(s.table, s.date)));
  const parts: string[] = [];
  // The columns are fixed-size so ~650 dates make one long, scrollable strip rather than squashed slivers.
  parts.push(
    '<div class="heatmap" ' +
      `style="grid-template-columns: var(--label) repeat(${report.dates.length}, var(--cell))">`,
  );
  parts.push('<div class="corner"></div>');
  for (const m of monthSpans(report.dates)) {
    parts.push(`<div class="month" style="grid-column: span ${m.span}" title="${esc(m.label)}">${esc(m.label)}</div>`);
  }
  for (const table of report.tables) {
    parts.push(`<div class="row" title="${esc(table)}">${esc(table)}</div>`);
    for (const date of report.dates) {
      const cell = cells.get(cellKey(table, date));
      const staleCell = stale.has(cellKey(table, date));
      const title = `${cellTitle(table, date, cell)}${staleCell ? ', STALE: an input was corrected since it ran' : ''}`;
      parts.push(`<div class="cell ${staleCell ? 'cov-stale' : coverageClass(cell)}" title="${esc(title)}"></div>`);
    }
  }
  parts.push('</div>');
  return `<div class="scroll">${parts.join('\n')}</div>`;
}

function legendHtml(): string {
  const items: [CoverageClass, string][] = [
    ['cov-full', '100%'],
    ['cov-high', '≥ 90%'],
    ['cov-mid', '≥ 50%'],
    ['cov-low', '> 0%'],
    ['cov-zero', '0%'],
    ['cov-none', 'no data'],
    ['cov-notrun', 'not run'],
    ['cov-stale', 'stale (an input corrected since)'],
  ];
  const spans = items.map(([cls, label]) => `<span><i class="cell ${cls}"></i>${esc(label)}</span>`);
  return `<div class="legend">${spans.join('')}</div>`;
}

function coverageTableHtml(report: ValidationReport, coverage: readonly TableCoverage[]): string {
  if (coverage.length === 0) return '';
  const rows = coverage.map((t) => {
    const lowest = t.lowest ? `${formatPct(t.lowest.pct)}%` : 'no data';
    const missing = t.missing > 0 ? ` <span class="muted">(${t.missing} without data)</span>` : '';
    return (
      `<tr><td><code>${esc(t.table)}</code></td><td class="num">${t.full} / ${report.dates.length}${missing}</td>` +
      `<td class="num">${esc(lowest)}</td><td>${esc(t.lowest?.date ?? '—')}</td></tr>`
    );
  });
  return (
    '<h3>Per table</h3><table class="data"><thead><tr><th>Table</th><th class="num">Dates at 100%</th>' +
    `<th class="num">Lowest coverage</th><th>On</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`
  );
}

function checksTableHtml(checks: readonly ValidationCheck[]): string {
  // ✓/✗ rather than the Markdown's emoji: they come with ordinary text fonts, and colour emoji fonts are not everywhere.
  if (checks.length === 0) return '<p class="muted">No checks were run.</p>';
  const rows = checks.map(
    (c) =>
      `<tr${c.passed ? '' : ' class="failed"'}><td>${esc(c.category)}</td><td><code>${esc(c.name)}</code></td>` +
      `<td>${c.passed ? '<span class="ok">✓ pass</span>' : '<span class="bad">✗ fail</span>'}</td>` +
      `<td class="num">${c.failureCount}</td><td>${esc(c.description)}</td></tr>`,
  );
  return (
    '<table class="data"><thead><tr><th>Category</th><th>Check</th><th>Result</th><th class="num">Failures</th>' +
    `<th>Description</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`
  );
}

function failureRowHtml(f: ValidationFailure): string {
  return (
    `<tr><td><code>${esc(f.table)}</code></td><td>${esc(f.date ?? '—')}</td>` +
    `<td class="key">${esc(f.key ?? '—')}</td><td class="detail">${esc(f.detail)}</td></tr>`
  );
}

function failuresHtml(checks: readonly ValidationCheck[]): string {
  const failing = checks.filter((c) => !c.passed);
  if (failing.length === 0) return '<p class="muted">None.</p>';
  return failing
    .map((c) => {
      const shown = c.failures.slice(0, FAILURES_SHOWN);
      const more = hiddenFailures(c, shown.length);
      const body =
        shown.length === 0
          ? '<p class="muted">No failure details were recorded.</p>'
          : '<table class="data"><thead><tr><th>Table</th><th>Date</th><th>Key</th><th>Detail</th></tr></thead>' +
            `<tbody>${shown.map(failureRowHtml).join('\n')}</tbody></table>`;
      return (
        `<h3>${esc(c.category)} / <code>${esc(c.name)}</code> <span class="muted">(${c.failureCount})</span></h3>` +
        `${body}${more > 0 ? `<p class="more">... and ${more} more</p>` : ''}`
      );
    })
    .join('\n');
}

export function reportHtml(report: ValidationReport): string {
  const cells = cellIndex(report);
  const checks = orderedChecks(report);
  const coverage = tableCoverage(report, cells);
  const failedChecks = checks.filter((c) => !c.passed).length;
  const totalFailures = checks.reduce((n, c) => n + c.failureCount, 0);
  const gridCells = report.tables.length * report.dates.length;
  const fullCells = coverage.reduce((n, t) => n + t.full, 0);
  const title = `NBA backfill validation: ${seasonsText(report)} — ${verdict(report)}`;
  const badge = report.passed ? '<span class="badge pass">PASSED</span>' : '<span class="badge fail">FAILED</span>';

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<section>
<h1>NBA backfill validation: ${esc(seasonsText(report))} ${badge}</h1>
<div class="muted">${esc(rangeText(report))} · generated ${esc(report.generatedAt)}</div>
<div class="stats">
${stat(String(report.dates.length), 'dates')}
${stat(String(report.tables.length), 'tables')}
${stat(`${checks.length - failedChecks} / ${checks.length}`, 'checks passed', failedChecks > 0)}
${stat(String(totalFailures), 'failures', totalFailures > 0)}
${stat(`${fullCells} / ${gridCells}`, 'table-dates at 100%', fullCells < gridCells)}
</div>
</section>
<section>
<h2>Coverage</h2>
${heatmapHtml(report, cells)}
${legendHtml()}
${coverageTableHtml(report, coverage)}
</section>
<section>
<h2>Checks</h2>
${checksTableHtml(checks)}
</section>
<section>
<h2>Failures</h2>
${failuresHtml(checks)}
</section>
</main>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Files

/** Each file is written whole or not at all (see writeFileAtomic); a failure names the file. */
/**
 * Writes the report as JSON, Markdown and HTML: `<dir>/<baseName>.*`, the latest, which status reads; and a copy
 * kept per run, `<dir>/runs/<baseName>-<generatedAt as YYYYMMDDTHHMMSSmmmZ>.*`, which the next run does not
 * overwrite.
 */
export function writeReports(
  report: ValidationReport,
  dir: string,
  baseName: string,
): { json: string; markdown: string; html: string; kept: { json: string; markdown: string; html: string } } {
  const stamp = report.generatedAt.replace(/[-:.]/g, '');
  const at = (folder: string, name: string) => ({
    json: join(folder, `${name}.json`),
    markdown: join(folder, `${name}.md`),
    html: join(folder, `${name}.html`),
  });
  const kept = at(join(dir, 'runs'), `${baseName}-${stamp}`);
  const latest = at(dir, baseName);
  const bodies = { json: reportJson(report), markdown: reportMarkdown(report), html: reportHtml(report) };
  for (const paths of [latest, kept]) {
    writeFileAtomic(paths.json, bodies.json);
    writeFileAtomic(paths.markdown, bodies.markdown);
    writeFileAtomic(paths.html, bodies.html);
  }
  return { ...latest, kept };
}
