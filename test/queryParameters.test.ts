// `@name` parameters become DuckDB's `$name` only in SQL itself: literals, quoted identifiers and comments are
// left as written, so `backfill query` runs the SQL it is given.

import { describe, expect, it } from 'vitest';
import { DuckDbWarehouse, rewriteParameters } from '../core/adapters/duckdb/warehouse.js';
import { createWorkspace, ensureBuilt } from './support/workspace.js';

describe('rewriteParameters', () => {
  const cases: [string, string, string, string[]][] = [
    ['a parameter', 'SELECT * FROM t WHERE d = @date', 'SELECT * FROM t WHERE d = $date', ['date']],
    [
      'two, one of them twice',
      'WHERE a BETWEEN @start AND @end OR b = @start',
      'WHERE a BETWEEN $start AND $end OR b = $start',
      ['start', 'end'],
    ],
    ['a parameter next to punctuation', 'IN (@d0,@d1)', 'IN ($d0,$d1)', ['d0', 'd1']],
    ['an e-mail address in a literal', "SELECT 'user@example.com'", "SELECT 'user@example.com'", []],
    ["a literal with '' escapes", "SELECT 'it''s @x', @y", "SELECT 'it''s @x', $y", ['y']],
    ['a literal ending in an escape', "SELECT '@a''', @b", "SELECT '@a''', $b", ['b']],
    ["an E'' literal with a \\' escape", "SELECT E'\\'@a', @b", "SELECT E'\\'@a', $b", ['b']],
    ['a plain literal ending in a backslash', "SELECT 'c:\\', @b", "SELECT 'c:\\', $b", ['b']],
    ['a quoted identifier', 'SELECT "col@x" FROM t WHERE x = @x', 'SELECT "col@x" FROM t WHERE x = $x', ['x']],
    ['a quoted identifier with "" escapes', 'SELECT "a""@b" , @c', 'SELECT "a""@b" , $c', ['c']],
    ['a line comment', 'SELECT 1 -- see @x\nWHERE y = @y', 'SELECT 1 -- see @x\nWHERE y = $y', ['y']],
    ['a line comment at the end', 'SELECT @a -- @b', 'SELECT $a -- @b', ['a']],
    ['a block comment', 'SELECT /* @x */ @y', 'SELECT /* @x */ $y', ['y']],
    ['nested block comments', 'SELECT /* a /* @x */ @z */ @y', 'SELECT /* a /* @x */ @z */ $y', ['y']],
    ['a dollar-quoted literal', 'SELECT $$@x$$, $t$ @y $t$, @z', 'SELECT $$@x$$, $t$ @y $t$, $z', ['z']],
    ['a BigQuery system variable', 'SELECT @@project_id, @p', 'SELECT @@project_id, $p', ['p']],
    ['an @ inside a word', 'SELECT a@b', 'SELECT a@b', []],
    ['an unterminated literal', "SELECT '@x", "SELECT '@x", []],
  ];
  it.each(cases)('%s', (_name, sql, rewritten, names) => {
    const out = rewriteParameters(sql);
    expect(out.sql).toBe(rewritten);
    expect([...out.names]).toEqual(names);
  });

  it('DuckDB binds the parameters and returns the literals as written', async () => {
    const w = await DuckDbWarehouse.open(':memory:');
    try {
      const rows = await w.query(
        `SELECT 'user@example.com' AS email, 'it''s @d' AS quoted, "x@y" AS ident, @d AS d -- @nothing
           FROM (SELECT 1 AS "x@y")`,
        { d: 'bound', unused: 'ignored' },
      );
      expect(rows).toEqual([{ email: 'user@example.com', quoted: "it's @d", ident: 1, d: 'bound' }]);
    } finally {
      await w.close();
    }
  });
});

describe('backfill query', () => {
  it("prints user@example.com for SELECT 'user@example.com'", async () => {
    await ensureBuilt();
    const ws = createWorkspace();
    try {
      const out = await ws.cli(['query', "SELECT 'user@example.com' AS email", '--format', 'csv']);
      // Only the note that the fresh workspace has no warehouse file yet: no error about a parameter @example.
      expect(out.stderr).not.toMatch(/error|parameter/i);
      expect(out.code).toBe(0);
      expect(out.stdout).toBe('email\nuser@example.com\n');
    } finally {
      ws.remove();
    }
  });
});
