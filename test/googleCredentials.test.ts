// A pod waits out the GKE metadata server's first seconds before it counts a date as failed: credentials are
// tried again with a doubling pause (bounded, each failure logged), through the real google-auth-library against
// a local stand-in for the metadata server that answers 503 until it is ready.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { awaitGoogleCredentials, googleServicesIn } from '../core/adapters/google/credentials.js';
import { loadConfig } from '../core/config.js';
import { ProcessingError } from '../core/errors.js';
import { EXIT_INDEX_RETRIABLE, JOB_PLAN_ENV } from '../core/jobs/spec.js';
import { runPhase2Index } from '../jobs/phase2-date/runIndex.js';

function recorder() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

describe('awaitGoogleCredentials', () => {
  it('tries again with a doubling pause, logging each failure, until a token comes', async () => {
    const { log, lines } = recorder();
    const sleeps: number[] = [];
    let calls = 0;
    await awaitGoogleCredentials(['BigQuery'], log, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      getToken: async () => {
        if (++calls < 4) throw new Error('connect ECONNREFUSED 169.254.169.254:80');
        return 'token';
      },
    });
    expect(sleeps).toEqual([500, 1000, 2000]);
    expect(lines.filter((l) => l.level === 40).map((l) => [l.attempt, l.retryInMs])).toEqual([
      [1, 500],
      [2, 1000],
      [3, 2000],
    ]);
    expect(lines.at(-1)).toMatchObject({ msg: 'Google credentials obtained', attempt: 4, waitedMs: 3500 });
  });

  it('gives up after 8 tries (about 32 s of pauses, capped at 8 s each) with a transient error naming the services', async () => {
    const { log } = recorder();
    const sleeps: number[] = [];
    let calls = 0;
    const err = await awaitGoogleCredentials(['BigQuery', 'Cloud Storage'], log, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      getToken: async () => {
        calls++;
        throw new Error('metadata server unavailable');
      },
    }).catch((e: unknown) => e);
    expect(calls).toBe(8);
    expect(sleeps).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
    expect(err).toBeInstanceOf(ProcessingError);
    expect((err as ProcessingError).transient).toBe(true);
    expect((err as Error).message).toBe(
      'could not obtain Google credentials for BigQuery, Cloud Storage after 8 tries over 32 s: metadata server unavailable',
    );
  });

  it('waits for nothing when no adapter talks to Google for real (embedded, or emulators)', () => {
    const env = {
      BACKFILL_WAREHOUSE: 'bigquery://nba-project',
      BACKFILL_OBJECTS: 'gs://nba-bucket/raw',
      BACKFILL_EVENTS: 'pubsub://nba-project',
    };
    const config = loadConfig({ env, file: undefined });
    expect(googleServicesIn(config, env)).toEqual(['BigQuery', 'Cloud Storage', 'Pub/Sub']);
    expect(
      googleServicesIn(config, {
        BIGQUERY_EMULATOR_HOST: 'http://bq:9050',
        STORAGE_EMULATOR_HOST: 'http://gcs:4443',
        PUBSUB_EMULATOR_HOST: 'pubsub:8085',
      }),
    ).toEqual([]);
    expect(googleServicesIn(loadConfig({ env: {}, file: undefined }), {})).toEqual([]);
  });
});

describe('through google-auth-library against a metadata server that is not ready yet', () => {
  let server: Server | undefined;
  const saved: Record<string, string | undefined> = {};
  const dir = mkdtempSync(join(tmpdir(), 'nba-gcloud-'));
  afterEach(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets its token once the server answers, after logging the failed tries', async () => {
    let tokenRequests = 0;
    // The metadata server: `Metadata-Flavor: Google` required both ways; its token endpoint answers 503 while
    // the pod is new. The library tries a token request 4 times (with its own short backoff) before it fails.
    server = createServer((req, res) => {
      if (req.headers['metadata-flavor'] !== 'Google') {
        res.writeHead(403).end('Missing Metadata-Flavor:Google header.');
        return;
      }
      if (req.url?.startsWith('/computeMetadata/v1/project/project-id')) {
        res.writeHead(200, { 'Metadata-Flavor': 'Google', 'Content-Type': 'application/text' }).end('test-project');
        return;
      }
      if (!req.url?.startsWith('/computeMetadata/v1/instance/service-accounts/default/token')) {
        res.writeHead(404, { 'Metadata-Flavor': 'Google' }).end('not found');
        return;
      }
      if (++tokenRequests <= 4) {
        res.writeHead(503, { 'Metadata-Flavor': 'Google' }).end('metadata server starting');
        return;
      }
      res
        .writeHead(200, { 'Metadata-Flavor': 'Google', 'Content-Type': 'application/json' })
        .end(JSON.stringify({ access_token: 'ya29.test', expires_in: 3599, token_type: 'Bearer' }));
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    for (const [k, v] of Object.entries({
      METADATA_SERVER_DETECTION: 'assume-present',
      GCE_METADATA_HOST: `127.0.0.1:${port}`,
      // No Application Default Credentials file may come first.
      CLOUDSDK_CONFIG: dir,
      GOOGLE_APPLICATION_CREDENTIALS: undefined,
    })) {
      saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const { log, lines } = recorder();
    const sleeps: number[] = [];
    await awaitGoogleCredentials(['BigQuery'], log, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    // The first try used up the library's own retries; the second got the token.
    expect(sleeps).toEqual([500]);
    expect(lines.filter((l) => l.level === 40)).toEqual([
      expect.objectContaining({ attempt: 1, retryInMs: 500, err: expect.stringContaining('metadata server starting') }),
    ]);
    expect(lines.at(-1)).toMatchObject({ msg: 'Google credentials obtained', attempt: 2 });
    expect(tokenRequests).toBe(5);
  });
});

describe('the Stage 1 pod (runPhase2Index)', () => {
  it('asks for credentials before it opens BigQuery, and fails the attempt as retriable when none come', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nba-pod-creds-'));
    try {
      const plan = join(dir, 'job-plan.json');
      writeFileSync(
        plan,
        JSON.stringify({ jobName: 'nba-stage1-202122-test', season: '2021-22', dates: ['2021-10-19'] }),
      );
      const { log, lines } = recorder();
      let asked = 0;
      const code = await runPhase2Index(
        { JOB_COMPLETION_INDEX: '0', [JOB_PLAN_ENV]: plan, BACKFILL_WAREHOUSE: 'bigquery://nba-project' },
        () => log,
        () => 0,
        {
          attempts: 2,
          sleep: async () => {},
          getToken: async () => {
            asked++;
            throw new Error('metadata server unavailable');
          },
        },
      );
      expect(code).toBe(EXIT_INDEX_RETRIABLE);
      expect(asked).toBe(2);
      expect(lines.map((l) => l.msg)).toEqual([
        'Google credentials not available yet (a new pod may wait a few seconds for the GKE metadata server); trying again',
        'index could not run: date failed: retriable (attempt 1 of 2), it runs again',
      ]);
      expect(String((lines[1]?.err as { message?: string })?.message)).toContain(
        'could not obtain Google credentials for BigQuery after 2 tries over 1 s: metadata server unavailable',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
