// The validation report in a real browser (Debian's Chromium, headless): a failing report over real data hides no
// failing date and overflows nothing, at a desktop width and at a phone's.
//
// The data: the shared fixture of 2021-22 (Phase 1-3 through 2021-12-31), Stage 3 run over it, then the whole
// season validated: October to December pass, every date from January to the end of the playoffs fails (about
// 135 dates, exactly those the old one-strip heatmap pushed off-screen). What is checked, at 1400x900 and 420x900:
// - every failing date's calendar cell is inside the viewport horizontally, and the page never scrolls sideways;
//   at 1400 px the whole calendar fits one screen's height too (scrolled to, every failing cell is in view);
// - every table fits the viewport or sits in a horizontally scrollable wrapper, and the Checks table's Result and
//   Failures headers are in view;
// - no console error and no page error;
// - the complete list of failing dates comes before the calendar, and every failure is in the page.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedWarehouse } from '../core/checks/data.js';
import type { IsoDate } from '../core/dates.js';
import { silentLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import { writeReports } from '../core/stages/report.js';
import { runStage3 } from '../core/stages/stage3.js';
import { validate } from '../core/stages/validate.js';
import type { ValidationReport } from '../core/stages/validation.js';
import { LOADED_FIXTURE, type LoadedPipeline, openLoaded } from './support/loaded.js';

// The page's globals as the functions evaluated in Chromium use them: this project compiles without the DOM
// library, so they are declared here, for this file only.
interface Box {
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
  readonly width: number;
  readonly height: number;
}
interface Node {
  readonly id: string;
  readonly textContent: string | null;
  readonly parentElement: Node | null;
  getBoundingClientRect(): Box;
  getAttribute(name: string): string | null;
  querySelector(selector: string): Node | null;
  querySelectorAll(selector: string): readonly Node[];
  scrollIntoView(options: { block: string }): void;
}
declare const document: {
  readonly documentElement: Node & { readonly scrollWidth: number; readonly clientWidth: number };
  getElementById(id: string): Node | null;
  querySelector(selector: string): Node | null;
  querySelectorAll(selector: string): readonly Node[];
};
declare const window: { readonly innerWidth: number; readonly innerHeight: number };
declare function getComputedStyle(node: Node): { readonly overflowX: string };

/** Debian's Chromium on PATH (`apt-get install chromium`; .ci/run installs it), or null. */
function chromiumPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const CHROMIUM = chromiumPath();
const VIEWPORTS = [
  { name: 'desktop', width: 1400, height: 900, isMobile: false },
  { name: 'phone', width: 420, height: 900, isMobile: true },
] as const;

// In CI a missing Chromium fails the suite (beforeAll throws); elsewhere the suite is skipped, saying why.
const MUST_RUN = CHROMIUM !== null || Boolean(process.env.CI);
const suite = MUST_RUN ? describe : describe.skip;

suite(`the validation report in Chromium${MUST_RUN ? '' : ' (skipped: chromium is not installed; apt-get install chromium)'}`, () => {
  let t: LoadedPipeline | undefined;
  let dir: string;
  let browser: Browser | undefined;
  let report: ValidationReport;
  let html: string;
  let failing: IsoDate[];

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error('chromium is not on PATH: CI must install it (.ci/run does, from Debian)');
    dir = mkdtempSync(join(tmpdir(), 'report-browser-'));
    t = await openLoaded(LOADED_FIXTURE);
    const season = getSeason('2021-22');
    const plan = await readPlan(join(packageRoot(), 'plans'), season.label);
    const loaded = selectDates(plan, season, { seasonType: 'regular', endDate: '2021-12-31' });
    const ports = { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
    const stage3 = await runStage3(ports, silentLogger(), { season: season.label, dates: loaded });
    expect(stage3.summary.status).toBe('succeeded');
    report = await validate(t.adapters.warehouse, [
      { season: season.label, dates: selectDates(plan, season, { seasonType: 'all' }) },
    ]);
    html = writeReports(report, dir, 'validation-2021-22').html;
    failing = [...new Set(report.checks.flatMap((c) => c.failures.map((f) => f.date as IsoDate)))].sort();
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless=new'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await t?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is a failing report: January to June fail, October to December pass', () => {
    expect(report.passed).toBe(false);
    expect(failing[0]).toBe('2022-01-01');
    expect(failing.at(-1)).toBe(report.dates.at(-1));
    expect(failing.length).toBeGreaterThan(100);
    expect(report.dates.filter((d) => d <= '2021-12-31').every((d) => !failing.includes(d))).toBe(true);
  });

  /** The page at a viewport, with every console error and page error it raised while loading. */
  async function open(viewport: (typeof VIEWPORTS)[number]): Promise<{ page: Page; errors: string[] }> {
    if (!browser) throw new Error('no browser');
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
    await page.setViewport({
      width: viewport.width,
      height: viewport.height,
      deviceScaleFactor: 1,
      isMobile: viewport.isMobile,
      hasTouch: viewport.isMobile,
    });
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
    return { page, errors };
  }

  it('fits the whole calendar in one screen at 1400 px: scrolled to, every failing cell is in view', async () => {
    const desktop = VIEWPORTS[0];
    const { page } = await open(desktop);
    try {
      const view = await page.evaluate((dates: string[]) => {
        const calendar = document.getElementById('calendar');
        if (!calendar) return null;
        calendar.scrollIntoView({ block: 'start' });
        const out = dates.filter((d) => {
          const r = document.querySelector(`#calendar [data-date="${d}"]`)?.getBoundingClientRect();
          return !r || r.top < 0 || r.bottom > window.innerHeight || r.left < 0 || r.right > window.innerWidth;
        });
        return { height: calendar.getBoundingClientRect().height, out };
      }, failing);
      expect(view).not.toBeNull();
      expect(view?.height).toBeLessThanOrEqual(desktop.height);
      expect(view?.out).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  describe.each(VIEWPORTS)('at $width x $height ($name)', (viewport) => {
    let page: Page;
    let errors: string[];
    beforeAll(async () => {
      ({ page, errors } = await open(viewport));
    }, 60_000);
    afterAll(async () => page?.close());

    it('shows every failing date in the calendar without scrolling sideways, and the page never scrolls sideways', async () => {
      const layout = await page.evaluate((dates: string[]) => {
        const doc = document.documentElement;
        const cells = dates.map((d) => {
          const el = document.querySelector(`#calendar [data-date="${d}"]`);
          const r = el?.getBoundingClientRect();
          return { date: d, state: el?.getAttribute('data-state') ?? null, left: r?.left ?? -1, right: r?.right ?? -1 };
        });
        return { scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, cells };
      }, failing);
      expect(layout.clientWidth).toBe(viewport.width);
      expect(layout.scrollWidth, 'the page scrolls sideways').toBeLessThanOrEqual(layout.clientWidth);
      const hidden = layout.cells.filter((c) => c.state !== 'failed' || c.left < 0 || c.right > layout.clientWidth);
      expect(hidden, 'failing dates without a failed cell inside the viewport').toEqual([]);
    }, 60_000);

    it('keeps every table inside the viewport or in a horizontally scrollable wrapper; Result and Failures in view', async () => {
      const tables = await page.evaluate(() => {
        const width = document.documentElement.clientWidth;
        const all = [...document.querySelectorAll('table')].map((table, i) => {
          const parent = table.parentElement;
          const wrapper = parent?.getBoundingClientRect();
          const scrolls = parent !== null && getComputedStyle(parent).overflowX === 'auto';
          return {
            i,
            fits: table.getBoundingClientRect().width <= width,
            scrolls,
            wrapperInside: wrapper !== undefined && wrapper.left >= 0 && wrapper.right <= width,
          };
        });
        const checks = document.querySelector('#checks table');
        const headers = [...(checks?.querySelectorAll('thead th') ?? [])].map((th) => {
          const r = th.getBoundingClientRect();
          return { text: th.textContent, inView: r.left >= 0 && r.right <= width && r.width > 0 && r.height > 0 };
        });
        return { all, headers };
      });
      expect(tables.all.length).toBeGreaterThan(3);
      expect(tables.all.filter((x) => !(x.fits || (x.scrolls && x.wrapperInside)))).toEqual([]);
      for (const name of ['Result', 'Failures']) {
        expect(
          tables.headers.find((h) => h.text === name),
          `${name} header`,
        ).toMatchObject({ inView: true });
      }
    }, 60_000);

    it('logs no console error and raises no page error', () => {
      expect(errors).toEqual([]);
    });

    it('lists every failing date, complete, above the calendar; every failure is in the page', async () => {
      const found = await page.evaluate(() => {
        const list = document.getElementById('failing-dates')?.getBoundingClientRect();
        const calendar = document.getElementById('calendar')?.getBoundingClientRect();
        const listed = [...document.querySelectorAll('#failing-dates [data-failing-date]')].map((e) =>
          e.getAttribute('data-failing-date'),
        );
        const rows = Object.fromEntries(
          [...document.querySelectorAll('#failures article.check')].map((a) => [
            a.id,
            a.querySelectorAll('tbody tr').length,
          ]),
        );
        return { listBottom: list?.bottom ?? null, calendarTop: calendar?.top ?? null, listed, rows };
      });
      expect(found.listBottom).not.toBeNull();
      expect(found.calendarTop).not.toBeNull();
      expect(found.listBottom as number).toBeLessThanOrEqual(found.calendarTop as number);
      expect([...new Set(found.listed)].sort()).toEqual(failing);
      const failingChecks = report.checks.filter((c) => !c.passed);
      expect(found.rows).toEqual(Object.fromEntries(failingChecks.map((c) => [`check-${c.name}`, c.failureCount])));
    }, 60_000);
  });
});
