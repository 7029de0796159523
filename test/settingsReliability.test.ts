// Settings and the HTTP source through the real CLI: credentials refused and redacted, strict config files,
// a bounded Retry-After, and a truncated body retried.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { redact } from '../core/errors.js';
import { createFileLogger, silentLogger } from '../core/log.js';
import { getProcessor } from '../core/processors.js';
import { runProcessor } from '../core/runner.js';
import { openTestPipeline } from './support/adapters.js';
import { requestOf, type StatsServer, startStatsServer } from './support/statsServer.js';
import { createWorkspace, ensureBuilt, type Workspace } from './support/workspace.js';

const DATE = '2021-10-19';
const SCRAPER = 'nbac_player_game_log_scraper';
/** Fast failure everywhere: no politeness spacing between requests of one CLI process. */
const QUICK = ['--http-min-interval-ms', '0'];

let bundled: BundledStatsSource;
let server: StatsServer;
let ws: Workspace;

beforeAll(async () => {
  await ensureBuilt();
  bundled = new BundledStatsSource();
});

beforeEach(async () => {
  server = await startStatsServer(bundled);
  ws = createWorkspace();
});

afterEach(async () => {
  await server.close();
  ws.remove();
});

/** Every file the CLI left under the workspace (logs, warehouse, raw files), read as text. */
function everyFileText(dir: string): string {
  if (!existsSync(dir)) return '';
  let text = '';
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    text += statSync(path).isDirectory() ? everyFileText(path) : readFileSync(path, 'latin1');
  }
  return text;
}

describe('redact', () => {
  const cases: { name: string; text: string; want: string }[] = [
    { name: 'user and password', text: 'GET http://bob:pw@h.test/x failed', want: 'GET http://***@h.test/x failed' },
    { name: 'user only (a token)', text: 'at https://tok123@h.test', want: 'at https://***@h.test' },
    { name: 'a password holding @', text: 'gs://k:p@ss@bucket/raw', want: 'gs://***@bucket/raw' },
    {
      name: 'api_key in a query',
      text: 'http://h/s?api_key=K1&Season=2021-22',
      want: 'http://h/s?api_key=***&Season=2021-22',
    },
    {
      name: 'access_token after another',
      text: 'http://h/?a=1&access_token=T',
      want: 'http://h/?a=1&access_token=***',
    },
    {
      name: 'a signed URL',
      text: 'https://s.test/o?X-Goog-Signature=abc&X-Goog-Date=1',
      want: 'https://s.test/o?X-Goog-Signature=***&X-Goog-Date=1',
    },
    {
      name: 'token, secret, password, sig, auth, credential',
      text: '?token=a&client_secret=b&password=c&sig=d&auth=e&credential=f',
      want: '?token=***&client_secret=***&password=***&sig=***&auth=***&credential=***',
    },
    { name: 'a path-only URL in a message', text: 'GET /x?apikey=Z failed', want: 'GET /x?apikey=***' + ' failed' },
    {
      name: 'two URLs in one message',
      text: 'http://a:b@h1/ then http://h2/?key=c',
      want: 'http://***@h1/ then http://h2/?key=***',
    },
    {
      name: 'nothing secret',
      text: 'http://h/stats?Season=2021-22&DateFrom=10/19/2021 user@example.com',
      want: 'http://h/stats?Season=2021-22&DateFrom=10/19/2021 user@example.com',
    },
    { name: 'an @ in a path', text: 'https://h/v1/@me', want: 'https://h/v1/@me' },
  ];
  it.each(cases)('$name', ({ text, want }) => {
    expect(redact(text)).toBe(want);
  });
});

describe('log files never hold a secret', () => {
  it('redacts URLs in messages and in logged errors (message and stack)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-redact-'));
    try {
      const file = join(dir, 'backfill.log');
      const { log, close } = createFileLogger('info', file);
      const url = 'https://scraper:hunter2@stats.example.test/stats?api_key=abc123&Season=2021-22';
      log.info(`fetching ${url}`);
      log.error({ err: new Error(`GET ${url} failed`) }, 'processor failed');
      close();
      const text = readFileSync(file, 'utf8');
      expect(text).not.toMatch(/hunter2|abc123/);
      expect(text).toContain('https://***@stats.example.test/stats?api_key=***&Season=2021-22');
      expect(text.split('\n').filter(Boolean)).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('run history stores errors redacted, whatever raised them', () => {
  it('masks a signed URL and user info in an error no adapter redacted itself', async () => {
    const t = await openTestPipeline();
    try {
      const real = getProcessor(SCRAPER);
      const leaky = {
        definition: real.definition,
        run: async () => {
          throw new Error('PUT https://svc:pw-LEAK1@store.test/o?X-Goog-Signature=SIG-LEAK2&x=1 failed: 403');
        },
      };
      const out = await runProcessor(t.adapters, silentLogger(), leaky, DATE, { trigger: { command: 'test' } });
      expect(out.ok).toBe(false);
      const rows = await t.adapters.warehouse.query(
        'SELECT error_message FROM nba_reference.processor_run_history WHERE run_id = @id',
        { id: out.runId },
      );
      expect(rows[0]?.error_message).toBe('PUT https://***@store.test/o?X-Goog-Signature=***&x=1 failed: 403');
    } finally {
      await t.dispose();
    }
  });
});

describe('a URL setting with credentials is refused by the CLI with exit 2, the password shown nowhere', () => {
  const PASSWORD = 'hunter2-cli-secret';
  const cases: { name: string; args: () => string[]; env?: Record<string, string>; file?: unknown; shown: string }[] = [
    {
      name: '--source http://user:password@host/',
      args: () => ['--source', server.url.replace('http://', `http://bob:${PASSWORD}@`)],
      shown: 'source = "http://***@127.0.0.1:',
    },
    {
      name: 'BACKFILL_WAREHOUSE bigquery://user:password@project',
      args: () => [],
      env: { BACKFILL_WAREHOUSE: `bigquery://svc:${PASSWORD}@my-project` },
      shown: 'warehouse = "bigquery://***@my-project" (from environment BACKFILL_WAREHOUSE)',
    },
    {
      name: 'objects gs://user:password@bucket in the config file',
      args: () => ['--config', 'backfill.config.json'],
      file: { objects: `gs://key:${PASSWORD}@my-bucket/raw` },
      shown: 'objects = "gs://***@my-bucket/raw" (from config file backfill.config.json)',
    },
  ];

  it.each(cases)('$name', async ({ args, env, file, shown }) => {
    if (file) writeFileSync(join(ws.dir, 'backfill.config.json'), JSON.stringify(file));
    const out = await ws.cli(['process', SCRAPER, '--date', DATE, ...args()], env);
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(shown);
    expect(out.stderr).toContain('must not hold user info');
    expect(out.stderr).toContain('Application Default Credentials');
    expect(out.stdout + out.stderr).not.toContain(PASSWORD);
    expect(everyFileText(join(ws.dir, '.backfill'))).not.toContain(PASSWORD);
    // Refused before anything ran: the source was never asked.
    expect(server.requests).toEqual([]);
  });
});

describe('a nested unknown key in the config file is refused by the CLI', () => {
  it('names the key path and the file, with exit 2', async () => {
    writeFileSync(join(ws.dir, 'cfg.json'), JSON.stringify({ http: { timeoutMS: 5 } }));
    const out = await ws.cli(['process', SCRAPER, '--date', DATE, '--config', 'cfg.json']);
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(
      'config file cfg.json: unknown setting "http.timeoutMS" (did you mean "http.timeoutMs"?)',
    );
  });
});

describe('the HTTP source through the CLI', () => {
  it('stores an HTTP error with the URL’s api_key masked in run history, and prints it masked', async () => {
    const SECRET = 'SECRETKEY-api-123';
    server.injectFaults([{ match: 'leaguegamelog', status: 404, body: 'no such endpoint' }]);
    const out = await ws.cli([
      'process',
      SCRAPER,
      '--date',
      DATE,
      '--source',
      `${server.url}/?api_key=${SECRET}`,
      ...QUICK,
    ]);
    expect(out.code, out.stderr).toBe(1);
    expect(server.requests[0]?.path).toContain(`api_key=${SECRET}`);

    const rows = await ws.query(
      `SELECT status, error_message FROM nba_reference.processor_run_history WHERE processor_name = '${SCRAPER}'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.status).toBe('failed');
    expect(String(rows[0]?.error_message)).toContain(`GET ${server.url}/stats/leaguegamelog?api_key=***&Counter=0&`);
    expect(String(rows[0]?.error_message)).toContain('HTTP 404');
    expect(out.stdout + out.stderr).toContain('api_key=***');
    expect(out.stdout + out.stderr).not.toContain(SECRET);
    expect(everyFileText(join(ws.dir, '.backfill', 'logs'))).not.toContain(SECRET);
  });

  it('fails at once on a 429 asking for a day, saying so, and records why', async () => {
    server.injectFaults([{ match: requestOf('playerGameLogs', DATE), status: 429, retryAfter: '86400', times: 5 }]);
    const out = await ws.cli(['process', SCRAPER, '--date', DATE, '--source', server.url, ...QUICK]);
    expect(out.code, out.stderr).toBe(1);
    expect(server.requests).toHaveLength(1);
    const says =
      'HTTP 429 Too Many Requests with Retry-After 86400 (86400 s), longer than http.maxRetryAfterMs 60000 ms';
    expect(out.stdout + out.stderr).toContain(says);
    const rows = await ws.query(`SELECT error_message FROM nba_reference.processor_run_history`);
    expect(String(rows[0]?.error_message)).toContain(says);
  });

  it('honours a Retry-After under --http-max-retry-after-ms and shows the wait on stderr', async () => {
    // A real 2 s wait: the CLI's own sleep, which only the library tests replace.
    server.injectFaults([{ match: requestOf('playerGameLogs', DATE), status: 429, retryAfter: '2' }]);
    const args = ['process', SCRAPER, '--date', DATE, '--source', server.url, '--http-max-retry-after-ms', '2000'];
    const out = await ws.cli([...args, ...QUICK]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain(
      `waiting 2 s: HTTP 429 Too Many Requests Retry-After 2; then attempt 2 of 5 for GET ${server.url}/stats/leaguegamelog?`,
    );
    expect(server.requests).toHaveLength(2);
    // The log file keeps the wait too, with its fields.
    const logged = readFileSync(join(ws.dir, '.backfill/logs/backfill.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"reason":"retry-after"'))
      .map((l) => JSON.parse(l) as { waitMs: number; msg: string });
    expect(logged).toEqual([
      expect.objectContaining({ waitMs: 2000, msg: expect.stringMatching(/^waiting 2 s: HTTP 429/) }),
    ]);
  });

  it('refuses the same Retry-After with the cap one millisecond lower', async () => {
    server.injectFaults([{ match: requestOf('playerGameLogs', DATE), status: 429, retryAfter: '2' }]);
    const args = ['process', SCRAPER, '--date', DATE, '--source', server.url, '--http-max-retry-after-ms', '1999'];
    const out = await ws.cli([...args, ...QUICK]);
    expect(out.code, out.stderr).toBe(1);
    expect(out.stdout + out.stderr).toContain('Retry-After 2 (2 s), longer than http.maxRetryAfterMs 1999 ms');
    expect(server.requests).toHaveLength(1);
  });

  it('retries a truncated body and loads the date', async () => {
    server.injectFaults([{ match: requestOf('playerGameLogs', DATE), truncateBody: true }]);
    const out = await ws.cli(['process', SCRAPER, '--date', DATE, '--source', server.url, ...QUICK]);
    expect(out.code, out.stderr).toBe(0);
    expect(server.pendingFaults()).toBe(0);
    expect(server.requests.filter((r) => r.path.includes('PlayerOrTeam=P'))).toHaveLength(2);
    const rows = await ws.query(
      `SELECT status, rows_processed FROM nba_reference.processor_run_history WHERE processor_name = '${SCRAPER}'`,
    );
    expect(rows).toEqual([{ status: 'success', rows_processed: expect.any(Number) }]);
  });
});
