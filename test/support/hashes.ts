// Content hashes of warehouse tables, for proving that two ways of doing the same work gave the same bits.

import { createHash } from 'node:crypto';
import type { Adapters } from '../../core/adapters/index.js';
import { qualifiedName, type TableSchema } from '../../core/schema/table.js';

/**
 * One SHA-256 per table over its rows ordered by date and key. Numbers go through JSON.stringify, whose
 * shortest round-trip form differs whenever two doubles differ in any bit, so equal hashes mean equal bits.
 * `exclude` drops columns that legitimately differ between runs (ids, times).
 */
export async function tableHashes(
  adapters: Adapters,
  tables: readonly TableSchema[],
  exclude: readonly string[] = [],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tables) {
    const columns = t.columns.map((c) => c.name).filter((c) => !exclude.includes(c));
    const order = [t.partitionColumn, ...t.key.filter((k) => k !== t.partitionColumn)];
    const rows = await adapters.warehouse.query(
      `SELECT ${columns.join(', ')} FROM ${qualifiedName(t)} ORDER BY ${order.join(', ')}`,
    );
    const hash = createHash('sha256');
    for (const row of rows) hash.update(`${JSON.stringify(columns.map((c) => row[c]))}\n`);
    out[qualifiedName(t)] = `${rows.length}:${hash.digest('hex').slice(0, 16)}`;
  }
  return out;
}
