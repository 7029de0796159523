// The small seam between the SQL engines: the few constructs DuckDB and BigQuery spell differently, and the
// rewrites that take the port's portable SQL (`dataset.table`, `@name` parameters) to each engine.

import type { ColumnType } from '../schema/table.js';

export interface SqlDialect {
  readonly name: 'duckdb' | 'bigquery';
  /** Whole days from `earlier` to `later` (DATE expressions). */
  dateDiffDays(later: string, earlier: string): string;
  /** A DATE `days` after `expr` (negative for before). */
  dateAddDays(expr: string, days: number): string;
  /** A parameter or expression read as a DATE. */
  asDate(expr: string): string;
  /** True when a FLOAT64 expression is neither NaN nor infinite. */
  isFinite(expr: string): string;
  /** `expr` converted to `type`; the query fails on a value that cannot be converted. */
  cast(expr: string, type: ColumnType): string;
  /** `expr` converted to `type`, or NULL where it cannot be (BigQuery's SAFE_CAST, DuckDB's TRY_CAST). */
  safeCast(expr: string, type: ColumnType): string;
  /** The engine's name of a column type, as in DDL and casts. */
  typeName(type: ColumnType): string;
  /**
   * An aggregate: the `n` latest non-null values of `value` in the group, newest first by `order` (which is
   * unique within a group). A lookback as one GROUP BY instead of a window over the season.
   */
  latestValues(value: string, order: string, n: number): string;
  /** The `k`-th value (1 for the first) of a latestValues list; NULL when the list is shorter. */
  nthOf(list: string, k: number): string;
  /** The mean of the first `k` values of a latestValues list (NULL for an empty or NULL list). */
  avgOfFirst(list: string, k: number): string;
  /** The sample standard deviation of the first `k` values of such a list (NULL below two values). */
  stddevOfFirst(list: string, k: number): string;
}

const DUCKDB_TYPE_NAMES: Record<ColumnType, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  FLOAT64: 'DOUBLE',
  BOOL: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  // The embedded warehouse keeps JSON as text (DuckDB's JSON type is an extension that may not install offline).
  JSON: 'VARCHAR',
};

export const DUCKDB_DIALECT: SqlDialect = {
  name: 'duckdb',
  dateDiffDays: (later, earlier) => `DATE_DIFF('day', ${earlier}, ${later})`,
  dateAddDays: (expr, days) =>
    `CAST(${expr} ${days < 0 ? '-' : '+'} INTERVAL ${Math.abs(Math.trunc(days))} DAY AS DATE)`,
  asDate: (expr) => `CAST(${expr} AS DATE)`,
  isFinite: (expr) => `isfinite(${expr})`,
  cast: (expr, type) => `CAST(${expr} AS ${DUCKDB_TYPE_NAMES[type]})`,
  safeCast: (expr, type) => `TRY_CAST(${expr} AS ${DUCKDB_TYPE_NAMES[type]})`,
  typeName: (type) => DUCKDB_TYPE_NAMES[type],
  latestValues: (value, order, n) =>
    `arg_max(${value}, ${order}, ${Math.trunc(n)}) FILTER (WHERE ${value} IS NOT NULL)`,
  nthOf: (list, k) => `${list}[${Math.trunc(k)}]`,
  avgOfFirst: (list, k) => `list_avg(list_slice(${list}, 1, ${Math.trunc(k)}))`,
  stddevOfFirst: (list, k) => `list_stddev_samp(list_slice(${list}, 1, ${Math.trunc(k)}))`,
};

export const BIGQUERY_DIALECT: SqlDialect = {
  name: 'bigquery',
  dateDiffDays: (later, earlier) => `DATE_DIFF(${later}, ${earlier}, DAY)`,
  dateAddDays: (expr, days) => `DATE_ADD(${expr}, INTERVAL ${Math.trunc(days)} DAY)`,
  asDate: (expr) => `CAST(${expr} AS DATE)`,
  isFinite: (expr) => `(NOT IS_NAN(${expr}) AND NOT IS_INF(${expr}))`,
  // GoogleSQL has no cast from STRING to JSON: PARSE_JSON is the conversion.
  cast: (expr, type) => (type === 'JSON' ? `PARSE_JSON(${expr})` : `CAST(${expr} AS ${type})`),
  safeCast: (expr, type) => (type === 'JSON' ? `SAFE.PARSE_JSON(${expr})` : `SAFE_CAST(${expr} AS ${type})`),
  typeName: (type) => type,
  latestValues: (value, order, n) => `ARRAY_AGG(${value} IGNORE NULLS ORDER BY ${order} DESC LIMIT ${Math.trunc(n)})`,
  nthOf: (list, k) => `${list}[SAFE_OFFSET(${Math.trunc(k) - 1})]`,
  avgOfFirst: (list, k) => `(SELECT AVG(v) FROM UNNEST(${list}) AS v WITH OFFSET AS o WHERE o < ${Math.trunc(k)})`,
  stddevOfFirst: (list, k) =>
    `(SELECT STDDEV_SAMP(v) FROM UNNEST(${list}) AS v WITH OFFSET AS o WHERE o < ${Math.trunc(k)})`,
};

/**
 * Applies `rewrite` to the SQL outside string literals, quoted identifiers and comments, so that a rewrite
 * of names or parameters never touches a value such as `'user@example.com'` or `'nba_raw.x'`.
 */
export function rewriteCode(sql: string, rewrite: (code: string) => string): string {
  let out = '';
  let code = '';
  let i = 0;
  const flush = () => {
    out += rewrite(code);
    code = '';
  };
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    let end = -1;
    if (c === "'" || c === '"' || c === '`') {
      end = i + 1;
      while (end < sql.length) {
        if (sql[end] === '\\') end += 2;
        else if (sql[end] === c && sql[end + 1] === c && c !== '`') end += 2;
        else if (sql[end] === c) break;
        else end++;
      }
      end = Math.min(end + 1, sql.length);
    } else if (c === '-' && next === '-') {
      end = sql.indexOf('\n', i);
      if (end < 0) end = sql.length;
    } else if (c === '/' && next === '*') {
      end = sql.indexOf('*/', i + 2);
      end = end < 0 ? sql.length : end + 2;
    }
    if (end < 0) {
      code += c;
      i++;
    } else {
      flush();
      out += sql.slice(i, end);
      i = end;
    }
  }
  flush();
  return out;
}

/** `@name` outside strings and comments; `@@system_variable` is not a parameter. */
const PARAMETER = /(?<![@\w])@([A-Za-z_][A-Za-z0-9_]*)/g;

/** The named parameters an SQL text uses, each once, in order of first use. */
export function parameterNames(sql: string): string[] {
  const names: string[] = [];
  rewriteCode(sql, (code) => {
    for (const m of code.matchAll(PARAMETER)) names.push(m[1] as string);
    return code;
  });
  return [...new Set(names)];
}

/** Renames every `@name` parameter (for engines that spell them otherwise or reserve some names). */
export function renameParameters(sql: string, rename: (name: string) => string): string {
  return rewriteCode(sql, (code) => code.replace(PARAMETER, (_m, name: string) => rename(name)));
}

/** DuckDB spells BigQuery's `@name` as `$name`. */
export function toDuckDbParameters(sql: string): string {
  return renameParameters(sql, (name) => `$${name}`);
}

/** GoogleSQL's reserved keywords: a parameter so named is renamed, so that `@end` can never be misread. */
const BIGQUERY_RESERVED = new Set(
  `ALL AND ANY ARRAY AS ASC ASSERT_ROWS_MODIFIED AT BETWEEN BY CASE CAST COLLATE CONTAINS CREATE CROSS CUBE
   CURRENT DEFAULT DEFINE DESC DISTINCT ELSE END ENUM ESCAPE EXCEPT EXCLUDE EXISTS EXTRACT FALSE FETCH FOLLOWING
   FOR FROM FULL GROUP GROUPING GROUPS HASH HAVING IF IGNORE IN INNER INTERSECT INTERVAL INTO IS JOIN LATERAL
   LEFT LIKE LIMIT LOOKUP MERGE NATURAL NEW NO NOT NULL NULLS OF ON OR ORDER OUTER OVER PARTITION PRECEDING
   PROTO QUALIFY RANGE RECURSIVE RESPECT RIGHT ROLLUP ROWS SELECT SET SOME STRUCT TABLESAMPLE THEN TO TREAT
   TRUE UNBOUNDED UNION UNNEST USING WHEN WHERE WINDOW WITH WITHIN`.split(/\s+/),
);

/** The name a parameter gets in BigQuery: itself, or `p_<name>` for a reserved keyword such as `end`. */
export function bigQueryParameterName(name: string): string {
  return BIGQUERY_RESERVED.has(name.toUpperCase()) ? `p_${name}` : name;
}

/**
 * Rewrites the port's `dataset.table` names of the given datasets into the engine's names, e.g.
 * `nba_raw.nbac_schedule` into `` `my-project.dev_nba_raw.nbac_schedule` ``. Column references such as
 * `b.game_date` are untouched: only the listed datasets are table qualifiers.
 */
export function qualifyTables(
  sql: string,
  datasets: readonly string[],
  qualify: (dataset: string, table: string) => string,
): string {
  if (datasets.length === 0) return sql;
  const names = datasets.map((d) => d.replace(/[^A-Za-z0-9_]/g, '')).join('|');
  const pattern = new RegExp(`(?<![\\w.])(${names})\\.([A-Za-z_][A-Za-z0-9_]*)\\b`, 'g');
  return rewriteCode(sql, (code) =>
    code.replace(pattern, (_m, dataset: string, table: string) => qualify(dataset, table)),
  );
}
