// Real embedded adapters on a fresh temporary folder, for tests that drive the library directly.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Adapters, openAdapters } from '../../core/adapters/index.js';
import { loadConfig } from '../../core/config.js';
import type { Row } from '../../core/schema/table.js';

export interface TestPipeline {
  readonly dir: string;
  readonly adapters: Adapters;
  dispose(): Promise<void>;
}

export async function openTestPipeline(prefix = 'nba-backfill-test-'): Promise<TestPipeline> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const config = loadConfig({
    env: {},
    flags: { warehouse: `duckdb:${join(dir, 'warehouse.duckdb')}`, objects: `file:${join(dir, 'objects')}` },
  });
  const adapters = await openAdapters(config);
  return {
    dir,
    adapters,
    async dispose() {
      await adapters.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A table's rows for some dates, in a fixed order, for comparing contents. */
export async function tableContents(
  adapters: Adapters,
  table: string,
  dateColumn: string,
  dates: readonly string[],
): Promise<Row[]> {
  const list = dates.map((d) => `DATE '${d}'`).join(', ');
  return adapters.warehouse.query(`SELECT * FROM ${table} WHERE ${dateColumn} IN (${list}) ORDER BY ALL`);
}
