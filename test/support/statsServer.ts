// A loopback HTTP server speaking the stats and roster APIs from any StatsSource, with programmable faults for tests.

import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fromNbaQueryDate, isIsoDate } from '../../core/dates.js';
import { BadInputError, messageOf } from '../../core/errors.js';
import { isTeamAbbr } from '../../core/nba/teams.js';
import {
  type NbaSeasonType,
  SEASON_TYPE_PLAY_IN,
  SEASON_TYPE_PLAYOFFS,
  SEASON_TYPE_REGULAR,
} from '../../core/pipeline/seasons.js';
import type { StatsSource } from '../../core/ports/source.js';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query exactly as received, e.g. `/stats/leaguegamelog?Counter=0&...`. */
  readonly path: string;
  /** Arrival time from performance.now(): monotonic and sub-millisecond, for spacing assertions. */
  readonly time: number;
  readonly headers: IncomingHttpHeaders;
}

/**
 * One programmed misbehaviour, applied to the next `times` requests whose path+query contains `match` (every
 * part of it, when it is a list: see `requestOf`). With `status`, that status is sent (body defaults to a JSON
 * error); with only `body`, it is sent as a 200; with only `delayMs`, the real answer is sent late. `delayMs`
 * combines with any of them. A rate limiter that wants a day: `{ status: 429, retryAfter: '86400' }`.
 */
export interface Fault {
  readonly match: string | readonly string[];
  readonly status?: number;
  /** Sent as the Retry-After header, verbatim (delta-seconds or an HTTP date). */
  readonly retryAfter?: string;
  /**
   * The real answer with nothing in it: every result set's rowSet (or a roster's athletes) emptied, sent as a
   * well-formed 200, as a source does when it has lost a date's data.
   */
  readonly emptyResult?: boolean;
  /**
   * The real answer's headers (Content-Length of the whole body) and only its first half, then the connection
   * is closed: a body cut off in transit.
   */
  readonly truncateBody?: boolean;
  readonly delayMs?: number;
  /**
   * No answer at all: the request is held open until the client gives up and closes the connection, which
   * the server then records in `abandoned`. A client that waited for the answer would wait forever.
   */
  readonly hang?: boolean;
  readonly body?: string;
  /** How many matching requests this fault answers. @default 1 */
  readonly times?: number;
}

export interface StatsServerOptions {
  /** @default 0 (any free port) */
  readonly port?: number;
}

export interface StatsServer {
  /** Base URL to hand to HttpStatsSource, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** Every request received, in arrival order, faulted or not. */
  readonly requests: readonly RecordedRequest[];
  /** Paths of the requests whose client closed the connection before any answer (see `Fault.hang`). */
  readonly abandoned: readonly string[];
  /** Appends faults to the queue; the first unexhausted fault matching a request answers it. */
  injectFaults(faults: readonly Fault[]): void;
  /** Fault uses not yet consumed, so a test can check its faults were actually hit. */
  pendingFaults(): number;
  close(): Promise<void>;
}

/** The raw files of Phase 1, by the request that fetches each for one date. */
export type RawFileRequest = 'playerGameLogs' | 'teamGameLogs' | 'teamRosters';

/** A `match` for the request of one raw file of one date (every roster request of the date, for teamRosters). */
export function requestOf(file: RawFileRequest, date: string): readonly string[] {
  const [y, m, d] = date.split('-');
  const nba = `${m}/${d}/${y}`;
  if (file === 'teamRosters') return ['/espn/teams/', `date=${date}`];
  const who = file === 'playerGameLogs' ? 'P' : 'T';
  return ['/stats/leaguegamelog?', `DateFrom=${nba}&`, `DateTo=${nba}&`, `PlayerOrTeam=${who}&`];
}

function matches(path: string, match: Fault['match']): boolean {
  return typeof match === 'string' ? path.includes(match) : match.every((part) => path.includes(part));
}

/** The answer with its rows gone but its shape kept, so only a check of coverage can tell. */
function emptied(payload: unknown): unknown {
  const copy = structuredClone(payload) as { resultSets?: { rowSet: unknown[] }[]; athletes?: unknown[] };
  for (const set of copy.resultSets ?? []) set.rowSet = [];
  if (Array.isArray(copy.athletes)) copy.athletes = [];
  return copy;
}

const SEASON_TYPES: readonly NbaSeasonType[] = [SEASON_TYPE_REGULAR, SEASON_TYPE_PLAY_IN, SEASON_TYPE_PLAYOFFS];

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, payload: unknown, extraHeaders: Record<string, string> = {}) {
  if (res.destroyed) return;
  res.writeHead(status, { 'Content-Type': 'application/json', ...extraHeaders });
  res.end(JSON.stringify(payload));
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (value === null || value === '') throw new HttpError(400, `missing query parameter ${name}`);
  return value;
}

function nbaDate(params: URLSearchParams, name: string): string {
  const raw = required(params, name);
  const iso = fromNbaQueryDate(raw);
  if (!iso) throw new HttpError(400, `${name} "${raw}" is not an MM/DD/YYYY date`);
  return iso;
}

async function answer(source: StatsSource, url: URL): Promise<unknown> {
  const p = url.searchParams;
  if (url.pathname === '/stats/leaguegamelog') {
    // The real API answers without LeagueID=00 with an error, so a client that omits it should hear about it here.
    if (required(p, 'LeagueID') !== '00') throw new HttpError(400, `LeagueID must be 00, got "${p.get('LeagueID')}"`);
    const seasonType = required(p, 'SeasonType');
    if (!SEASON_TYPES.includes(seasonType as NbaSeasonType)) {
      throw new HttpError(400, `SeasonType "${seasonType}" is not one of ${SEASON_TYPES.join(', ')}`);
    }
    const playerOrTeam = required(p, 'PlayerOrTeam');
    if (playerOrTeam !== 'P' && playerOrTeam !== 'T') {
      throw new HttpError(400, `PlayerOrTeam must be P or T, got "${playerOrTeam}"`);
    }
    return source.leagueGameLog({
      season: required(p, 'Season'),
      seasonType: seasonType as NbaSeasonType,
      playerOrTeam,
      dateFrom: nbaDate(p, 'DateFrom'),
      dateTo: nbaDate(p, 'DateTo'),
    });
  }
  const roster = /^\/espn\/teams\/([^/]+)\/roster$/.exec(url.pathname);
  if (roster) {
    const teamAbbr = decodeURIComponent(roster[1] as string);
    // Checked here because a source may signal an unknown team with a plain Error, which would read as a 500.
    if (!isTeamAbbr(teamAbbr)) throw new HttpError(400, `unknown team "${teamAbbr}"`);
    const asOf = required(p, 'date');
    if (!isIsoDate(asOf)) throw new HttpError(400, `date "${asOf}" is not a YYYY-MM-DD date`);
    return source.teamRoster({ season: required(p, 'season'), teamAbbr, asOf });
  }
  throw new HttpError(404, `no such resource ${url.pathname}`);
}

export async function startStatsServer(source: StatsSource, options: StatsServerOptions = {}): Promise<StatsServer> {
  const requests: RecordedRequest[] = [];
  const abandoned: string[] = [];
  const faults: { fault: Fault; left: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const takeFault = (path: string): Fault | undefined => {
    const i = faults.findIndex((f) => f.left > 0 && matches(path, f.fault.match));
    if (i < 0) return undefined;
    const entry = faults[i] as { fault: Fault; left: number };
    entry.left -= 1;
    if (entry.left === 0) faults.splice(i, 1);
    return entry.fault;
  };

  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ method: req.method ?? '', path, time: performance.now(), headers: req.headers });
    const fault = takeFault(path);
    void (async () => {
      if (fault?.hang) {
        await new Promise((resolve) => res.once('close', resolve));
        abandoned.push(path);
        return;
      }
      if (fault?.delayMs) await delay(fault.delayMs);
      if (res.destroyed) return;
      if (fault && (fault.status !== undefined || fault.body !== undefined)) {
        const status = fault.status ?? 200;
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['Retry-After'] = fault.retryAfter;
        if (fault.body !== undefined) {
          res.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
          res.end(fault.body);
        } else {
          sendJson(res, status, { error: `injected fault: HTTP ${status}` }, headers);
        }
        return;
      }
      if (req.method !== 'GET') {
        sendJson(res, 405, { error: `method ${req.method} not allowed` }, { Allow: 'GET' });
        return;
      }
      try {
        const payload = await answer(source, new URL(path, 'http://localhost'));
        if (fault?.truncateBody) {
          const whole = Buffer.from(JSON.stringify(payload), 'utf8');
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(whole.length) });
          // Flushed before the close, so the client has the headers and half a body, then a dead socket.
          res.write(whole.subarray(0, Math.floor(whole.length / 2)), () => res.destroy());
          return;
        }
        sendJson(res, 200, fault?.emptyResult ? emptied(payload) : payload);
      } catch (err) {
        const status = err instanceof HttpError ? err.status : err instanceof BadInputError ? 400 : 500;
        sendJson(res, status, { error: messageOf(err) });
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    abandoned,
    injectFaults(more) {
      for (const fault of more) faults.push({ fault, left: fault.times ?? 1 });
    },
    pendingFaults: () => faults.reduce((n, f) => n + f.left, 0),
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Delayed answers and keep-alive sockets would otherwise hold close() open until they finish.
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
