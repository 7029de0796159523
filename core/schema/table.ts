// How a warehouse table is described in code: one schema serves DuckDB and BigQuery alike.

/** BigQuery's standard SQL type names; each warehouse adapter maps them to its own engine. */
export type ColumnType = 'STRING' | 'INT64' | 'FLOAT64' | 'BOOL' | 'DATE' | 'TIMESTAMP' | 'JSON';

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  /** @default false */
  readonly nullable?: boolean;
  readonly description: string;
}

export interface TableSchema {
  /** `nba_raw`, `nba_analytics`, `nba_precompute` or `nba_reference`: a DuckDB schema, a BigQuery dataset. */
  readonly dataset: string;
  readonly name: string;
  readonly description: string;
  readonly columns: readonly Column[];
  /** The DATE column a date's data lives in: the unit of replace, and BigQuery's partition. */
  readonly partitionColumn: string;
  /** Columns that identify a row within a partition; rows are written sorted by them. */
  readonly key: readonly string[];
  /** BigQuery clustering, the columns queries filter by after the date. */
  readonly clusterBy: readonly string[];
}

export function col(name: string, type: ColumnType, description: string, nullable = false): Column {
  return { name, type, description, nullable };
}

export function qualifiedName(table: TableSchema): string {
  return `${table.dataset}.${table.name}`;
}

export type SqlValue = string | number | boolean | null;
export type Row = Record<string, SqlValue>;

/** Sorts rows by the table's key so that the same input always writes the same bytes. */
export function sortByKey(table: TableSchema, rows: readonly Row[]): Row[] {
  const key = table.key;
  return [...rows].sort((a, b) => {
    for (const k of key) {
      const x = a[k];
      const y = b[k];
      if (x === y) continue;
      if (x === null || x === undefined) return -1;
      if (y === null || y === undefined) return 1;
      return x < y ? -1 : 1;
    }
    return 0;
  });
}

/** The duplicate keys in `rows`, as `k1=v1, k2=v2` strings. */
export function duplicateKeys(table: TableSchema, rows: readonly Row[]): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const row of rows) {
    const id = table.key.map((k) => `${k}=${String(row[k])}`).join(', ');
    if (seen.has(id)) dups.push(id);
    seen.add(id);
  }
  return dups;
}
