// Configuration: defaults, a file, the environment and flags, in that order, and errors that name the setting.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig, parseSetting } from '../core/config.js';
import { BadInputError } from '../core/errors.js';

describe('loadConfig', () => {
  it('defaults to the embedded adapters', () => {
    const c = loadConfig({ env: {}, file: undefined });
    expect(c.warehouse).toEqual({
      kind: 'duckdb',
      url: 'duckdb:.backfill/warehouse.duckdb',
      path: '.backfill/warehouse.duckdb',
    });
    expect(c.objects).toEqual({ kind: 'file', url: 'file:.backfill/objects', path: '.backfill/objects' });
    expect(c.events).toEqual({ kind: 'inprocess', url: 'inprocess' });
    expect(c.source).toEqual({ kind: 'bundled', url: 'bundled' });
  });

  it('lets the file, then the environment, then flags override', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ warehouse: 'duckdb:a.duckdb', planDir: 'p1', http: { timeoutMs: 5 } }));
    const c = loadConfig({
      file,
      env: { BACKFILL_PLAN_DIR: 'p2', BACKFILL_HTTP_MAX_RETRIES: '2' },
      flags: { planDir: 'p3' },
    });
    expect(c).toMatchObject({
      warehouse: { kind: 'duckdb', url: 'duckdb:a.duckdb', path: 'a.duckdb' },
      planDir: 'p3',
      http: { timeoutMs: 5, maxRetries: 2, minIntervalMs: DEFAULTS.http.minIntervalMs },
    });
  });

  it('names the setting, its value, where it came from and the rule', () => {
    expect(() => loadConfig({ env: {}, flags: { warehouse: 'postgres://x' } })).toThrow(
      /warehouse = "postgres:\/\/x" \(from flag --warehouse\): must be duckdb:<path/,
    );
    expect(() => loadConfig({ env: { BACKFILL_HTTP_TIMEOUT_MS: 'abc' } })).toThrow(
      /http.timeoutMs = "abc" \(from environment BACKFILL_HTTP_TIMEOUT_MS\)/,
    );
    expect(() => loadConfig({ env: { BACKFILL_SOURCE: 'ftp://x' } })).toThrow(
      /source = "ftp:\/\/x".*must be "bundled", dir:<folder> \(laid out like data\/nba\) or an http/,
    );
  });

  it('rejects an unknown setting in the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ warehose: 'duckdb:x' }));
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown setting "warehose"/);
  });
});

function configFile(body: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'backfill.config.json');
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

/** The error loadConfig throws, so a case can check its message and its class. */
function refusal(inputs: Parameters<typeof loadConfig>[0]): BadInputError {
  try {
    loadConfig(inputs);
  } catch (err) {
    if (err instanceof BadInputError) return err;
    throw err;
  }
  throw new Error('expected loadConfig to refuse the configuration');
}

describe('every level of the config file is strict', () => {
  const cases: { name: string; body: unknown; says: string }[] = [
    {
      name: 'a nested key in the wrong case',
      body: { http: { timeoutMS: 5 } },
      says: 'unknown setting "http.timeoutMS" (did you mean "http.timeoutMs"?)',
    },
    {
      name: 'a nested key one letter off',
      body: { http: { maxRetrys: 2 } },
      says: 'unknown setting "http.maxRetrys" (did you mean "http.maxRetries"?)',
    },
    {
      name: 'a nested key like no known one',
      body: { http: { proxy: 'http://p' } },
      says: 'unknown setting "http.proxy" (known under http: http.timeoutMs, http.maxRetries, http.minIntervalMs',
    },
    {
      name: 'a nested key beside good ones',
      body: { http: { timeoutMs: 5, retries: 2 } },
      says: 'unknown setting "http.retries"',
    },
    {
      name: 'a top-level key misspelt',
      body: { warehose: 'duckdb:x' },
      says: 'unknown setting "warehose" (did you mean "warehouse"?)',
    },
    {
      name: 'a nested group given a value',
      body: { http: 5000 },
      says: 'setting "http" must be an object with http.timeoutMs, http.maxRetries',
    },
    {
      name: 'a dotted key instead of nesting',
      body: { 'http.timeoutMs': 5 },
      says: 'unknown setting "http.timeoutMs" (known: warehouse, objects',
    },
  ];

  it.each(cases)('refuses $name, naming the key path and the file', ({ body, says }) => {
    const file = configFile(body);
    const err = refusal({ file, env: {} });
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`config file ${file}: ${says}`);
  });

  it('accepts every known nested key', () => {
    const http = { timeoutMs: 1, maxRetries: 0, minIntervalMs: 0, backoffBaseMs: 0, maxRetryAfterMs: 0 };
    expect(loadConfig({ file: configFile({ http }), env: {} }).http).toEqual(http);
  });
});

describe('http.maxRetryAfterMs', () => {
  it('defaults to a minute and comes from the file, the environment or the flag', () => {
    expect(loadConfig({ env: {} }).http.maxRetryAfterMs).toBe(60_000);
    expect(loadConfig({ file: configFile({ http: { maxRetryAfterMs: 5 } }), env: {} }).http.maxRetryAfterMs).toBe(5);
    expect(loadConfig({ env: { BACKFILL_HTTP_MAX_RETRY_AFTER_MS: '7' } }).http.maxRetryAfterMs).toBe(7);
    expect(loadConfig({ env: {}, flags: { 'http.maxRetryAfterMs': '0' } }).http.maxRetryAfterMs).toBe(0);
  });

  const bad: { name: string; inputs: Parameters<typeof loadConfig>[0]; says: string }[] = [
    {
      name: 'not a number (environment)',
      inputs: { env: { BACKFILL_HTTP_MAX_RETRY_AFTER_MS: 'soon' } },
      says: 'http.maxRetryAfterMs = "soon" (from environment BACKFILL_HTTP_MAX_RETRY_AFTER_MS): must be a number',
    },
    {
      name: 'negative (flag)',
      inputs: { env: {}, flags: { 'http.maxRetryAfterMs': '-1' } },
      says: 'http.maxRetryAfterMs = "-1" (from flag --http-max-retry-after-ms): must be >= 0',
    },
    {
      name: 'a fraction (file)',
      inputs: { env: {}, file: configFile({ http: { maxRetryAfterMs: 1.5 } }) },
      says: 'http.maxRetryAfterMs = 1.5 (from config file',
    },
  ];

  it.each(bad)('refuses $name', ({ inputs, says }) => {
    expect(refusal(inputs).message).toContain(says);
  });
});

describe('URL settings never carry credentials', () => {
  const PASSWORD = 'hunter2-secret';
  const cases: { name: string; inputs: () => Parameters<typeof loadConfig>[0]; setting: string; shown: string }[] = [
    {
      name: 'source with user and password, from a flag',
      inputs: () => ({ env: {}, flags: { source: `https://bob:${PASSWORD}@stats.example.com/` } }),
      setting: 'source',
      shown: 'source = "https://***@stats.example.com/" (from flag --source)',
    },
    {
      name: 'source with a password holding @, from the environment',
      inputs: () => ({ env: { BACKFILL_SOURCE: `http://bob:${PASSWORD}@x@stats.example.com/` } }),
      setting: 'source',
      shown: 'source = "http://***@stats.example.com/" (from environment BACKFILL_SOURCE)',
    },
    {
      name: 'source with a token as user only, from the file',
      inputs: () => ({ env: {}, file: configFile({ source: `https://${PASSWORD}@stats.example.com` }) }),
      setting: 'source',
      shown: 'source = "https://***@stats.example.com" (from config file',
    },
    {
      name: 'warehouse on BigQuery',
      inputs: () => ({ env: {}, flags: { warehouse: `bigquery://svc:${PASSWORD}@my-project` } }),
      setting: 'warehouse',
      shown: 'warehouse = "bigquery://***@my-project"',
    },
    {
      name: 'objects on GCS',
      inputs: () => ({ env: { BACKFILL_OBJECTS: `gs://key:${PASSWORD}@my-bucket/raw` } }),
      setting: 'objects',
      shown: 'objects = "gs://***@my-bucket/raw"',
    },
    {
      name: 'events on Pub/Sub',
      inputs: () => ({ env: {}, file: configFile({ events: `pubsub://u:${PASSWORD}@my-project` }) }),
      setting: 'events',
      shown: 'events = "pubsub://***@my-project"',
    },
  ];

  it.each(cases)('refuses $name with exit 2, redacted, saying what to use', ({ inputs, shown }) => {
    const err = refusal(inputs());
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(shown);
    expect(err.message).toContain('must not hold user info');
    expect(err.message).toContain('Application Default Credentials');
    expect(err.message).toContain('header');
    expect(err.message).not.toContain(PASSWORD);
  });

  it('redacts a URL in any other configuration error', () => {
    const err = refusal({ env: {}, flags: { events: `pubsub://my-project?token=${PASSWORD}` } });
    expect(err.message).toContain('events = "pubsub://my-project?token=***"');
    expect(err.message).not.toContain(PASSWORD);
  });

  it('redacts the text a broken config file quotes', () => {
    const err = refusal({ env: {}, file: configFile(`{"source": "https://stats.example.com/?api_key=${PASSWORD}",}`) });
    expect(err.message).not.toContain(PASSWORD);
  });

  it('still accepts an @ in a path or query, where it is not user info', () => {
    expect(loadConfig({ env: {}, flags: { source: 'https://stats.example.com/v1/@me?x=a@b' } }).source).toEqual({
      kind: 'http',
      url: 'https://stats.example.com/v1/@me?x=a@b',
    });
  });
});

describe('URL settings are parsed once, into what they point at', () => {
  it.each([
    {
      name: 'a DuckDB file',
      setting: 'warehouse',
      url: 'duckdb:w/a.duckdb',
      want: { kind: 'duckdb', path: 'w/a.duckdb' },
    },
    {
      name: 'DuckDB in memory',
      setting: 'warehouse',
      url: 'duckdb::memory:',
      want: { kind: 'duckdb', path: ':memory:' },
    },
    {
      name: 'BigQuery with the defaults',
      setting: 'warehouse',
      url: 'bigquery://my-project-1',
      want: { kind: 'bigquery', project: 'my-project-1', location: 'US', datasetPrefix: '' },
    },
    {
      name: 'BigQuery with a location and a dataset prefix',
      setting: 'warehouse',
      url: 'bigquery://my-project-1?location=EU&datasetPrefix=dev_',
      want: { kind: 'bigquery', project: 'my-project-1', location: 'EU', datasetPrefix: 'dev_' },
    },
    { name: "the local job runtime's pods", setting: 'warehouse', url: 'ipc:parent', want: { kind: 'ipc' } },
    { name: 'a local folder', setting: 'objects', url: 'file:/data/raw', want: { kind: 'file', path: '/data/raw' } },
    { name: 'a bucket', setting: 'objects', url: 'gs://b-1', want: { kind: 'gs', bucket: 'b-1', prefix: '' } },
    {
      name: 'a bucket and a prefix, slashes trimmed',
      setting: 'objects',
      url: 'gs://b-1/a/b/',
      want: { kind: 'gs', bucket: 'b-1', prefix: 'a/b/' },
    },
    { name: 'in-process events', setting: 'events', url: 'inprocess', want: { kind: 'inprocess' } },
    {
      name: 'Pub/Sub',
      setting: 'events',
      url: 'pubsub://my-project-1',
      want: { kind: 'pubsub', project: 'my-project-1' },
    },
    { name: 'the bundled data', setting: 'source', url: 'bundled', want: { kind: 'bundled' } },
    { name: 'an HTTP API', setting: 'source', url: 'https://stats.example.com/v1', want: { kind: 'http' } },
  ] as const)('$name: $url', ({ setting, url, want }) => {
    expect(loadConfig({ env: {}, flags: { [setting]: url } })[setting]).toEqual({ ...want, url });
  });

  it.each([
    {
      name: 'an unknown BigQuery URL parameter',
      flags: { warehouse: 'bigquery://my-project-1?keyFile=k.json' },
      // The value of a parameter named like a key file is redacted, as in every configuration error.
      says: 'warehouse = "bigquery://my-project-1?keyFile=***" (from flag --warehouse): unknown setting "keyFile" in the URL (known: location, datasetPrefix)',
    },
    {
      name: 'a BigQuery location that is none',
      flags: { warehouse: 'bigquery://my-project-1?location=us%20east' },
      says: 'warehouse = "bigquery://my-project-1?location=us%20east" (from flag --warehouse): location "us east" is not a BigQuery location',
    },
    {
      name: 'a BigQuery dataset prefix with a dash',
      flags: { warehouse: 'bigquery://my-project-1?datasetPrefix=dev-' },
      says: 'datasetPrefix "dev-" may hold only letters, digits and underscores',
    },
    {
      name: 'a gs:// prefix with a .. part',
      flags: { objects: 'gs://b-1/a/../b' },
      says: 'objects = "gs://b-1/a/../b" (from flag --objects): the prefix must be a plain path without empty, . or .. parts',
    },
    {
      name: 'a gs:// prefix with an empty part',
      flags: { objects: 'gs://b-1/a//b' },
      says: 'the prefix must be a plain path',
    },
  ])('refuses $name at load time, naming the setting', ({ flags, says }) => {
    const err = refusal({ env: {}, flags });
    expect(err.message).toContain(says);
  });

  it('parses one setting alone by the same rules (parseSetting)', () => {
    expect(parseSetting('objects', 'gs://b-1/x')).toEqual({
      kind: 'gs',
      url: 'gs://b-1/x',
      bucket: 'b-1',
      prefix: 'x/',
    });
    expect(() => parseSetting('warehouse', 'bigquery://my-project-1?keyFile=k')).toThrow(
      'warehouse = "bigquery://my-project-1?keyFile=***": unknown setting "keyFile" in the URL',
    );
  });
});
