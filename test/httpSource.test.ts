// HttpStatsSource against a real loopback server backed by the bundled data: same answers, retries, limits, errors.

import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { HttpStatsSource, type HttpStatsSourceOptions } from '../core/adapters/source/http.js';
import { BadInputError, ProcessingError } from '../core/errors.js';
import type { LeagueGameLogQuery, RosterQuery } from '../core/ports/source.js';
import { type Fault, requestOf, type StatsServer, startStatsServer } from './support/statsServer.js';

const OPENING_NIGHT: LeagueGameLogQuery = {
  season: '2021-22',
  seasonType: 'Regular Season',
  playerOrTeam: 'P',
  dateFrom: '2021-10-19',
  dateTo: '2021-10-19',
};

let bundled: BundledStatsSource;
let server: StatsServer;
let sleeps: number[];

beforeAll(() => {
  bundled = new BundledStatsSource();
});

beforeEach(async () => {
  server = await startStatsServer(bundled);
  sleeps = [];
});

afterEach(async () => {
  await server.close();
});

/** A client that never really waits: delays are recorded, jitter is pinned to the full ceiling. */
function client(options: Partial<HttpStatsSourceOptions> = {}): HttpStatsSource {
  return new HttpStatsSource({
    baseUrl: server.url,
    minIntervalMs: 0,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 1,
    ...options,
  });
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

describe('HttpStatsSource answers as the bundled source does', () => {
  it('serves the 2021-10-19 player log with the same rows, asking with NBA.com parameters and headers', async () => {
    const got = await client().leagueGameLog(OPENING_NIGHT);
    const want = await bundled.leagueGameLog(OPENING_NIGHT);
    expect(got).toEqual(want);
    const rows = got.resultSets[0]?.rowSet ?? [];
    // Opening night 2021-22 was two games, BKN at MIL and GSW at LAL.
    expect(rows.length).toBe(47);
    const headers = got.resultSets[0]?.headers ?? [];
    const at = (h: string) => headers.indexOf(h);
    expect(new Set(rows.map((r) => String(r[at('GAME_DATE')]).slice(0, 10)))).toEqual(new Set(['2021-10-19']));
    expect(new Set(rows.map((r) => r[at('TEAM_ABBREVIATION')]))).toEqual(new Set(['BKN', 'MIL', 'GSW', 'LAL']));

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0];
    expect(req?.method).toBe('GET');
    expect(req?.path).toBe(
      '/stats/leaguegamelog?Counter=0&DateFrom=10/19/2021&DateTo=10/19/2021&Direction=ASC&LeagueID=00' +
        '&PlayerOrTeam=P&Season=2021-22&SeasonType=Regular%20Season&Sorter=DATE',
    );
    expect(req?.headers.accept).toBe('application/json');
    expect(req?.headers['user-agent']).toContain('nba-backfill');
    expect(req?.headers.referer).toBe('https://www.nba.com/');
    expect(req?.headers['x-nba-stats-origin']).toBe('stats');
    expect(req?.headers['x-nba-stats-token']).toBe('true');
  });

  it('serves the team log for a date range', async () => {
    const q: LeagueGameLogQuery = { ...OPENING_NIGHT, playerOrTeam: 'T', dateTo: '2021-10-21' };
    const got = await client().leagueGameLog(q);
    expect(got).toEqual(await bundled.leagueGameLog(q));
    expect(got.resultSets[0]?.rowSet.length).toBeGreaterThan(4);
  });

  it('serves rosters: BOS as of 2021-10-19 (before its first game, so empty), then as of 2021-10-25', async () => {
    const http = client();
    const before: RosterQuery = { season: '2021-22', teamAbbr: 'BOS', asOf: '2021-10-19' };
    const got = await http.teamRoster(before);
    expect(got).toEqual(await bundled.teamRoster(before));
    expect(got.team).toEqual({ id: 1610612738, abbreviation: 'BOS' });
    expect(got.athletes).toEqual([]);

    const later: RosterQuery = { ...before, asOf: '2021-10-25' };
    const gotLater = await http.teamRoster(later);
    expect(gotLater).toEqual(await bundled.teamRoster(later));
    expect(gotLater.athletes.length).toBe(14);
    expect(server.requests.map((r) => r.path)).toEqual([
      '/espn/teams/BOS/roster?season=2021-22&date=2021-10-19',
      '/espn/teams/BOS/roster?season=2021-22&date=2021-10-25',
    ]);
  });

  it('names its base URL in its description', () => {
    expect(client({ baseUrl: `${server.url}/` }).description).toBe(`http:${server.url}`);
  });
});

describe('HttpStatsSource retries', () => {
  it('retries 503 twice with exponential backoff, then succeeds', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 503, times: 2 }]);
    const got = await client({ backoffBaseMs: 500 }).leagueGameLog(OPENING_NIGHT);
    expect(got).toEqual(await bundled.leagueGameLog(OPENING_NIGHT));
    expect(server.requests).toHaveLength(3);
    expect(sleeps).toEqual([500, 1000]);
  });

  it('draws backoff with full jitter below the ceiling, and caps the ceiling at backoffMaxMs', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 500, times: 4 }]);
    await client({ backoffBaseMs: 500, backoffMaxMs: 1500, random: () => 0.5 }).leagueGameLog(OPENING_NIGHT);
    expect(sleeps).toEqual([250, 500, 750, 750]);
  });

  it('honours Retry-After in seconds on 429 instead of its own backoff', async () => {
    server.injectFaults([{ match: 'roster', status: 429, retryAfter: '1', times: 1 }]);
    const q: RosterQuery = { season: '2021-22', teamAbbr: 'LAL', asOf: '2021-10-19' };
    const got = await client({ backoffBaseMs: 7 }).teamRoster(q);
    expect(got).toEqual(await bundled.teamRoster(q));
    expect(server.requests).toHaveLength(2);
    expect(sleeps).toEqual([1000]);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const now = Date.UTC(2024, 0, 15, 12, 0, 0);
    server.injectFaults([{ match: 'leaguegamelog', status: 429, retryAfter: new Date(now + 3000).toUTCString() }]);
    await client({ backoffBaseMs: 7, now: () => now }).leagueGameLog(OPENING_NIGHT);
    expect(sleeps).toEqual([3000]);
  });

  it('does not retry a 404, and says which URL, status, attempts and body', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 404, body: 'no such endpoint here' }]);
    const err = await caught(client().leagueGameLog(OPENING_NIGHT));
    expect(err).toBeInstanceOf(ProcessingError);
    const e = err as ProcessingError;
    expect(e.transient).toBe(false);
    expect(e.message).toContain(`${server.url}/stats/leaguegamelog?`);
    expect(e.message).toContain('HTTP 404');
    expect(e.message).toContain('after 1 attempt');
    expect(e.message).toContain('no such endpoint here');
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('does not retry the server’s own 400 for a bad parameter', async () => {
    const err = await caught(client().leagueGameLog({ ...OPENING_NIGHT, season: '1999-00' }));
    expect(err).toBeInstanceOf(ProcessingError);
    expect((err as ProcessingError).transient).toBe(false);
    expect((err as Error).message).toMatch(/HTTP 400.*unknown season/);
    expect(server.requests).toHaveLength(1);
  });

  it('retries a request that takes longer than the timeout', async () => {
    // The first answer never comes: only a client that gives up at its timeout gets to the retry.
    server.injectFaults([{ match: 'leaguegamelog', hang: true, times: 1 }]);
    const got = await client({ timeoutMs: 100 }).leagueGameLog(OPENING_NIGHT);
    expect(got).toEqual(await bundled.leagueGameLog(OPENING_NIGHT));
    expect(server.requests).toHaveLength(2);
    expect(sleeps).toEqual([500]);
    // The slow request was abandoned (its connection closed by the client), not waited out.
    await vi.waitUntil(() => server.abandoned.length > 0, { timeout: 30_000 });
    expect(server.abandoned).toEqual([server.requests[0]?.path]);
  });

  it('throws a transient ProcessingError when retries run out', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 503, times: 10 }]);
    const err = await caught(client({ maxRetries: 2 }).leagueGameLog(OPENING_NIGHT));
    expect(err).toBeInstanceOf(ProcessingError);
    const e = err as ProcessingError;
    expect(e.transient).toBe(true);
    expect(e.message).toContain(`${server.url}/stats/leaguegamelog?`);
    expect(e.message).toContain('after 3 attempts');
    expect(e.message).toContain('HTTP 503');
    expect(server.requests).toHaveLength(3);
    expect(sleeps).toEqual([500, 1000]);
  });

  it('treats a refused connection as transient, retrying it', async () => {
    const gone = await startStatsServer(bundled);
    await gone.close();
    const err = await caught(client({ baseUrl: gone.url, maxRetries: 1 }).leagueGameLog(OPENING_NIGHT));
    expect(err).toBeInstanceOf(ProcessingError);
    expect((err as ProcessingError).transient).toBe(true);
    expect((err as Error).message).toMatch(/after 2 attempts.*network error/);
    expect(sleeps).toEqual([500]);
  });
});

describe('HttpStatsSource rejects bad responses', () => {
  it('raises BadInputError, without retrying, for a body that is not JSON', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 200, body: 'not json' }]);
    const err = await caught(client().leagueGameLog(OPENING_NIGHT));
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain(`${server.url}/stats/leaguegamelog?`);
    expect((err as Error).message).toContain('not JSON');
    expect(server.requests).toHaveLength(1);
  });

  it('raises BadInputError naming the field for JSON of the wrong shape', async () => {
    const body = JSON.stringify({ resource: 'leaguegamelog', parameters: {}, resultSets: [{ name: 'x', headers: 3 }] });
    server.injectFaults([{ match: 'leaguegamelog', body }]);
    const err = await caught(client().leagueGameLog(OPENING_NIGHT));
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain('resultSets.0.headers');
    expect(server.requests).toHaveLength(1);
  });

  it('raises BadInputError for a roster whose rows do not match the port', async () => {
    const body = JSON.stringify({
      team: { id: 1, abbreviation: 'BOS' },
      season: '2021-22',
      asOf: '2021-10-25',
      athletes: [{ id: 1, fullName: 'A', gamesWithTeam: 1, lastAppearance: '10/24/2021' }],
    });
    server.injectFaults([{ match: 'roster', body }]);
    const err = await caught(client().teamRoster({ season: '2021-22', teamAbbr: 'BOS', asOf: '2021-10-25' }));
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain('athletes.0.lastAppearance');
  });
});

describe('HttpStatsSource rate limit', () => {
  it('queues concurrent callers at minIntervalMs apart (fake clock)', async () => {
    let clock = 0;
    const http = client({
      minIntervalMs: 50,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    });
    await Promise.all(Array.from({ length: 5 }, () => http.leagueGameLog(OPENING_NIGHT)));
    expect(sleeps).toEqual([50, 50, 50, 50]);
    expect(clock).toBe(200);
    expect(server.requests).toHaveLength(5);
  });
});

describe('the stats test server', () => {
  it('answers an unknown path with a JSON 404 and bad parameters with a 400', async () => {
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: expect.stringContaining('/nope') });

    const bad = await fetch(
      `${server.url}/stats/leaguegamelog?LeagueID=00&Season=2021-22&SeasonType=Regular%20Season&PlayerOrTeam=P` +
        '&DateFrom=2021-10-19&DateTo=10/19/2021',
    );
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: expect.stringContaining('DateFrom') });

    const team = await fetch(`${server.url}/espn/teams/XYZ/roster?season=2021-22&date=2021-10-19`);
    expect(team.status).toBe(400);
  });

  it('consumes each fault only as many times as asked', async () => {
    server.injectFaults([{ match: 'roster', status: 500, times: 2 }]);
    expect(server.pendingFaults()).toBe(2);
    const url = `${server.url}/espn/teams/BOS/roster?season=2021-22&date=2021-10-25`;
    expect((await fetch(url)).status).toBe(500);
    expect((await fetch(`${server.url}/stats/leaguegamelog`)).status).toBe(400);
    expect((await fetch(url)).status).toBe(500);
    expect((await fetch(url)).status).toBe(200);
    expect(server.pendingFaults()).toBe(0);
  });
});

describe('HttpStatsSource bounds Retry-After by maxRetryAfterMs', () => {
  // A fixed wall clock on a whole second, so an HTTP-date Retry-After is an exact number of milliseconds.
  const NOW = Date.UTC(2024, 0, 15, 12, 0, 0);
  const at = (ms: number) => new Date(NOW + ms).toUTCString();

  const honoured: { name: string; status: number; retryAfter: string; cap: number; waited: number }[] = [
    { name: '429, seconds under the cap', status: 429, retryAfter: '30', cap: 60_000, waited: 30_000 },
    { name: '429, seconds equal to the cap', status: 429, retryAfter: '5', cap: 5000, waited: 5000 },
    { name: '429, an HTTP date equal to the cap', status: 429, retryAfter: at(5000), cap: 5000, waited: 5000 },
    { name: '429, zero', status: 429, retryAfter: '0', cap: 0, waited: 0 },
    { name: '503, seconds under the cap', status: 503, retryAfter: '2', cap: 60_000, waited: 2000 },
    { name: '503, an HTTP date under the cap', status: 503, retryAfter: at(3000), cap: 60_000, waited: 3000 },
  ];

  it.each(honoured)('waits out $name, then succeeds', async ({ status, retryAfter, cap, waited }) => {
    server.injectFaults([{ match: 'leaguegamelog', status, retryAfter }]);
    const got = await client({ maxRetryAfterMs: cap, backoffBaseMs: 7, now: () => NOW }).leagueGameLog(OPENING_NIGHT);
    expect(got).toEqual(await bundled.leagueGameLog(OPENING_NIGHT));
    expect(sleeps).toEqual([waited]);
    expect(server.requests).toHaveLength(2);
  });

  const refused: { name: string; status: number; retryAfter: string; cap: number; says: RegExp }[] = [
    {
      name: '429 asking for a day, default cap',
      status: 429,
      retryAfter: '86400',
      cap: 60_000,
      says: /HTTP 429 Too Many Requests with Retry-After 86400 \(86400 s\), longer than http\.maxRetryAfterMs 60000 ms/,
    },
    {
      name: '429 one millisecond over the cap (seconds)',
      status: 429,
      retryAfter: '5',
      cap: 4999,
      says: /Retry-After 5 \(5 s\), longer than http\.maxRetryAfterMs 4999 ms/,
    },
    {
      name: '429 one millisecond over the cap (HTTP date)',
      status: 429,
      retryAfter: at(5000),
      cap: 4999,
      says: new RegExp(`Retry-After ${at(5000)} \\(5 s\\), longer than http\\.maxRetryAfterMs 4999 ms`),
    },
    {
      name: '503 asking for an hour',
      status: 503,
      retryAfter: '3600',
      cap: 60_000,
      says: /HTTP 503 Service Unavailable with Retry-After 3600 \(3600 s\)/,
    },
  ];

  it.each(refused)('fails at once on $name, naming URL, status, value and setting', async (c) => {
    server.injectFaults([{ match: 'leaguegamelog', status: c.status, retryAfter: c.retryAfter, times: 5 }]);
    const waits: string[] = [];
    const http = client({ maxRetryAfterMs: c.cap, now: () => NOW, onWait: (w) => waits.push(w.message) });
    const err = await caught(http.leagueGameLog(OPENING_NIGHT));
    expect(err).toBeInstanceOf(ProcessingError);
    const e = err as ProcessingError;
    expect(e.transient).toBe(false);
    expect(e.message).toMatch(c.says);
    expect(e.message).toContain(`GET ${server.url}/stats/leaguegamelog?`);
    expect(e.message).toContain('--http-max-retry-after-ms');
    expect(e.message).toContain('after 1 attempt');
    // Not retried, not slept: one request, no wait of any kind.
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(waits).toEqual([]);
  });

  it('fails at once even when the huge Retry-After comes on the last attempt', async () => {
    server.injectFaults([
      { match: 'leaguegamelog', status: 503 },
      { match: 'leaguegamelog', status: 429, retryAfter: '86400' },
    ]);
    const err = await caught(client({ maxRetries: 1 }).leagueGameLog(OPENING_NIGHT));
    expect((err as Error).message).toMatch(/Retry-After 86400.*after 2 attempts/);
    expect(sleeps).toEqual([500]);
  });
});

describe('HttpStatsSource reports every wait longer than a second', () => {
  const cases: { name: string; fault: Fault; options: Partial<HttpStatsSourceOptions>; want: string[] }[] = [
    {
      name: 'a 429 Retry-After of 30 s',
      fault: { match: 'leaguegamelog', status: 429, retryAfter: '30' },
      options: {},
      want: ['waiting 30 s: HTTP 429 Too Many Requests Retry-After 30; then attempt 2 of 5 for GET '],
    },
    {
      name: 'backoff of 2 s after a 500, not the first of 1 s',
      fault: { match: 'leaguegamelog', status: 500, times: 2 },
      options: { backoffBaseMs: 1000 },
      want: ['waiting 2 s: HTTP 500 Internal Server Error; then attempt 3 of 5 for GET '],
    },
    {
      name: 'a rate limit of 1.5 s between requests',
      fault: { match: 'no-such-request' },
      options: { minIntervalMs: 1500, now: () => 0 },
      want: ['waiting 1.5 s: rate limit (http.minIntervalMs 1500) for GET '],
    },
    {
      name: 'nothing for a Retry-After of exactly 1 s',
      fault: { match: 'leaguegamelog', status: 429, retryAfter: '1' },
      options: {},
      want: [],
    },
  ];

  it.each(cases)('$name', async ({ fault, options, want }) => {
    server.injectFaults([fault]);
    const waits: { message: string; url: string }[] = [];
    const http = client({ onWait: (w) => waits.push(w), ...options });
    await http.leagueGameLog(OPENING_NIGHT);
    // The rate-limit case needs a second request to wait for.
    if (options.minIntervalMs) await http.leagueGameLog(OPENING_NIGHT);
    expect(waits.map((w) => w.message.slice(0, w.message.indexOf(' for GET ') + ' for GET '.length))).toEqual(want);
    for (const w of waits) expect(w.url).toMatch(new RegExp(`^${server.url}/stats/leaguegamelog\\?Counter=0&`));
  });
});

describe('HttpStatsSource treats a truncated body as transient', () => {
  it('retries a body cut off mid-stream and says what happened when it keeps happening', async () => {
    server.injectFaults([{ match: 'leaguegamelog', truncateBody: true }]);
    const got = await client().leagueGameLog(OPENING_NIGHT);
    expect(got).toEqual(await bundled.leagueGameLog(OPENING_NIGHT));
    expect(server.requests).toHaveLength(2);
    expect(sleeps).toEqual([500]);

    server.injectFaults([{ match: 'roster', truncateBody: true, times: 2 }]);
    const err = await caught(
      client({ maxRetries: 1 }).teamRoster({ season: '2021-22', teamAbbr: 'BOS', asOf: '2021-10-25' }),
    );
    expect(err).toBeInstanceOf(ProcessingError);
    expect((err as ProcessingError).transient).toBe(true);
    expect((err as Error).message).toMatch(
      /after 2 attempts .*last: HTTP 200 OK body truncated: the connection closed before the whole body arrived/,
    );
  });
});

describe('HttpStatsSource keeps credentials out of its errors', () => {
  it('sends a base URL query (a proxy key) with every request but shows it masked', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 404, body: 'not here' }]);
    const http = client({ baseUrl: `${server.url}/?api_key=SECRETKEY123` });
    expect(http.description).toBe(`http:${server.url}?api_key=***`);
    const err = await caught(http.leagueGameLog(OPENING_NIGHT));
    expect(server.requests[0]?.path).toMatch(/^\/stats\/leaguegamelog\?api_key=SECRETKEY123&Counter=0&/);
    expect((err as Error).message).toContain(`GET ${server.url}/stats/leaguegamelog?api_key=***&Counter=0&`);
    expect((err as Error).message).not.toContain('SECRETKEY123');
  });

  it('masks a secret the server echoes in its error body', async () => {
    server.injectFaults([{ match: 'leaguegamelog', status: 403, body: 'denied for https://x.test/?token=TOPSECRET' }]);
    const err = await caught(client().leagueGameLog(OPENING_NIGHT));
    expect((err as Error).message).toContain('denied for https://x.test/?token=***');
    expect((err as Error).message).not.toContain('TOPSECRET');
  });
});

describe('the stats test server faults', () => {
  it('answers an empty result for one date and file only, keeping the shape', async () => {
    server.injectFaults([{ match: requestOf('playerGameLogs', '2021-10-19'), emptyResult: true, times: 5 }]);
    const team = await client().leagueGameLog({ ...OPENING_NIGHT, playerOrTeam: 'T' });
    expect(team.resultSets[0]?.rowSet.length).toBe(4);
    const other = await client().leagueGameLog({ ...OPENING_NIGHT, dateFrom: '2021-10-20', dateTo: '2021-10-20' });
    expect(other.resultSets[0]?.rowSet.length).toBeGreaterThan(0);
    const players = await client().leagueGameLog(OPENING_NIGHT);
    const want = await bundled.leagueGameLog(OPENING_NIGHT);
    expect(players.resultSets[0]?.headers).toEqual(want.resultSets[0]?.headers);
    expect(players.resultSets[0]?.rowSet).toEqual([]);
    expect(server.pendingFaults()).toBe(4);
  });

  it('empties a date’s rosters', async () => {
    server.injectFaults([{ match: requestOf('teamRosters', '2021-10-25'), emptyResult: true }]);
    const got = await client().teamRoster({ season: '2021-22', teamAbbr: 'BOS', asOf: '2021-10-25' });
    expect(got.team.abbreviation).toBe('BOS');
    expect(got.athletes).toEqual([]);
  });

  it('cuts a body off after its headers promised more', async () => {
    server.injectFaults([{ match: 'roster', truncateBody: true }]);
    const res = await fetch(`${server.url}/espn/teams/BOS/roster?season=2021-22&date=2021-10-25`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow(/terminated/);
  });
});
