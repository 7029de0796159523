// The one place that picks adapters from configuration.

import { resolve } from 'node:path';
import { type Config, locationOf } from '../config.js';
import type { EventBus } from '../ports/events.js';
import type { ObjectStore } from '../ports/objectStore.js';
import type { StatsSource } from '../ports/source.js';
import type { Warehouse } from '../ports/warehouse.js';
import { RAW_TABLES, REFERENCE_TABLES } from '../schema/raw.js';
import { DuckDbWarehouse } from './duckdb/warehouse.js';
import { InProcessEventBus } from './inprocess/events.js';
import { LocalObjectStore } from './local/objectStore.js';
import { BundledStatsSource } from './source/bundled.js';
import { HttpStatsSource } from './source/http.js';

export interface Adapters {
  readonly warehouse: Warehouse;
  readonly objects: ObjectStore;
  readonly events: EventBus;
  readonly source: StatsSource;
  close(): Promise<void>;
}

export function createSource(config: Config): StatsSource {
  if (config.source === 'bundled') return new BundledStatsSource();
  return new HttpStatsSource({
    baseUrl: config.source,
    timeoutMs: config.http.timeoutMs,
    maxRetries: config.http.maxRetries,
    minIntervalMs: config.http.minIntervalMs,
    backoffBaseMs: config.http.backoffBaseMs,
  });
}

export async function openAdapters(config: Config): Promise<Adapters> {
  const path = locationOf(config.warehouse);
  const warehouse = await DuckDbWarehouse.open(path === ':memory:' ? path : resolve(path));
  await warehouse.ensureTables([...RAW_TABLES, ...REFERENCE_TABLES]);
  const objects = new LocalObjectStore(resolve(locationOf(config.objects)));
  const events = new InProcessEventBus();
  const source = createSource(config);
  return {
    warehouse,
    objects,
    events,
    source,
    async close() {
      await events.close();
      await warehouse.close();
    },
  };
}
