// The dialect seam: every construct DuckDB and BigQuery spell differently gives the same value on both
// engines (DuckDB's spelling run on DuckDB; BigQuery's parsed by sqlglot's BigQuery dialect, then run on
// DuckDB through the BigQuery double's rewrite), and the rewrites of names and parameters leave values alone.

import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTableSql } from '../core/adapters/duckdb/warehouse.js';
import { type ColumnType, col, type TableSchema } from '../core/schema/table.js';
import {
  BIGQUERY_DIALECT,
  bigQueryParameterName,
  DUCKDB_DIALECT,
  parameterNames,
  qualifyTables,
  renameParameters,
  rewriteCode,
  type SqlDialect,
  toDuckDbParameters,
} from '../core/sql/dialect.js';
import { Sqlglot } from './support/sqlglot.js';

let glot: Sqlglot;
let duck: DuckDBInstance;

beforeAll(async () => {
  glot = await Sqlglot.start();
  duck = await DuckDBInstance.create(':memory:');
});
afterAll(async () => {
  await glot.close();
  duck.closeSync();
});

type Params = Record<string, string | number>;

/**
 * One value computed from a dialect's expression, values passed as parameters (`@name`): DuckDB's spelling
 * run on DuckDB, BigQuery's parsed by sqlglot's BigQuery dialect and run on DuckDB through its rewrite.
 */
async function evaluate(dialect: SqlDialect, expression: string, params: Params = {}): Promise<unknown> {
  let sql = `SELECT ${expression} AS v`;
  let bound: Params = params;
  if (dialect.name === 'bigquery') {
    const scalars = Object.fromEntries(
      Object.entries(params).map(([k, v]) => [k, { type: typeof v === 'number' ? 'INT64' : 'STRING', value: v }]),
    );
    const [info] = await glot.prepare({ sql, project: 'p', scalars });
    expect(info?.problems).toEqual([]);
    expect(info?.parameters).toEqual(Object.keys(params).sort());
    sql = info?.duckdb as string;
    bound = {};
  } else {
    sql = toDuckDbParameters(sql);
  }
  const conn = await duck.connect();
  try {
    const reader = await conn.runAndReadAll(sql, bound);
    return reader.getRowsJson()[0]?.[0];
  } finally {
    conn.closeSync();
  }
}

/** A whole query's rows (as JSON values) on a dialect's engine, BigQuery's through sqlglot's rewrite. */
async function rowsOf(dialect: SqlDialect, sql: string): Promise<unknown[][]> {
  let text = sql;
  if (dialect.name === 'bigquery') {
    const [info] = await glot.prepare({ sql, project: 'p' });
    expect(info?.problems).toEqual([]);
    text = info?.duckdb as string;
  }
  const conn = await duck.connect();
  try {
    return (await conn.runAndReadAll(text)).getRowsJson() as unknown[][];
  } finally {
    conn.closeSync();
  }
}

/** The same construct in both dialects, each evaluated on its engine. */
async function both(build: (d: SqlDialect) => string, params: Params = {}): Promise<[unknown, unknown]> {
  return [
    await evaluate(DUCKDB_DIALECT, build(DUCKDB_DIALECT), params),
    await evaluate(BIGQUERY_DIALECT, build(BIGQUERY_DIALECT), params),
  ];
}

describe('constructs the engines spell differently', () => {
  it.each([
    ['2021-10-27', '2021-10-19', 8],
    ['2021-10-19', '2021-10-27', -8],
    ['2022-03-01', '2022-02-28', 1],
  ])('dateDiffDays(%s, %s) is %i whole days on both', async (later, earlier, days) => {
    expect(BIGQUERY_DIALECT.dateDiffDays('a', 'b')).toBe('DATE_DIFF(a, b, DAY)');
    expect(DUCKDB_DIALECT.dateDiffDays('a', 'b')).toBe("DATE_DIFF('day', b, a)");
    const out = await both((d) => d.dateDiffDays(d.asDate('@later'), d.asDate('@earlier')), { later, earlier });
    expect(out).toEqual([String(days), String(days)]);
  });

  it.each([
    [-7, '2021-10-20'],
    [3, '2021-10-30'],
    [0, '2021-10-27'],
  ])('dateAddDays(date, %i) is the DATE %s on both', async (days, expected) => {
    const out = await both((d) => d.cast(d.dateAddDays(d.asDate('@date'), days), 'STRING'), { date: '2021-10-27' });
    expect(out).toEqual([expected, expected]);
  });

  it('asDate reads a YYYY-MM-DD text as a DATE on both', async () => {
    const params = { a: '2021-11-01', b: '2021-10-31' };
    expect(await both((d) => d.dateDiffDays(d.asDate('@a'), d.asDate('@b')), params)).toEqual(['1', '1']);
  });

  it.each([
    ['1.5', true],
    ["CAST('NaN' AS FLOAT64)", false],
    ["CAST('inf' AS FLOAT64)", false],
    ["CAST('-inf' AS FLOAT64)", false],
  ])('isFinite(%s) is %s on both', async (value, finite) => {
    const duckValue = value.replace('FLOAT64', 'DOUBLE');
    expect(await evaluate(DUCKDB_DIALECT, DUCKDB_DIALECT.isFinite(duckValue))).toBe(finite);
    expect(await evaluate(BIGQUERY_DIALECT, BIGQUERY_DIALECT.isFinite(value))).toBe(finite);
  });

  it.each<[string | number, ColumnType, unknown]>([
    ['42', 'INT64', '42'],
    ['4.5', 'FLOAT64', 4.5],
    ['true', 'BOOL', true],
    ['2021-10-19', 'DATE', '2021-10-19'],
    [42, 'STRING', '42'],
  ])('cast(%s AS %s) converts alike on both', async (value, type, expected) => {
    expect(await both((d) => d.cast('@v', type), { v: value })).toEqual([expected, expected]);
    expect(await both((d) => d.safeCast('@v', type), { v: value })).toEqual([expected, expected]);
  });

  it.each<[string, ColumnType]>([
    ['forty-two', 'INT64'],
    ['x', 'FLOAT64'],
    ['2021-13-45', 'DATE'],
  ])('safeCast(%s AS %s) is NULL on both where cast fails (SAFE_CAST / TRY_CAST)', async (value, type) => {
    expect(BIGQUERY_DIALECT.safeCast('@v', type)).toBe(`SAFE_CAST(@v AS ${type})`);
    expect(DUCKDB_DIALECT.safeCast('@v', type)).toBe(`TRY_CAST(@v AS ${DUCKDB_DIALECT.typeName(type)})`);
    expect(await both((d) => d.safeCast('@v', type), { v: value })).toEqual([null, null]);
  });

  it('casts to JSON with PARSE_JSON on BigQuery, which has no CAST to JSON', async () => {
    expect(BIGQUERY_DIALECT.cast("'{}'", 'JSON')).toBe("PARSE_JSON('{}')");
    expect(BIGQUERY_DIALECT.safeCast('x', 'JSON')).toBe('SAFE.PARSE_JSON(x)');
    const [info] = await glot.prepare({
      sql: `SELECT ${BIGQUERY_DIALECT.cast("'{}'", 'JSON')}`,
      project: 'p',
      transpile: false,
    });
    expect(info?.problems).toEqual([]);
  });

  it('names every column type as its engine does, so DDL and casts agree', async () => {
    const types: ColumnType[] = ['STRING', 'INT64', 'FLOAT64', 'BOOL', 'DATE', 'TIMESTAMP', 'JSON'];
    expect(types.map((t) => BIGQUERY_DIALECT.typeName(t))).toEqual(types);
    const conn = await duck.connect();
    try {
      const cols = types.map((t, i) => `c${i} ${DUCKDB_DIALECT.typeName(t)}`).join(', ');
      await conn.run(`CREATE TEMP TABLE typed (${cols})`);
      const reader = await conn.runAndReadAll('SELECT * FROM typed');
      expect(reader.columnTypes().map(String)).toEqual([
        'VARCHAR',
        'BIGINT',
        'DOUBLE',
        'BOOLEAN',
        'DATE',
        'TIMESTAMP',
        'VARCHAR',
      ]);
    } finally {
      conn.closeSync();
    }
  });

  it('creates the DuckDB warehouse tables with the same type names (one type map)', async () => {
    const types: ColumnType[] = ['STRING', 'INT64', 'FLOAT64', 'BOOL', 'DATE', 'TIMESTAMP', 'JSON'];
    const table: TableSchema = {
      dataset: 'main',
      name: 'typed_by_ddl',
      description: '',
      columns: types.map((t, i) => col(`c${i}`, t, '', true)),
      partitionColumn: 'c4',
      key: [],
      clusterBy: [],
    };
    const conn = await duck.connect();
    try {
      await conn.run(createTableSql(table));
      const reader = await conn.runAndReadAll('SELECT * FROM main.typed_by_ddl');
      expect(reader.columnTypes().map(String)).toEqual(types.map((t) => DUCKDB_DIALECT.typeName(t)));
    } finally {
      conn.closeSync();
    }
  });
});

describe('lookbacks as aggregates (latestValues, nthOf, avgOfFirst, stddevOfFirst)', () => {
  it('take the latest non-null values of a group and average their first k alike on both engines', async () => {
    const sql = (d: SqlDialect) => `
      WITH t AS (
        SELECT 1 AS g, 1 AS o, 10 AS x UNION ALL SELECT 1, 2, NULL UNION ALL SELECT 1, 3, 30
        UNION ALL SELECT 1, 4, 40 UNION ALL SELECT 2, 1, 5
      ),
      l AS (SELECT g, ${d.latestValues('t.x', 't.o', 3)} AS xs FROM t GROUP BY g)
      SELECT l.g, ${d.avgOfFirst('l.xs', 2)} AS a2, ${d.avgOfFirst('l.xs', 3)} AS a3,
             ${d.stddevOfFirst('l.xs', 2)} AS s2, ${d.nthOf('l.xs', 1)} AS n1, ${d.nthOf('l.xs', 3)} AS n3
        FROM l ORDER BY l.g`;
    // Group 1's latest non-null values, newest first: 40, 30, 10; group 2 has one value, so no third.
    const expected = [
      [1, 35, 80 / 3, Math.sqrt(50), 40, 10],
      [2, 5, 5, null, 5, null],
    ];
    for (const d of [DUCKDB_DIALECT, BIGQUERY_DIALECT]) {
      const rows = await rowsOf(d, sql(d));
      expect(rows.map((r) => r.map((v) => (typeof v === 'number' ? Number(v.toFixed(9)) : v)))).toEqual(
        expected.map((r) => r.map((v) => (typeof v === 'number' ? Number(v.toFixed(9)) : v))),
      );
    }
  });
});

describe('rewrites of the portable SQL', () => {
  it('qualifies only the listed datasets, outside strings, comments and quoted names', () => {
    const sql = `SELECT b.game_date, 'nba_raw.x' AS s -- nba_raw.in_comment
      FROM nba_raw.nbac_player_boxscore AS b JOIN nba_analytics.player_game_summary AS p ON p.player_id = b.player_id
      WHERE b.x = "nba_raw.y" /* nba_raw.z */ AND \`nba_raw.kept\`.a = 1 AND other.t = 2`;
    const out = qualifyTables(sql, ['nba_raw', 'nba_analytics'], (d, t) => `\`p.dev_${d}.${t}\``);
    expect(out).toContain('FROM `p.dev_nba_raw.nbac_player_boxscore` AS b');
    expect(out).toContain('JOIN `p.dev_nba_analytics.player_game_summary` AS p');
    for (const kept of [
      "'nba_raw.x'",
      '-- nba_raw.in_comment',
      '"nba_raw.y"',
      '/* nba_raw.z */',
      '`nba_raw.kept`',
      'b.game_date',
      'other.t',
    ]) {
      expect(out).toContain(kept);
    }
  });

  it('does not take a longer dotted name for a dataset table', () => {
    expect(qualifyTables('SELECT x.nba_raw.t, nba_raw.t FROM y', ['nba_raw'], () => 'Q')).toBe(
      'SELECT x.nba_raw.t, Q FROM y',
    );
  });

  it('finds the @parameters an SQL text uses, each once, never in strings or @@ variables', () => {
    const sql = "SELECT @a, @b_2, @a, '@nope', @@error.message, x@y.z -- @c\n FROM t WHERE d = @date";
    expect(parameterNames(sql)).toEqual(['a', 'b_2', 'date']);
  });

  it('renames parameters for DuckDB ($name) and leaves strings with @ alone', () => {
    expect(toDuckDbParameters("SELECT * FROM t WHERE a = @a AND e = 'x@example.com' AND d = @date")).toBe(
      "SELECT * FROM t WHERE a = $a AND e = 'x@example.com' AND d = $date",
    );
    expect(renameParameters('SELECT @x + @y', (n) => `:${n.toUpperCase()}`)).toBe('SELECT :X + :Y');
  });

  it('renames GoogleSQL reserved words used as parameter names, and only those', () => {
    expect(bigQueryParameterName('end')).toBe('p_end');
    expect(bigQueryParameterName('Window')).toBe('p_Window');
    expect(bigQueryParameterName('start')).toBe('start');
    expect(bigQueryParameterName('date')).toBe('date');
  });

  it("keeps escaped quotes inside strings (BigQuery \\' and DuckDB '') as part of the string", () => {
    const seen: string[] = [];
    rewriteCode("SELECT 'it\\'s @a', 'it''s @b', @c", (code) => {
      seen.push(code);
      return code;
    });
    expect(seen.join('|')).not.toMatch(/@a|@b/);
    expect(seen.join('|')).toContain('@c');
  });
});
