// Configuration: defaults, a file, the environment and flags, in that order, and errors that name the setting.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig } from '../core/config.js';

describe('loadConfig', () => {
  it('defaults to the embedded adapters', () => {
    const c = loadConfig({ env: {}, file: undefined });
    expect(c.warehouse).toBe('duckdb:.backfill/warehouse.duckdb');
    expect(c.objects).toBe('file:.backfill/objects');
    expect(c.events).toBe('inprocess');
    expect(c.source).toBe('bundled');
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
      warehouse: 'duckdb:a.duckdb',
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
      /source = "ftp:\/\/x".*must be "bundled" or an http/,
    );
  });

  it('rejects an unknown setting in the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ warehose: 'duckdb:x' }));
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown setting "warehose"/);
  });
});
