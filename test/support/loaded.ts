// A warehouse and object store already loaded with the first weeks of 2021-22, built once and copied per test
// file: loading Phases 1-2 (and Phase 3) of weeks of real data costs seconds, a copy a fraction of one.

import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { inject } from 'vitest';
import type { Adapters } from '../../core/adapters/index.js';
import { InProcessEventBus } from '../../core/adapters/inprocess/events.js';
import { LocalObjectStore } from '../../core/adapters/local/objectStore.js';
import { BundledStatsSource } from '../../core/adapters/source/bundled.js';
import { CheckedWarehouse } from '../../core/checks/data.js';
import { loadConfig } from '../../core/config.js';
import { runInOneCommit, runPhases1And2 } from '../../core/dateRun.js';
import type { IsoDate } from '../../core/dates.js';
import { silentLogger } from '../../core/log.js';
import { phaseProcessors } from '../../core/processors.js';
import type { Row } from '../../core/schema/table.js';
import type { TestPipeline } from './adapters.js';
import { FixtureClient, RemoteWarehouse } from './remoteWarehouse.js';

export interface LoadedOptions {
  /** The last date loaded; the first is the season's opening night, 2021-10-19. */
  readonly last: IsoDate;
  /** Also Phase 3 on every game date (for tests of Phase 4, which reads it). */
  readonly phase3?: boolean;
}

/**
 * The one fixture the boundary tests share: 2021-22 through 2021-12-31 (players with 30+ earlier games),
 * Phase 3 included, so that it is built once.
 */
export const LOADED_FIXTURE: LoadedOptions = { last: '2021-12-31', phase3: true };

const FIRST: IsoDate = '2021-10-19';
const ROOT = new URL('../../', import.meta.url).pathname;

/** Every file under a folder, sorted, for a content hash. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .sort();
}

/**
 * The key of a fixture: its options, the bundled data and the code that loads it (all of core/, so that a
 * change anywhere in the pipeline builds a new one).
 */
function fixtureKey(options: LoadedOptions): string {
  const hash = createHash('sha256').update(JSON.stringify({ last: options.last, phase3: options.phase3 ?? false }));
  for (const f of [...filesUnder(join(ROOT, 'data')), ...filesUnder(join(ROOT, 'core'))]) {
    hash.update(relative(ROOT, f)).update(readFileSync(f));
  }
  return hash.digest('hex').slice(0, 16);
}

function folderOf(dir: string) {
  return { warehouse: `duckdb:${join(dir, 'warehouse.duckdb')}`, objects: `file:${join(dir, 'objects')}` };
}

/**
 * Run history of the fixture, stamped a second apart from 2020 on: earlier than any test's injected clock
 * (2030 on), so that a test's own runs are always the latest.
 */
let tick = 0;
const clock = () => new Date(Date.UTC(2020, 0, 1) + 1000 * tick++);

/** The embedded adapters, imported on demand: a worker of a mutation run never loads DuckDB (see openLoaded). */
async function openEmbedded(dir: string): Promise<Adapters> {
  const { openAdapters } = await import('../../core/adapters/index.js');
  return openAdapters(loadConfig({ env: {}, flags: folderOf(dir) }));
}

async function build(dir: string, options: LoadedOptions): Promise<void> {
  const log = silentLogger();
  const adapters = await openEmbedded(dir);
  try {
    const opts = { trigger: { command: 'test', stage: 'fixture' }, skipDownstreamTrigger: true, clock };
    const gameDates: IsoDate[] = [];
    for (const d = new Date(`${FIRST}T00:00:00Z`); d.toISOString().slice(0, 10) <= options.last; ) {
      const date = d.toISOString().slice(0, 10);
      const r = await runPhases1And2(adapters, log, date, opts);
      if (!r.ok) throw new Error(`fixture: Phases 1-2 failed on ${date}: ${r.failures[0]?.error.message}`);
      if ((r.rows.nbac_schedule ?? 0) > 0) gameDates.push(date);
      d.setUTCDate(d.getUTCDate() + 1);
    }
    if (options.phase3) {
      const ports = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
      for (const date of gameDates) {
        const r = await runInOneCommit(ports, log, date, phaseProcessors(3), opts);
        if (!r.ok) throw new Error(`fixture: Phase 3 failed on ${date}: ${r.failures[0]?.error.message}`);
      }
    }
  } finally {
    await adapters.close();
  }
}

/**
 * The folder of a loaded fixture, built on first use. Builders race safely: each builds in its own folder
 * and renames it into place; a loser drops its copy. Call it where no mutant of Stryker is active (vitest's
 * global setup) to keep the fixture free of mutated code.
 */
export async function loadedFolder(options: LoadedOptions): Promise<string> {
  const dir = join(tmpdir(), `nba-backfill-loaded-${fixtureKey(options)}`);
  if (existsSync(dir)) return dir;
  const building = mkdtempSync(`${dir}.build-`);
  try {
    await build(building, options);
    try {
      renameSync(building, dir);
    } catch (err) {
      if (!existsSync(dir)) throw err;
    }
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return dir;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The fixture server's socket, in mutation runs (test/support/loadedSetup.ts). */
    fixtureSocket?: string;
  }
}

/**
 * A private copy of a loaded fixture, opened with the real embedded adapters. In a mutation run the global
 * setup serves copies (fixtureServer.ts) and the warehouse answers over its socket: the same DuckDB adapter,
 * without loading DuckDB in every fresh worker.
 */
export async function openLoaded(options: LoadedOptions): Promise<LoadedPipeline> {
  const socket = inject('fixtureSocket');
  if (socket) return openServed(socket);
  const source = await loadedFolder(options);
  const dir = mkdtempSync(join(tmpdir(), 'nba-backfill-test-'));
  cpSync(source, dir, { recursive: true });
  const adapters = await openEmbedded(dir);
  return {
    dir,
    adapters,
    pristine: (sql) => adapters.warehouse.query(sql),
    async dispose() {
      await adapters.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface LoadedPipeline extends TestPipeline {
  /**
   * Rows of the fixture as built, whatever a test has written since: for expectations computed in beforeAll
   * (a mutation run answers each query once, not once per test file and mutant).
   */
  pristine(sql: string): Promise<Row[]>;
}

async function openServed(socket: string): Promise<LoadedPipeline> {
  const client = await FixtureClient.connect(socket);
  const { handle, dir } = await client.request<{ handle: number; dir: string }>({ op: 'open' });
  const warehouse = new RemoteWarehouse(client, handle);
  const events = new InProcessEventBus();
  const adapters: Adapters = {
    warehouse,
    objects: new LocalObjectStore(join(dir, 'objects')),
    events,
    source: new BundledStatsSource(),
    async close() {
      await events.close();
      await warehouse.close();
    },
  };
  return {
    dir,
    adapters,
    pristine: (sql) => client.request<Row[]>({ op: 'pristine', sql }),
    dispose: () => adapters.close(),
  };
}
