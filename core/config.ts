// Configuration from defaults, a JSON file, the environment and flags, validated with zod.

import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { BadInputError } from './errors.js';

export const ConfigSchema = z.object({
  warehouse: z
    .string()
    .regex(
      /^(duckdb:.+|ipc:parent|bigquery:\/\/[a-z][a-z0-9-]{4,28}[a-z0-9](\?[^\s]*)?)$/,
      'must be duckdb:<path to a DuckDB file> (or duckdb::memory:) or bigquery://<project>[?location=US&datasetPrefix=...]; ipc:parent is set by the local job runtime for its pods',
    ),
  objects: z
    .string()
    .regex(
      /^(file:.+|gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](\/[^\s]*)?)$/,
      'must be file:<folder> or gs://<bucket>[/<prefix>]',
    ),
  events: z
    .string()
    .regex(/^(inprocess|pubsub:\/\/[a-z][a-z0-9-]{4,28}[a-z0-9])$/, 'must be inprocess or pubsub://<project>'),
  /**
   * How Stage 3 runs Phase 4: `inline` in its own pod, or `pubsub`: publish Phase 3's completion and wait
   * until run history shows Phase 4 done for the date (Phase 4 runs as subscribers).
   */
  phase4Mode: z.enum(['inline', 'pubsub'], { error: 'must be inline or pubsub' }),
  /** How long Stage 3 waits for Phase 4 of a date in pubsub mode. */
  phase4TimeoutMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive('must be > 0'),
  source: z
    .string()
    .regex(
      /^(bundled|https?:\/\/[^\s]+)$/,
      'must be "bundled" or an http(s):// base URL of an NBA.com-style stats API',
    ),
  http: z.object({
    timeoutMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive('must be > 0'),
    maxRetries: z.coerce
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(0, 'must be >= 0')
      .max(10, 'must be <= 10'),
    minIntervalMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be >= 0'),
    backoffBaseMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be >= 0'),
  }),
  /** A fault-injection file (see core/faults.ts); empty for none. */
  faults: z.string(),
  planDir: z.string().min(1, 'must not be empty'),
  logDir: z.string().min(1, 'must not be empty'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'must be one of fatal, error, warn, info, debug, trace, silent',
  }),
});

export type Config = z.infer<typeof ConfigSchema>;

/** The embedded defaults: everything on this machine, under the project-local .backfill folder. */
export const DEFAULTS: Config = {
  warehouse: 'duckdb:.backfill/warehouse.duckdb',
  objects: 'file:.backfill/objects',
  events: 'inprocess',
  phase4Mode: 'inline',
  phase4TimeoutMs: 600_000,
  source: 'bundled',
  http: { timeoutMs: 10_000, maxRetries: 4, minIntervalMs: 250, backoffBaseMs: 500 },
  faults: '',
  planDir: 'plans',
  logDir: '.backfill/logs',
  logLevel: 'info',
};

/** Each setting's environment variable and flag. */
const SETTINGS: Record<string, { env: string; flag: string }> = {
  warehouse: { env: 'BACKFILL_WAREHOUSE', flag: '--warehouse' },
  objects: { env: 'BACKFILL_OBJECTS', flag: '--objects' },
  events: { env: 'BACKFILL_EVENTS', flag: '--events' },
  phase4Mode: { env: 'BACKFILL_PHASE4_MODE', flag: '--phase4-mode' },
  phase4TimeoutMs: { env: 'BACKFILL_PHASE4_TIMEOUT_MS', flag: '--phase4-timeout-ms' },
  source: { env: 'BACKFILL_SOURCE', flag: '--source' },
  'http.timeoutMs': { env: 'BACKFILL_HTTP_TIMEOUT_MS', flag: '--http-timeout-ms' },
  'http.maxRetries': { env: 'BACKFILL_HTTP_MAX_RETRIES', flag: '--http-max-retries' },
  'http.minIntervalMs': { env: 'BACKFILL_HTTP_MIN_INTERVAL_MS', flag: '--http-min-interval-ms' },
  'http.backoffBaseMs': { env: 'BACKFILL_HTTP_BACKOFF_BASE_MS', flag: '--http-backoff-base-ms' },
  faults: { env: 'BACKFILL_FAULTS', flag: '--faults' },
  planDir: { env: 'BACKFILL_PLAN_DIR', flag: '--plan-dir' },
  logDir: { env: 'BACKFILL_LOG_DIR', flag: '--log-dir' },
  logLevel: { env: 'BACKFILL_LOG_LEVEL', flag: '--log-level' },
};

export const SETTING_NAMES = Object.keys(SETTINGS);

export interface ConfigInputs {
  /** A JSON config file; when absent, backfill.config.json in the working directory if it exists. */
  readonly file?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Flag values by setting name (`warehouse`, `http.timeoutMs`, ...). */
  readonly flags?: Readonly<Record<string, string | number | undefined>>;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj = target;
  for (const p of parts.slice(0, -1)) {
    obj[p] = { ...((obj[p] as Record<string, unknown>) ?? {}) };
    obj = obj[p] as Record<string, unknown>;
  }
  obj[parts.at(-1) as string] = value;
}

function getPath(source: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], source);
}

/** Later sources win: defaults, then the file, then the environment, then flags. */
export function loadConfig(inputs: ConfigInputs = {}): Config {
  const merged: Record<string, unknown> = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;
  const origin = new Map<string, string>(SETTING_NAMES.map((n) => [n, 'default']));

  const filePath = inputs.file ?? (existsSync('backfill.config.json') ? 'backfill.config.json' : undefined);
  if (filePath) {
    let fromFile: unknown;
    try {
      fromFile = JSON.parse(readFileSync(filePath, 'utf8'));
    } catch (err) {
      throw new BadInputError(`config file ${filePath}: ${err instanceof Error ? err.message : String(err)}`, {
        where: filePath,
      });
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new BadInputError(`config file ${filePath}: must hold a JSON object`, { where: filePath });
    }
    const known = new Set(SETTING_NAMES.map((n) => n.split('.')[0]));
    for (const key of Object.keys(fromFile)) {
      if (!known.has(key)) {
        throw new BadInputError(`config file ${filePath}: unknown setting "${key}" (known: ${[...known].join(', ')})`, {
          where: filePath,
        });
      }
    }
    for (const name of SETTING_NAMES) {
      const v = getPath(fromFile, name);
      if (v !== undefined) {
        setPath(merged, name, v);
        origin.set(name, `config file ${filePath}`);
      }
    }
  }
  const env = inputs.env ?? process.env;
  for (const [name, s] of Object.entries(SETTINGS)) {
    const v = env[s.env];
    if (v !== undefined && v !== '') {
      setPath(merged, name, v);
      origin.set(name, `environment ${s.env}`);
    }
  }
  for (const [name, v] of Object.entries(inputs.flags ?? {})) {
    if (v === undefined) continue;
    setPath(merged, name, v);
    origin.set(name, `flag ${SETTINGS[name]?.flag ?? name}`);
  }

  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      const value = getPath(merged, name);
      return `${name} = ${JSON.stringify(value)} (from ${origin.get(name) ?? 'config'}): ${issue.message}`;
    });
    throw new BadInputError(`invalid configuration:\n  ${lines.join('\n  ')}`, { where: 'configuration' });
  }
  return parsed.data;
}

/** The path part of `duckdb:<path>` or `file:<folder>`. */
export function locationOf(url: string): string {
  return url.slice(url.indexOf(':') + 1);
}
