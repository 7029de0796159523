// Data that must never be lost or let through: short answers, lost games, half-loaded dates, bad plans, damaged data.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError, exitCodeOf } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { gamesOf, playerLogGaps } from '../core/phase2/coverage.js';
import { SEASON_TYPE_PLAYOFFS, SEASON_TYPE_REGULAR } from '../core/pipeline/seasons.js';
import type { Row } from '../core/schema/table.js';
import { openTestPipeline } from './support/adapters.js';
import { requestOf, startStatsServer } from './support/statsServer.js';
import {
  createWorkspace,
  createWorkspaceWithPlans,
  ensureBuilt,
  REPO_ROOT,
  rawTableRows,
  type Workspace,
} from './support/workspace.js';

const fast = ['--retry-delay-ms', '0'];
const DATE = '2021-11-07'; // 174 player rows, 7 games
const oneDate = ['--season', '2021-22', '--start-date', DATE, '--end-date', DATE];

/** Rows of a query on a workspace's warehouse, opened in this process (no `backfill query` process each time). */
function sql(ws: Workspace, text: string): Promise<Row[]> {
  return ws.withAdapters((a) => a.warehouse.query(text));
}

function writeFaults(ws: Workspace, corrupt: readonly { date: string; file: string; how: string }[]): string {
  const path = join(ws.dir, 'faults.json');
  writeFileSync(path, JSON.stringify({ corrupt }));
  return path;
}

interface FailedDate {
  date: string;
  processor: string | null;
  error: string | null;
  attempts: number;
  exitCodes: (number | null)[];
  reason: string;
}

function failureLog(ws: Workspace, stdout: string): { jobName: string; failed: FailedDate[] } {
  const file = /failure log: (\S+)/.exec(stdout)?.[1] as string;
  return JSON.parse(readFileSync(join(ws.dir, file), 'utf8'));
}

describe('the coverage rules of a date’s player log against its team log', () => {
  const row = (gameId: string, team: string, matchup: string) => ({
    GAME_ID: gameId,
    TEAM_ABBREVIATION: team,
    MATCHUP: matchup,
  });
  const bothTeams = (gameId: string) => [row(gameId, 'BOS', 'BOS vs. NYK'), row(gameId, 'NYK', 'NYK @ BOS')];
  const REG = '0022100001';
  const REG2 = '0022100002';
  const PLAYOFF = '0042100101';
  const cases = [
    { name: 'player and team logs agree', players: bothTeams(REG), teams: bothTeams(REG), gaps: [] },
    {
      name: '(a) a player-log game the team log lost',
      players: [...bothTeams(REG), ...bothTeams(REG2)],
      teams: bothTeams(REG),
      gaps: [`game ${REG2} (BOS, NYK) has player rows but is not in the team log`],
    },
    {
      name: '(b) player rows for one team only',
      players: [row(REG, 'BOS', 'BOS vs. NYK')],
      teams: bothTeams(REG),
      gaps: [`game ${REG} (BOS, NYK) has no player rows for NYK`],
    },
    {
      name: '(c) a team-log game without player rows (an empty player answer)',
      players: [],
      teams: [...bothTeams(REG), ...bothTeams(REG2)],
      gaps: [
        `game ${REG} (BOS, NYK) is in the team log but has no player rows`,
        `game ${REG2} (BOS, NYK) is in the team log but has no player rows`,
      ],
    },
    {
      name: '(c) does not apply to a season type the source has no player rows for (bundled playoffs)',
      players: [],
      teams: bothTeams(PLAYOFF),
      gaps: [],
    },
  ];
  it.each(cases)('$name', ({ players, teams, gaps }) => {
    expect(playerLogGaps(gamesOf(players), gamesOf(teams), [SEASON_TYPE_REGULAR], SEASON_TYPE_REGULAR)).toEqual(gaps);
  });

  it('(c) applies to playoff games for a source that has their player rows (HTTP)', () => {
    const all = [SEASON_TYPE_REGULAR, SEASON_TYPE_PLAYOFFS] as const;
    expect(playerLogGaps(new Map(), gamesOf(bothTeams(PLAYOFF)), all, SEASON_TYPE_PLAYOFFS)).toEqual([
      `game ${PLAYOFF} (BOS, NYK) is in the team log but has no player rows`,
    ]);
  });
});

describe('a short or empty answer on reload of a loaded date (Stage 1, real data)', () => {
  let ws: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    const first = await ws.cli(['stage1', ...oneDate, ...fast]);
    expect(first.code, first.stderr).toBe(0);
  });
  afterAll(() => ws?.remove());

  const cases = [
    {
      name: 'the player log answers empty',
      corrupt: [{ date: DATE, file: 'playerGameLogs', how: 'empty' }],
      says: ['leaguegamelog_P.json', `the player game log of ${DATE} does not cover`, 'has no player rows'],
    },
    {
      name: 'the player log loses a game',
      corrupt: [{ date: DATE, file: 'playerGameLogs', how: 'drop-game' }],
      says: ['leaguegamelog_P.json', 'is in the team log but has no player rows'],
    },
    {
      name: 'the team log answers empty',
      corrupt: [{ date: DATE, file: 'teamGameLogs', how: 'empty' }],
      says: ['leaguegamelog_P.json', 'has player rows but is not in the team log'],
    },
    {
      name: 'the team log loses a game (rule a)',
      corrupt: [{ date: DATE, file: 'teamGameLogs', how: 'drop-game' }],
      says: ['leaguegamelog_T.json', 'has player rows but is not in the team log'],
    },
    {
      name: 'both logs lose the same game: the tables keep the games they hold (rule d)',
      corrupt: [
        { date: DATE, file: 'playerGameLogs', how: 'drop-game' },
        { date: DATE, file: 'teamGameLogs', how: 'drop-game' },
      ],
      says: [`for ${DATE}: the new rows from`, 'the table holds', 'the table keeps its rows'],
    },
    {
      name: 'the rosters answer empty',
      corrupt: [{ date: DATE, file: 'teamRosters', how: 'empty' }],
      says: ['rosters.json', `no players on the roster of`, `which plays on ${DATE}`],
    },
  ];

  it.each(cases)('$name: the date fails as bad input (exit 2, FailIndex) and every table keeps its rows', async (c) => {
    const before = await ws.withAdapters((a) => rawTableRows(a, [DATE]));
    expect(before['nba_raw.nbac_player_boxscore']).toHaveLength(174);
    const out = await ws.cli(['stage1', ...oneDate, ...fast, '--faults', writeFaults(ws, c.corrupt)]);
    expect(out.code, out.stderr).toBe(1);
    const { jobName, failed } = failureLog(ws, out.stdout);
    expect(failed).toEqual([
      expect.objectContaining({ date: DATE, attempts: 1, exitCodes: [2], reason: 'PodFailurePolicy' }),
    ]);
    // The rule the case breaks is among the errors of the job's failed runs of the date.
    const { errors, after } = await ws.withAdapters(async (a) => ({
      errors: await a.warehouse.query(
        `SELECT error_message FROM nba_reference.processor_run_history
          WHERE job_name = '${jobName}' AND status = 'failed' AND data_date = DATE '${DATE}'`,
      ),
      after: await rawTableRows(a, [DATE]),
    }));
    expect(
      errors.some((e) => c.says.every((s) => String(e.error_message).includes(s))),
      JSON.stringify(errors),
    ).toBe(true);
    expect(after).toEqual(before);
  });

  it('an HTTP source answering 200 with an empty player result set fails the date the same way', async () => {
    // The issue's own case: a live stats API, not an injected fault file.
    const server = await startStatsServer(new BundledStatsSource());
    try {
      server.injectFaults([{ match: requestOf('playerGameLogs', DATE), emptyResult: true, times: 10 }]);
      const before = await ws.withAdapters((a) => rawTableRows(a, [DATE]));
      const out = await ws.cli(['stage1', ...oneDate, ...fast, '--source', server.url, '--http-min-interval-ms', '0']);
      expect(out.code, out.stderr).toBe(1);
      expect(failureLog(ws, out.stdout).failed).toEqual([
        expect.objectContaining({ date: DATE, attempts: 1, exitCodes: [2], reason: 'PodFailurePolicy' }),
      ]);
      expect(server.pendingFaults()).toBeLessThan(10);
      expect(await ws.withAdapters((a) => rawTableRows(a, [DATE]))).toEqual(before);
    } finally {
      await server.close();
    }
  });
});

describe('a date whose player log is bad, on a fresh warehouse', () => {
  it('is not half loaded: no table gets rows, the withheld runs are blocked, the gate and failures name the cause', async () => {
    await ensureBuilt();
    const ws = createWorkspaceWithPlans();
    try {
      const faults = writeFaults(ws, [{ date: DATE, file: 'playerGameLogs', how: 'negative-minutes' }]);
      const out = await ws.cli(['stage1', ...oneDate, ...fast, '--faults', faults]);
      expect(out.code, out.stderr).toBe(1);
      const { rows, runs } = await ws.withAdapters(async (a) => ({
        rows: await rawTableRows(a, [DATE]),
        runs: await a.warehouse.query(
          `SELECT processor_name, status, error_message FROM nba_reference.processor_run_history
            WHERE phase = 2 ORDER BY processor_name`,
        ),
      }));
      for (const [table, held] of Object.entries(rows)) expect(held, table).toEqual([]);

      expect(runs.map((r) => [r.processor_name, r.status])).toEqual([
        ['espn_team_roster', 'blocked'],
        ['nbac_gamebook_player_stats', 'failed'],
        ['nbac_player_boxscore', 'failed'],
        ['nbac_schedule', 'blocked'],
        ['nbac_team_boxscore', 'failed'],
      ]);
      expect(String(runs[0]?.error_message)).toMatch(/^not committed: nbac_player_boxscore, .* failed on 2021-11-07/);

      const gate = JSON.parse((await ws.cli(['gate', ...oneDate, '--format', 'json'])).stdout);
      expect(gate.passed).toBe(false);
      expect(gate.runProblems.map((p: { processor: string }) => p.processor).sort()).toEqual([
        'espn_team_roster',
        'nbac_gamebook_player_stats',
        'nbac_player_boxscore',
        'nbac_schedule',
        'nbac_team_boxscore',
      ]);
      const [open] = JSON.parse((await ws.cli(['failures', '--season', '2021-22', '--format', 'json'])).stdout);
      expect(open.processor).toMatch(/^nbac_(player_boxscore|gamebook_player_stats|team_boxscore)$/);
      expect(open.error).toMatch(/MIN must be >= 0/);
    } finally {
      ws.remove();
    }
  });
});

describe('a rebuilt plan that loses a game of the committed plan', () => {
  const LOST_DATE = '2021-11-08';
  let ws: Workspace;
  let planFile: string;
  let committed: string;
  let faults: string;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspaceWithPlans();
    planFile = join(ws.dir, 'plans', '2021-22.json');
    committed = readFileSync(planFile, 'utf8');
    faults = writeFaults(ws, [{ date: LOST_DATE, file: 'teamGameLogs', how: 'drop-game' }]);
  });
  afterAll(() => ws?.remove());

  const plannedGames = (text: string) =>
    JSON.parse(text).dates.find((d: { date: string }) => d.date === LOST_DATE).gameIds as string[];

  it('run refuses it (exit 2) naming the game, before Stage 1, and changes neither the plan nor that date', async () => {
    const out = await ws.cli(['run', '--season', '2021-22', '--season-type', 'regular', '--faults', faults]);
    expect(out.code, out.stderr).toBe(2);
    const lost = new RegExp(`${LOST_DATE} (\\d{10})`).exec(out.stderr)?.[1];
    expect(plannedGames(committed)).toContain(lost);
    expect(out.stderr).toMatch(/no longer reports 1 game\(s\) of the committed plan .*2021-22\.json/);
    expect(out.stderr).toContain('--accept-plan-changes');
    expect(out.stdout).not.toMatch(/== stage 1/);
    expect(readFileSync(planFile, 'utf8')).toBe(committed);
    const touched = await sql(
      ws,
      `SELECT (SELECT COUNT(*) FROM nba_raw.nbac_schedule WHERE game_date = DATE '${LOST_DATE}') AS schedule,
              (SELECT COUNT(*) FROM nba_reference.processor_run_history WHERE data_date = DATE '${LOST_DATE}') AS runs,
              (SELECT COUNT(*) FROM nba_raw.nbac_schedule) AS others`,
    );
    expect(touched).toEqual([{ schedule: 0, runs: 0, others: expect.any(Number) }]);
    expect(Number(touched[0]?.others)).toBeGreaterThan(1000);
  });

  it('plan --accept-plan-changes accepts it and says so; without the fault the game comes back as a new game', async () => {
    const accepted = await ws.cli(['plan', '--season', '2021-22', '--accept-plan-changes', '--faults', faults]);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stdout).toMatch(
      new RegExp(`1 game\\(s\\) left the plan \\(--accept-plan-changes\\): ${LOST_DATE} `),
    );
    const shrunk = plannedGames(readFileSync(planFile, 'utf8'));
    const [lost] = plannedGames(committed).filter((g) => !shrunk.includes(g));
    expect(shrunk).toHaveLength(plannedGames(committed).length - 1);

    const restored = await ws.cli(['plan', '--season', '2021-22']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`1 new game(s) since the committed plan: ${LOST_DATE} ${lost}`);
    expect(readFileSync(planFile, 'utf8')).toBe(committed);
  });

  it('a season without a plan file yet simply gets one', async () => {
    const out = await ws.cli(['plan', '--season', '2021-22', '--plan-dir', 'new-plans']);
    expect(out.code, out.stderr).toBe(0);
    expect(readFileSync(join(ws.dir, 'new-plans', '2021-22.json'), 'utf8')).toBe(committed);
  });
});

describe('a plan file holding a date its season does not have', () => {
  let ws: Workspace;
  beforeAll(async () => {
    await ensureBuilt();
    ws = createWorkspace();
  });
  afterAll(() => ws?.remove());

  const extra = (date: string, seasonType: string) => ({ date, seasonType, games: 1, gameIds: ['0022100001'] });
  const cases = [
    { name: 'a date before the season', add: extra('2021-07-01', 'Regular Season'), says: 'is outside season 2021-22' },
    {
      name: 'a date of the next season',
      add: extra('2022-11-01', 'Regular Season'),
      says: 'is outside season 2021-22',
    },
    {
      name: 'an off day between the regular season and the play-in',
      add: extra('2022-04-11', 'Regular Season'),
      says: 'is outside season 2021-22',
    },
    {
      name: 'a regular-season date marked as playoffs',
      add: extra('2021-11-01', 'Playoffs'),
      says: 'is a Regular Season date of 2021-22, but the plan says Playoffs',
    },
  ];

  it.each(cases)('$name: exit 2 naming the file and date, before any job runs', async (c) => {
    const dir = join(ws.dir, c.name.replace(/\W+/g, '-'));
    mkdirSync(dir);
    const plan = JSON.parse(readFileSync(join(REPO_ROOT, 'plans', '2021-22.json'), 'utf8'));
    plan.dates.push(c.add);
    writeFileSync(join(dir, '2021-22.json'), JSON.stringify(plan));
    const out = await ws.cli(['stage1', '--season', '2021-22', '--plan-dir', dir, ...fast]);
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(join(dir, '2021-22.json'));
    expect(out.stderr).toContain(`date ${c.add.date} ${c.says}`);
    expect(existsSync(join(ws.dir, '.backfill', 'logs', 'jobs'))).toBe(false);
  });
});

describe('a damaged file of the bundled data set', () => {
  const cases = [
    { name: 'truncated', damage: (gz: Buffer) => gz.subarray(0, Math.floor(gz.length / 2)) },
    { name: 'not gzip at all', damage: (_gz: Buffer) => Buffer.from('player_game_logs\n') },
  ];

  it.each(cases)('$name: bad input naming the file, never retried as transient', async ({ damage }) => {
    const dir = mkdtempSync(join(tmpdir(), 'backfill-damaged-'));
    const t = await openTestPipeline();
    try {
      const file = join(dir, 'player_box', 'player_game_logs_2021-22_regular.csv.gz');
      mkdirSync(join(dir, 'player_box'));
      writeFileSync(
        file,
        damage(readFileSync(join(REPO_ROOT, 'data', 'nba', 'player_box', 'player_game_logs_2021-22_regular.csv.gz'))),
      );
      const source = new BundledStatsSource(dir);
      const answer = source.leagueGameLog({
        season: '2021-22',
        seasonType: SEASON_TYPE_REGULAR,
        playerOrTeam: 'P',
        dateFrom: DATE,
        dateTo: DATE,
      });
      await expect(answer).rejects.toThrow(BadInputError);
      await expect(answer).rejects.toThrow(`bundled data file ${file} is damaged`);

      // Through a date's Phase 1-2: the failure is bad input, which the pod answers with exit 2 (FailIndex).
      const result = await runPhases1And2({ ...t.adapters, source }, silentLogger(), DATE, {
        trigger: { command: 'test' },
        skipDownstreamTrigger: true,
      });
      expect(result.ok).toBe(false);
      const [failure] = result.failures;
      expect(failure?.error.message).toContain(file);
      expect(failure?.error.message).not.toMatch(/^unexpected end of file/);
      expect(exitCodeOf(failure?.error)).toBe(2);
    } finally {
      await t.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
