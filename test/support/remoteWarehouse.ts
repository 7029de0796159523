// The warehouse of a fixture copy that the fixture server holds (see fixtureServer.ts): the real DuckDB
// adapter, answering over a Unix socket.

import { connect, type Socket } from 'node:net';
import { ForwardingWarehouse } from '../../core/adapters/local/ipcWarehouse.js';
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

export class RemoteWarehouse extends ForwardingWarehouse {
  readonly description = 'duckdb (a fixture copy the mutation run serves)';

  constructor(
    private readonly client: FixtureClient,
    private readonly handle: number,
  ) {
    super();
  }

  protected call<T>(method: string, args: unknown[]): Promise<T> {
    return this.client.request<T>({ op: 'call', handle: this.handle, method, args });
  }

  /** Ends the connection: the server then closes and removes the copy, and a test does not wait for it. */
  async close(): Promise<void> {
    this.client.end();
  }
}
