// Rendering rows for people (aligned tables) and for machines (JSON, CSV).

import type { Row } from '../core/schema/table.js';

function text(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

export function formatTable(rows: readonly Row[], columns: readonly string[] = Object.keys(rows[0] ?? {})): string {
  if (columns.length === 0) return '(no rows)\n';
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [
    line([...columns]),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => text(r[c])))),
  ];
  return `${out.join('\n')}\n${rows.length === 0 ? '(no rows)\n' : ''}`;
}

function csvCell(v: unknown): string {
  const s = text(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(rows: readonly Row[]): string {
  const columns = Object.keys(rows[0] ?? {});
  return (
    [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n') +
    (columns.length ? '\n' : '')
  );
}

export function formatJson(rows: readonly Row[]): string {
  return `${JSON.stringify(rows, null, 2)}\n`;
}
