// Configuration from defaults, a JSON file, the environment and flags, validated with zod.

import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { BadInputError, redact } from './errors.js';

/** Where the warehouse lives. `url` is the setting as given, for messages and for the pods' environment. */
export type WarehouseTarget =
  | { readonly kind: 'duckdb'; readonly url: string /** a file, or `:memory:` */; readonly path: string }
  | {
      readonly kind: 'bigquery';
      readonly url: string;
      readonly project: string;
      /** @default 'US' */
      readonly location: string;
      /** Put before every dataset name (`dev_` gives `dev_nba_raw`). @default '' */
      readonly datasetPrefix: string;
    }
  /** A local job runtime's pod: the parent process holds the DuckDB file and serves it over IPC. */
  | { readonly kind: 'ipc'; readonly url: string };
export type BigQueryTarget = Extract<WarehouseTarget, { kind: 'bigquery' }>;

export type ObjectsTarget =
  | { readonly kind: 'file'; readonly url: string; readonly path: string }
  | {
      readonly kind: 'gs';
      readonly url: string;
      readonly bucket: string;
      /** Where the layout starts inside the bucket: '' or a path ending in '/'. */
      readonly prefix: string;
    };
export type GcsTarget = Extract<ObjectsTarget, { kind: 'gs' }>;

export type EventsTarget =
  | { readonly kind: 'inprocess'; readonly url: string }
  | { readonly kind: 'pubsub'; readonly url: string; readonly project: string };
export type PubSubTarget = Extract<EventsTarget, { kind: 'pubsub' }>;

/** `url` of an `http` source is the API's base URL. */
export type SourceTarget =
  | { readonly kind: 'bundled'; readonly url: string }
  | { readonly kind: 'dir'; readonly url: string; readonly path: string }
  | { readonly kind: 'http'; readonly url: string };

const GCP_PROJECT = '[a-z][a-z0-9-]{4,28}[a-z0-9]';
const BIGQUERY_URL = new RegExp(`^bigquery://(${GCP_PROJECT})(?:\\?(.*))?$`);
const GCS_URL = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:\/(.*))?$/;
const PUBSUB_URL = new RegExp(`^pubsub://(${GCP_PROJECT})$`);

type Refuse = (message: string) => typeof z.NEVER;

/** A refusal becomes an issue of the setting being parsed, so that the message names it, its value and origin. */
function refuser(ctx: z.core.$RefinementCtx): Refuse {
  return (message) => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
}

/** The part after `duckdb:` or `file:`. */
const afterScheme = (url: string) => url.slice(url.indexOf(':') + 1);

function parseWarehouse(url: string, refuse: Refuse): WarehouseTarget {
  if (url === 'ipc:parent') return { kind: 'ipc', url };
  const m = BIGQUERY_URL.exec(url);
  if (!m) return { kind: 'duckdb', url, path: afterScheme(url) };
  const query = new URLSearchParams(m[2] ?? '');
  for (const key of query.keys()) {
    if (key !== 'location' && key !== 'datasetPrefix') {
      return refuse(`unknown setting "${key}" in the URL (known: location, datasetPrefix)`);
    }
  }
  const location = query.get('location') ?? 'US';
  const datasetPrefix = query.get('datasetPrefix') ?? '';
  if (!/^[A-Za-z][A-Za-z0-9-]{1,40}$/.test(location)) {
    return refuse(`location "${location}" is not a BigQuery location such as US or EU`);
  }
  if (!/^[A-Za-z0-9_]{0,100}$/.test(datasetPrefix)) {
    return refuse(`datasetPrefix "${datasetPrefix}" may hold only letters, digits and underscores`);
  }
  return { kind: 'bigquery', url, project: m[1] as string, location, datasetPrefix };
}

function parseObjects(url: string, refuse: Refuse): ObjectsTarget {
  const m = GCS_URL.exec(url);
  if (!m) return { kind: 'file', url, path: afterScheme(url) };
  const path = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (path.split('/').some((part) => part === '.' || part === '..') || path.includes('//')) {
    return refuse('the prefix must be a plain path without empty, . or .. parts');
  }
  return { kind: 'gs', url, bucket: m[1] as string, prefix: path === '' ? '' : `${path}/` };
}

function parseEvents(url: string): EventsTarget {
  const m = PUBSUB_URL.exec(url);
  return m ? { kind: 'pubsub', url, project: m[1] as string } : { kind: 'inprocess', url };
}

export const ConfigSchema = z.strictObject({
  warehouse: z
    .string()
    .regex(
      new RegExp(`^(duckdb:.+|ipc:parent|bigquery://${GCP_PROJECT}(\\?[^\\s]*)?)$`),
      'must be duckdb:<path to a DuckDB file> (or duckdb::memory:) or bigquery://<project>[?location=US&datasetPrefix=...]; ipc:parent is set by the local job runtime for its pods',
    )
    .transform((url, ctx) => parseWarehouse(url, refuser(ctx))),
  objects: z
    .string()
    .regex(
      /^(file:.+|gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](\/[^\s]*)?)$/,
      'must be file:<folder> or gs://<bucket>[/<prefix>]',
    )
    .transform((url, ctx) => parseObjects(url, refuser(ctx))),
  events: z
    .string()
    .regex(new RegExp(`^(inprocess|pubsub://${GCP_PROJECT})$`), 'must be inprocess or pubsub://<project>')
    .transform(parseEvents),
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
      /^(bundled|dir:.+|https?:\/\/[^\s]+)$/,
      'must be "bundled", dir:<folder> (laid out like data/nba) or an http(s):// base URL of an NBA.com-style stats API',
    )
    .transform((url): SourceTarget => {
      if (url === 'bundled') return { kind: 'bundled', url };
      if (url.startsWith('dir:')) {
        // Absolute, so that the Stage 1 processes (and a resumed run from another folder) read the same one.
        const path = resolve(url.slice('dir:'.length));
        return { kind: 'dir', url: `dir:${path}`, path };
      }
      return { kind: 'http', url };
    }),
  http: z.strictObject({
    timeoutMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive('must be > 0'),
    maxRetries: z.coerce
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(0, 'must be >= 0')
      .max(10, 'must be <= 10'),
    minIntervalMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be >= 0'),
    backoffBaseMs: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be >= 0'),
    /** The longest Retry-After the HTTP source waits out; a server asking for more fails the request at once. */
    maxRetryAfterMs: z.coerce
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(0, 'must be >= 0'),
  }),
  /**
   * Fault injection (see core/faults.ts): the path of a JSON file, or the JSON itself when the value starts with
   * `{` (a pod's root filesystem is read-only, so the chart passes faults inline); empty for none.
   */
  faults: z.string(),
  planDir: z.string().min(1, 'must not be empty'),
  logDir: z.string().min(1, 'must not be empty'),
  /**
   * Where each command's JSON log goes: empty for `<logDir>/backfill.log`, `-` (or `/dev/stderr`) for standard
   * error, `/dev/stdout` for standard output (a pod's, which `kubectl logs` and Cloud Logging read), or a file.
   */
  logFile: z.string(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'must be one of fatal, error, warn, info, debug, trace, silent',
  }),
});

/** The settings as given: every URL a string. */
export type Settings = z.input<typeof ConfigSchema>;
/** The settings validated, each URL parsed once into what it points at (`config.warehouse.kind`). */
export type Config = z.output<typeof ConfigSchema>;

/** The embedded defaults: everything on this machine, under the project-local .backfill folder. */
export const DEFAULTS: Settings = {
  warehouse: 'duckdb:.backfill/warehouse.duckdb',
  objects: 'file:.backfill/objects',
  events: 'inprocess',
  phase4Mode: 'inline',
  phase4TimeoutMs: 600_000,
  source: 'bundled',
  http: { timeoutMs: 10_000, maxRetries: 4, minIntervalMs: 250, backoffBaseMs: 500, maxRetryAfterMs: 60_000 },
  faults: '',
  planDir: 'plans',
  logDir: '.backfill/logs',
  logFile: '',
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
  'http.maxRetryAfterMs': { env: 'BACKFILL_HTTP_MAX_RETRY_AFTER_MS', flag: '--http-max-retry-after-ms' },
  faults: { env: 'BACKFILL_FAULTS', flag: '--faults' },
  planDir: { env: 'BACKFILL_PLAN_DIR', flag: '--plan-dir' },
  logDir: { env: 'BACKFILL_LOG_DIR', flag: '--log-dir' },
  logFile: { env: 'BACKFILL_LOG_FILE', flag: '--log-file' },
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

/** The settings whose values are URLs: they are where a user would paste a credential. */
const URL_SETTINGS = ['source', 'warehouse', 'objects', 'events'] as const;

/**
 * Refuses user info in a URL setting (`https://user:password@host/`): the settings travel into pod specs, job
 * logs, failure files and run history, so a credential in one would be copied everywhere. The message shows
 * the URL redacted, never the password.
 */
function checkUrlCredentials(merged: Record<string, unknown>, origin: ReadonlyMap<string, string>): void {
  const lines: string[] = [];
  for (const name of URL_SETTINGS) {
    const value = merged[name];
    if (typeof value !== 'string') continue;
    // Anything before an `@` in the authority is user info, even where a URL parser would give up on it.
    if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) continue;
    lines.push(
      `${name} = "${redact(value)}" (from ${origin.get(name) ?? 'config'}): must not hold user info (user:password@); ` +
        'a credential in a URL would be copied into pod specs, logs and run history. Use Application Default ' +
        'Credentials (GOOGLE_APPLICATION_CREDENTIALS or the workload identity) for bigquery://, gs:// and pubsub://, ' +
        'and for an HTTP source a header added by an authenticating proxy in front of it',
    );
  }
  if (lines.length > 0) {
    throw new BadInputError(`invalid configuration:\n  ${lines.join('\n  ')}`, { where: 'configuration' });
  }
}

/** Edit distance, for suggesting the setting a misspelt key meant. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/** The known key closest to an unknown one: same letters in another case, or at most 2 edits away. */
function closest(key: string, known: readonly string[]): string | undefined {
  const same = known.find((k) => k.toLowerCase() === key.toLowerCase());
  if (same) return same;
  const ranked = known.map((k) => ({ k, d: distance(key.toLowerCase(), k.toLowerCase()) })).sort((x, y) => x.d - y.d);
  const best = ranked[0];
  return best && best.d <= Math.min(2, Math.floor(key.length / 3)) ? best.k : undefined;
}

/**
 * Every level of the file is strict: an unknown key anywhere (`http.timeoutMS`) is refused with its path, so a
 * typo cannot silently leave a default in force. Checked against DEFAULTS, which has every setting's shape.
 */
function checkFileKeys(fromFile: Record<string, unknown>, filePath: string): void {
  const walk = (given: Record<string, unknown>, shape: Record<string, unknown>, prefix: string) => {
    const known = Object.keys(shape);
    for (const [key, value] of Object.entries(given)) {
      const path = `${prefix}${key}`;
      if (!Object.hasOwn(shape, key)) {
        const guess = closest(key, known);
        const hint = guess
          ? `did you mean "${prefix}${guess}"?`
          : `known${prefix ? ` under ${prefix.slice(0, -1)}` : ''}: ${known.map((k) => `${prefix}${k}`).join(', ')}`;
        throw new BadInputError(`config file ${filePath}: unknown setting "${path}" (${hint})`, { where: filePath });
      }
      const inner = shape[key];
      if (typeof inner === 'object' && inner !== null) {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new BadInputError(
            `config file ${filePath}: setting "${path}" must be an object with ${Object.keys(inner)
              .map((k) => `${path}.${k}`)
              .join(', ')}`,
            { where: filePath },
          );
        }
        walk(value as Record<string, unknown>, inner as Record<string, unknown>, `${path}.`);
      }
    }
  };
  walk(fromFile, DEFAULTS as unknown as Record<string, unknown>, '');
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
      // Newer parsers quote the text they failed on, which may hold a piece of a password: position only.
      const reason = (err instanceof Error ? err.message : String(err)).replace(/"[\s\S]*"/, '(text not shown)');
      throw new BadInputError(`config file ${filePath}: ${redact(reason)}`, {
        where: filePath,
      });
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new BadInputError(`config file ${filePath}: must hold a JSON object`, { where: filePath });
    }
    checkFileKeys(fromFile as Record<string, unknown>, filePath);
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

  checkUrlCredentials(merged, origin);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      const value = getPath(merged, name);
      return `${name} = ${redact(JSON.stringify(value) ?? 'undefined')} (from ${origin.get(name) ?? 'config'}): ${issue.message}`;
    });
    throw new BadInputError(`invalid configuration:\n  ${lines.join('\n  ')}`, { where: 'configuration' });
  }
  return parsed.data;
}

type UrlSetting = (typeof URL_SETTINGS)[number];

/**
 * One URL setting parsed on its own, by the rules loadConfig applies (tools and tests that hold a URL, not a
 * whole configuration). Bad input names the setting, the value and the rule.
 */
export function parseSetting<K extends UrlSetting>(name: K, value: string): Config[K] {
  const parsed = ConfigSchema.shape[name].safeParse(value);
  if (parsed.success) return parsed.data as Config[K];
  const reasons = parsed.error.issues.map((issue) => issue.message).join('; ');
  throw new BadInputError(`${name} = ${redact(JSON.stringify(value))}: ${reasons}`, { where: name });
}

/**
 * The settings a pod needs, as the BACKFILL_* variables the cluster manifests carry too: what loadConfig reads
 * back in the pod. Used by the local job runtime's Stage 1 and by the chart.
 */
export function podSettings(config: Config): Record<string, string> {
  // Local paths become absolute (the pods may run elsewhere); bigquery://, gs:// and the like pass as they are.
  const abs = (target: { readonly kind: string; readonly url: string; readonly path?: string }) => {
    const path = target.path;
    if (path === undefined || path === ':memory:' || isAbsolute(path)) return target.url;
    return `${target.kind}:${resolve(path)}`;
  };
  const env: Record<string, string> = {
    BACKFILL_WAREHOUSE: abs(config.warehouse),
    BACKFILL_OBJECTS: abs(config.objects),
    BACKFILL_EVENTS: config.events.url,
    BACKFILL_SOURCE: config.source.url,
    BACKFILL_HTTP_TIMEOUT_MS: String(config.http.timeoutMs),
    BACKFILL_HTTP_MAX_RETRIES: String(config.http.maxRetries),
    BACKFILL_HTTP_MIN_INTERVAL_MS: String(config.http.minIntervalMs),
    BACKFILL_HTTP_BACKOFF_BASE_MS: String(config.http.backoffBaseMs),
    BACKFILL_HTTP_MAX_RETRY_AFTER_MS: String(config.http.maxRetryAfterMs),
  };
  // Inline fault JSON is passed as it is; a fault file's path becomes absolute, as the local paths above.
  if (config.faults) env.BACKFILL_FAULTS = isInlineFaults(config.faults) ? config.faults : resolve(config.faults);
  return env;
}

/**
 * Whether a `--faults` / BACKFILL_FAULTS value is the fault JSON itself rather than the path of a fault file: it
 * starts with `{` (after any white space). A file whose name starts with `{` is named as `./{...}`.
 */
export function isInlineFaults(value: string): boolean {
  return value.trimStart().startsWith('{');
}
