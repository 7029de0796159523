// Bad input through the built CLI on the real data: clear message, exit 2, nothing loaded, a failed run recorded.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RAW_TABLES } from '../core/schema/raw.js';
import { qualifiedName, type Row } from '../core/schema/table.js';
import {
  type CliResult,
  createWorkspace,
  editGameLog,
  ensureBuilt,
  rawTableRows,
  readStatsFile,
  type Workspace,
} from './support/workspace.js';

const DATE = '2021-10-19';
const PLAYER_TABLES = [
  'nba_raw.nbac_player_boxscore',
  'nba_raw.nbac_gamebook_player_stats',
  'nba_raw.nbac_team_boxscore',
];
const PLAYER_PROCESSORS = ['nbac_player_boxscore', 'nbac_gamebook_player_stats', 'nbac_team_boxscore'];
const TEAM_PROCESSORS = ['nbac_schedule', 'nbac_team_boxscore'];

let ws: Workspace;
let playerFile: string;
let teamFile: string;
const pristine = new Map<string, string>();

beforeAll(async () => {
  await ensureBuilt();
  ws = createWorkspace();
  for (const phase of ['1', '2']) {
    const out = await ws.cli(['process', '--phase', phase, '--date', DATE]);
    expect(out.code, out.stderr).toBe(0);
  }
  playerFile = ws.rawFile('playerGameLogs', DATE);
  teamFile = ws.rawFile('teamGameLogs', DATE);
  for (const f of [playerFile, teamFile]) pristine.set(f, readFileSync(f, 'utf8'));
});

afterEach(() => {
  for (const [f, text] of pristine) writeFileSync(f, text, 'utf8');
});

afterAll(() => {
  ws?.remove();
});

/** The run ids of the `D  processor  FAILED  run <id>` lines `backfill process` prints. */
function failedRuns(stdout: string): Map<string, string> {
  const runs = new Map<string, string>();
  for (const m of stdout.matchAll(/^(\S+) {2}(\S+) {2}FAILED {2}run (\S+)$/gm)) {
    expect(m[1]).toBe(DATE);
    runs.set(m[2] as string, m[3] as string);
  }
  return runs;
}

async function runHistoryCount(): Promise<number> {
  return ws.withAdapters(async (a) => {
    const [row] = await a.warehouse.query('SELECT COUNT(*) AS n FROM nba_reference.processor_run_history');
    return Number(row?.n);
  });
}

interface Rejection {
  readonly args: readonly string[];
  /** Processors that must fail; every other processor the command runs must succeed. */
  readonly failing: readonly string[];
  /** Tables whose rows for DATE the command must leave as they were (all five are checked anyway). */
  readonly affected: readonly string[];
  /** What the message must say: the file, the record or field, and the rule. */
  readonly says: readonly (string | RegExp)[];
}

function expectSays(text: string, says: readonly (string | RegExp)[]): void {
  for (const s of says) {
    if (typeof s === 'string') expect(text).toContain(s);
    else expect(text).toMatch(s);
  }
}

/** Runs a command on the corrupted date and checks the message, exit 2, unchanged tables and failed runs. */
async function expectRejected(r: Rejection): Promise<CliResult> {
  const before = await ws.withAdapters((a) => rawTableRows(a, [DATE]));
  for (const t of r.affected) expect(before[t]?.length, `${t} loaded before the test`).toBeGreaterThan(0);

  const out = await ws.cli(r.args);
  expect(out.code, out.stderr).toBe(2);
  expectSays(out.stderr, r.says);

  const after = await ws.withAdapters((a) => rawTableRows(a, [DATE]));
  for (const t of RAW_TABLES.map(qualifiedName)) expect(after[t], `${t} rows for ${DATE}`).toEqual(before[t]);

  const failed = failedRuns(out.stdout);
  expect([...failed.keys()].sort()).toEqual([...r.failing].sort());
  const history = await ws.withAdapters((a) =>
    a.warehouse.query(
      `SELECT run_id, processor_name, CAST(data_date AS STRING) AS data_date, status, success, error_message,
              rows_processed
         FROM nba_reference.processor_run_history WHERE run_id IN (${[...failed.values()].map((id) => `'${id}'`).join(', ')})`,
    ),
  );
  expect(history).toHaveLength(r.failing.length);
  for (const row of history) {
    expect(row).toMatchObject({ data_date: DATE, status: 'failed', success: false, rows_processed: 0 });
    expect(failed.get(String(row.processor_name))).toBe(row.run_id);
    expectSays(String(row.error_message), r.says);
  }
  return out;
}

/** A player row of the pristine file, for naming it in expectations. */
function playerRow(index: number): Row {
  const set = readStatsFile(playerFile).resultSets[0];
  const row = set?.rowSet[index];
  if (!set || !row) throw new Error(`${playerFile} has no row ${index + 1}`);
  return Object.fromEntries(set.headers.map((h, i) => [h, row[i] ?? null]));
}

describe('a raw file that is not valid JSON', () => {
  it('names the file and the JSON error, exits 2, loads nothing and records a failed run', async () => {
    writeFileSync(playerFile, (pristine.get(playerFile) as string).slice(0, 500), 'utf8');
    await expectRejected({
      args: ['process', 'nbac_player_boxscore', '--date', DATE],
      failing: ['nbac_player_boxscore'],
      affected: ['nba_raw.nbac_player_boxscore'],
      says: [playerFile, /not valid JSON/],
    });
  });
});

describe('a record failing validation', () => {
  const ROW = 5;
  // `record` is the row the message must name first: a removed column breaks every row, so the first one.
  const cases: { name: string; record: number; edit: Parameters<typeof editGameLog>[1]; says: (string | RegExp)[] }[] =
    [
      {
        name: 'negative minutes',
        record: ROW,
        edit: (set, col) => {
          (set.rowSet[ROW] as unknown[])[col('MIN')] = -5;
        },
        says: ['MIN must be >= 0', '(got -5)'],
      },
      {
        name: 'an unknown team',
        record: ROW,
        edit: (set, col) => {
          (set.rowSet[ROW] as unknown[])[col('TEAM_ABBREVIATION')] = 'XXX';
        },
        says: ['unknown team', 'TEAM_ABBREVIATION', '"XXX"'],
      },
      {
        name: 'a null game id',
        record: ROW,
        edit: (set, col) => {
          (set.rowSet[ROW] as unknown[])[col('GAME_ID')] = null;
        },
        says: ['GAME_ID is missing'],
      },
      {
        name: 'a game id column removed from the file',
        record: 0,
        edit: (set, col) => {
          const i = col('GAME_ID');
          set.headers.splice(i, 1);
          for (const row of set.rowSet) row.splice(i, 1);
        },
        says: ['GAME_ID is missing'],
      },
    ];

  it.each(cases)(
    '$name: names the file, record, field and rule; exits 2; loads nothing',
    async ({ record, edit, says }) => {
      const row = playerRow(record);
      editGameLog(playerFile, edit);
      await expectRejected({
        args: ['process', '--phase', '2', '--date', DATE],
        failing: PLAYER_PROCESSORS,
        affected: PLAYER_TABLES,
        says: [playerFile, new RegExp(`record ${record + 1} \\([^)]*PLAYER_ID=${row.PLAYER_ID}[,)]`), ...says],
      });
    },
  );
});

describe('a file whose GAME_DATE disagrees with its folder', () => {
  it('player game log: names the file, record and both dates; exits 2; loads nothing', async () => {
    editGameLog(playerFile, (set, col) => {
      for (const row of set.rowSet) row[col('GAME_DATE')] = '2021-10-20';
    });
    await expectRejected({
      args: ['process', '--phase', '2', '--date', DATE],
      failing: PLAYER_PROCESSORS,
      affected: PLAYER_TABLES,
      says: [
        playerFile,
        /record 1 \(GAME_ID=\d+/,
        'GAME_DATE 2021-10-20 disagrees with its folder game_date=2021-10-19',
      ],
    });
  });

  it('team game log: names the file, record and both dates; exits 2; loads nothing', async () => {
    editGameLog(teamFile, (set, col) => {
      (set.rowSet[0] as unknown[])[col('GAME_DATE')] = '2021-10-18';
    });
    await expectRejected({
      args: ['process', '--phase', '2', '--date', DATE],
      failing: TEAM_PROCESSORS,
      affected: ['nba_raw.nbac_schedule', 'nba_raw.nbac_team_boxscore'],
      says: [teamFile, /record 1 \(GAME_ID=\d+/, 'GAME_DATE 2021-10-18 disagrees with its folder game_date=2021-10-19'],
    });
  });
});

describe('duplicate player rows for one game', () => {
  it('names the file, the game and player, and the rule; exits 2; loads nothing', async () => {
    const row = playerRow(3);
    editGameLog(playerFile, (set) => {
      set.rowSet.push([...(set.rowSet[3] as (string | number | null)[])]);
    });
    await expectRejected({
      args: ['process', '--phase', '2', '--date', DATE],
      failing: PLAYER_PROCESSORS,
      affected: PLAYER_TABLES,
      says: [
        playerFile,
        'duplicate player rows for one game',
        `GAME_ID=${row.GAME_ID}, PLAYER_ID=${row.PLAYER_ID} appears 2 times`,
      ],
    });
  });
});

/** Runs a command that must be refused before anything runs: exit 2, the message, no run recorded. */
async function expectRefused(args: readonly string[], says: readonly (string | RegExp)[]): Promise<CliResult> {
  const runsBefore = await runHistoryCount();
  const out = await ws.cli(args);
  expect(out.code, out.stderr).toBe(2);
  expectSays(out.stderr, says);
  expect(out.stdout).not.toMatch(/ {2}(ok|FAILED) {2}/);
  expect(await runHistoryCount()).toBe(runsBefore);
  return out;
}

describe('unknown dates, seasons and processors', () => {
  it('a date outside every season', async () => {
    await expectRefused(['process', '--phase', '2', '--date', '2021-07-01'], ['unknown date 2021-07-01', /no season/]);
  });

  it('a malformed date', async () => {
    await expectRefused(
      ['process', '--phase', '2', '--date', '2021-13-45'],
      ['--date 2021-13-45', 'not a date (YYYY-MM-DD)'],
    );
  });

  it('an unknown season', async () => {
    await expectRefused(
      ['plan', '--season', '2019-20'],
      ['unknown season "2019-20"', '2021-22, 2022-23, 2023-24, 2024-25'],
    );
    expect(existsSync(join(ws.dir, 'plans', '2019-20.json'))).toBe(false);
  });

  it('an unknown processor', async () => {
    await expectRefused(['process', 'nope', '--date', DATE], ['unknown processor "nope"', 'nbac_player_boxscore']);
  });
});

describe('an end date before the start date', () => {
  it('backfill process --phase 2', async () => {
    await expectRefused(
      ['process', '--phase', '2', '--start-date', '2021-10-20', '--end-date', '2021-10-19'],
      ['--end-date 2021-10-19 is before --start-date 2021-10-20'],
    );
  });

  describe('backfill run', () => {
    let fresh: Workspace;
    let out: CliResult;

    beforeAll(async () => {
      fresh = createWorkspace();
      out = await fresh.cli(['run', '--season', '2021-22', '--start-date', '2021-11-02', '--end-date', '2021-11-01']);
    });

    afterAll(() => {
      fresh?.remove();
    });

    it('exits 2 naming both dates', () => {
      expect(out.code, out.stderr).toBe(2);
      expect(out.stderr).toContain('--end-date 2021-11-01 is before --start-date 2021-11-02');
    });

    it('refuses the range before loading the schedule or writing a plan', async () => {
      expect(out.stdout).not.toContain('== 2021-22: plan');
      expect(existsSync(join(fresh.dir, 'plans', '2021-22.json'))).toBe(false);
      const runs = await fresh.withAdapters((a) =>
        a.warehouse.query('SELECT COUNT(*) AS n FROM nba_reference.processor_run_history'),
      );
      expect(runs).toEqual([{ n: 0 }]);
    });
  });
});

describe('phase 5', () => {
  it('is refused as forward-looking, never part of a backfill', async () => {
    await expectRefused(
      ['process', '--phase', '5', '--date', DATE],
      ['phase 5 (predictions)', 'forward-looking', /never .*backfill/],
    );
  });
});

describe('invalid configuration', () => {
  const cases: { name: string; args: string[]; env: Record<string, string>; says: (string | RegExp)[] }[] = [
    {
      name: '--warehouse postgres://x',
      args: ['--warehouse', 'postgres://x'],
      env: {},
      says: ['warehouse = "postgres://x"', 'flag --warehouse', 'must be duckdb:<path'],
    },
    {
      name: 'BACKFILL_HTTP_TIMEOUT_MS=abc',
      args: [],
      env: { BACKFILL_HTTP_TIMEOUT_MS: 'abc' },
      says: ['http.timeoutMs = "abc"', 'environment BACKFILL_HTTP_TIMEOUT_MS', /number/],
    },
    {
      name: '--http-max-retries 11',
      args: ['--http-max-retries', '11'],
      env: {},
      says: ['http.maxRetries = "11"', 'flag --http-max-retries', 'must be <= 10'],
    },
  ];

  it.each(cases)('$name: exits 2 naming the setting, value and rule, before touching anything', async (c) => {
    const fresh = createWorkspace();
    try {
      const out = await fresh.cli(['process', '--phase', '2', '--date', DATE, ...c.args], c.env);
      expect(out.code, out.stderr).toBe(2);
      expect(out.stderr).toContain('invalid configuration');
      expectSays(out.stderr, c.says);
      expect(existsSync(join(fresh.dir, '.backfill'))).toBe(false);
    } finally {
      fresh.remove();
    }
  });
});

describe('re-running a date', () => {
  const DATES = ['2021-10-19', '2024-11-02'];
  let fresh: Workspace;

  beforeAll(() => {
    fresh = createWorkspace();
  });

  afterAll(() => {
    fresh?.remove();
  });

  async function phases1And2(): Promise<void> {
    for (const date of DATES) {
      for (const phase of ['1', '2']) {
        const out = await fresh.cli(['process', '--phase', phase, '--date', date]);
        expect(out.code, `${date} phase ${phase}: ${out.stderr}`).toBe(0);
      }
    }
  }

  function rawFiles(): string[] {
    return DATES.flatMap((d) =>
      (['teamGameLogs', 'playerGameLogs', 'teamRosters'] as const).map((s) =>
        readFileSync(fresh.rawFile(s, d), 'utf8'),
      ),
    );
  }

  it('leaves all five nba_raw tables identical, with no duplicate rows, for 2021-10-19 and 2024-11-02', async () => {
    await phases1And2();
    const first = await fresh.withAdapters((a) => rawTableRows(a, DATES));
    const firstFiles = rawFiles();
    for (const date of DATES) {
      for (const t of RAW_TABLES) {
        const rows = first[qualifiedName(t)]?.filter((r) => r[t.partitionColumn] === date) ?? [];
        expect(rows.length, `${qualifiedName(t)} rows for ${date}`).toBeGreaterThan(0);
      }
    }
    // The Mexico City game: both rows carry `MIA @ WAS`, so WAS is the nominal home team.
    expect(first['nba_raw.nbac_schedule']).toContainEqual(
      expect.objectContaining({ game_id: '0022400147', home_team_abbr: 'WAS', away_team_abbr: 'MIA' }),
    );

    await phases1And2();
    const second = await fresh.withAdapters((a) => rawTableRows(a, DATES));
    for (const t of RAW_TABLES.map(qualifiedName)) expect(JSON.stringify(second[t]), t).toBe(JSON.stringify(first[t]));
    expect(rawFiles()).toEqual(firstFiles);

    const dups = await fresh.withAdapters(async (a) => {
      const found: Row[] = [];
      for (const t of RAW_TABLES) {
        const key = [t.partitionColumn, ...t.key].join(', ');
        const rows = await a.warehouse.query(
          `SELECT '${qualifiedName(t)}' AS table_name, ${key}, COUNT(*) AS n FROM ${qualifiedName(t)}
            GROUP BY ${key} HAVING COUNT(*) > 1`,
        );
        found.push(...rows);
      }
      return found;
    });
    expect(dups).toEqual([]);
  });
});
