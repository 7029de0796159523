// The line protocol between the fixture server (fixtureServer.ts) and its clients (remoteWarehouse.ts), in a
// module of its own so that a client never imports the server's DuckDB.

import type { Socket } from 'node:net';

/** A request of the line protocol (one JSON object a line, each answered by a line with its id). */
export type FixtureRequest =
  | { readonly id: number; readonly op: 'open' }
  | { readonly id: number; readonly op: 'memory' }
  | {
      readonly id: number;
      readonly op: 'call';
      readonly handle: number;
      readonly method: string;
      readonly args: unknown[];
    }
  | { readonly id: number; readonly op: 'close'; readonly handle: number }
  | { readonly id: number; readonly op: 'pristine'; readonly sql: string };

export type FixtureReply =
  | { readonly id: number; readonly ok: true; readonly value?: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly name: string; readonly message: string } };

/** Splits a socket's bytes into lines and hands each to `onLine`. */
export function onLines(socket: Socket, onLine: (line: string) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.length > 0) onLine(line);
    }
  });
}
