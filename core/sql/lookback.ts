// Lookbacks as aggregates: "the last N games" of a player or team as a list built by one GROUP BY, instead
// of a window function over the whole season. Per date this reads each earlier row once and sorts only
// within a group, which on DuckDB is several times cheaper than a window, and both engines spell it.

import type { SqlDialect } from './dialect.js';

/**
 * An aggregate: the `n` latest non-null values of `value` in the group, ordered by `order` newest first.
 * `order` must be unique within a group (a player or a team plays at most one game a date).
 */
export function latestValues(d: SqlDialect, value: string, order: string, n: number): string {
  const count = Math.trunc(n);
  return d.name === 'duckdb'
    ? `arg_max(${value}, ${order}, ${count}) FILTER (WHERE ${value} IS NOT NULL)`
    : `ARRAY_AGG(${value} IGNORE NULLS ORDER BY ${order} DESC LIMIT ${count})`;
}

/** The mean of the first `k` values of a list made by latestValues (NULL for an empty or NULL list). */
export function avgOfFirst(d: SqlDialect, list: string, k: number): string {
  const count = Math.trunc(k);
  return d.name === 'duckdb'
    ? `list_avg(list_slice(${list}, 1, ${count}))`
    : `(SELECT AVG(v) FROM UNNEST(${list}) AS v WITH OFFSET AS o WHERE o < ${count})`;
}

/** The sample standard deviation of the first `k` values of such a list (NULL below two values). */
export function stddevOfFirst(d: SqlDialect, list: string, k: number): string {
  const count = Math.trunc(k);
  return d.name === 'duckdb'
    ? `list_stddev_samp(list_slice(${list}, 1, ${count}))`
    : `(SELECT STDDEV_SAMP(v) FROM UNNEST(${list}) AS v WITH OFFSET AS o WHERE o < ${count})`;
}
