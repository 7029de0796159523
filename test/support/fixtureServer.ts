// For mutation runs: serves private copies of the loaded fixture (and empty in-memory warehouses) from the vitest main process over a Unix
// socket, so that a test file's worker never loads DuckDB. Loading DuckDB's native module costs about half a
// second in every fresh worker, and Stryker starts fresh workers for every mutant: with it in the workers, a
// mutation run of the checks and processors took an hour; without, minutes.

import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDbWarehouse } from '../../core/adapters/duckdb/warehouse.js';
import type { Warehouse } from '../../core/ports/warehouse.js';
import { type FixtureReply, type FixtureRequest, onLines } from './fixtureProtocol.js';

const METHODS = new Set(['ensureTables', 'query', 'commit', 'append', 'checkpoint']);

interface Opened {
  /** The copy's folder (null: an empty in-memory warehouse). */
  readonly dir: string | null;
  readonly warehouse: Warehouse;
}

/** Serves copies of the fixture folder `source` (a `warehouse.duckdb` and an `objects` folder). */
export async function startFixtureServer(source: string): Promise<{ path: string; close(): Promise<void> }> {
  const opened = new Map<number, Opened>();
  let nextHandle = 1;
  const socketDir = mkdtempSync(join(tmpdir(), 'nba-backfill-fixture-'));
  const path = join(socketDir, 'fixture.sock');

  // Copying and opening a copy takes a good part of a second: the next copy is prepared while a test runs.
  const prepare = async (): Promise<Opened> => {
    const dir = mkdtempSync(join(tmpdir(), 'nba-backfill-test-'));
    cpSync(source, dir, { recursive: true });
    return { dir, warehouse: await DuckDbWarehouse.open(join(dir, 'warehouse.duckdb')) };
  };
  let spare = prepare();
  // Reads of the fixture as built (a test's expectations), answered once from a read-only open of it.
  const pristine = DuckDbWarehouse.open(join(source, 'warehouse.duckdb'), { readOnly: true });
  const remembered = new Map<string, Promise<unknown>>();

  const release = async (handle: number) => {
    const copy = opened.get(handle);
    if (!copy) return;
    opened.delete(handle);
    await copy.warehouse.close();
    if (copy.dir) rmSync(copy.dir, { recursive: true, force: true });
  };

  async function answer(request: FixtureRequest, mine: Set<number>): Promise<unknown> {
    if (request.op === 'open') {
      const next = spare;
      spare = prepare();
      const handle = nextHandle++;
      const copy = await next;
      opened.set(handle, copy);
      mine.add(handle);
      return { handle, dir: copy.dir };
    }
    if (request.op === 'memory') {
      const handle = nextHandle++;
      opened.set(handle, { dir: null, warehouse: await DuckDbWarehouse.open(':memory:') });
      mine.add(handle);
      return { handle };
    }
    if (request.op === 'pristine') {
      if (!remembered.has(request.sql))
        remembered.set(
          request.sql,
          pristine.then((w) => w.query(request.sql)),
        );
      return remembered.get(request.sql);
    }
    const target = opened.get(request.handle);
    if (!target) throw new Error(`fixture server: no open fixture ${request.handle}`);
    if (request.op === 'close') {
      mine.delete(request.handle);
      return release(request.handle);
    }
    if (!METHODS.has(request.method)) throw new Error(`fixture server: no warehouse method ${request.method}`);
    const method = target.warehouse[request.method as keyof Warehouse] as (...a: unknown[]) => Promise<unknown>;
    return method.apply(target.warehouse, request.args);
  }

  const server: Server = createServer((socket) => {
    // The copies a connection opened go when it closes: a test file's worker may end without a word.
    const mine = new Set<number>();
    socket.on('close', () => {
      for (const handle of mine) void release(handle);
    });
    onLines(socket, (line) => {
      const request = JSON.parse(line) as FixtureRequest;
      answer(request, mine).then(
        (value) =>
          socket.writable &&
          socket.write(`${JSON.stringify({ id: request.id, ok: true, value } satisfies FixtureReply)}\n`),
        (err: Error) =>
          socket.writable &&
          socket.write(
            `${JSON.stringify({ id: request.id, ok: false, error: { name: err.name, message: err.message } } satisfies FixtureReply)}\n`,
          ),
      );
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      opened.set(0, await spare);
      await (await pristine).close();
      for (const handle of [...opened.keys()]) await release(handle);
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
