// `backfill query` on the embedded warehouse, through the built CLI on a workspace with one loaded date: read-only
// unless --write (a write refused with exit 2 naming --write, the file untouched), results on stdout only, and
// the formats (JSON numbers for exact types, STRUCT and LIST as JSON, NULL, one line a row, CSV headers).

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../core/adapters/duckdb/warehouse.js';
import {
  type CliResult,
  copyWorkspace,
  createWorkspace,
  createWorkspaceWithPlans,
  ensureBuilt,
  type Workspace,
} from './support/workspace.js';

/** Where the default settings keep the warehouse file, relative to a workspace. */
const WAREHOUSE = join('.backfill', 'warehouse.duckdb');

let ws: Workspace;
beforeAll(async () => {
  await ensureBuilt();
  ws = createWorkspaceWithPlans();
  const loaded = await ws.cli([
    'stage1',
    '--season',
    '2021-22',
    '--season-type',
    'regular',
    '--end-date',
    '2021-10-19',
    '--retry-delay-ms',
    '0',
  ]);
  if (loaded.code !== 0) throw new Error(`stage1 failed:\n${loaded.stdout}\n${loaded.stderr}`);
});
afterAll(() => ws?.remove());

/** The warehouse file's bytes (and its WAL's, if any): what a read-only query must leave as it found them. */
function fileState(w: Workspace): string {
  const path = join(w.dir, WAREHOUSE);
  const hash = createHash('sha256').update(readFileSync(path));
  if (existsSync(`${path}.wal`)) hash.update(readFileSync(`${path}.wal`));
  return hash.digest('hex');
}

async function json(w: Workspace, sql: string): Promise<unknown> {
  const out = await w.cli(['query', sql, '--format', 'json']);
  expect(out.code, out.stderr).toBe(0);
  return JSON.parse(out.stdout);
}

function expectRefused(out: CliResult, statementType: string): void {
  expect(out.code).toBe(2);
  expect(out.stdout).toBe('');
  expect(out.stderr).toContain(`error: query: ${statementType}`);
  expect(out.stderr).toContain('`backfill query` is read-only unless you pass --write');
}

describe('backfill query, read-only by default', () => {
  it('a SELECT reads the loaded date and leaves the file as it was', async () => {
    const before = fileState(ws);
    const rows = await json(
      ws,
      'SELECT game_id, away_team_abbr, home_team_abbr, home_score FROM nba_raw.nbac_schedule ORDER BY game_id',
    );
    expect(rows).toEqual([
      { game_id: '0022100001', away_team_abbr: 'BKN', home_team_abbr: 'MIL', home_score: 127 },
      { game_id: '0022100002', away_team_abbr: 'GSW', home_team_abbr: 'LAL', home_score: 114 },
    ]);
    expect(fileState(ws)).toBe(before);
  });

  it.each([
    [
      'INSERT',
      "INSERT INTO nba_raw.nbac_schedule SELECT * REPLACE ('0029999999' AS game_id) FROM nba_raw.nbac_schedule",
      'INSERT',
    ],
    ['CREATE TABLE', 'CREATE TABLE nba_raw.scratch AS SELECT * FROM nba_raw.nbac_schedule', 'CREATE'],
    ['DROP TABLE', 'DROP TABLE nba_raw.nbac_schedule', 'DROP'],
    ['UPDATE', "UPDATE nba_raw.nbac_schedule SET home_score = 0 WHERE game_id = '0022100001'", 'UPDATE'],
    ['TRUNCATE (DuckDB types it DELETE)', 'TRUNCATE nba_raw.nbac_schedule', 'DELETE'],
    ['a script with a DELETE after a SELECT', 'SELECT 1; DELETE FROM nba_raw.nbac_schedule', 'DELETE (statement 2)'],
    ['COPY to a file', "COPY nba_raw.nbac_schedule TO 'schedule.csv'", 'COPY'],
    ['ATTACH', "ATTACH 'other.duckdb' AS other", 'ATTACH'],
    // EXPLAIN reads, but EXPLAIN ANALYZE runs its statement: the read-only open is what refuses this one.
    ['EXPLAIN ANALYZE of a DELETE', 'EXPLAIN ANALYZE DELETE FROM nba_raw.nbac_schedule', 'EXPLAIN'],
  ])('%s exits 2 naming --write, and nothing changes', async (_name, sql, refused) => {
    const before = fileState(ws);
    const out = await ws.cli(['query', sql]);
    expectRefused(out, refused);
    expect(fileState(ws)).toBe(before);
    const after = await json(
      ws,
      "SELECT (SELECT COUNT(*) FROM nba_raw.nbac_schedule) AS games, (SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'scratch') AS scratch",
    );
    expect(after).toEqual([{ games: 2, scratch: 0 }]);
    for (const file of ['schedule.csv', 'other.duckdb']) expect(existsSync(join(ws.dir, file))).toBe(false);
  });

  it.each([
    [
      'SET log_query_path (DuckDB would log every query to that file)',
      "SET log_query_path = 'leak.log'; SELECT 1",
      'log_query_path',
      'leak.log',
    ],
    ['PRAGMA profile_output', "PRAGMA profile_output = 'profile.json'", 'profile_output', 'profile.json'],
    ['PRAGMA enable_profiling', "PRAGMA enable_profiling = 'json'", 'enable_profiling', undefined],
    ['SET threads', 'SET threads = 1', 'threads', undefined],
  ])(
    '%s: a setting can write files, so it is refused with exit 2 naming it and --write',
    async (_name, sql, setting, file) => {
      const before = fileState(ws);
      const out = await ws.cli(['query', sql]);
      expectRefused(out, 'SET');
      expect(out.stderr).toContain(`DuckDB's setting ${setting}`);
      if (file) expect(existsSync(join(ws.dir, file))).toBe(false);
      expect(fileState(ws)).toBe(before);
    },
  );

  it('a variable, USE and the search path are not settings: they run without --write', async () => {
    expect(await json(ws, "SET VARIABLE season = '2021-22'; SELECT getvariable('season') AS season")).toEqual([
      { season: '2021-22' },
    ]);
    expect(await json(ws, "SET search_path = 'nba_raw'; SELECT COUNT(*) AS games FROM nbac_schedule")).toEqual([
      { games: 2 },
    ]);
  });

  it('a SQL syntax error exits 2 with the parser’s words', async () => {
    const out = await ws.cli(['query', 'SELEC game_id FROM nba_raw.nbac_schedule']);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(/^error: query failed: Parser Error: syntax error at or near "SELEC"/);
  });

  it('a file another process is writing: exit 1, saying which process and what to do', async () => {
    const held = copyWorkspace(ws);
    const writer = await DuckDbWarehouse.open(join(held.dir, WAREHOUSE));
    try {
      const out = await held.cli(['query', 'SELECT 1 AS one']);
      expect(out.code).toBe(1);
      expect(out.stdout).toBe('');
      expect(out.stderr).toContain(
        `query: cannot read ${join(held.dir, WAREHOUSE)}: another process (PID ${process.pid})`,
      );
      expect(out.stderr).toContain('run the query again when that process has ended');
    } finally {
      await writer.close();
      held.remove();
    }
  });

  it('no warehouse file yet: the tables are empty, a note on stderr, no file made, stdout still parses', async () => {
    const fresh = createWorkspace();
    try {
      const out = await fresh.cli(['query', 'SELECT COUNT(*) AS games FROM nba_raw.nbac_schedule', '--format', 'json']);
      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual([{ games: 0 }]);
      expect(out.stderr).toContain('does not exist yet');
      expect(existsSync(join(fresh.dir, WAREHOUSE))).toBe(false);
    } finally {
      fresh.remove();
    }
  });
});

describe('backfill query --write', () => {
  it('with --write a setting may change, and a query log is written where it says', async () => {
    const w = copyWorkspace(ws);
    try {
      const out = await w.cli(['query', '--write', "SET log_query_path = 'queries.log'; SELECT 1 AS one"]);
      expect(out.code, out.stderr).toBe(0);
      expect(readFileSync(join(w.dir, 'queries.log'), 'utf8')).toContain('SELECT 1 AS one');
    } finally {
      w.remove();
    }
  });

  it('runs an INSERT, which a later read sees', async () => {
    const copy = copyWorkspace(ws);
    try {
      const insert =
        "INSERT INTO nba_raw.nbac_schedule SELECT * REPLACE ('0029999999' AS game_id) FROM nba_raw.nbac_schedule WHERE game_id = '0022100001'";
      const out = await copy.cli(['query', insert, '--write']);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toBe('Count\n-----\n1\n');
      expect(await json(copy, 'SELECT COUNT(*) AS games FROM nba_raw.nbac_schedule')).toEqual([{ games: 3 }]);
    } finally {
      copy.remove();
    }
  });
});

describe('backfill query output', () => {
  const TYPES = `SELECT 1.50::DECIMAL(5,2) AS price, 12345678901234567890.12::DECIMAL(38,2) AS wide,
    42::BIGINT AS n, 9007199254740993::BIGINT AS past_2_53, {'a': 1, 'b': [1.5::DECIMAL(3,1)]} AS s,
    [1, NULL] AS l, NULL::INTEGER AS nothing, DATE '2021-10-19' AS day, TIMESTAMP '2021-10-19 23:15:00.123' AS at`;

  it('JSON: DECIMAL and BIGINT as numbers where exact (else strings), STRUCT and LIST as JSON, ISO times', async () => {
    expect(await json(ws, TYPES)).toEqual([
      {
        price: 1.5,
        wide: '12345678901234567890.12',
        n: 42,
        past_2_53: '9007199254740993',
        s: { a: 1, b: [1.5] },
        l: [1, null],
        nothing: null,
        day: '2021-10-19',
        at: '2021-10-19T23:15:00.123Z',
      },
    ]);
  });

  const SHAPES = "SELECT {'a': 1} AS s, [1, 2] AS l, NULL AS n, 'two' || chr(10) || 'lines' AS t";

  it('table: STRUCT and LIST as JSON text, NULL as NULL, a newline escaped so that a row is one line', async () => {
    const out = await ws.cli(['query', SHAPES]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(
      's        l      n     t\n-------  -----  ----  ----------\n{"a":1}  [1,2]  NULL  two\\nlines\n',
    );
  });

  it('CSV: STRUCT and LIST as JSON text, NULL as an empty field, a newline kept inside quotes', async () => {
    const out = await ws.cli(['query', SHAPES, '--format', 'csv']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('s,l,n,t\n"{""a"":1}","[1,2]",,"two\nlines"\n');
  });

  it.each([
    ['csv', 'game_id,game_date\n'],
    ['table', 'game_id  game_date\n-------  ---------\n(no rows)\n'],
    ['json', '[]\n'],
  ])('an empty result in %s still shows its columns where the format has them', async (format, expected) => {
    const out = await ws.cli([
      'query',
      'SELECT game_id, game_date FROM nba_raw.nbac_schedule WHERE false',
      '--format',
      format,
    ]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(expected);
  });

  it('--help says it is read-only unless --write', async () => {
    const out = await ws.cli(['query', '--help']);
    expect(out.stdout).toMatch(/--write\s+allow statements that change the warehouse/);
    expect(out.stdout).toContain('Read-only unless --write');
  });
});
