// Phase 3 and 4 on the real 2021-22 data: no leakage, the bootstrap period, and the defensive checks.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedWarehouse } from '../core/checks/data.js';
import { DependencyError } from '../core/checks/defensive.js';
import { runPhases1And2, runPhases3And4 } from '../core/dateRun.js';
import type { IsoDate } from '../core/dates.js';
import { silentLogger } from '../core/log.js';
import type { PipelinePorts } from '../core/pipeline/processor.js';
import { getProcessor } from '../core/processors.js';
import { type RunOutcome, runProcessor } from '../core/runner.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';

const log = silentLogger();
const opts = { trigger: { command: 'test', stage: 'stage3' }, skipDownstreamTrigger: true };

/** The plan's first game dates of 2021-22, through `last`. */
async function gameDates(t: TestPipeline, last: IsoDate): Promise<IsoDate[]> {
  const dates: IsoDate[] = [];
  for (
    let d = new Date('2021-10-19T00:00:00Z');
    d.toISOString().slice(0, 10) <= last;
    d.setUTCDate(d.getUTCDate() + 1)
  ) {
    const date = d.toISOString().slice(0, 10);
    const r = await runPhases1And2(t.adapters, log, date, opts);
    expect(r.failures).toEqual([]);
    if ((r.rows.nbac_schedule ?? 0) > 0) dates.push(date);
  }
  return dates;
}

/** The DependencyError of a run that must have been blocked. */
function blockedBy(out: RunOutcome): DependencyError {
  if (out.ok) throw new Error('expected the run to be blocked, and it succeeded');
  expect(out.error).toBeInstanceOf(DependencyError);
  return out.error as DependencyError;
}

function ports(t: TestPipeline): PipelinePorts {
  return { ...t.adapters, warehouse: new CheckedWarehouse(t.adapters.warehouse) };
}

describe('Phase 3-4 over the first weeks of 2021-22', () => {
  let t: TestPipeline;
  let dates: IsoDate[];

  beforeAll(async () => {
    t = await openTestPipeline();
    dates = await gameDates(t, '2021-11-20');
    const p = ports(t);
    for (const d of dates) {
      const r = await runPhases3And4(p, log, d, opts);
      expect(r.failures.map((f) => f.error.message)).toEqual([]);
    }
  });
  afterAll(async () => t.dispose());

  it.each([
    [201939, 'Stephen Curry'],
    [1628369, 'Jayson Tatum'],
    [203999, 'Nikola Jokić'],
  ])('computes %s (%s) previous-10-game averages from earlier games only', async (playerId) => {
    const box = await t.adapters.warehouse.query(
      `SELECT CAST(game_date AS STRING) AS d, points, minutes FROM nba_raw.nbac_player_boxscore
        WHERE player_id = @id ORDER BY game_date`,
      { id: playerId },
    );
    const summaries = await t.adapters.warehouse.query(
      `SELECT CAST(game_date AS STRING) AS d, pts_avg_last_10, min_avg_last_5, season_games_played, days_rest
         FROM nba_analytics.player_game_summary WHERE player_id = @id ORDER BY game_date`,
      { id: playerId },
    );
    expect(summaries.length).toBe(box.length);
    expect(box.length).toBeGreaterThan(8);
    const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    box.forEach((game, i) => {
      const before = box.slice(0, i);
      const s = summaries[i] as Record<string, unknown>;
      expect(s.d).toBe(game.d);
      const hand10 = avg(before.slice(-10).map((g) => Number(g.points)));
      if (hand10 === null) expect(s.pts_avg_last_10).toBeNull();
      else expect(s.pts_avg_last_10).toBeCloseTo(hand10, 9);
      const hand5 = avg(before.slice(-5).map((g) => Number(g.minutes)));
      if (hand5 === null) expect(s.min_avg_last_5).toBeNull();
      else expect(s.min_avg_last_5).toBeCloseTo(hand5, 9);
      expect(s.season_games_played).toBe(i + 1);
    });
  });

  it('caches the state before the date: last-5 points from games strictly before it', async () => {
    const [row] = await t.adapters.warehouse.query(
      `SELECT pts_avg_last_5, games_played FROM nba_precompute.player_daily_cache
        WHERE player_id = 201939 AND cache_date = DATE '2021-11-19'`,
    );
    const before = await t.adapters.warehouse.query(
      `SELECT points FROM nba_raw.nbac_player_boxscore WHERE player_id = 201939 AND game_date < DATE '2021-11-19'
        ORDER BY game_date DESC LIMIT 5`,
    );
    const count = await t.adapters.warehouse.query(
      `SELECT COUNT(*) AS n FROM nba_raw.nbac_player_boxscore WHERE player_id = 201939 AND game_date < DATE '2021-11-19'`,
    );
    expect(row?.games_played).toBe(count[0]?.n);
    expect(row?.pts_avg_last_5).toBeCloseTo(before.reduce((a, r) => a + Number(r.points), 0) / 5, 9);
  });

  it('processes the bootstrap period at the season start and marks it, without blocking', async () => {
    const runs = await t.adapters.warehouse.query(
      `SELECT processor_name, status, processing_decision AS decision, details FROM nba_reference.processor_run_history
        WHERE data_date = DATE '2021-10-19' AND phase >= 3 ORDER BY processor_name`,
    );
    expect(runs).toHaveLength(6);
    for (const r of runs) {
      expect(r).toMatchObject({ status: 'success', decision: 'bootstrap' });
      expect(JSON.parse(String(r.details)).checks).toMatchObject({ bootstrap: true, failed: [] });
    }
    const late = await t.adapters.warehouse.query(
      `SELECT DISTINCT processing_decision AS decision FROM nba_reference.processor_run_history
        WHERE data_date = DATE '2021-11-20' AND processor_name = 'player_game_summary'`,
    );
    expect(late).toEqual([{ decision: 'processed' }]);
  });

  it('records that backfill mode skipped the freshness check, and only that one', async () => {
    const [r] = await t.adapters.warehouse.query(
      `SELECT details FROM nba_reference.processor_run_history
        WHERE data_date = DATE '2021-11-20' AND processor_name = 'player_daily_cache'`,
    );
    expect(JSON.parse(String(r?.details)).checks.skipped.map((s: { check: string }) => s.check)).toEqual(['freshness']);
  });

  it('re-running a date leaves every Phase 3-4 table unchanged', async () => {
    const { ANALYTICS_TABLES, PRECOMPUTE_TABLES } = await import('../core/schema/derived.js');
    const { tableContents } = await import('./support/adapters.js');
    const { qualifiedName } = await import('../core/schema/table.js');
    const tables = [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES];
    const read = () =>
      Promise.all(tables.map((tb) => tableContents(t.adapters, qualifiedName(tb), tb.partitionColumn, ['2021-11-10'])));
    const before = await read();
    expect((await runPhases3And4(ports(t), log, '2021-11-10', opts)).ok).toBe(true);
    expect(await read()).toEqual(before);
    expect(before.every((rows) => rows.length > 0)).toBe(true);
  });

  it('keeps season sums: a player’s points over player_game_summary equal his box score total', async () => {
    const bad = await t.adapters.warehouse.query(
      `SELECT b.player_id FROM
         (SELECT player_id, SUM(points) AS p, COUNT(*) AS n FROM nba_raw.nbac_player_boxscore GROUP BY player_id) AS b
         FULL JOIN (SELECT player_id, SUM(points) AS p, COUNT(*) AS n FROM nba_analytics.player_game_summary GROUP BY player_id) AS s
           ON s.player_id = b.player_id
        WHERE s.p IS DISTINCT FROM b.p OR s.n IS DISTINCT FROM b.n`,
    );
    expect(bad).toEqual([]);
  });
});

describe('defensive checks in strict mode', () => {
  let t: TestPipeline;
  let dates: IsoDate[];

  beforeAll(async () => {
    t = await openTestPipeline();
    dates = await gameDates(t, '2021-11-03');
  });
  afterAll(async () => t.dispose());

  // The tests change tables behind the checks' cache, so each run starts with a fresh one.
  const run = (name: string, date: IsoDate, strictMode = true) =>
    runProcessor(ports(t), log, getProcessor(name), date, { ...opts, strictMode });

  it('a missing Phase 2 date blocks the first Phase 3 date whose window holds it, naming the date', async () => {
    // A gap after the gate: the player rows of 2021-10-27 vanish.
    await t.adapters.warehouse.commit({
      replace: [{ table: (await import('../core/schema/raw.js')).nbacPlayerBoxscore, date: '2021-10-27', rows: [] }],
      append: [],
    });
    let blockedAt: IsoDate | undefined;
    for (const d of dates) {
      const out = await run('player_game_summary', d);
      if (!out.ok) {
        blockedAt = d;
        expect(out.error).toBeInstanceOf(DependencyError);
        const e = out.error as DependencyError;
        expect(e.message).toMatch(/^Analytics BLOCKED: Gap Detected - missing dates in lookback window: 2021-10-27 /);
        expect(e).toMatchObject({
          processor: 'player_game_summary',
          date: d,
          check: 'gap_detection',
          missingDates: ['2021-10-27'],
        });
        expect(e.missingGames.length).toBeGreaterThan(0);
        break;
      }
    }
    expect(blockedAt).toBe('2021-10-27');
    // A later date whose window still reaches back to it is blocked the same way.
    const later = await run('player_game_summary', '2021-11-01');
    expect(later.ok).toBe(false);
    expect(blockedBy(later).message).toContain('2021-10-27');
    const [rec] = await t.adapters.warehouse.query(
      `SELECT status, processing_decision AS decision, error_message FROM nba_reference.processor_run_history
        WHERE processor_name = 'player_game_summary' AND data_date = DATE '2021-10-27'`,
    );
    expect(rec).toMatchObject({ status: 'blocked', decision: 'blocked' });
    expect(String(rec?.error_message)).toMatch(/Gap Detected/);
  });

  it('--strict-mode false runs despite the gap and records the decision as forced', async () => {
    const out = await run('player_game_summary', '2021-11-01', false);
    expect(out.ok).toBe(true);
    const [rec] = await t.adapters.warehouse.query(
      `SELECT status, processing_decision AS decision, strict_mode, details FROM nba_reference.processor_run_history
        WHERE processor_name = 'player_game_summary' AND data_date = DATE '2021-11-01' ORDER BY finished_at DESC LIMIT 1`,
    );
    expect(rec).toMatchObject({ status: 'success', decision: 'forced', strict_mode: false });
    expect(JSON.parse(String(rec?.details)).checks.failed[0].check).toBe('gap_detection');
  });

  it('a failed upstream run blocks, naming the processor and the date', async () => {
    // Reload 2021-10-27 so the gap is gone, then make its team box score processor fail.
    expect((await runPhases1And2(t.adapters, log, '2021-10-27', opts)).ok).toBe(true);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(t.adapters.objects.locate('nba-com/team-game-logs/game_date=2021-10-29/leaguegamelog_T.json'), '{');
    const failed = await runProcessor(t.adapters, log, getProcessor('nbac_team_boxscore'), '2021-10-29', opts);
    expect(failed.ok).toBe(false);
    const out = await run('team_offense_game_summary', '2021-10-30');
    expect(out.ok).toBe(false);
    const e = blockedBy(out);
    expect(e.check).toBe('upstream_failure');
    expect(e.message).toMatch(/^Analytics BLOCKED: Upstream Failure - nbac_team_boxscore failed on 2021-10-29/);
    expect(e.missingDates).toEqual(['2021-10-29']);
    // Player summaries do not read the team box score: they are not blocked by it.
    expect((await run('player_game_summary', '2021-10-30')).ok).toBe(true);
  });

  it('blocks on completeness below 90% even when every game has both teams', async () => {
    const { nbacPlayerBoxscore } = await import('../core/schema/raw.js');
    const rows = await t.adapters.warehouse.query(
      `SELECT * EXCLUDE (game_date), CAST(game_date AS STRING) AS game_date FROM nba_raw.nbac_player_boxscore
        WHERE game_date = DATE '2021-10-22'`,
    );
    // Keep two players per team-game: every game still has both teams, most rows are gone.
    const perTeam = new Map<string, number>();
    const thin = rows.filter((r) => {
      const k = `${r.game_id}|${r.team_abbr}`;
      perTeam.set(k, (perTeam.get(k) ?? 0) + 1);
      return (perTeam.get(k) ?? 0) <= 2;
    });
    expect(thin.length).toBeLessThan(rows.length / 2);
    await t.adapters.warehouse.commit({
      replace: [{ table: nbacPlayerBoxscore, date: '2021-10-22', rows: thin }],
      append: [],
    });
    const out = await run('player_game_summary', '2021-10-22');
    expect(out.ok).toBe(false);
    const e = blockedBy(out);
    expect(e.check).toBe('completeness');
    expect(e.message).toMatch(
      /^Analytics BLOCKED: Incomplete Upstream - nba_raw.nbac_player_boxscore holds \d+\.\d% of the rows expected/,
    );
    expect((await runPhases1And2(t.adapters, log, '2021-10-22', opts)).ok).toBe(true);
  });

  it('a Phase 3 gap blocks Phase 4 the same way', async () => {
    const pp = ports(t);
    // Phase 3 for every date except 2021-10-25, then Phase 4 for a date whose 30-game window holds it.
    for (const d of dates.filter((x) => x <= '2021-11-02')) {
      if (d === '2021-10-25') continue;
      for (const name of ['player_game_summary', 'team_offense_game_summary', 'team_defense_game_summary']) {
        await runProcessor(pp, log, getProcessor(name), d, { ...opts, strictMode: false });
      }
    }
    // Earlier tests may have loaded it: make sure 2021-10-25 holds no summaries.
    const { playerGameSummary } = await import('../core/schema/derived.js');
    await t.adapters.warehouse.commit({
      replace: [{ table: playerGameSummary, date: '2021-10-25', rows: [] }],
      append: [],
    });
    const out = await runProcessor(ports(t), log, getProcessor('player_daily_cache'), '2021-11-02', opts);
    expect(out.ok).toBe(false);
    const e = blockedBy(out);
    expect(e.message).toMatch(/^Precompute BLOCKED: Gap Detected - missing dates in lookback window: 2021-10-25 /);
    expect(e.message).toContain('nba_analytics.player_game_summary');
  });
});
