// The validation report as one self-contained HTML page: failing dates and their fixes first, then a calendar of
// coverage that fits a season on one screen, the checks, and every failure. Readable on a phone and without colour.

import type { IsoDate } from '../dates.js';
import { calendarHtml, calendarSeasons, WEEKDAYS, weekdayOf } from './reportCalendar.js';
import {
  type CoverageClass,
  type CoverageIndex,
  cellTitle,
  coverageIndex,
  dateClass,
  datesText,
  type FailingRun,
  failingRuns,
  failuresByDate,
  fixesOn,
  formatPct,
  orderedChecks,
  plural,
  rangeText,
  reportFixes,
  seasonsText,
  type TableCoverage,
  tableCoverage,
  tableDateClass,
  unlistedFailures,
  verdict,
} from './reportModel.js';
import type { ValidationCheck, ValidationFailure, ValidationFix, ValidationReport } from './validation.js';

/** Failures shown before a check's list folds into a <details>; the rest are one click away, all in the page. */
const FAILURES_SHOWN = 20;

/** A run of failing dates lists its dates inline up to this many, else folded (all still in the page). */
const RUN_DATES_INLINE = 10;

function esc(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A table, processor or check name, escaped, with a break opportunity after each dot and underscore. */
function nameHtml(name: string): string {
  return esc(name).replace(/([._])/g, '$1<wbr>');
}

/** An in-page anchor name for a check. */
function checkAnchor(name: string): string {
  return `check-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

const CSS = `
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  color: #1f2328; background: #f6f8fa; }
main { max-width: 1400px; margin: 0 auto; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin-bottom: 20px;
  min-width: 0; }
h1 { font-size: 22px; margin: 0 0 4px; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h2 { font-size: 17px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
p { margin: 6px 0; }
a { color: #0969da; }
code, pre, .key { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
/* Long text wraps rather than widen the page: names after their dots and underscores (<wbr>), commands anywhere. */
td, li, p, summary, h1, h2, h3, code { overflow-wrap: break-word; }
pre.cmd code, .fix code, td.desc, .key, .detail { overflow-wrap: anywhere; }
td.date { white-space: nowrap; }
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
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; }
pre.cmd { margin: 4px 0; padding: 6px 10px; background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
  white-space: pre-wrap; overflow-wrap: anywhere; }
ol.fixes > li, ol.runs > li { margin-bottom: 12px; }
ol.runs { padding-left: 0; list-style: none; }
.run { border-left: 4px solid #cf222e; padding: 4px 0 4px 12px; }
.run ul { margin: 4px 0; padding-left: 18px; }
.run .fix { margin: 4px 0; }
.run .fix code { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px; padding: 1px 4px; }
ul.chips { display: flex; flex-wrap: wrap; gap: 4px 6px; list-style: none; padding: 0; margin: 6px 0; }
ul.chips li { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; border: 1px solid #d0d7de;
  border-radius: 4px; padding: 0 4px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: #0969da; }
.warn { border: 1px solid #d4a72c; background: #fff8c5; border-radius: 6px; padding: 6px 10px; }
/* Calendar: a block per month, weeks as columns, Monday to Sunday as rows; the months wrap. */
.cal { --c: 15px; --g: 2px; }
.cal.mini { --c: 8px; --g: 1px; }
.season + .season { margin-top: 10px; }
.slabel { font-size: 12px; font-weight: 600; color: #656d76; margin-bottom: 2px; }
.months { display: flex; flex-wrap: wrap; gap: 8px 14px; }
.mlabel { font-size: 11px; color: #656d76; line-height: 16px; white-space: nowrap; }
.cal.mini .mlabel { font-size: 10px; line-height: 13px; }
.mgrid { display: grid; grid-template-rows: repeat(7, var(--c)); grid-auto-flow: column;
  grid-auto-columns: var(--c); gap: var(--g); }
.cal.wk .mgrid { grid-template-columns: 10px; }
.wd { font-size: 9px; line-height: var(--c); font-weight: 400; color: #8c959f; }
.d { display: block; width: var(--c); height: var(--c); border-radius: 2px; font-size: 11px; line-height: var(--c);
  font-style: normal; font-weight: 700; text-align: center; overflow: hidden; }
.d.off { background: #fff; box-shadow: inset 0 0 0 1px #d0d7de; }
.cov-full { background: #1a7f37; color: #fff; }
.cov-high { background: #8fd694; color: #1f2328; }
.cov-mid { background: #e3b341; color: #1f2328; }
.cov-low { background: #f0883e; color: #1f2328; }
.cov-zero { background: #cf222e; color: #fff; }
.cov-none { background: #d0d7de; color: #1f2328; }
.cov-stale { background-color: #8250df; color: #fff;
  background-image: radial-gradient(circle, rgba(255,255,255,.85) 0 1px, transparent 1.5px); background-size: 4px 4px; }
.cov-notrun { background: repeating-linear-gradient(45deg, #afb8c1 0 2px, #fff 2px 4px); color: #1f2328;
  box-shadow: inset 0 0 0 1px #8c959f; }
/* In the small per-table calendars a shortfall is a ring, full coverage solid: a shape as well as a colour. */
.cal.mini .cov-high, .cal.mini .cov-mid, .cal.mini .cov-low, .cal.mini .cov-zero { box-shadow: inset 0 0 0 2px #fff; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 16px; margin-top: 12px; font-size: 12px; color: #656d76; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend .d { --c: 15px; }
.tables { display: flex; flex-wrap: wrap; gap: 14px 28px; margin-top: 12px; }
.tcal .tname { font-size: 12px; margin-bottom: 2px; }
table.data { border-collapse: collapse; width: 100%; font-size: 13px; }
table.data th, table.data td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #d8dee4;
  vertical-align: top; }
table.data th { background: #f6f8fa; font-weight: 600; }
table.data td.num, table.data th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.data tr.failed td { background: #fff5f5; }
table.data tr.cat th { background: #fff; color: #656d76; font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; padding-top: 12px; }
table.data td.result { white-space: nowrap; }
.more { color: #656d76; font-style: italic; margin: 6px 0 0; }
@media (max-width: 640px) {
  body { padding: 8px; font-size: 13px; }
  section { padding: 12px; margin-bottom: 12px; }
  h1 { font-size: 18px; }
  .stat { min-width: 0; flex: 1 1 40%; padding: 6px 10px; }
  table.data { font-size: 12px; }
  table.data th, table.data td { padding: 4px 6px; }
  table.data td.result { white-space: normal; }
  .months { gap: 8px 10px; }
}
`;

function stat(value: string, label: string, bad = false): string {
  return `<div class="stat${bad ? ' bad' : ''}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
}

function badge(report: ValidationReport): string {
  return report.passed ? '<span class="badge pass">✓ PASSED</span>' : '<span class="badge fail">✗ FAILED</span>';
}

/** Text with `backticked` commands, as the fixes' reasons have them, escaped and with the commands as code. */
function prose(text: string): string {
  return esc(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

function cmd(command: string): string {
  return `<pre class="cmd"><code>${esc(command)}</code></pre>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Failing dates and fixes

function chips(dates: readonly IsoDate[]): string {
  return `<ul class="chips">${dates.map((d) => `<li data-failing-date="${esc(d)}">${esc(d)}</li>`).join('')}</ul>`;
}

function runHtml(run: FailingRun, fixes: readonly ValidationFix[]): string {
  const first = run.dates[0] as IsoDate;
  const last = run.dates.at(-1) as IsoDate;
  const title =
    run.dates.length === 1
      ? `<b data-failing-date="${esc(first)}">${esc(first)}</b> <span class="muted">(${esc(WEEKDAYS[weekdayOf(first)] ?? '')})</span>`
      : `<b>${esc(first)} to ${esc(last)}</b> <span class="muted">(${plural(run.dates.length, 'date')})</span>`;
  const checks = run.checks.map(
    (c) =>
      `<li><span class="bad">✗</span> <a href="#${checkAnchor(c.check)}"><code>${nameHtml(c.check)}</code></a>: ` +
      `${c.tables.map((t) => `<code>${nameHtml(t)}</code>`).join(', ')}</li>`,
  );
  const on = fixesOn(fixes, run.dates);
  const fix =
    on.length > 0
      ? `<div class="fix">Fix: ${on.map((f) => `<code>${esc(f.command)}</code>`).join(' then ')}</div>`
      : '';
  const dates =
    run.dates.length === 1
      ? ''
      : run.dates.length <= RUN_DATES_INLINE
        ? chips(run.dates)
        : `<details><summary>All ${run.dates.length} dates</summary>${chips(run.dates)}</details>`;
  return (
    `<li class="run" data-first="${esc(first)}" data-last="${esc(last)}">` +
    `<div>${title}</div><ul>${checks.join('')}</ul>${fix}${dates}</li>`
  );
}

function failingDatesHtml(report: ValidationReport, checks: readonly ValidationCheck[]): string {
  const runs = failingRuns(report, checks);
  const failing = runs.reduce((n, r) => n + r.dates.length, 0);
  const unlisted = unlistedFailures(checks);
  const warn =
    unlisted > 0
      ? `<p class="warn">${plural(unlisted, 'failure')} counted by the checks ${unlisted === 1 ? 'is' : 'are'} not listed in this report: their dates may be missing here.</p>`
      : '';
  if (runs.length === 0) {
    return report.passed
      ? ''
      : `<section id="failing-dates"><h2>Failing dates</h2><p>None listed.</p>${warn}</section>`;
  }
  const fixes = reportFixes(checks);
  return (
    `<section id="failing-dates"><h2><span class="bad">✗</span> Failing dates <span class="muted">(${failing} of ${report.dates.length})</span></h2>` +
    '<p class="muted">Every failing date, in runs of consecutive dates that fail the same way, with the checks and tables failing and the command that fixes them.</p>' +
    `${warn}<ol class="runs">${runs.map((r) => runHtml(r, fixes)).join('\n')}</ol></section>`
  );
}

function fixesHtml(checks: readonly ValidationCheck[]): string {
  const fixes = reportFixes(checks);
  if (fixes.length === 0) return '';
  const checksOf = (f: ValidationFix) =>
    checks
      .filter((c) =>
        (c.fixes ?? []).some((x) => x.kind === f.kind && x.season === f.season && x.processor === f.processor),
      )
      .map((c) => `<a href="#${checkAnchor(c.name)}"><code>${nameHtml(c.name)}</code></a>`);
  const items = fixes.map(
    (f) =>
      `<li>${cmd(f.command)}<p>${prose(f.reason)}.</p>` +
      `<p class="muted">Fixes ${checksOf(f).join(', ')} on ${esc(datesText(f.dates))}.</p></li>`,
  );
  const seasons = [...new Set(fixes.map((f) => f.season))];
  return (
    '<section id="fix"><h2>How to fix</h2><p class="muted">In this order: Phase 1-2 before Phase 3-4.</p>' +
    `<ol class="fixes">${items.join('\n')}</ol>` +
    `<p>Then validate again with the same selection, e.g. ${seasons.map((s) => `<code>backfill validate --season ${esc(s)}</code>`).join(', ')}.</p></section>`
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Coverage

function dayTitle(
  report: ValidationReport,
  index: CoverageIndex,
  date: IsoDate,
  failing: readonly { check: string }[] | undefined,
): string {
  const head = `${date} (${WEEKDAYS[weekdayOf(date)]}): ${failing ? `FAILED: ${failing.map((c) => c.check).join(', ')}` : 'passed'}`;
  const tables = report.tables.map((t) => cellTitle(t, date, index).replace(` ${date}: `, ': '));
  return [head, ...tables].join('\n');
}

function calendarSection(report: ValidationReport, checks: readonly ValidationCheck[], index: CoverageIndex): string {
  const selected = new Set(report.dates);
  const byDate = failuresByDate(checks);
  const seasons = calendarSeasons([...report.dates, ...byDate.keys()]);
  const day = (date: IsoDate) => {
    const failing = byDate.get(date);
    if (!selected.has(date) && !failing) {
      return `<i class="d off" data-date="${date}" data-state="off" title="${date}: no games in this report"></i>`;
    }
    const cls: CoverageClass = dateClass(report, index, date);
    // A date also fails on a shortfall when its failures were not all listed (an older report).
    const failed = failing !== undefined || (cls !== 'cov-full' && cls !== 'cov-none');
    const title = esc(dayTitle(report, index, date, failing));
    return `<i class="d ${cls}" data-date="${date}" data-state="${failed ? 'failed' : 'passed'}" title="${title}">${failed ? '✗' : ''}</i>`;
  };
  return calendarHtml(seasons, day, { className: 'main', weekdays: true, id: 'calendar' });
}

function perTableCalendars(report: ValidationReport, index: CoverageIndex, coverage: readonly TableCoverage[]): string {
  const selected = new Set(report.dates);
  const seasons = calendarSeasons(report.dates);
  const blocks = coverage.map((t) => {
    const day = (date: IsoDate) => {
      if (!selected.has(date)) return `<i class="d off" data-date="${date}" data-state="off"></i>`;
      const cls = tableDateClass(index, t.table, date);
      const state = cls === 'cov-full' || cls === 'cov-none' ? 'passed' : 'failed';
      return (
        `<div class="d ${cls}" data-table="${esc(t.table)}" data-date="${date}" data-state="${state}" ` +
        `title="${esc(cellTitle(t.table, date, index))}"></div>`
      );
    };
    return (
      `<div class="tcal"><div class="tname"><code>${nameHtml(t.table)}</code> <span class="muted">${t.full} / ${report.dates.length} at 100%</span></div>` +
      `${calendarHtml(seasons, day, { className: 'mini', weekdays: false })}</div>`
    );
  });
  return (
    `<details class="per-table" open><summary>A calendar per table (${coverage.length})</summary>` +
    `<div class="tables">${blocks.join('\n')}</div></details>`
  );
}

function legendHtml(): string {
  const items: [string, string, string][] = [
    ['cov-full', '', '100%'],
    ['cov-high', '✗', '≥ 90%'],
    ['cov-mid', '✗', '≥ 50%'],
    ['cov-low', '✗', '> 0%'],
    ['cov-zero', '✗', '0%'],
    ['cov-notrun', '✗', 'not run (hatched)'],
    ['cov-stale', '✗', 'stale: an input corrected since (dotted)'],
    ['cov-none', '', 'no data'],
    ['off', '', 'no games (outlined, empty)'],
  ];
  const spans = items.map(([cls, mark, label]) => `<span><i class="d ${cls}">${mark}</i>${esc(label)}</span>`);
  return (
    `<div class="legend">${spans.join('')}</div>` +
    '<p class="muted">Not by colour alone: ✗ marks a date on which a check fails, hatching a table not run, dots a ' +
    'stale one, an empty outline a day without games; in the per-table calendars a shortfall is a ring, full ' +
    'coverage solid. Every cell’s tooltip gives its numbers.</p>'
  );
}

function coverageTableHtml(report: ValidationReport, coverage: readonly TableCoverage[]): string {
  if (coverage.length === 0) return '';
  const rows = coverage.map((t) => {
    const lowest = t.lowest ? `${formatPct(t.lowest.pct)}%` : 'no data';
    const missing = t.missing > 0 ? ` <span class="muted">(${t.missing} without data)</span>` : '';
    return (
      `<tr><td><code>${nameHtml(t.table)}</code></td><td class="num">${t.full} / ${report.dates.length}${missing}</td>` +
      `<td class="num">${esc(lowest)}</td><td class="date">${esc(t.lowest?.date ?? '—')}</td></tr>`
    );
  });
  return (
    '<h3>Per table</h3><div class="scroll"><table class="data"><thead><tr><th>Table</th><th class="num">Dates at 100%</th>' +
    `<th class="num">Lowest coverage</th><th>On</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`
  );
}

function coverageHtml(report: ValidationReport, checks: readonly ValidationCheck[]): string {
  if (report.tables.length === 0 || report.dates.length === 0) return '<p class="muted">No coverage data.</p>';
  const index = coverageIndex(report);
  const coverage = tableCoverage(report, index);
  return (
    '<p class="muted">A block per month, weeks as columns and Monday to Sunday as rows. Each game date shows its ' +
    'worst table; its tooltip lists every table.</p>' +
    `${calendarSection(report, checks, index)}${legendHtml()}${coverageTableHtml(report, coverage)}` +
    perTableCalendars(report, index, coverage)
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Checks and failures

function checksTableHtml(checks: readonly ValidationCheck[]): string {
  // ✓/✗ rather than the Markdown's emoji: they come with ordinary text fonts, and colour emoji fonts are not everywhere.
  if (checks.length === 0) return '<p class="muted">No checks were run.</p>';
  const rows: string[] = [];
  let category: string | undefined;
  for (const c of checks) {
    if (c.category !== category) {
      category = c.category;
      rows.push(`<tr class="cat"><th colspan="4" scope="colgroup">${esc(c.category)}</th></tr>`);
    }
    const count = c.passed ? String(c.failureCount) : `<a href="#${checkAnchor(c.name)}">${c.failureCount}</a>`;
    rows.push(
      `<tr${c.passed ? '' : ' class="failed"'}><td class="result">${c.passed ? '<span class="ok">✓ pass</span>' : '<span class="bad">✗ fail</span>'}</td>` +
        `<td><code>${nameHtml(c.name)}</code></td><td class="num">${count}</td><td class="desc">${esc(c.description)}</td></tr>`,
    );
  }
  return (
    '<div class="scroll"><table class="data checks"><thead><tr><th>Result</th><th>Check</th><th class="num">Failures</th>' +
    `<th>Description</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`
  );
}

function failureRowHtml(f: ValidationFailure): string {
  return (
    `<tr><td><code>${nameHtml(f.table)}</code></td><td class="date">${esc(f.date ?? '—')}</td>` +
    `<td class="key">${esc(f.key ?? '—')}</td><td class="detail">${esc(f.detail)}</td></tr>`
  );
}

function failureTable(failures: readonly ValidationFailure[]): string {
  return (
    '<div class="scroll"><table class="data"><thead><tr><th>Table</th><th>Date</th><th>Key</th><th>Detail</th></tr></thead>' +
    `<tbody>${failures.map(failureRowHtml).join('\n')}</tbody></table></div>`
  );
}

function checkFailuresHtml(c: ValidationCheck): string {
  const shown = c.failures.slice(0, FAILURES_SHOWN);
  const rest = c.failures.slice(FAILURES_SHOWN);
  const unlisted = Math.max(0, c.failureCount - c.failures.length);
  const fixes = c.fixes ?? [];
  const fixHtml =
    fixes.length > 0
      ? `<div class="fixes"><b>Fix</b>${fixes.map((f) => `${cmd(f.command)}<p class="muted">${prose(f.reason)}; for ${esc(datesText(f.dates))}.</p>`).join('')}</div>`
      : '';
  const body =
    c.failures.length === 0
      ? '<p class="muted">No failure details were recorded.</p>'
      : failureTable(shown) +
        (rest.length > 0
          ? `<details><summary>Show the other ${rest.length} (${FAILURES_SHOWN + 1} to ${c.failures.length} of ${c.failures.length})</summary>${failureTable(rest)}</details>`
          : '');
  const note =
    unlisted > 0 && c.failures.length > 0
      ? `<p class="more">Only the first ${c.failures.length} of ${c.failureCount} failures are listed in this report.</p>`
      : '';
  return (
    `<article class="check" id="${checkAnchor(c.name)}"><h3><span class="bad">✗</span> ${esc(c.category)} / <code>${nameHtml(c.name)}</code> ` +
    `<span class="muted">(${c.failureCount})</span></h3><p class="muted">${esc(c.description)}</p>${fixHtml}${body}${note}</article>`
  );
}

function failuresHtml(checks: readonly ValidationCheck[]): string {
  const failing = checks.filter((c) => !c.passed);
  if (failing.length === 0) return '<p class="muted">None.</p>';
  return failing.map(checkFailuresHtml).join('\n');
}

export function reportHtml(report: ValidationReport): string {
  const checks = orderedChecks(report);
  const index = coverageIndex(report);
  const coverage = tableCoverage(report, index);
  const failedChecks = checks.filter((c) => !c.passed).length;
  const totalFailures = checks.reduce((n, c) => n + c.failureCount, 0);
  const gridCells = report.tables.length * report.dates.length;
  const fullCells = coverage.reduce((n, t) => n + t.full, 0);
  const title = `NBA backfill validation: ${seasonsText(report)} — ${verdict(report)}`;
  const failingDates = failuresByDate(checks).size;

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
<section id="summary">
<h1>NBA backfill validation: ${esc(seasonsText(report))} ${badge(report)}</h1>
<div class="muted">${esc(rangeText(report))} · generated ${esc(report.generatedAt)}</div>
<div class="stats">
${stat(String(report.dates.length), 'dates')}
${stat(String(failingDates), 'failing dates', failingDates > 0)}
${stat(String(report.tables.length), 'tables')}
${stat(`${checks.length - failedChecks} / ${checks.length}`, 'checks passed', failedChecks > 0)}
${stat(String(totalFailures), 'failures', totalFailures > 0)}
${stat(`${fullCells} / ${gridCells}`, 'table-dates at 100%', fullCells < gridCells)}
</div>
</section>
${failingDatesHtml(report, checks)}
${fixesHtml(checks)}
<section id="coverage">
<h2>Coverage</h2>
${coverageHtml(report, checks)}
</section>
<section id="checks">
<h2>Checks</h2>
${checksTableHtml(checks)}
</section>
<section id="failures">
<h2>Failures</h2>
${failuresHtml(checks)}
</section>
</main>
</body>
</html>
`;
}
