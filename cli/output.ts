// Rendering rows for people (aligned tables, one line a row) and for machines (JSON, CSV).

/** Rows under named columns, each row's values in the columns' order: a query's result, or a list of records. */
export interface Grid {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
}

export const RESULT_FORMATS = ['table', 'json', 'csv'] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];

export interface TableOptions {
  /** How a NULL reads in a cell. @default '' (the commands' own tables); `backfill query` shows `NULL` */
  readonly nullText?: string;
}

/** Records as a grid: the columns are the first record's keys unless given. */
export function gridOf(
  records: readonly Readonly<Record<string, unknown>>[],
  columns: readonly string[] = Object.keys(records[0] ?? {}),
): Grid {
  return { columns, rows: records.map((r) => columns.map((c) => r[c])) };
}

/**
 * A value as JSON should carry it: a bigint as a number where a double holds it exactly, else as its text; a
 * non-finite number as its text (JSON has none, and JSON.stringify would write null); a Date as ISO 8601;
 * arrays and objects value by value.
 */
export function jsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Array.isArray(v)) return v.map(jsonValue);
  if (typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, jsonValue(x)]));
  }
  return v;
}

/** A non-null value as text: a STRUCT or LIST (object or array) as its JSON. */
function valueText(v: unknown): string {
  if (v instanceof Date || typeof v === 'bigint' || (typeof v === 'number' && !Number.isFinite(v))) {
    return String(jsonValue(v));
  }
  if (typeof v === 'object' && v !== null) return JSON.stringify(jsonValue(v));
  return String(v);
}

/** Control characters as escapes, so that a value never breaks its row's line: `\n`, `\r`, `\t`, `\u001b`. */
function oneLineText(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped.
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** A table cell: one line, NULL as `nullText`. */
export function tableCell(v: unknown, nullText = ''): string {
  return v === null || v === undefined ? nullText : oneLineText(valueText(v));
}

/**
 * A CSV field (RFC 4180): quoted when it holds a quote, a comma or a line break. NULL is the empty field and an
 * empty string the quoted `""`, so that the two stay apart (as PostgreSQL's COPY ... CSV writes them).
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = valueText(v);
  return s === '' || /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** An aligned table: the header, a rule, a line a row; `(no rows)` under the header when there is none. */
export function renderTable(grid: Grid, options: TableOptions = {}): string {
  const { columns } = grid;
  if (columns.length === 0) return '(no rows)\n';
  const cells = grid.rows.map((r) => columns.map((_c, i) => tableCell(r[i], options.nullText)));
  const header = columns.map(oneLineText);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (row: readonly string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
  return `${out.join('\n')}\n${grid.rows.length === 0 ? '(no rows)\n' : ''}`;
}

/** CSV with a header line, also when there are no rows; nothing at all when there are no columns. */
export function renderCsv(grid: Grid): string {
  if (grid.columns.length === 0) return '';
  const lines = [
    grid.columns.map(csvCell).join(','),
    ...grid.rows.map((r) => grid.columns.map((_c, i) => csvCell(r[i])).join(',')),
  ];
  return `${lines.join('\n')}\n`;
}

/** A JSON array of one object a row (a column name given twice keeps its last value: JSON keys are unique). */
export function renderJson(grid: Grid): string {
  const records = grid.rows.map((r) => Object.fromEntries(grid.columns.map((c, i) => [c, jsonValue(r[i])])));
  return `${JSON.stringify(records, null, 2)}\n`;
}

export function renderResult(grid: Grid, format: ResultFormat, options: TableOptions = {}): string {
  switch (format) {
    case 'json':
      return renderJson(grid);
    case 'csv':
      return renderCsv(grid);
    case 'table':
      return renderTable(grid, options);
  }
}

export function formatTable(
  rows: readonly Readonly<Record<string, unknown>>[],
  columns: readonly string[] = Object.keys(rows[0] ?? {}),
  options: TableOptions = {},
): string {
  return renderTable(gridOf(rows, columns), options);
}

export function formatCsv(
  rows: readonly Readonly<Record<string, unknown>>[],
  columns: readonly string[] = Object.keys(rows[0] ?? {}),
): string {
  return renderCsv(gridOf(rows, columns));
}

/** Records as a JSON array: every key of each record, or only `columns` when given. */
export function formatJson(rows: readonly Readonly<Record<string, unknown>>[], columns?: readonly string[]): string {
  return columns ? renderJson(gridOf(rows, columns)) : `${JSON.stringify(rows.map(jsonValue), null, 2)}\n`;
}
