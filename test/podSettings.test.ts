// The settings a Stage 1 pod gets: local paths made absolute, cloud URLs passed through untouched.

import { isAbsolute } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, podSettings } from '../core/config.js';

describe('podSettings', () => {
  it('makes the embedded defaults absolute', () => {
    const env = podSettings(loadConfig({ env: {} }));
    expect(env.BACKFILL_WAREHOUSE).toMatch(/^duckdb:/);
    expect(isAbsolute(String(env.BACKFILL_WAREHOUSE).slice('duckdb:'.length))).toBe(true);
    expect(isAbsolute(String(env.BACKFILL_OBJECTS).slice('file:'.length))).toBe(true);
    expect(env.BACKFILL_EVENTS).toBe('inprocess');
  });

  it('passes bigquery://, gs:// and pubsub:// URLs through as they are', () => {
    const env = podSettings(
      loadConfig({
        env: {},
        flags: {
          warehouse: 'bigquery://my-project?location=EU',
          objects: 'gs://my-bucket/nba/raw',
          events: 'pubsub://my-project',
        },
      }),
    );
    expect(env).toMatchObject({
      BACKFILL_WAREHOUSE: 'bigquery://my-project?location=EU',
      BACKFILL_OBJECTS: 'gs://my-bucket/nba/raw',
      BACKFILL_EVENTS: 'pubsub://my-project',
    });
  });
});
