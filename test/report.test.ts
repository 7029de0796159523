// Stage 4 report renderings (JSON, Markdown, HTML calendar) on small hand-built validation reports, and the fix
// each group of failures suggests, checked against the built CLI's options.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROCESSORS } from '../core/pipeline/definition.js';
import { reportHtml, reportJson, reportMarkdown, writeReports } from '../core/stages/report.js';
import type {
  CoverageCell,
  ValidationCheck,
  ValidationFailure,
  ValidationFix,
  ValidationReport,
} from '../core/stages/validation.js';
import { type FixFacts, mergeFixes, withFixes } from '../core/stages/validationFixes.js';
import { createWorkspace, ensureBuilt, type Workspace } from './support/workspace.js';

// Three dates across a month boundary so the calendar needs two month blocks.
const DATES = ['2021-10-30', '2021-10-31', '2021-11-01'];

function cell(table: string, date: string, expected: number, present: number): CoverageCell {
  return { table, date, expected, present, pct: expected === 0 ? 0 : (present / expected) * 100 };
}

function failingReport(): ValidationReport {
  return {
    seasons: ['2021-22'],
    range: { start: '2021-10-30', end: '2021-11-01' },
    dates: DATES,
    generatedAt: '2024-01-01T00:00:00.000Z',
    passed: false,
    checks: [
      {
        name: 'player_minutes_in_range',
        category: 'ranges',
        description: 'Minutes played lie in [0, 65]',
        passed: false,
        failureCount: 23,
        failures: [
          {
            table: 'player_game_summary',
            date: '2021-10-31',
            key: 'game_id=0022100001, player_id=201939',
            detail: 'minutes=-3 <script>alert(1)</script> a|b',
          },
        ],
      },
      {
        name: 'every_date_loaded',
        category: 'completeness',
        description: 'Each table has rows for each date',
        passed: true,
        failureCount: 0,
        failures: [],
      },
    ],
    tables: ['player_game_summary', 'team_defense_zone'],
    // 100 / 95 / 40 for the first table; 0 / (missing) / 100 for the second.
    coverage: [
      cell('player_game_summary', '2021-10-30', 20, 20),
      cell('player_game_summary', '2021-10-31', 20, 19),
      cell('player_game_summary', '2021-11-01', 20, 8),
      cell('team_defense_zone', '2021-10-30', 30, 0),
      cell('team_defense_zone', '2021-11-01', 30, 30),
    ],
  };
}

function passingReport(): ValidationReport {
  const r = failingReport();
  return {
    ...r,
    passed: true,
    checks: r.checks.map((c) => ({ ...c, passed: true, failureCount: 0, failures: [] })),
  };
}

/** Every per-table calendar cell of a game date as title -> colour class. */
function heatmapCells(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(
    /<div class="d (cov-[a-z]+)" data-table="[^"]*" data-date="[^"]*" data-state="[a-z]+" title="([^"]*)"><\/div>/g,
  )) {
    out.set(m[2] ?? '', m[1] ?? '');
  }
  return out;
}

describe('reportJson', () => {
  it('round-trips the report as pretty JSON ending in a newline', () => {
    const report = failingReport();
    const json = reportJson(report);
    expect(JSON.parse(json)).toEqual(report);
    expect(json.endsWith('}\n')).toBe(true);
    expect(json).toContain('\n  "seasons": [');
  });
});

/** A check failing on the given failures (as many counted as listed unless `count` says otherwise). */
function failingCheck(name: string, failures: ValidationFailure[], count = failures.length): ValidationCheck {
  return {
    name,
    category: 'completeness',
    description: `${name} holds`,
    passed: false,
    failureCount: count,
    failures,
  };
}

const bad = (table: string, date: string, detail = 'bad'): ValidationFailure => ({ table, date, key: null, detail });

/** The fixes validate gives for Phase 1-2 never run on the dates: Stage 1 over them. */
function loadFixes(dates: readonly string[]): ValidationFix[] {
  const runs = Object.fromEntries(dates.map((d) => [`nbac_schedule|${d}`, 'never']));
  const [check] = withFixes(
    [
      failingCheck(
        'runs_complete',
        dates.map((d) => runFailure('nbac_schedule', d)),
      ),
    ],
    facts(runs),
  );
  return [...(check?.fixes ?? [])];
}

const LOAD = 'backfill stage1 --season 2021-22 --start-date 2021-10-30 --end-date 2021-11-01';
const GATE = 'backfill gate --season 2021-22 --start-date 2021-10-30 --end-date 2021-11-01';

/** The main calendar's markup: from its element to the legend. */
function mainCalendar(html: string): string {
  const start = html.indexOf('id="calendar"');
  return html.slice(start, html.indexOf('class="legend"', start));
}

/** The main calendar's cells: date -> [state, coverage class or "off", mark]. */
function calendarDays(html: string): Map<string, [string, string, string]> {
  const out = new Map<string, [string, string, string]>();
  for (const m of mainCalendar(html).matchAll(
    /<i class="d ([a-z-]+)" data-date="([0-9-]+)" data-state="([a-z]+)" title="[^"]*">([^<]*)<\/i>/g,
  )) {
    out.set(m[2] ?? '', [m[3] ?? '', m[1] ?? '', m[4] ?? '']);
  }
  return out;
}

describe('reportMarkdown', () => {
  const md = reportMarkdown(failingReport());
  const section = (text: string, heading: string) => {
    const start = text.indexOf(`\n## ${heading}\n`);
    const end = text.indexOf('\n## ', start + 1);
    return text.slice(start, end < 0 ? undefined : end);
  };

  it('titles the report with the seasons and FAILED, and gives the date range', () => {
    expect(md.split('\n')[0]).toBe('# NBA backfill validation: 2021-22 — FAILED');
    expect(md).toContain('2021-10-30 to 2021-11-01 (3 dates)');
  });

  it('has a check row with ❌ and the failure count, and a ✅ row for the passing check', () => {
    const checks = section(md, 'Checks');
    expect(checks).toContain('| ranges | player_minutes_in_range | ❌ | 23 | Minutes played lie in [0, 65] |');
    expect(checks).toContain('| completeness | every_date_loaded | ✅ | 0 | Each table has rows for each date |');
    // Grouped in category order: completeness before ranges, though the report lists ranges first.
    expect(checks.indexOf('every_date_loaded')).toBeLessThan(checks.indexOf('player_minutes_in_range'));
  });

  it('summarises coverage per table: dates at 100% and the lowest cell with its date', () => {
    expect(md).toContain('| player_game_summary | 1 / 3 | 40% | 2021-11-01 |');
    expect(md).toContain('| team_defense_zone | 1 / 3 | 0% | 2021-10-30 |');
    expect(md).toContain('team_defense_zone (1)');
  });

  it('lists the failure with its pipe escaped, and says the others were counted but not kept', () => {
    expect(md).toContain(
      '| player_game_summary | 2021-10-31 | game_id=0022100001, player_id=201939 | ' +
        'minutes=-3 <script>alert(1)</script> a\\|b |',
    );
    expect(md).not.toContain(' a|b');
    expect(md).toContain('Showing 1 of 23: the others were counted, not kept in this report.');
    expect(md).not.toContain('... and');
  });

  it('shows a sample of 20 failures per check and says where all of them are', () => {
    const base = failingReport();
    const first = base.checks[0];
    if (!first) throw new Error('fixture has no checks');
    const many = Array.from({ length: 50 }, (_, i) => bad('player_game_summary', '2021-10-31', `bad row ${i}`));
    const all = reportMarkdown({ ...base, checks: [{ ...first, failureCount: 50, failures: many }] });
    expect(all).toContain('bad row 19 |');
    expect(all).not.toContain('bad row 20 |');
    expect(all).toContain('Showing 20 of 50: all 50 are in the JSON and HTML reports that `backfill validate` writes.');
    const named = reportMarkdown(
      { ...base, checks: [{ ...first, failureCount: 50, failures: many }] },
      { fullListsIn: '`v.json` and `v.html` beside this file' },
    );
    expect(named).toContain('Showing 20 of 50: all 50 are in `v.json` and `v.html` beside this file.');
    // A report that listed only some of them says so.
    const cut = reportMarkdown({ ...base, checks: [{ ...first, failureCount: 120, failures: many }] });
    expect(cut).toContain(
      'Showing 20 of 120: the JSON and HTML reports that `backfill validate` writes list the first 50',
    );
  });

  it('says so when a failing check recorded no details, without a stray "... and N more"', () => {
    const base = failingReport();
    const first = base.checks[0];
    if (!first) throw new Error('fixture has no checks');
    const out = reportMarkdown({ ...base, checks: [{ ...first, failureCount: 7, failures: [] }] });
    expect(out).toContain('### ranges / player_minutes_in_range (7)\n\nNo failure details were recorded.');
    expect(out).not.toContain('more');
  });

  it('lists the failing dates and how to fix them before the checks, and each check its fix', () => {
    const base = failingReport();
    const out = reportMarkdown({
      ...base,
      checks: [
        {
          ...failingCheck('rows_present', [bad('t', '2021-10-30'), bad('t', '2021-10-31'), bad('u', '2021-11-01')]),
          fixes: loadFixes(DATES),
        },
      ],
    });
    expect(section(out, 'Failing dates')).toContain(
      '3 of 3 dates fail:\n\n- 2021-10-30 to 2021-10-31 (2 dates): rows_present\n- 2021-11-01: rows_present',
    );
    expect(section(out, 'How to fix')).toContain(
      `1. \`${LOAD}\`\n   Phase 1-2 never ran on these dates: Stage 1 loads them (every date of the plan in the range), then check the gate with \`${GATE}\`. (2021-10-30 to 2021-11-01 (3 dates))`,
    );
    expect(out.indexOf('## How to fix')).toBeLessThan(out.indexOf('## Checks'));
    expect(out).toContain(
      `### completeness / rows_present (3)\n\nFix: \`${LOAD}\` (2021-10-30 to 2021-11-01 (3 dates))`,
    );
    expect(reportMarkdown(passingReport())).not.toContain('## Failing dates');
  });
});

describe('reportHtml', () => {
  const html = reportHtml(failingReport());

  it('is one self-contained page: no scripts, no links or sources but in-page anchors', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/src\s*=/i);
    expect(html).not.toMatch(/href\s*=\s*"(?!#)/i);
    expect(html).not.toMatch(/url\(|@import|https?:/i);
  });

  it('escapes strings from the report', () => {
    expect(html).toContain('minutes=-3 &lt;script&gt;alert(1)&lt;/script&gt; a|b');
  });

  it('shows a FAILED badge with a mark as well as a colour, and summary numbers', () => {
    expect(html).toContain('<span class="badge fail">✗ FAILED</span>');
    expect(html).not.toContain('PASSED');
    expect(html).toContain('<b>1 / 2</b><span>checks passed</span>');
    expect(html).toContain('<b>23</b><span>failures</span>');
    expect(html).toContain('<b>1</b><span>failing dates</span>');
  });

  it('draws one per-table cell per table and date, coloured by coverage, grey where a cell is missing', () => {
    const cells = heatmapCells(html);
    expect(cells.size).toBe(6);
    expect([...cells.keys()]).toEqual([
      'player_game_summary 2021-10-30: 20/20 (100%)',
      'player_game_summary 2021-10-31: 19/20 (95%)',
      'player_game_summary 2021-11-01: 8/20 (40%)',
      'team_defense_zone 2021-10-30: 0/30 (0%)',
      'team_defense_zone 2021-10-31: no data',
      'team_defense_zone 2021-11-01: 30/30 (100%)',
    ]);
    // 40% is under the amber threshold (50), so orange.
    expect([...cells.values()]).toEqual(['cov-full', 'cov-high', 'cov-low', 'cov-zero', 'cov-none', 'cov-full']);
  });

  it('puts each threshold in the upper band: 90% light green, 50% amber, a trickle orange, 99.99% not 100', () => {
    const base = failingReport();
    const extra = [cell('t', '2021-10-30', 10, 9), cell('t', '2021-10-31', 2, 1), cell('t', '2021-11-01', 30, 1)];
    const cells = heatmapCells(reportHtml({ ...base, tables: ['t'], coverage: extra }));
    expect([...cells.entries()]).toEqual([
      ['t 2021-10-30: 9/10 (90%)', 'cov-high'],
      ['t 2021-10-31: 1/2 (50%)', 'cov-mid'],
      ['t 2021-11-01: 1/30 (3.3%)', 'cov-low'],
    ]);
    const nearly = heatmapCells(
      reportHtml({ ...base, tables: ['t'], coverage: [cell('t', '2021-10-30', 10000, 9999)] }),
    );
    expect(nearly.get('t 2021-10-30: 9999/10000 (99.9%)')).toBe('cov-high');
  });

  it('shows nothing expected as no data (never green) and a table-date whose processor never ran as not run', () => {
    const base = failingReport();
    const cells = heatmapCells(
      reportHtml({
        ...base,
        tables: ['t'],
        coverage: [
          { table: 't', date: '2021-10-30', expected: 0, present: 0, pct: null },
          { table: 't', date: '2021-10-31', expected: 0, present: 0, pct: null, notRun: true },
          { table: 't', date: '2021-11-01', expected: 5, present: 5, pct: 100, notRun: true },
        ],
      }),
    );
    expect([...cells.entries()]).toEqual([
      ['t 2021-10-30: no data (nothing expected)', 'cov-none'],
      ['t 2021-10-31: no data (nothing expected), NOT RUN: no run of its processor on this date', 'cov-notrun'],
      ['t 2021-11-01: 5/5 (100%), NOT RUN: no run of its processor on this date', 'cov-notrun'],
    ]);
  });

  it('shows a stale table-date in a colour of its own, whatever its coverage, and says why in its title', () => {
    const base = failingReport();
    const cells = heatmapCells(reportHtml({ ...base, stale: [{ table: 'player_game_summary', date: '2021-10-31' }] }));
    expect(cells.get('player_game_summary 2021-10-31: 19/20 (95%), STALE: an input was corrected since it ran')).toBe(
      'cov-stale',
    );
    expect(cells.get('player_game_summary 2021-10-30: 20/20 (100%)')).toBe('cov-full');
    expect(reportHtml({ ...base, stale: [] })).not.toContain('class="d cov-stale" data-table');
    expect(reportMarkdown({ ...base, stale: [{ table: 'player_game_summary', date: '2021-10-31' }] })).toContain(
      'Stale (an input corrected since they ran): 1 date(s) from 2021-10-31',
    );
    expect(reportMarkdown(base)).not.toContain('Stale');
  });

  it('lays coverage out as a calendar: a block per month, every day a cell with its date and state', () => {
    const calendar = mainCalendar(html);
    expect(calendar).toContain('<div class="month" data-month="2021-10"><div class="mlabel">Oct 2021</div>');
    expect(calendar).toContain('<div class="month" data-month="2021-11"><div class="mlabel">Nov 2021</div>');
    // 1 October 2021 is a Friday: four empty cells put it on the fifth row (Monday first); 1 November is a Monday.
    expect(calendar).toMatch(
      /data-month="2021-10">.*?<\/b>(<i class="pad"><\/i>){4}<i class="d off" data-date="2021-10-01"/,
    );
    expect(calendar).toMatch(/data-month="2021-11">.*?<\/b><i class="d [a-z-]+" data-date="2021-11-01"/);
    const days = calendarDays(html);
    expect(days.size).toBe(31 + 30);
    // Each game date shows its worst table, and ✗ as well when it fails; every other day is off, empty.
    expect(days.get('2021-10-30')).toEqual(['failed', 'cov-zero', '✗']);
    expect(days.get('2021-10-31')).toEqual(['failed', 'cov-high', '✗']);
    expect(days.get('2021-11-01')).toEqual(['failed', 'cov-low', '✗']);
    expect(days.get('2021-10-29')).toEqual(['off', 'off', '']);
    expect([...days.values()].filter(([state]) => state === 'off')).toHaveLength(58);
  });

  it('puts each season on its own row of months, labelled, and leaves out the summer between seasons', () => {
    const dates = ['2022-06-16', '2022-10-18'];
    const out = reportHtml({
      ...passingReport(),
      range: { start: '2022-06-16', end: '2022-10-18' },
      dates,
      coverage: dates.flatMap((d) => [cell('player_game_summary', d, 1, 1), cell('team_defense_zone', d, 1, 1)]),
    });
    const calendar = mainCalendar(out);
    expect([...calendar.matchAll(/data-season="([0-9-]+)"><div class="slabel">([0-9-]+)</g)].map((m) => m[1])).toEqual([
      '2021-22',
      '2022-23',
    ]);
    expect([...calendar.matchAll(/data-month="([0-9-]+)"/g)].map((m) => m[1])).toEqual(['2022-06', '2022-10']);
    // One season needs no label: the title names it.
    expect(mainCalendar(html)).not.toContain('class="slabel"');
  });

  it('shows a date with every table covered and no failure as passed, without a mark', () => {
    const base = passingReport();
    const full = DATES.flatMap((d) => base.tables.map((t) => cell(t, d, 10, 10)));
    const days = calendarDays(reportHtml({ ...base, coverage: full }));
    expect(DATES.map((d) => days.get(d))).toEqual(DATES.map(() => ['passed', 'cov-full', '']));
  });

  it('lists every failing date before the calendar, in runs that fail the same way, with their fix', () => {
    const report: ValidationReport = {
      ...failingReport(),
      checks: [
        {
          ...failingCheck('rows_present', [bad('t', '2021-10-30'), bad('t', '2021-10-31'), bad('u', '2021-11-01')]),
          fixes: loadFixes(DATES),
        },
      ],
    };
    const out = reportHtml(report);
    expect(out.indexOf('id="failing-dates"')).toBeLessThan(out.indexOf('id="calendar"'));
    expect([...out.matchAll(/data-failing-date="([0-9-]+)"/g)].map((m) => m[1])).toEqual(DATES);
    expect(out).toContain('<li class="run" data-first="2021-10-30" data-last="2021-10-31">');
    expect(out).toContain('<li class="run" data-first="2021-11-01" data-last="2021-11-01">');
    expect(out).toContain(`<div class="fix">Fix: <code>${LOAD}</code></div>`);
    expect(reportHtml(passingReport())).not.toContain('id="failing-dates"');
  });

  it('lists every failure: the first 20 shown, the others in a <details>, none left out', () => {
    const many = Array.from({ length: 50 }, (_, i) => bad('player_game_summary', '2021-10-31', `bad row ${i}`));
    const out = reportHtml({ ...failingReport(), checks: [failingCheck('minutes_in_range', many)] });
    for (let i = 0; i < 50; i++) expect(out).toContain(`<td class="detail">bad row ${i}</td>`);
    const details = out.slice(out.indexOf('<details><summary>Show the other 30'));
    expect(details).toContain('<summary>Show the other 30 (21 to 50 of 50)</summary>');
    expect(details).toContain('bad row 20<');
    expect(details).not.toContain('bad row 19<');
    expect(out).not.toContain('... and');
    expect(out).not.toContain('class="more"');
  });

  it('says when a report lists only some of its failures, and that dates may then be missing', () => {
    expect(html).toContain('<p class="more">Only the first 1 of 23 failures are listed in this report.</p>');
    expect(html).toContain('22 failures counted by the checks are not listed in this report');
  });

  it('shows each fix as a command, in the how-to-fix list and under its check', () => {
    const out = reportHtml({
      ...failingReport(),
      checks: [{ ...failingCheck('runs_complete', [bad('t', '2021-10-30')]), fixes: loadFixes(DATES) }],
    });
    const cmd = `<pre class="cmd"><code>${LOAD}</code></pre>`;
    const howTo = out.slice(out.indexOf('id="fix"'), out.indexOf('id="coverage"'));
    expect(howTo).toContain(`<li>${cmd}<p>Phase 1-2 never ran on these dates: Stage 1 loads them`);
    expect(howTo).toContain(`check the gate with <code>${GATE}</code>.</p>`);
    expect(howTo).toContain('<code>backfill validate --season 2021-22</code>');
    expect(out.slice(out.indexOf('id="check-runs_complete"'))).toContain(cmd);
  });

  it('has a legend that says states are told apart without colour too', () => {
    expect(html).toContain('class="legend"');
    expect(html).toContain('no data</span>');
    expect(html).toContain('not run (hatched)</span>');
    expect(html).toContain('no games (outlined, empty)</span>');
    expect(html).toContain('Not by colour alone: ✗ marks a date on which a check fails');
  });

  it('has the checks table by category, Result and Failures first, and the failures list', () => {
    expect(html).toContain(
      '<thead><tr><th>Result</th><th>Check</th><th class="num">Failures</th><th>Description</th></tr></thead>',
    );
    expect(html).toContain('<tr class="cat"><th colspan="4" scope="colgroup">completeness</th></tr>');
    expect(html).toContain(
      '<td class="result"><span class="bad">✗ fail</span></td><td><code>player_<wbr>minutes_<wbr>in_<wbr>range</code></td>' +
        '<td class="num"><a href="#check-player_minutes_in_range">23</a></td>',
    );
    expect(html).toContain('<td class="result"><span class="ok">✓ pass</span></td>');
    expect(html).toContain('<td class="key">game_id=0022100001, player_id=201939</td>');
    expect(html.indexOf('completeness</th>')).toBeLessThan(html.indexOf('ranges</th>'));
  });

  it('fits a phone: every table in a scroll wrapper, and narrow-screen rules', () => {
    const tables = html.match(/<table/g) ?? [];
    expect(tables.length).toBeGreaterThan(2);
    expect(html.match(/<div class="scroll"><table/g)).toHaveLength(tables.length);
    expect(html).toContain('.scroll { overflow-x: auto;');
    expect(html).toContain('@media (max-width: 640px)');
    expect(html).toContain('.months { display: flex; flex-wrap: wrap;');
  });

  it('shows a PASSED badge for a passing report', () => {
    const out = reportHtml(passingReport());
    expect(out).toContain('<span class="badge pass">✓ PASSED</span>');
    expect(out).not.toContain('FAILED');
    expect(reportMarkdown(passingReport()).split('\n')[0]).toBe('# NBA backfill validation: 2021-22 — PASSED');
  });
});

describe('writeReports', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes the JSON, Markdown and HTML files into a new directory', () => {
    dir = mkdtempSync(join(tmpdir(), 'report-'));
    const target = join(dir, 'nested', 'out');
    const report = failingReport();
    const paths = writeReports(report, target, 'validation-2021-22');
    // The latest under the plain name, and a copy kept per run, named by the report's time.
    const kept = join(target, 'runs', 'validation-2021-22-20240101T000000000Z');
    expect(paths).toEqual({
      json: join(target, 'validation-2021-22.json'),
      markdown: join(target, 'validation-2021-22.md'),
      html: join(target, 'validation-2021-22.html'),
      kept: { json: `${kept}.json`, markdown: `${kept}.md`, html: `${kept}.html` },
    });
    for (const p of [paths.json, paths.markdown, paths.html, ...Object.values(paths.kept)])
      expect(existsSync(p)).toBe(true);
    expect(readFileSync(paths.kept.html, 'utf8')).toBe(reportHtml(report));
    // Each Markdown names its own JSON and HTML for the full failure lists.
    expect(readFileSync(paths.kept.markdown, 'utf8')).toBe(
      reportMarkdown(report, {
        fullListsIn:
          '`validation-2021-22-20240101T000000000Z.json` and `validation-2021-22-20240101T000000000Z.html` beside this file',
      }),
    );
    // A later run replaces the latest and keeps both runs' copies.
    const later = writeReports({ ...report, generatedAt: '2024-01-02T03:04:05.006Z' }, target, 'validation-2021-22');
    expect(later.kept.json).toBe(join(target, 'runs', 'validation-2021-22-20240102T030405006Z.json'));
    expect(existsSync(paths.kept.json)).toBe(true);
    expect(JSON.parse(readFileSync(later.json, 'utf8')).generatedAt).toBe('2024-01-02T03:04:05.006Z');
    writeReports(report, target, 'validation-2021-22');
    expect(readFileSync(paths.json, 'utf8')).toBe(reportJson(report));
    expect(readFileSync(paths.markdown, 'utf8')).toBe(
      reportMarkdown(report, {
        fullListsIn: '`validation-2021-22.json` and `validation-2021-22.html` beside this file',
      }),
    );
    expect(readFileSync(paths.html, 'utf8')).toBe(reportHtml(report));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fixes

const S1 = '2021-22';
const D = '2022-01-10';
const D2 = '2022-01-12';
const LATER = '2023-01-10';

/**
 * Facts where every processor's latest run succeeded on every date, but those given: a status, or `never` for no
 * run at all.
 */
function facts(runs: Record<string, string> = {}): FixFacts {
  return {
    seasonOf: (date) => (date < '2022-07-01' ? S1 : '2022-23'),
    runStatus: (processor, date) => {
      const status = runs[`${processor}|${date}`] ?? 'success';
      return status === 'never' ? undefined : status;
    },
  };
}

/** A runs_complete failure as validate writes it: the processor as key. */
function runFailure(processor: string, date: string, detail = 'never ran'): ValidationFailure {
  const def = PROCESSORS.find((p) => p.name === processor);
  const table = def?.output.kind === 'table' ? `${def.output.table.dataset}.${def.output.table.name}` : processor;
  return { table, date, key: processor, detail };
}

const RAW_BOX = 'nba_raw.nbac_player_boxscore';
const PGS = 'nba_analytics.player_game_summary';

const FIX_CASES: {
  name: string;
  checks: ValidationCheck[];
  facts: FixFacts;
  /** The commands of each failing check, in order. */
  want: Record<string, string[]>;
}[] = [
  {
    name: 'Phase 1-2 never ran on a date: Stage 1 loads it',
    checks: [failingCheck('runs_complete', [runFailure('nbac_schedule', D)])],
    facts: facts({ [`nbac_schedule|${D}`]: 'never' }),
    want: { runs_complete: [`backfill stage1 --season ${S1} --start-date ${D} --end-date ${D}`] },
  },
  {
    name: 'the latest Phase 1-2 run failed: retry',
    checks: [failingCheck('runs_complete', [runFailure('nbac_team_boxscore', D, 'latest run failed: boom')])],
    facts: facts({ [`nbac_team_boxscore|${D}`]: 'failed' }),
    want: { runs_complete: [`backfill retry --season ${S1}`] },
  },
  {
    name: 'raw rows missing though every Phase 1-2 run succeeded: Stage 1 again with --force',
    checks: [failingCheck('rows_present', [bad(RAW_BOX, D), bad(RAW_BOX, D2)])],
    facts: facts(),
    want: { rows_present: [`backfill stage1 --season ${S1} --start-date ${D} --end-date ${D2} --force`] },
  },
  {
    name: 'raw rows missing on a date whose Phase 1-2 run failed: retry',
    checks: [failingCheck('rows_present', [bad(RAW_BOX, D)])],
    facts: facts({ [`nbac_player_boxscore|${D}`]: 'failed' }),
    want: { rows_present: [`backfill retry --season ${S1}`] },
  },
  {
    name: 'a Phase 3-4 processor never ran: Stage 3 over the dates',
    checks: [failingCheck('runs_complete', [runFailure('player_daily_cache', D), runFailure('ml_feature_store', D2)])],
    facts: facts({ [`player_daily_cache|${D}`]: 'never', [`ml_feature_store|${D2}`]: 'never' }),
    want: { runs_complete: [`backfill stage3 --season ${S1} --start-date ${D} --end-date ${D2}`] },
  },
  {
    name: 'Phase 3 rows missing, its run and the raw rows fine: the processor again on the date',
    checks: [failingCheck('rows_present', [bad(PGS, D)])],
    facts: facts(),
    want: { rows_present: [`backfill process player_game_summary --date ${D}`] },
  },
  {
    name: 'Phase 3 rows missing on a date whose raw rows are missing too: load again, then Stage 3',
    checks: [failingCheck('rows_present', [bad(RAW_BOX, D), bad(PGS, D)])],
    facts: facts(),
    want: {
      rows_present: [
        `backfill stage1 --season ${S1} --start-date ${D} --end-date ${D} --force`,
        `backfill stage3 --season ${S1} --start-date ${D} --end-date ${D}`,
      ],
    },
  },
  {
    name: 'stale results: Stage 3, also for a value check on the stale table-date',
    checks: [
      failingCheck('runs_current', [{ table: PGS, date: D, key: 'player_game_summary', detail: 'stale: x' }]),
      failingCheck('minutes_in_range', [bad(PGS, D), bad(PGS, D2)]),
    ],
    facts: facts(),
    want: {
      runs_current: [`backfill stage3 --season ${S1} --start-date ${D} --end-date ${D}`],
      minutes_in_range: [
        `backfill process player_game_summary --date ${D2}`,
        `backfill stage3 --season ${S1} --start-date ${D} --end-date ${D}`,
      ],
    },
  },
  {
    name: 'two seasons: a command for each',
    checks: [failingCheck('runs_complete', [runFailure('nbac_schedule', D), runFailure('nbac_schedule', LATER)])],
    facts: facts({ [`nbac_schedule|${D}`]: 'never', [`nbac_schedule|${LATER}`]: 'never' }),
    want: {
      runs_complete: [
        `backfill stage1 --season ${S1} --start-date ${D} --end-date ${D}`,
        `backfill stage1 --season 2022-23 --start-date ${LATER} --end-date ${LATER}`,
      ],
    },
  },
  {
    name: 'the schedule disagreeing with Phase 1-2 and the offense summary fine: load again, or the summary again',
    checks: [failingCheck('schedule_scores_agree', [bad('nba_raw.nbac_schedule', D)])],
    facts: facts(),
    want: {
      schedule_scores_agree: [
        `backfill stage1 --season ${S1} --start-date ${D} --end-date ${D} --force`,
        `backfill process team_offense_game_summary --date ${D}`,
      ],
    },
  },
  {
    name: 'a table that is not the pipeline’s, or a failure without a date: no fix',
    checks: [failingCheck('rows_present', [bad('elsewhere.t', D), { table: PGS, date: null, key: null, detail: 'x' }])],
    facts: facts(),
    want: { rows_present: [] },
  },
];

describe('fixes', () => {
  it.each(FIX_CASES)('$name', ({ checks, facts: f, want }) => {
    const fixed = withFixes(checks, f);
    expect(Object.fromEntries(fixed.map((c) => [c.name, (c.fixes ?? []).map((x) => x.command)]))).toEqual(want);
  });

  it('says which dates and tables each fix covers, and gives none to a passing check', () => {
    const passing: ValidationCheck = { ...failingCheck('rows_present', []), passed: true };
    const [fixed, none] = withFixes(
      [failingCheck('rows_present', [bad(RAW_BOX, D2), bad(RAW_BOX, D)]), passing],
      facts(),
    );
    expect(fixed?.fixes).toEqual([
      {
        kind: 'reload',
        season: S1,
        command: `backfill stage1 --season ${S1} --start-date ${D} --end-date ${D2} --force`,
        reason: expect.stringContaining('--force writes them even when the scraped files are unchanged'),
        dates: [D, D2],
        tables: [RAW_BOX],
      },
    ]);
    expect(none?.fixes).toEqual([]);
  });

  it('merges the checks’ fixes into one command per kind, season and processor, Phase 1-2 first', () => {
    const fixed = withFixes(
      [
        failingCheck('runs_complete', [runFailure('player_daily_cache', D2), runFailure('nbac_schedule', D)]),
        failingCheck('rows_present', [bad('nba_precompute.player_daily_cache', D)]),
      ],
      facts({ [`player_daily_cache|${D2}`]: 'never', [`nbac_schedule|${D}`]: 'never' }),
    );
    expect(mergeFixes(fixed.flatMap((c) => c.fixes ?? [])).map((f) => [f.command, f.tables])).toEqual([
      [`backfill stage1 --season ${S1} --start-date ${D} --end-date ${D}`, ['nba_raw.nbac_schedule']],
      [`backfill stage3 --season ${S1} --start-date ${D} --end-date ${D2}`, ['nba_precompute.player_daily_cache']],
    ]);
  });

  describe('against the built CLI', () => {
    let ws: Workspace;
    beforeAll(async () => {
      await ensureBuilt();
      ws = createWorkspace();
    });
    afterAll(() => ws?.remove());

    it('every command a fix or its reason names is a command whose --help lists each option given', async () => {
      const fixes = FIX_CASES.flatMap((c) => withFixes(c.checks, c.facts)).flatMap((c) => c.fixes ?? []);
      const commands = new Set<string>();
      for (const f of fixes) {
        commands.add(f.command);
        for (const m of f.reason.matchAll(/`(backfill [^`]+)`/g)) commands.add(m[1] as string);
      }
      const byName = new Map<string, Set<string>>();
      for (const c of commands) {
        const [, name, ...rest] = c.split(' ');
        const options = byName.get(name as string) ?? new Set<string>();
        for (const word of rest) if (word.startsWith('--')) options.add(word);
        byName.set(name as string, options);
      }
      expect([...byName.keys()].sort()).toEqual(['failures', 'gate', 'process', 'retry', 'stage1', 'stage3']);
      for (const [name, options] of byName) {
        const help = await ws.cli([name, '--help']);
        expect(help.code, `${name} --help`).toBe(0);
        for (const option of options) expect(help.stdout, `${name} ${option}`).toMatch(new RegExp(`${option}\\b`));
      }
      // A processor named for `process` is one of the pipeline's.
      for (const c of commands) {
        if (c.startsWith('backfill process ')) {
          expect(PROCESSORS.map((p) => p.name)).toContain(c.split(' ')[2]);
        }
      }
    });
  });
});
