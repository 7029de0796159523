// The warehouse of a fixture copy that the fixture server holds (see fixtureServer.ts): the real DuckDB
// adapter, answering over a Unix socket.

import { connect, type Socket } from 'node:net';
import type { Warehouse, WarehouseChange } from '../../core/ports/warehouse.js';
import type { Row, SqlValue, TableSchema } from '../../core/schema/table.js';
import { DUCKDB_DIALECT } from '../../core/sql/dialect.js';
import { type FixtureReply, type FixtureRequest, onLines } from './fixtureProtocol.js';

type Waiter = { resolve: (v: unknown) => void; reject: (e: Error) => void };

// Distributive, so that each request kind keeps its own fields.
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

/** One connection to the fixture server. */
export class FixtureClient {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();

  private constructor(private readonly socket: Socket) {
    onLines(socket, (line) => {
      const reply = JSON.parse(line) as FixtureReply;
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.waiting.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else {
        const err = new Error(reply.error.message);
        err.name = reply.error.name;
        waiter.reject(err);
      }
    });
    socket.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('fixture server: connection closed'));
      this.waiting.clear();
    });
  }

  static connect(path: string): Promise<FixtureClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new FixtureClient(socket)));
      socket.once('error', reject);
    });
  }

  request<T>(request: Unnumbered<FixtureRequest>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  end(): void {
    this.socket.end();
  }
}

export class RemoteWarehouse implements Warehouse {
  readonly description = 'duckdb (a fixture copy the mutation run serves)';
  readonly dialect = DUCKDB_DIALECT;

  constructor(
    private readonly client: FixtureClient,
    private readonly handle: number,
  ) {}

  private call<T>(method: string, args: unknown[]): Promise<T> {
    return this.client.request<T>({ op: 'call', handle: this.handle, method, args });
  }

  ensureTables(tables: readonly TableSchema[]): Promise<void> {
    return this.call('ensureTables', [tables]);
  }

  query(sql: string, params: Readonly<Record<string, SqlValue>> = {}): Promise<Row[]> {
    return this.call('query', [sql, params]);
  }

  commit(change: WarehouseChange): Promise<void> {
    return this.call('commit', [change]);
  }

  append(table: TableSchema, rows: readonly Row[]): Promise<void> {
    return this.call('append', [table, rows]);
  }

  checkpoint(): Promise<void> {
    return this.call('checkpoint', []);
  }

  /** Ends the connection: the server then closes and removes the copy, and a test does not wait for it. */
  async close(): Promise<void> {
    this.client.end();
  }
}
