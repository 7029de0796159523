// The real data's quirks through Phase 1-2: neutral-site games, playoff dates, duplicated playoff rows.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPhases1And2 } from '../core/dateRun.js';
import { silentLogger } from '../core/log.js';
import { openTestPipeline, type TestPipeline } from './support/adapters.js';

const log = silentLogger();
let t: TestPipeline;
const opts = { trigger: { command: 'test' }, skipDownstreamTrigger: true };

beforeAll(async () => {
  t = await openTestPipeline();
  for (const d of ['2024-11-02', '2024-12-14', '2025-01-23', '2025-01-25', '2024-04-21', '2023-11-03']) {
    const r = await runPhases1And2(t.adapters, log, d, opts);
    expect(r.failures).toEqual([]);
  }
});
afterAll(async () => t.dispose());

describe('neutral-site games of 2024-25 (both rows carry the same "A @ B")', () => {
  it.each([
    ['0022400147', 'WAS', 'MIA'],
    ['0022401229', 'MIL', 'ATL'],
    ['0022401230', 'OKC', 'HOU'],
    ['0022400621', 'IND', 'SAS'],
    ['0022400633', 'SAS', 'IND'],
  ])('game %s: home %s, away %s, one home row and one away row', async (gameId, home, away) => {
    const [game] = await t.adapters.warehouse.query(
      'SELECT home_team_abbr, away_team_abbr FROM nba_raw.nbac_schedule WHERE game_id = @gameId',
      { gameId },
    );
    expect(game).toEqual({ home_team_abbr: home, away_team_abbr: away });
    const sides = await t.adapters.warehouse.query(
      'SELECT team_abbr, is_home FROM nba_raw.nbac_team_boxscore WHERE game_id = @gameId ORDER BY team_abbr',
      { gameId },
    );
    expect(sides).toEqual(
      [
        { team_abbr: home, is_home: true },
        { team_abbr: away, is_home: false },
      ].sort((a, b) => (a.team_abbr < b.team_abbr ? -1 : 1)),
    );
  });
});

describe('a 2023-24 playoff date', () => {
  it('drops the identical duplicated team rows and says so in run history', async () => {
    expect(
      await t.adapters.warehouse.query(
        "SELECT game_id, home_team_abbr, home_score, away_score FROM nba_raw.nbac_schedule WHERE game_date = DATE '2024-04-21' ORDER BY game_id",
      ),
    ).toHaveLength(4);
    const [run] = await t.adapters.warehouse.query(
      "SELECT details FROM nba_reference.processor_run_history WHERE processor_name = 'nbac_schedule' AND data_date = DATE '2024-04-21'",
    );
    expect(JSON.parse(String(run?.details)).duplicateTeamRowsDropped).toBeGreaterThan(0);
  });

  it('has team box scores from the team log and no player rows: the gap stays visible', async () => {
    const [team] = await t.adapters.warehouse.query(
      "SELECT COUNT(*) AS n, MIN(derived_from) AS src FROM nba_raw.nbac_team_boxscore WHERE game_date = DATE '2024-04-21'",
    );
    expect(team).toEqual({ n: 8, src: 'team_game_log' });
    const [players] = await t.adapters.warehouse.query(
      "SELECT COUNT(*) AS n FROM nba_raw.nbac_player_boxscore WHERE game_date = DATE '2024-04-21'",
    );
    expect(players).toEqual({ n: 0 });
  });
});

describe('team box scores derived from player rows', () => {
  it('sum the players: team points equal the sum of its players, and rebounds and turnovers too', async () => {
    const bad = await t.adapters.warehouse.query(
      `SELECT tb.game_id, tb.team_abbr
         FROM nba_raw.nbac_team_boxscore tb
         JOIN (SELECT game_id, team_abbr, SUM(points) AS pts, SUM(reb) AS reb, SUM(tov) AS tov, COUNT(*) AS n
                 FROM nba_raw.nbac_player_boxscore GROUP BY game_id, team_abbr) p
           ON p.game_id = tb.game_id AND p.team_abbr = tb.team_abbr
        WHERE tb.points <> p.pts OR tb.reb <> p.reb OR tb.tov <> p.tov OR tb.players_used <> p.n`,
    );
    expect(bad).toEqual([]);
    const [count] = await t.adapters.warehouse.query(
      "SELECT COUNT(*) AS n FROM nba_raw.nbac_team_boxscore WHERE derived_from = 'player_rows'",
    );
    expect(Number(count?.n)).toBeGreaterThan(20);
  });
});
