// The one place that picks adapters from configuration.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import { BadInputError } from '../errors.js';
import { CorruptingObjectStore, FaultInjectingSource, loadFaults } from '../faults.js';
import type { EventBus } from '../ports/events.js';
import type { ObjectStore } from '../ports/objectStore.js';
import type { StatsSource } from '../ports/source.js';
import type { SqlConsole, Warehouse } from '../ports/warehouse.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../schema/derived.js';
import { RAW_TABLES, REFERENCE_TABLES } from '../schema/raw.js';
import { InProcessEventBus } from './inprocess/events.js';
import { type IpcChannel, IpcWarehouse } from './local/ipcWarehouse.js';
import { LocalObjectStore } from './local/objectStore.js';
import { BundledStatsSource } from './source/bundled.js';
import { HttpStatsSource, type HttpWait } from './source/http.js';

/**
 * DuckDB's module, loaded when a warehouse is a DuckDB file: a pod on the local runtime uses the parent's
 * warehouse (ipc:parent) and so starts without loading DuckDB's native library and its bindings.
 */
async function duckDb() {
  return (await import('./duckdb/warehouse.js')).DuckDbWarehouse;
}

export const ALL_TABLES = [...RAW_TABLES, ...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES, ...REFERENCE_TABLES];

export interface Adapters {
  readonly warehouse: Warehouse;
  readonly objects: ObjectStore;
  readonly events: EventBus;
  readonly source: StatsSource;
  close(): Promise<void>;
}

let bundled: BundledStatsSource | undefined;

export interface SourceHooks {
  /**
   * Told of every long wait of the HTTP source (Retry-After, backoff, rate limit).
   * @default a line on stderr, which the CLI shows and a pod's log file keeps
   */
  readonly onWait?: (wait: HttpWait) => void;
}

const waitOnStderr = (wait: HttpWait) => process.stderr.write(`backfill: ${wait.message}\n`);

const folders = new Map<string, BundledStatsSource>();

/** The bundled source is shared in a process: a warm pod loads a season's data once, not once per date. */
export function createSource(config: Config, hooks: SourceHooks = {}): StatsSource {
  if (config.source.kind === 'bundled') return (bundled ??= new BundledStatsSource());
  if (config.source.kind === 'dir') {
    // One per folder in a process, as the bundled one: a season is parsed once, and again when a file changes.
    let folder = folders.get(config.source.path);
    if (!folder) folders.set(config.source.path, (folder = new BundledStatsSource(config.source.path, true)));
    return folder;
  }
  return new HttpStatsSource({
    baseUrl: config.source.url,
    timeoutMs: config.http.timeoutMs,
    maxRetries: config.http.maxRetries,
    minIntervalMs: config.http.minIntervalMs,
    backoffBaseMs: config.http.backoffBaseMs,
    maxRetryAfterMs: config.http.maxRetryAfterMs,
    onWait: hooks.onWait ?? waitOnStderr,
  });
}

export interface AdapterOptions {
  /** The attempt this process makes at its work (fault injection fails some first attempts). @default 1 */
  readonly attempt?: number;
  /** Also told of the HTTP source's long waits (the CLI logs them to its log file); stderr always shows them. */
  readonly onWait?: (wait: HttpWait) => void;
}

async function openWarehouse(config: Config): Promise<Warehouse> {
  const target = config.warehouse;
  switch (target.kind) {
    case 'ipc':
      if (!process.send) {
        throw new BadInputError('warehouse ipc:parent needs a parent process (the local job runtime)');
      }
      return new IpcWarehouse(process as unknown as IpcChannel);
    case 'bigquery': {
      // Loaded on demand: the embedded path never pays for the Google client libraries.
      const { openBigQueryWarehouse } = await import('./bigquery/warehouse.js');
      const warehouse = await openBigQueryWarehouse(target);
      await warehouse.ensureTables(ALL_TABLES);
      return warehouse;
    }
    case 'duckdb': {
      const warehouse = await (await duckDb()).open(target.path === ':memory:' ? target.path : resolve(target.path));
      await warehouse.ensureTables(ALL_TABLES);
      return warehouse;
    }
  }
}

/**
 * The configured warehouse opened for reads only (`status`): nothing is created. Undefined when a DuckDB file
 * does not exist yet (nothing has run). A DuckDB file another process holds throws WarehouseLockedError.
 */
export async function openWarehouseReadOnly(config: Config): Promise<Warehouse | undefined> {
  const target = config.warehouse;
  switch (target.kind) {
    case 'ipc':
      throw new BadInputError('status cannot read the warehouse ipc:parent');
    case 'bigquery': {
      const { openBigQueryWarehouse } = await import('./bigquery/warehouse.js');
      return openBigQueryWarehouse(target);
    }
    case 'duckdb':
      if (target.path === ':memory:' || !existsSync(resolve(target.path))) return undefined;
      return (await duckDb()).open(resolve(target.path), { readOnly: true });
  }
}

/** A warehouse that also runs SQL as a person writes it. */
export type SqlWarehouse = Warehouse & SqlConsole;

export interface OpenedSqlWarehouse {
  readonly warehouse: SqlWarehouse;
  /** The configured DuckDB file, when it does not exist yet: the SQL runs on empty tables in memory instead. */
  readonly missingFile?: string;
}

/**
 * How long a read-only `query` waits for a DuckDB file's writer to let go before calling the file taken: long
 * enough for a command that is just ending, short enough not to hang behind a stage that runs for minutes.
 */
export const QUERY_LOCK_WAIT_MS = 1000;

/**
 * The configured warehouse for `backfill query`: without `write`, a DuckDB file opened read-only and nothing
 * created (a file that does not exist yet is not made: the SQL runs on the schema's empty tables in memory),
 * BigQuery as it is (runSql dry-runs each query first). With `write`, opened as the stages open it. A DuckDB
 * file another process writes throws WarehouseLockedError.
 */
export async function openSqlWarehouse(
  config: Config,
  options: { readonly write: boolean },
): Promise<OpenedSqlWarehouse> {
  const target = config.warehouse;
  switch (target.kind) {
    case 'ipc':
      throw new BadInputError(
        'query cannot run on the warehouse ipc:parent (the local job runtime gives it to its pods)',
      );
    case 'bigquery': {
      const { openBigQueryWarehouse } = await import('./bigquery/warehouse.js');
      return { warehouse: await openBigQueryWarehouse(target) };
    }
    case 'duckdb': {
      const path = target.path === ':memory:' ? target.path : resolve(target.path);
      const missing = path !== ':memory:' && !existsSync(path);
      if (options.write || path === ':memory:' || missing) {
        const warehouse = await (await duckDb()).open(missing && !options.write ? ':memory:' : path);
        await warehouse.ensureTables(ALL_TABLES);
        return { warehouse, ...(missing && !options.write ? { missingFile: path } : {}) };
      }
      return { warehouse: await (await duckDb()).open(path, { readOnly: true, lockWaitMs: QUERY_LOCK_WAIT_MS }) };
    }
  }
}

async function openObjectStore(config: Config): Promise<ObjectStore> {
  const target = config.objects;
  if (target.kind === 'gs') {
    const { GcsObjectStore } = await import('./gcs/objectStore.js');
    return new GcsObjectStore(target.bucket, target.prefix);
  }
  return new LocalObjectStore(resolve(target.path));
}

async function openEventBus(config: Config): Promise<EventBus> {
  if (config.events.kind === 'pubsub') {
    const { PubSubEventBus } = await import('./pubsub/events.js');
    return new PubSubEventBus(config.events.project);
  }
  return new InProcessEventBus();
}

export async function openAdapters(config: Config, options: AdapterOptions = {}): Promise<Adapters> {
  const { onWait } = options;
  const hooks: SourceHooks = onWait
    ? {
        onWait: (w) => {
          waitOnStderr(w);
          onWait(w);
        },
      }
    : {};
  const faults = config.faults ? loadFaults(config.faults) : undefined;
  const warehouse = await openWarehouse(config);
  const store = await openObjectStore(config);
  const objects = faults ? new CorruptingObjectStore(store, faults) : store;
  const events = await openEventBus(config);
  const source = faults
    ? new FaultInjectingSource(createSource(config, hooks), faults, options.attempt ?? 1)
    : createSource(config, hooks);
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
