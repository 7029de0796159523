// The production object store: raw files in a GCS bucket under a prefix, laid out as the local folder is.

import { type File, Storage } from '@google-cloud/storage';
import { BadInputError, messageOf, ProcessingError } from '../../errors.js';
import type { ObjectStore } from '../../ports/objectStore.js';

/** Connection-level failures worth another try (a reset socket, a refused or timed-out connection, DNS). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ESOCKETTIMEDOUT',
  'ECONNABORTED',
  // The body's checksum did not match the x-goog-hash header: the bytes were damaged on the way.
  'CONTENT_DOWNLOAD_MISMATCH',
]);

export interface GcsObjectStoreOptions {
  /** Tries of one request when it fails transiently (408, 429, 5xx, a broken connection). @default 5 */
  readonly maxAttempts?: number;
  /** The first retry's delay; doubled each retry, with jitter. @default 250 */
  readonly backoffBaseMs?: number;
  /** @default 8000 */
  readonly maxBackoffMs?: number;
  /** Objects per page of a listing (the API's maxResults; it may return fewer). @default 1000 */
  readonly pageSize?: number;
  /** One request's timeout. @default 60000 */
  readonly timeoutMs?: number;
  /** Waits between retries; tests pass one that records the delays. @default setTimeout */
  readonly delay?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
}

/** The HTTP status of a client error, or the code of a connection error. */
function codeOf(err: unknown): number | string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'number') return code;
  if (typeof code === 'string') return /^\d{3}$/.test(code) ? Number(code) : code;
  return undefined;
}

/** Whether another try may succeed: rate limits, server errors and broken connections, never other 4xx. */
export function isTransientGcsError(err: unknown): boolean {
  const code = codeOf(err);
  if (typeof code === 'number') return code === 408 || code === 429 || code >= 500;
  if (typeof code === 'string') return TRANSIENT_CODES.has(code.toUpperCase());
  return /socket hang up|network|timeout/i.test(messageOf(err));
}

/** The API's own message, without the JSON wrapper a failed media download carries. */
function apiMessage(err: unknown): string {
  const text = messageOf(err);
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
  } catch {
    // Not JSON: the message is already plain.
  }
  return text;
}

export class GcsObjectStore implements ObjectStore {
  readonly description: string;
  private readonly storage: Storage;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly maxBackoffMs: number;
  private readonly pageSize: number;
  private readonly delay: (ms: number) => Promise<void>;
  private readonly random: () => number;

  /**
   * Application Default Credentials, or STORAGE_EMULATOR_HOST when it is set.
   * @param bucket the bucket's name
   * @param prefix where the layout starts inside it: '' or a path ending in '/' (a parsed `gs://` setting's)
   */
  constructor(
    readonly bucket: string,
    readonly prefix: string,
    options: GcsObjectStoreOptions = {},
  ) {
    this.description = `gs://${bucket}/${prefix}`;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.backoffBaseMs = options.backoffBaseMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 8000;
    this.pageSize = options.pageSize ?? 1000;
    this.delay = options.delay ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = options.random ?? Math.random;
    const emulator = process.env.STORAGE_EMULATOR_HOST;
    // The client uses STORAGE_EMULATOR_HOST verbatim as its base URL: without a scheme every request fails obscurely.
    if (emulator !== undefined && emulator !== '' && !/^https?:\/\//.test(emulator)) {
      throw new BadInputError(
        `STORAGE_EMULATOR_HOST="${emulator}" must be a URL with its scheme, e.g. http://127.0.0.1:4443`,
        { where: 'STORAGE_EMULATOR_HOST' },
      );
    }
    // Retries are ours, the same for every request: the client's own skip uploads without a generation
    // precondition, and a raw file's put is an idempotent overwrite that is always safe to repeat.
    this.storage = new Storage({ retryOptions: { autoRetry: false }, timeout: options.timeoutMs ?? 60_000 });
  }

  locate(key: string): string {
    return `gs://${this.bucket}/${this.prefix}${key}`;
  }

  private file(key: string): File {
    return this.storage.bucket(this.bucket).file(`${this.prefix}${key}`);
  }

  /** Runs one request, retrying transient failures with capped exponential backoff and jitter. */
  private async withRetries<T>(what: string, where: string, request: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (err) {
        const transient = isTransientGcsError(err);
        if (!transient || attempt >= this.maxAttempts) {
          const code = codeOf(err);
          const status = typeof code === 'number' ? `HTTP ${code}` : (code ?? 'error');
          const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
          throw new ProcessingError(`GCS ${what} of ${where} failed${tries} (${status}): ${apiMessage(err)}`, {
            transient,
            cause: err,
          });
        }
        const ceiling = Math.min(this.maxBackoffMs, this.backoffBaseMs * 2 ** (attempt - 1));
        await this.delay(Math.round(ceiling / 2 + (this.random() * ceiling) / 2));
      }
    }
  }

  async put(key: string, body: string): Promise<void> {
    const contentType = key.endsWith('.json') ? 'application/json' : 'text/plain; charset=utf-8';
    // One multipart request (the object is small): a resumable session would double the round trips.
    await this.withRetries('upload', this.locate(key), () =>
      this.file(key).save(body, { resumable: false, contentType, validation: 'crc32c' }),
    );
  }

  async get(key: string): Promise<string | undefined> {
    try {
      const [bytes] = await this.withRetries('download', this.locate(key), () => this.file(key).download());
      return bytes.toString('utf8');
    } catch (err) {
      if (err instanceof ProcessingError && codeOf(err.cause) === 404) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const bucket = this.storage.bucket(this.bucket);
    const keys: string[] = [];
    let pageToken: string | undefined;
    // Page by page, so that a failed page is retried alone rather than the whole listing.
    do {
      const token = pageToken;
      const [files, next] = await this.withRetries('listing', this.locate(prefix), () =>
        bucket.getFiles({
          prefix: `${this.prefix}${prefix}`,
          maxResults: this.pageSize,
          autoPaginate: false,
          ...(token ? { pageToken: token } : {}),
        }),
      );
      for (const f of files) keys.push(f.name.slice(this.prefix.length));
      pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
    } while (pageToken);
    return keys.sort();
  }
}
