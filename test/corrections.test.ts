// A stat correction reaches the analytics: a date reloaded from a corrected folder (`--source dir:`) makes
// the Phase 3-4 results that read it stale; status and validate say so; Stage 3 recomputes from that date;
// loading the original data again puts every value back.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDataOf } from '../core/checks/data.js';
import type { StaleRun } from '../core/runs/versions.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { qualifiedName, type Row } from '../core/schema/table.js';
import { type Correction, writeCorrectedFolder } from './support/corrections.js';
import { createWorkspace, createWorkspaceWithPlans, ensureBuilt, type Workspace } from './support/workspace.js';

const SEASON = ['--season', '2021-22', '--season-type', 'regular'];
const THROUGH = [...SEASON, '--end-date', '2022-02-15'];
/** The corrected date: a January date of the loaded range. */
const D = '2022-01-12';
const ONE_DATE = [...SEASON, '--start-date', D, '--end-date', D, '--retry-delay-ms', '0'];

/** Every Phase 3-4 table's rows, ordered, as JSON lines: before D, and all of them. */
async function derived(ws: Workspace): Promise<{ before: string; all: string }> {
  return ws.withAdapters(async (a) => {
    let before = '';
    let all = '';
    for (const t of [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]) {
      const rows = await a.warehouse.query(`SELECT * FROM ${qualifiedName(t)} ORDER BY ALL`);
      for (const r of rows) {
        const line = `${qualifiedName(t)} ${JSON.stringify(r)}\n`;
        all += line;
        if (String(r[t.partitionColumn]).slice(0, 10) < D) before += line;
      }
    }
    return { before, all };
  });
}

async function pointsAverages(ws: Workspace, player: number): Promise<Row[]> {
  return ws.query(
    `SELECT CAST(game_date AS STRING) AS d, points, pts_avg_last_5, pts_avg_last_10 FROM nba_analytics.player_game_summary
      WHERE player_id = ${player} AND game_date >= DATE '${D}' ORDER BY game_date`,
  );
}

async function statusJson(ws: Workspace): Promise<{ stage3: { stale: string[] }; next: string | null }> {
  const out = await ws.cli(['status', ...THROUGH, '--format', 'json']);
  expect(out.code, out.stderr).toBe(0);
  return (JSON.parse(out.stdout) as { seasons: { stage3: { stale: string[] }; next: string | null }[] }).seasons[0] as {
    stage3: { stale: string[] };
    next: string | null;
  };
}

async function staleRuns(ws: Workspace): Promise<StaleRun[]> {
  return ws.withAdapters((a) => checkDataOf(a.warehouse).staleRuns('2021-22'));
}

describe('a stat correction', () => {
  let ws: Workspace;
  let folder: Workspace;
  let fix: Correction;
  let original: { before: string; all: string };
  let gainerBefore: Row[];
  let loserBefore: Row[];

  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    folder = createWorkspace();
    fix = writeCorrectedFolder(folder.dir, D);
    const run = await ws.cli(['run', ...THROUGH, '--retry-delay-ms', '0']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    original = await derived(ws);
    gainerBefore = await pointsAverages(ws, fix.gainer);
    loserBefore = await pointsAverages(ws, fix.loser);
  }, 240_000);
  afterAll(() => {
    ws?.remove();
    folder?.remove();
  });

  it('reloaded from a corrected folder, makes D and the later dates that read it stale, and nothing before', async () => {
    const s1 = await ws.cli(['stage1', ...ONE_DATE, '--source', `dir:${folder.dir}`]);
    expect(s1.code, s1.stdout + s1.stderr).toBe(0);

    const status = await statusJson(ws);
    expect(status.stage3.stale[0]).toBe(D);
    expect(status.stage3.stale.every((d) => d >= D)).toBe(true);
    expect(status.next).toBe(`backfill stage3 ${THROUGH.join(' ')}`);

    // Per processor: the team totals did not change, so no team summary is stale; the player summaries are
    // stale exactly on the dates whose players' 10-game windows reach D (an independent SQL statement of the
    // rule).
    const stale = await staleRuns(ws);
    expect(stale.filter((r) => r.processor.startsWith('team_'))).toEqual([]);
    const pgs = stale.filter((r) => r.processor === 'player_game_summary').map((r) => r.date);
    const reaching = await ws.query(
      `WITH g AS (
         SELECT game_date, LAG(game_date, 10) OVER (PARTITION BY player_id ORDER BY game_date) AS back10,
                MIN(game_date) OVER (PARTITION BY player_id) AS first
           FROM nba_raw.nbac_player_boxscore WHERE season = '2021-22')
       SELECT CAST(game_date AS STRING) AS d FROM g
        WHERE game_date BETWEEN DATE '${D}' AND DATE '2022-02-15'
        GROUP BY game_date HAVING MIN(COALESCE(back10, first)) <= DATE '${D}' ORDER BY d`,
    );
    expect(pgs).toEqual(reaching.map((r) => r.d));
    // Phase 4 reads season-to-date averages of the dates before its own: every later date's precompute is
    // stale, and D's is not (its inputs from before D did not change).
    const cache = stale.filter((r) => r.processor === 'player_daily_cache').map((r) => r.date);
    expect(cache).toEqual(status.stage3.stale.filter((d) => d > D));
  });

  it('fails validation while stale, naming the first stale date', async () => {
    const v = await ws.cli(['validate', ...THROUGH]);
    expect(v.code).not.toBe(0);
    expect(v.stdout).toMatch(/runs_current\s+FAILED/);
    expect(v.stdout).toContain(D);
    // The HTML report shows the stale table-dates in their own colour.
    const html = readFileSync(join(ws.dir, '.backfill', 'logs', 'reports', 'validation-2021-22.html'), 'utf8');
    expect(html).toContain(`nba_analytics.player_game_summary ${D}`);
    expect(html).toContain(`class="d cov-stale" data-table="nba_analytics.player_game_summary" data-date="${D}"`);
  });

  it('Stage 3 recomputes from D: the averages move by exactly 2/5 and 2/10, and rows before D are identical', async () => {
    const s3 = await ws.cli(['stage3', ...THROUGH]);
    expect(s3.code, s3.stdout + s3.stderr).toBe(0);
    expect(s3.stdout).toContain(`resumed at ${D}`);
    expect((await statusJson(ws)).stage3.stale).toEqual([]);

    for (const [player, before, sign] of [
      [fix.gainer, gainerBefore, 1],
      [fix.loser, loserBefore, -1],
    ] as const) {
      const after = await pointsAverages(ws, player);
      expect(after.map((r) => r.d)).toEqual(before.map((r) => r.d));
      after.forEach((r, k) => {
        const b = before[k] as Row;
        // Game k after D (k = 0 is D itself): D is among the 5 previous games of games 1-5, the 10 of 1-10.
        expect(Number(r.points) - Number(b.points)).toBe(k === 0 ? 2 * sign : 0);
        const d5 = Number(r.pts_avg_last_5) - Number(b.pts_avg_last_5);
        const d10 = Number(r.pts_avg_last_10) - Number(b.pts_avg_last_10);
        expect(Math.abs(d5 - (k >= 1 && k <= 5 ? (2 * sign) / 5 : 0))).toBeLessThan(1e-9);
        expect(Math.abs(d10 - (k >= 1 && k <= 10 ? (2 * sign) / 10 : 0))).toBeLessThan(1e-9);
      });
    }
    expect((await derived(ws)).before).toBe(original.before);

    const v = await ws.cli(['validate', ...THROUGH]);
    expect(v.code, v.stdout).toBe(0);
  });

  it('loading the original data again makes Stage 3 resume at D and puts every value back', async () => {
    const s1 = await ws.cli(['stage1', ...ONE_DATE]);
    expect(s1.code, s1.stdout + s1.stderr).toBe(0);
    expect((await statusJson(ws)).stage3.stale[0]).toBe(D);
    const s3 = await ws.cli(['stage3', ...THROUGH]);
    expect(s3.code, s3.stdout + s3.stderr).toBe(0);
    expect(s3.stdout).toContain(`resumed at ${D}`);
    expect((await derived(ws)).all).toBe(original.all);
  });

  it('reloading a date with identical content writes nothing and makes nothing stale; --force writes it', async () => {
    const rowsOf = () =>
      ws.query(
        `SELECT processor_name, processing_decision AS decision FROM nba_reference.processor_run_history
          WHERE data_date = DATE '${D}' AND phase = 2 ORDER BY finished_at DESC, processor_name LIMIT 5`,
      );
    const s1 = await ws.cli(['stage1', ...ONE_DATE]);
    expect(s1.code, s1.stdout + s1.stderr).toBe(0);
    expect(s1.stdout).toContain('1 of 1 dates loaded (1 unchanged since their last load');
    expect((await rowsOf()).map((r) => r.decision)).toEqual(Array(5).fill('unchanged'));
    expect((await statusJson(ws)).stage3.stale).toEqual([]);
    expect(await staleRuns(ws)).toEqual([]);

    const forced = await ws.cli(['stage1', ...ONE_DATE, '--force']);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout).not.toContain('unchanged');
    expect((await rowsOf()).map((r) => r.decision)).toEqual(Array(5).fill('processed'));
    expect(await staleRuns(ws)).toEqual([]);
    expect((await derived(ws)).all).toBe(original.all);
  });

  it("the plan's schedule load in between (as `run` does) keeps a reload cheap, unless it wrote other rows", async () => {
    expect((await ws.cli(['plan', '--season', '2021-22'])).code).toBe(0);
    const again = await ws.cli(['stage1', ...ONE_DATE]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('1 of 1 dates loaded (1 unchanged since their last load');
    // The schedule load's run of the date recorded other rows than the last load of these files: load again.
    expect((await ws.cli(['plan', '--season', '2021-22'])).code).toBe(0);
    await ws.withAdapters((a) =>
      a.warehouse.query(
        `UPDATE nba_reference.processor_run_history
            SET details = replace(CAST(details AS VARCHAR), '"rows":"', '"rows":"0')
          WHERE data_date = DATE '${D}' AND processor_name = 'nbac_schedule' AND trigger_command = 'backfill plan'`,
      ),
    );
    const changed = await ws.cli(['stage1', ...ONE_DATE]);
    expect(changed.code, changed.stdout + changed.stderr).toBe(0);
    expect(changed.stdout).not.toContain('unchanged');
  });
});

describe('--source dir: with bad input', () => {
  let ws: Workspace;
  let folder: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    folder = createWorkspace();
  });
  afterAll(() => {
    ws?.remove();
    folder?.remove();
  });

  it('a folder that does not exist is refused with exit 2, naming it', async () => {
    const out = await ws.cli(['stage1', ...ONE_DATE, '--source', `dir:${join(folder.dir, 'nope')}`]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`source folder ${join(folder.dir, 'nope')} does not exist`);
  });

  it('a value that is not a number fails the date at once, naming the file, line and column', async () => {
    writeCorrectedFolder(folder.dir, D);
    const file = join(folder.dir, 'player_box', 'player_game_logs_2021-22_regular.csv');
    const lines = readFileSync(file, 'utf8').split('\n');
    const header = (lines[0] as string).split(',');
    const fields = (lines[4] as string).split(',');
    fields[header.indexOf('PTS')] = '2x5';
    lines[4] = fields.join(',');
    writeFileSync(file, lines.join('\n'));
    const out = await ws.cli(['stage1', ...ONE_DATE, '--source', `dir:${folder.dir}`]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('FAILED (exit 2)');
    const failures = await ws.cli(['failures', '--season', '2021-22', '--format', 'json']);
    expect(failures.stdout.replaceAll('\\"', '"')).toContain(`${file}: line 5, column PTS: "2x5" is not a number`);
    // Nothing of the date was written.
    expect(await ws.query(`SELECT COUNT(*) AS n FROM nba_raw.nbac_player_boxscore`)).toEqual([{ n: 0 }]);
  });
});
