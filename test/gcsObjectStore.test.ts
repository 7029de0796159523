// The GCS object store: @google-cloud/storage's real requests against a local JSON API server
// (STORAGE_EMULATOR_HOST): put, get, a missing object, paginated listing, retries on 503, none on 4xx.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GcsObjectStore, type GcsObjectStoreOptions } from '../core/adapters/gcs/objectStore.js';
import { openAdapters } from '../core/adapters/index.js';
import { loadConfig, parseSetting } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError, ProcessingError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { rawDatePrefix, rawObjectKey } from '../core/ports/objectStore.js';
import { crc32cBase64, type GcsServer, startGcsServer } from './support/gcsServer.js';

const BUCKET = 'nba-raw-test';

/** The store of a `gs://` setting, parsed as the configuration parses it. */
function gcsStore(url: string, options: GcsObjectStoreOptions = {}): GcsObjectStore {
  const target = parseSetting('objects', url);
  if (target.kind !== 'gs') throw new Error(`${url} is not a gs:// setting`);
  return new GcsObjectStore(target.bucket, target.prefix, options);
}

describe('GcsObjectStore against the GCS JSON API', () => {
  let server: GcsServer;
  const delays: number[] = [];
  const previousHost = process.env.STORAGE_EMULATOR_HOST;

  const store = (url = `gs://${BUCKET}/backfill`, options: GcsObjectStoreOptions = {}) =>
    gcsStore(url, {
      delay: async (ms) => {
        delays.push(ms);
      },
      random: () => 0,
      ...options,
    });

  beforeAll(async () => {
    server = await startGcsServer({ buckets: [BUCKET], maxPageSize: 2 });
    process.env.STORAGE_EMULATOR_HOST = server.url;
  });
  afterEach(() => {
    expect(server.problems).toEqual([]);
    expect(server.pendingFaults()).toBe(0);
    delays.length = 0;
  });
  afterAll(async () => {
    await server.close();
    if (previousHost === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = previousHost;
  });

  it('puts an object under the prefix in the raw layout and gets it back byte for byte', async () => {
    const s = store();
    const key = rawObjectKey('nba-com/player-game-logs', '2021-10-19', 'playerGameLogs.json');
    const body = JSON.stringify({ player: 'Nikola Jokić', pts: 32 });
    const before = server.requests.length;
    await s.put(key, body);
    const upload = server.requests[before];
    expect(upload?.method).toBe('POST');
    expect(upload?.url).toMatch(/^\/upload\/storage\/v1\/b\/nba-raw-test\/o\?uploadType=multipart&name=/);
    const stored = server.object(BUCKET, `backfill/${key}`);
    expect(stored?.body.toString('utf8')).toBe(body);
    expect(stored?.contentType).toBe('application/json');
    expect(await s.get(key)).toBe(body);
    expect(server.requests.at(-1)?.url).toBe(`/b/nba-raw-test/o/${encodeURIComponent(`backfill/${key}`)}?alt=media`);
    expect(s.locate(key)).toBe(`gs://${BUCKET}/backfill/${key}`);
  });

  it('overwrites an object on a second put', async () => {
    const s = store();
    await s.put('src/game_date=2021-10-20/a.json', '{"v":1}');
    await s.put('src/game_date=2021-10-20/a.json', '{"v":2}');
    expect(await s.get('src/game_date=2021-10-20/a.json')).toBe('{"v":2}');
  });

  it('answers undefined for a missing object, after one 404 and no retry', async () => {
    const before = server.requests.length;
    expect(await store().get('src/game_date=1999-01-01/none.json')).toBeUndefined();
    expect(server.requests.slice(before).map((r) => r.status)).toEqual([404]);
  });

  it('lists keys below a prefix across pages, relative to the store prefix and sorted', async () => {
    const s = store('gs://nba-raw-test/list-test/');
    const keys = ['d.json', 'a.json', 'c.json', 'b.json', 'e.json'].map((f) => rawObjectKey('src', '2021-10-21', f));
    for (const k of keys) await s.put(k, '{}');
    await s.put(rawObjectKey('src', '2021-10-22', 'a.json'), '{}');
    await store().put(rawObjectKey('src', '2021-10-21', 'z.json'), '{}'); // another prefix, not listed
    const before = server.requests.length;
    expect(await s.list(rawDatePrefix('src', '2021-10-21'))).toEqual([...keys].sort());
    const pages = server.requests.slice(before);
    expect(pages).toHaveLength(3); // the server holds 2 per page: 5 objects take 3 requests
    expect(pages.map((r) => new URL(r.url, 'http://x').searchParams.has('pageToken'))).toEqual([false, true, true]);
    expect(await s.list('src/')).toHaveLength(6);
    expect(await s.list('other/')).toEqual([]);
  });

  it('computes the checksums the client validates (CRC32C of a known string)', () => {
    // RFC 3720's test vector: 32 bytes of zeros has CRC32C 0x8A9136AA.
    expect(crc32cBase64(Buffer.alloc(32))).toBe(Buffer.from([0x8a, 0x91, 0x36, 0xaa]).toString('base64'));
  });

  it('retries an upload, a download and a listing page on 503 with growing delays', async () => {
    const s = store();
    server.injectFaults([{ match: 'POST /upload/', status: 503, times: 2 }]);
    await s.put('src/game_date=2021-10-23/a.json', '{"retried":true}');
    expect(delays).toEqual([125, 250]);
    server.injectFaults([{ match: 'alt=media', status: 503, times: 1 }]);
    expect(await s.get('src/game_date=2021-10-23/a.json')).toBe('{"retried":true}');
    server.injectFaults([{ match: 'GET /b/nba-raw-test/o?', status: 500, times: 1 }]);
    expect(await s.list('src/game_date=2021-10-23/')).toEqual(['src/game_date=2021-10-23/a.json']);
    expect(delays).toEqual([125, 250, 125, 125]);
  });

  it('validates a download against its checksum and retries one whose bytes arrive damaged', async () => {
    const s = store();
    await s.put('src/game_date=2021-10-26/a.json', '{"intact":true}');
    server.injectFaults([{ match: 'alt=media', corrupt: true }]);
    const before = server.requests.length;
    expect(await s.get('src/game_date=2021-10-26/a.json')).toBe('{"intact":true}');
    expect(server.requests.length - before).toBe(2);
    expect(delays).toEqual([125]);
  });

  it('retries a 429, and gives up after maxAttempts with an error naming the object', async () => {
    const s = store(undefined, { maxAttempts: 3 });
    await s.put('src/game_date=2021-10-24/a.json', '{"n":1}');
    server.injectFaults([{ match: 'alt=media', status: 429, times: 1 }]);
    expect(await s.get('src/game_date=2021-10-24/a.json')).toBe('{"n":1}');
    server.injectFaults([{ match: 'POST /upload/', status: 503, times: 3, message: 'Backend Error' }]);
    const failed = await s.put('src/game_date=2021-10-24/a.json', '{"n":2}').catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ProcessingError);
    expect((failed as ProcessingError).transient).toBe(true);
    expect((failed as Error).message).toBe(
      `GCS upload of gs://${BUCKET}/backfill/src/game_date=2021-10-24/a.json failed after 3 attempts (HTTP 503): Backend Error`,
    );
    expect(delays).toEqual([125, 125, 250]);
    expect(await s.get('src/game_date=2021-10-24/a.json')).toBe('{"n":1}');
  });

  it('does not retry a 403 or a 400: one request, and the API message reaches the caller', async () => {
    const s = store();
    server.injectFaults([
      { match: 'POST /upload/', status: 403, message: 'caller does not have storage.objects.create' },
    ]);
    const before = server.requests.length;
    const err = await s.put('src/game_date=2021-10-25/a.json', '{}').catch((e: unknown) => e);
    expect(server.requests.length - before).toBe(1);
    expect(err).toBeInstanceOf(ProcessingError);
    expect((err as ProcessingError).transient).toBe(false);
    expect((err as Error).message).toBe(
      `GCS upload of gs://${BUCKET}/backfill/src/game_date=2021-10-25/a.json failed (HTTP 403): caller does not have storage.objects.create`,
    );
    server.injectFaults([{ match: 'alt=media', status: 400, message: 'Invalid argument' }]);
    await expect(s.get('src/game_date=2021-10-25/a.json')).rejects.toThrow(/download of .* failed \(HTTP 400\)/);
    expect(delays).toEqual([]);
  });

  it('names a missing bucket when listing', async () => {
    await expect(store('gs://no-such-bucket/x').list('src/')).rejects.toThrow(
      'GCS listing of gs://no-such-bucket/x/src/ failed (HTTP 404): The specified bucket does not exist.',
    );
  });

  it('opens the bucket and prefix of a parsed gs:// setting; the setting refuses malformed URLs naming itself', () => {
    expect(gcsStore('gs://b-1').description).toBe('gs://b-1/');
    expect(gcsStore('gs://b-1/a/b/').locate('k')).toBe('gs://b-1/a/b/k');
    expect(() => parseSetting('objects', 's3://b/x')).toThrow(BadInputError);
    expect(() => parseSetting('objects', 's3://b/x')).toThrow('objects = "s3://b/x": must be file:<folder> or gs://');
    expect(() => parseSetting('objects', 'gs://b-1/a/../b')).toThrow(/^objects = "gs:\/\/b-1\/a\/..\/b": .*plain path/);
    const saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = '127.0.0.1:4443';
    try {
      expect(() => gcsStore('gs://b-1')).toThrow(/must be a URL with its scheme/);
    } finally {
      process.env.STORAGE_EMULATOR_HOST = saved;
    }
  });

  it('runs Phase 1-2 of a real date with its raw files in GCS, chosen by configuration alone', async () => {
    const config = loadConfig({
      env: {},
      flags: { warehouse: 'duckdb::memory:', objects: `gs://${BUCKET}/pipeline` },
    });
    const adapters = await openAdapters(config);
    try {
      expect(adapters.objects.description).toBe(`gs://${BUCKET}/pipeline/`);
      const result = await runPhases1And2(adapters, silentLogger(), '2021-10-19', {
        trigger: { command: 'test' },
        skipDownstreamTrigger: true,
      });
      expect(result.failures).toEqual([]);
      expect(result.rows.nbac_player_boxscore).toBeGreaterThan(40);
      expect(await adapters.objects.list('')).toEqual([
        'espn/team-rosters/game_date=2021-10-19/rosters.json',
        'nba-com/player-game-logs/game_date=2021-10-19/leaguegamelog_P.json',
        'nba-com/team-game-logs/game_date=2021-10-19/leaguegamelog_T.json',
      ]);
      expect(server.object(BUCKET, 'pipeline/espn/team-rosters/game_date=2021-10-19/rosters.json')).toBeDefined();
    } finally {
      await adapters.close();
    }
  });
});
