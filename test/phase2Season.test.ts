// Phase 1-2 over a whole real season: the counts SOURCE.md gives, winners, scores, and safe re-runs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { buildPlan, loadSeasonSchedule, selectDates } from '../core/plan.js';
import { RAW_TABLES } from '../core/schema/raw.js';
import { qualifiedName } from '../core/schema/table.js';
import { openTestPipeline, type TestPipeline, tableContents } from './support/adapters.js';

const log = silentLogger();
const trigger = { command: 'test', stage: 'stage1' };
let t: TestPipeline;
const one = async (sql: string, params = {}) => (await t.adapters.warehouse.query(sql, params))[0] ?? {};

beforeAll(async () => {
  t = await openTestPipeline();
  const season = getSeason('2021-22');
  await loadSeasonSchedule(t.adapters, log, season, trigger);
  const plan = await buildPlan(t.adapters, season);
  for (const d of selectDates(plan, season, { seasonType: 'regular' })) {
    const result = await runPhases1And2(t.adapters, log, d.date, { trigger, skipDownstreamTrigger: true });
    expect(result.failures).toEqual([]);
  }
});

afterAll(async () => {
  await t.dispose();
});

describe('2021-22 regular season through Phase 1-2', () => {
  it('holds 1,230 games, 26,039 player rows and 2,460 team rows', async () => {
    const s = "season = '2021-22' AND season_type = 'Regular Season'";
    expect(await one(`SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule WHERE ${s}`)).toEqual({ n: 1230 });
    expect(await one(`SELECT COUNT(*) AS n FROM nba_raw.nbac_player_boxscore WHERE ${s}`)).toEqual({ n: 26039 });
    expect(await one(`SELECT COUNT(*) AS n FROM nba_raw.nbac_gamebook_player_stats WHERE ${s}`)).toEqual({ n: 26039 });
    expect(await one(`SELECT COUNT(*) AS n FROM nba_raw.nbac_team_boxscore WHERE ${s}`)).toEqual({ n: 2460 });
    expect(await one(`SELECT COUNT(DISTINCT game_date) AS n FROM nba_raw.nbac_schedule WHERE ${s}`)).toEqual({
      n: 165,
    });
  });

  it('gives every game one winner, whose team row says W', async () => {
    const bad = await t.adapters.warehouse.query(
      `SELECT s.game_id
         FROM nba_raw.nbac_schedule s
         JOIN nba_raw.nbac_team_boxscore tb ON tb.game_id = s.game_id
        WHERE s.season_type = 'Regular Season'
        GROUP BY s.game_id, s.winner_team_abbr
       HAVING COUNT(*) <> 2
           OR SUM(CASE WHEN tb.win THEN 1 ELSE 0 END) <> 1
           OR MAX(CASE WHEN tb.win THEN tb.team_abbr END) <> s.winner_team_abbr`,
    );
    expect(bad).toEqual([]);
  });

  it('agrees with the team box scores on every final score, and the winner scored more', async () => {
    const bad = await t.adapters.warehouse.query(
      `SELECT s.game_id
         FROM nba_raw.nbac_schedule s
         JOIN nba_raw.nbac_team_boxscore h ON h.game_id = s.game_id AND h.team_abbr = s.home_team_abbr
         JOIN nba_raw.nbac_team_boxscore a ON a.game_id = s.game_id AND a.team_abbr = s.away_team_abbr
        WHERE s.season_type = 'Regular Season'
          AND (h.points <> s.home_score OR a.points <> s.away_score OR NOT h.is_home OR a.is_home
               OR (s.winner_team_abbr = s.home_team_abbr) <> (s.home_score > s.away_score))`,
    );
    expect(bad).toEqual([]);
  });

  it('keeps empty percentages as NULL, not 0 (no attempts)', async () => {
    const row = await one(
      `SELECT COUNT(*) AS n FROM nba_raw.nbac_player_boxscore WHERE season = '2021-22' AND fta = 0 AND ft_pct IS NULL`,
    );
    expect(row.n).toBe(11584);
    expect(
      await one(`SELECT COUNT(*) AS n FROM nba_raw.nbac_player_boxscore WHERE fta = 0 AND ft_pct IS NOT NULL`),
    ).toEqual({
      n: 0,
    });
  });

  it('flags the 84 appearances of under 30 seconds in the gamebook instead of dropping them', async () => {
    expect(
      await one(
        `SELECT COUNT(*) AS n FROM nba_raw.nbac_gamebook_player_stats WHERE season = '2021-22' AND played_under_30s`,
      ),
    ).toEqual({ n: 84 });
  });

  it('brings playoff games into the schedule from the team totals, with no player rows behind them', async () => {
    expect(
      await one(
        `SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule WHERE season = '2021-22' AND season_type = 'Playoffs'`,
      ),
    ).toEqual({ n: 87 });
    // The 2022 Finals, game 6: BOS 90 - GSW 103 (SOURCE.md spot check).
    expect(
      await one(
        `SELECT home_team_abbr, home_score, away_team_abbr, away_score, winner_team_abbr FROM nba_raw.nbac_schedule WHERE game_id = '0042100406'`,
      ),
    ).toEqual({
      home_team_abbr: 'BOS',
      home_score: 90,
      away_team_abbr: 'GSW',
      away_score: 103,
      winner_team_abbr: 'GSW',
    });
  });

  it('builds rosters as of each date from appearances: a traded player is on his latest team', async () => {
    // James Harden (201935): last BKN game 2022-02-02, traded, first PHI game 2022-02-25.
    const rosterOf = (date: string) =>
      t.adapters.warehouse.query(
        `SELECT team_abbr, games_with_team, CAST(last_appearance_date AS STRING) AS last
           FROM nba_raw.espn_team_roster WHERE player_id = 201935 AND roster_date = @date`,
        { date },
      );
    expect(await rosterOf('2022-02-10')).toEqual([{ team_abbr: 'BKN', games_with_team: 44, last: '2022-02-02' }]);
    expect(await rosterOf('2022-02-25')).toEqual([{ team_abbr: 'PHI', games_with_team: 1, last: '2022-02-25' }]);
  });

  it('re-running a date leaves every table unchanged, with no duplicate rows', async () => {
    const dates = ['2021-10-19', '2021-12-25', '2022-04-10'];
    const before = await Promise.all(
      RAW_TABLES.map((tb) => tableContents(t.adapters, qualifiedName(tb), tb.partitionColumn, dates)),
    );
    for (const d of dates) {
      const again = await runPhases1And2(t.adapters, log, d, { trigger, skipDownstreamTrigger: true });
      expect(again.ok).toBe(true);
    }
    const after = await Promise.all(
      RAW_TABLES.map((tb) => tableContents(t.adapters, qualifiedName(tb), tb.partitionColumn, dates)),
    );
    expect(after).toEqual(before);
    expect(before.every((rows) => rows.length > 0)).toBe(true);
  });
});
