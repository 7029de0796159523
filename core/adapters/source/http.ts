// The live Phase 1 source: NBA.com-style stats and ESPN-style rosters over HTTP, with retries and a polite rate limit.

import { z } from 'zod';
import { isIsoDate, toNbaQueryDate } from '../../dates.js';
import { BadInputError, messageOf, ProcessingError, redact } from '../../errors.js';
import type {
  LeagueGameLogQuery,
  RosterQuery,
  RosterResponse,
  StatsResponse,
  StatsSource,
} from '../../ports/source.js';

export interface HttpStatsSourceOptions {
  /** Where both APIs live, e.g. `https://stats.example.com`; `/stats/...` and `/espn/...` are appended. */
  readonly baseUrl: string;
  /**
   * How long one attempt may take, response body included, before it is abandoned and counted as transient.
   * @default 10000
   */
  readonly timeoutMs?: number;
  /**
   * Retries after the first attempt for transient faults (network errors, timeouts, HTTP 5xx and 429).
   * @default 4
   */
  readonly maxRetries?: number;
  /**
   * First retry's backoff ceiling; it doubles per retry and the actual delay is drawn uniformly below it.
   * @default 500
   */
  readonly backoffBaseMs?: number;
  /**
   * Upper bound on the computed backoff ceiling (a server's Retry-After is bounded by maxRetryAfterMs instead).
   * @default 30000
   */
  readonly backoffMaxMs?: number;
  /**
   * The longest Retry-After (on 429 or 503) that is waited out. A server asking for more fails the request at
   * once, naming the value, rather than holding a date silently for as long as it likes.
   * @default 60000
   */
  readonly maxRetryAfterMs?: number;
  /**
   * Told of every wait longer than WAIT_REPORT_MS (backoff, Retry-After, rate limit) before it starts, so a
   * user sees why nothing happens. The source writes nowhere itself.
   * @default none
   */
  readonly onWait?: (wait: HttpWait) => void;
  /**
   * Minimum spacing between the starts of two requests from this instance, retries included.
   * @default 250
   */
  readonly minIntervalMs?: number;
  /**
   * The fetch to call; tests and proxies may substitute their own.
   * @default globalThis.fetch
   */
  readonly fetchFn?: typeof fetch;
  /**
   * Waits for backoff and rate limiting; tests inject one that records the delay and resolves at once.
   * @default a setTimeout-based sleep
   */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Source of jitter in [0, 1]; `() => 1` makes every backoff its full ceiling.
   * @default Math.random
   */
  readonly random?: () => number;
  /**
   * Wall clock in epoch milliseconds, for rate limiting and Retry-After dates.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** A wait the source is about to make; `message` reads as `waiting 30 s: HTTP 429 Retry-After 30 for GET ...`. */
export interface HttpWait {
  readonly ms: number;
  readonly reason: 'retry-after' | 'backoff' | 'rate-limit';
  /** The request's URL, redacted. */
  readonly url: string;
  readonly message: string;
}

/** Waits up to this long are routine (rate limit, first backoffs) and not reported. */
export const WAIT_REPORT_MS = 1000;

const cellSchema = z.union([z.string(), z.number(), z.null()]);

const resultSetSchema = z
  .object({
    name: z.string(),
    headers: z.array(z.string()),
    rowSet: z.array(z.array(cellSchema)),
  })
  .superRefine((set, ctx) => {
    // A short or long row would silently shift every later column when read by header.
    const bad = set.rowSet.findIndex((row) => row.length !== set.headers.length);
    if (bad >= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['rowSet', bad],
        message: `row has ${set.rowSet[bad]?.length} cells but there are ${set.headers.length} headers`,
      });
    }
  });

const statsResponseSchema = z.object({
  resource: z.string(),
  parameters: z.record(z.string(), cellSchema),
  resultSets: z.array(resultSetSchema),
});

const isoDateSchema = z.string().refine(isIsoDate, 'expected a YYYY-MM-DD date');

const rosterResponseSchema = z.object({
  team: z.object({ id: z.number().int(), abbreviation: z.string() }),
  season: z.string(),
  asOf: isoDateSchema,
  athletes: z.array(
    z.object({
      id: z.number().int(),
      fullName: z.string(),
      gamesWithTeam: z.number().int().nonnegative(),
      lastAppearance: isoDateSchema,
    }),
  ),
});

/** NBA.com rejects or stalls requests that do not look like they come from its own site. */
const NBA_HEADERS: Readonly<Record<string, string>> = {
  Referer: 'https://www.nba.com/',
  Origin: 'https://www.nba.com',
  'x-nba-stats-origin': 'stats',
  'x-nba-stats-token': 'true',
};

const COMMON_HEADERS: Readonly<Record<string, string>> = {
  Accept: 'application/json',
  'User-Agent': 'nba-backfill/0.1 (season backfill; Node.js fetch)',
};

const BODY_SNIPPET_CHARS = 200;

/** Query-string encoding that leaves `/` readable, as NBA.com's own pages send MM/DD/YYYY. */
function queryString(params: Readonly<Record<string, string>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v).replaceAll('%2F', '/')}`)
    .join('&');
}

function snippet(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_SNIPPET_CHARS ? `${flat.slice(0, BODY_SNIPPET_CHARS)}…` : flat;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : '';
  return shown.join('; ') + more;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** A network-level failure from undici hides the useful part (ECONNREFUSED, ENOTFOUND) in `cause`. */
function networkDetail(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${messageOf(err)} (${detail})` : messageOf(err);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class HttpStatsSource implements StatsSource {
  readonly description: string;
  private readonly baseUrl: string;
  private readonly baseQuery: string;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly onWait: ((wait: HttpWait) => void) | undefined;
  private readonly minIntervalMs: number;
  private readonly fetchFn: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;
  /** Callers queue on this chain, so each waits for the previous request to have actually started. */
  private turns: Promise<void> = Promise.resolve();
  private lastStartAt = Number.NEGATIVE_INFINITY;

  constructor(options: HttpStatsSourceOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.baseUrl);
    } catch (err) {
      throw new BadInputError(`invalid stats base URL "${redact(options.baseUrl)}"`, { where: 'baseUrl', cause: err });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new BadInputError(`stats base URL must be http or https, got "${redact(options.baseUrl)}"`, {
        where: 'baseUrl',
      });
    }
    // A query on the base URL (a proxy's `?api_key=...`) is kept and sent with every request, after the path.
    const queryAt = options.baseUrl.search(/[?#]/);
    const beforeQuery = queryAt < 0 ? options.baseUrl : options.baseUrl.slice(0, queryAt);
    this.baseUrl = beforeQuery.replace(/\/+$/, '');
    this.baseQuery = parsed.search.replace(/^\?/, '');
    this.description = `http:${redact(this.baseUrl + (parsed.search || ''))}`;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.onWait = options.onWait;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetries = options.maxRetries ?? 4;
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
    this.minIntervalMs = options.minIntervalMs ?? 250;
    this.fetchFn = options.fetchFn ?? ((input, init) => fetch(input, init));
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  async leagueGameLog(q: LeagueGameLogQuery): Promise<StatsResponse> {
    for (const [field, value] of [
      ['dateFrom', q.dateFrom],
      ['dateTo', q.dateTo],
    ] as const) {
      if (!isIsoDate(value)) throw new BadInputError(`${field} "${value}" is not a YYYY-MM-DD date`, { where: field });
    }
    const url = this.endpoint(`/stats/leaguegamelog`, {
      Counter: '0',
      DateFrom: toNbaQueryDate(q.dateFrom),
      DateTo: toNbaQueryDate(q.dateTo),
      Direction: 'ASC',
      LeagueID: '00',
      PlayerOrTeam: q.playerOrTeam,
      Season: q.season,
      SeasonType: q.seasonType,
      Sorter: 'DATE',
    });
    return this.getJson(url, { ...COMMON_HEADERS, ...NBA_HEADERS }, statsResponseSchema);
  }

  async teamRoster(q: RosterQuery): Promise<RosterResponse> {
    if (!isIsoDate(q.asOf)) throw new BadInputError(`asOf "${q.asOf}" is not a YYYY-MM-DD date`, { where: 'asOf' });
    const url = this.endpoint(`/espn/teams/${encodeURIComponent(q.teamAbbr)}/roster`, {
      season: q.season,
      date: q.asOf,
    });
    return this.getJson(url, COMMON_HEADERS, rosterResponseSchema);
  }

  private endpoint(path: string, params: Readonly<Record<string, string>>): string {
    const query = queryString(params);
    return `${this.baseUrl}${path}?${this.baseQuery ? `${this.baseQuery}&${query}` : query}`;
  }

  /** Sleeps, first telling onWait about a wait long enough for a user to wonder what is going on. */
  private async wait(ms: number, reason: HttpWait['reason'], why: string, url: string): Promise<void> {
    if (ms > WAIT_REPORT_MS && this.onWait) {
      const shown = redact(url);
      this.onWait({ ms, reason, url: shown, message: `waiting ${seconds(ms)}: ${why} for GET ${shown}` });
    }
    await this.sleep(ms);
  }

  /**
   * Resolves when this request may start: at least minIntervalMs after the previous start. Spacing is measured from
   * when the previous request really started, not when it was scheduled to, so a late timer cannot squeeze two
   * requests together.
   */
  private takeTurn(url: string): Promise<void> {
    const turn = this.turns.then(async () => {
      const wait = this.lastStartAt + this.minIntervalMs - this.now();
      if (wait > 0) await this.wait(wait, 'rate-limit', `rate limit (http.minIntervalMs ${this.minIntervalMs})`, url);
      this.lastStartAt = this.now();
    });
    // A failed sleep must not wedge every later caller.
    this.turns = turn.catch(() => undefined);
    return turn;
  }

  /** Full jitter: uniform in [0, min(max, base * 2^(retry-1))], so retrying clients spread out. */
  private backoffMs(retry: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (retry - 1));
    return Math.round(this.random() * ceiling);
  }

  /** Retry-After as delta-seconds or an HTTP date; undefined when absent or unreadable. */
  private retryAfterMs(value: string | null): number | undefined {
    if (value === null) return undefined;
    const trimmed = value.trim();
    if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
    const at = Date.parse(trimmed);
    return Number.isNaN(at) ? undefined : Math.max(0, at - this.now());
  }

  private async getJson<T>(url: string, headers: Readonly<Record<string, string>>, schema: z.ZodType<T>): Promise<T> {
    const shownUrl = redact(url);
    const attemptsAllowed = this.maxRetries + 1;
    let lastProblem = '';
    let lastCause: unknown;
    for (let attempt = 1; attempt <= attemptsAllowed; attempt++) {
      await this.takeTurn(url);
      const retryNote = `attempt ${attempt + 1} of ${attemptsAllowed}`;
      let res: Response;
      try {
        res = await this.fetchFn(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (err) {
        lastCause = err;
        lastProblem = isTimeout(err) ? `timed out after ${this.timeoutMs} ms` : `network error: ${networkDetail(err)}`;
        if (attempt < attemptsAllowed)
          await this.wait(this.backoffMs(attempt), 'backoff', `${lastProblem}; then ${retryNote}`, url);
        continue;
      }
      const { status, statusText } = res;
      const httpProblem = `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
      let body: string;
      try {
        // Read inside the try: the timeout signal also aborts a body that stalls mid-stream.
        body = await res.text();
      } catch (err) {
        lastCause = err;
        // The headers came, then the connection closed (or stalled) before Content-Length bytes or the last
        // chunk: a cut-off answer, not a bad one, so it is retried like any network fault.
        lastProblem = isTimeout(err)
          ? `${httpProblem} body timed out after ${this.timeoutMs} ms`
          : `${httpProblem} body truncated: the connection closed before the whole body arrived (${networkDetail(err)})`;
        if (attempt < attemptsAllowed)
          await this.wait(this.backoffMs(attempt), 'backoff', `${lastProblem}; then ${retryNote}`, url);
        continue;
      }

      if (status >= 200 && status < 300) return this.parse(url, body, schema);

      const bodyPart = body.trim() ? `: ${redact(snippet(body))}` : '';
      if (status === 429 || status >= 500) {
        lastCause = undefined;
        lastProblem = `${httpProblem}${bodyPart}`;
        const retryAfter = status === 429 || status === 503 ? res.headers.get('retry-after') : null;
        const retryAfterMs = this.retryAfterMs(retryAfter);
        if (retryAfterMs !== undefined && retryAfterMs > this.maxRetryAfterMs) {
          // Waiting out a day-long Retry-After would hold the date, silently, far past any timeout; the server
          // has said it will not answer soon, so say so now.
          throw new ProcessingError(
            `GET ${shownUrl} answered ${httpProblem} with Retry-After ${retryAfter?.trim()} (${seconds(retryAfterMs)}), ` +
              `longer than http.maxRetryAfterMs ${this.maxRetryAfterMs} ms (${seconds(this.maxRetryAfterMs)}); ` +
              `not waiting: try again later or raise --http-max-retry-after-ms / BACKFILL_HTTP_MAX_RETRY_AFTER_MS ` +
              `(after ${plural(attempt, 'attempt')})`,
            { transient: false },
          );
        }
        if (attempt < attemptsAllowed) {
          if (retryAfterMs !== undefined) {
            await this.wait(
              retryAfterMs,
              'retry-after',
              `${httpProblem} Retry-After ${retryAfter?.trim()}; then ${retryNote}`,
              url,
            );
          } else {
            await this.wait(this.backoffMs(attempt), 'backoff', `${httpProblem}; then ${retryNote}`, url);
          }
        }
        continue;
      }
      // Other statuses (4xx, unfollowed 3xx) mean the request itself is wrong; repeating it cannot help.
      throw new ProcessingError(
        `GET ${shownUrl} failed with ${httpProblem} after ${plural(attempt, 'attempt')} (not retried)${bodyPart}`,
        { transient: false },
      );
    }
    throw new ProcessingError(
      `GET ${shownUrl} failed after ${plural(attemptsAllowed, 'attempt')} (${this.maxRetries} retries exhausted); last: ${redact(lastProblem)}`,
      { transient: true, cause: lastCause },
    );
  }

  private parse<T>(url: string, body: string, schema: z.ZodType<T>): T {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch (err) {
      const shown = body.trim() ? `: ${snippet(body)}` : ' (empty body)';
      throw new BadInputError(`GET ${redact(url)} returned a body that is not JSON${redact(shown)}`, {
        where: redact(url),
        cause: err,
      });
    }
    const result = schema.safeParse(json);
    if (!result.success) {
      throw new BadInputError(
        `GET ${redact(url)} returned JSON of an unexpected shape: ${describeIssues(result.error)}`,
        {
          where: redact(url),
          cause: result.error,
        },
      );
    }
    return result.data;
  }
}
