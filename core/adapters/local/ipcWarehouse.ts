// The warehouse over a Node IPC channel: the local job runtime's pods use the parent's DuckDB, since a
// DuckDB file has one writer process. The parent serialises their calls like any other.

import type { ChildProcess } from 'node:child_process';
import type { CommitOutcome, Warehouse, WarehouseChange } from '../../ports/warehouse.js';
import type { Row, SqlValue, TableSchema } from '../../schema/table.js';
import { DUCKDB_DIALECT } from '../../sql/dialect.js';

type Method = 'ensureTables' | 'query' | 'commit' | 'append' | 'checkpoint';

interface CallMessage {
  readonly type: 'warehouse-call';
  readonly id: number;
  readonly method: Method;
  readonly args: unknown[];
}

interface ReplyMessage {
  readonly type: 'warehouse-reply';
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: { readonly name: string; readonly message: string };
}

/** What a pod holds: a process with an IPC channel to its runtime. */
export interface IpcChannel {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

/**
 * A warehouse whose every call is answered elsewhere (by the local runtime, or in tests by a fixture server):
 * subclasses say how a call travels.
 */
export abstract class ForwardingWarehouse implements Warehouse {
  abstract readonly description: string;
  // What answers is the embedded warehouse, which is DuckDB.
  readonly dialect = DUCKDB_DIALECT;

  protected abstract call<T>(method: Method, args: unknown[]): Promise<T>;

  ensureTables(tables: readonly TableSchema[]): Promise<void> {
    return this.call('ensureTables', [tables]);
  }

  query(sql: string, params: Readonly<Record<string, SqlValue>> = {}): Promise<Row[]> {
    return this.call('query', [sql, params]);
  }

  commit(change: WarehouseChange): Promise<CommitOutcome | undefined> {
    return this.call('commit', [change]);
  }

  append(table: TableSchema, rows: readonly Row[]): Promise<void> {
    return this.call('append', [table, rows]);
  }

  /** The answering warehouse checkpoints (the calls' commits are its own). */
  checkpoint(): Promise<void> {
    return this.call('checkpoint', []);
  }

  abstract close(): Promise<void>;
}

export class IpcWarehouse extends ForwardingWarehouse {
  readonly description = 'ipc:parent (the local job runtime serves its warehouse)';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly channel: IpcChannel) {
    super();
    channel.on('message', (m) => {
      const reply = m as ReplyMessage;
      if (reply?.type !== 'warehouse-reply') return;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else {
        const err = new Error(reply.error?.message ?? 'warehouse call failed');
        err.name = reply.error?.name ?? 'Error';
        waiter.reject(err);
      }
    });
  }

  protected call<T>(method: Method, args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const msg: CallMessage = { type: 'warehouse-call', id, method, args };
      if (!this.channel.send(msg)) {
        // send() returning false only means back-pressure; the message is still queued.
      }
    });
  }

  async close(): Promise<void> {
    // The parent owns the warehouse; a pod only stops asking.
  }
}

/** In the runtime: answers a pod's warehouse calls from `warehouse`. */
export function serveWarehouse(child: ChildProcess, warehouse: Warehouse): void {
  child.on('message', (m) => {
    const call = m as CallMessage;
    if (call?.type !== 'warehouse-call') return;
    const run = (warehouse[call.method] as (...a: unknown[]) => Promise<unknown>).bind(warehouse);
    run(...call.args).then(
      (value) => reply({ type: 'warehouse-reply', id: call.id, ok: true, value }),
      (err: Error) =>
        reply({ type: 'warehouse-reply', id: call.id, ok: false, error: { name: err.name, message: err.message } }),
    );
  });
  const reply = (msg: ReplyMessage) => {
    // A pod stopped (SIGTERM, SIGKILL) between its call and the reply closes the channel under the send: with a
    // callback the EPIPE comes to it rather than as an unhandled 'error' event that would end this process.
    if (child.connected) child.send(msg, (err) => err && undefined);
  };
}
