// Stage 4 report renderings (JSON, Markdown, HTML heatmap) on a small hand-built validation report.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reportHtml, reportJson, reportMarkdown, writeReports } from '../core/stages/report.js';
import type { CoverageCell, ValidationReport } from '../core/stages/validation.js';

// Three dates across a month boundary so the heatmap needs two month labels.
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

/** Every heatmap cell as title -> colour class. */
function heatmapCells(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<div class="cell (cov-[a-z]+)" title="([^"]*)"><\/div>/g)) {
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

describe('reportMarkdown', () => {
  const md = reportMarkdown(failingReport());

  it('titles the report with the seasons and FAILED, and gives the date range', () => {
    expect(md.split('\n')[0]).toBe('# NBA backfill validation: 2021-22 — FAILED');
    expect(md).toContain('2021-10-30 to 2021-11-01 (3 dates)');
  });

  it('has a check row with ❌ and the failure count, and a ✅ row for the passing check', () => {
    expect(md).toContain('| ranges | player_minutes_in_range | ❌ | 23 | Minutes played lie in [0, 65] |');
    expect(md).toContain('| completeness | every_date_loaded | ✅ | 0 | Each table has rows for each date |');
    // Grouped in category order: completeness before ranges, though the report lists ranges first.
    expect(md.indexOf('every_date_loaded')).toBeLessThan(md.indexOf('player_minutes_in_range'));
  });

  it('summarises coverage per table: dates at 100% and the lowest cell with its date', () => {
    expect(md).toContain('| player_game_summary | 1 / 3 | 40% | 2021-11-01 |');
    expect(md).toContain('| team_defense_zone | 1 / 3 | 0% | 2021-10-30 |');
    expect(md).toContain('team_defense_zone (1)');
  });

  it('lists the failure with its pipe escaped, and how many more there are', () => {
    expect(md).toContain(
      '| player_game_summary | 2021-10-31 | game_id=0022100001, player_id=201939 | ' +
        'minutes=-3 <script>alert(1)</script> a\\|b |',
    );
    expect(md).not.toContain(' a|b');
    expect(md).toContain('... and 22 more');
  });

  it('shows at most 20 failures per check', () => {
    const base = failingReport();
    const first = base.checks[0];
    if (!first) throw new Error('fixture has no checks');
    const many = Array.from({ length: 50 }, (_, i) => ({
      table: 'player_game_summary',
      date: '2021-10-31',
      key: null,
      detail: `bad row ${i}`,
    }));
    const report: ValidationReport = { ...base, checks: [{ ...first, failureCount: 120, failures: many }] };
    const out = reportMarkdown(report);
    expect(out).toContain('bad row 19 |');
    expect(out).not.toContain('bad row 20 |');
    expect(out).toContain('... and 100 more');
  });

  it('says so when a failing check recorded no details, without a stray "... and N more"', () => {
    const base = failingReport();
    const first = base.checks[0];
    if (!first) throw new Error('fixture has no checks');
    const out = reportMarkdown({ ...base, checks: [{ ...first, failureCount: 7, failures: [] }] });
    expect(out).toContain('### ranges / player_minutes_in_range (7)\n\nNo failure details were recorded.');
    expect(out).not.toContain('more');
  });
});

describe('reportHtml', () => {
  const html = reportHtml(failingReport());

  it('is one self-contained page: no scripts, no external links or sources', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=/i);
    expect(html).not.toMatch(/url\(|@import|https?:/i);
  });

  it('escapes strings from the report', () => {
    expect(html).toContain('minutes=-3 &lt;script&gt;alert(1)&lt;/script&gt; a|b');
  });

  it('shows a FAILED badge and summary numbers', () => {
    expect(html).toContain('<span class="badge fail">FAILED</span>');
    expect(html).not.toContain('PASSED');
    expect(html).toContain('<b>1 / 2</b><span>checks passed</span>');
    expect(html).toContain('<b>23</b><span>failures</span>');
  });

  it('draws one heatmap cell per table and date, coloured by coverage, grey where a cell is missing', () => {
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
    expect(reportHtml({ ...base, stale: [] })).not.toContain('class="cell cov-stale" title');
    expect(reportMarkdown({ ...base, stale: [{ table: 'player_game_summary', date: '2021-10-31' }] })).toContain(
      'Stale (an input corrected since they ran): 1 date(s) from 2021-10-31',
    );
    expect(reportMarkdown(base)).not.toContain('Stale');
  });

  it('labels each month once, spanning its dates', () => {
    expect(html).toContain('<div class="month" style="grid-column: span 2" title="Oct 2021">Oct 2021</div>');
    expect(html).toContain('<div class="month" style="grid-column: span 1" title="Nov 2021">Nov 2021</div>');
    expect(html).toContain('repeat(3, var(--cell))');
  });

  it('has a legend, the checks table and the failures list', () => {
    expect(html).toContain('class="legend"');
    expect(html).toContain('no data</span>');
    expect(html).toContain('<code>player_minutes_in_range</code></td><td><span class="bad">✗ fail</span></td>');
    expect(html).toContain('<td class="key">game_id=0022100001, player_id=201939</td>');
    expect(html).toContain('... and 22 more');
  });

  it('shows a PASSED badge for a passing report', () => {
    const out = reportHtml(passingReport());
    expect(out).toContain('<span class="badge pass">PASSED</span>');
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
    // A later run replaces the latest and keeps both runs' copies.
    const later = writeReports({ ...report, generatedAt: '2024-01-02T03:04:05.006Z' }, target, 'validation-2021-22');
    expect(later.kept.json).toBe(join(target, 'runs', 'validation-2021-22-20240102T030405006Z.json'));
    expect(existsSync(paths.kept.json)).toBe(true);
    expect(JSON.parse(readFileSync(later.json, 'utf8')).generatedAt).toBe('2024-01-02T03:04:05.006Z');
    writeReports(report, target, 'validation-2021-22');
    expect(readFileSync(paths.json, 'utf8')).toBe(reportJson(report));
    expect(readFileSync(paths.markdown, 'utf8')).toBe(reportMarkdown(report));
    expect(readFileSync(paths.html, 'utf8')).toBe(reportHtml(report));
  });
});
