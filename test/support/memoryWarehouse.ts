// An empty in-memory DuckDB warehouse for a test; in a mutation run, one that the fixture server holds, so that
// the test's worker never loads DuckDB (see fixtureServer.ts).

import { inject } from 'vitest';
import type { Warehouse } from '../../core/ports/warehouse.js';
import { FixtureClient, RemoteWarehouse } from './remoteWarehouse.js';

export async function openMemoryWarehouse(): Promise<Warehouse> {
  const socket = inject('fixtureSocket');
  if (socket) {
    const client = await FixtureClient.connect(socket);
    const { handle } = await client.request<{ handle: number }>({ op: 'memory' });
    return new RemoteWarehouse(client, handle);
  }
  const { DuckDbWarehouse } = await import('../../core/adapters/duckdb/warehouse.js');
  return DuckDbWarehouse.open(':memory:');
}
