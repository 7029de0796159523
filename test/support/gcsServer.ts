// A loopback HTTP server speaking the parts of the GCS JSON API that @google-cloud/storage uses for our object
// store (multipart upload, media download, object metadata, paginated listing), checking each request.

import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GcsRequest {
  readonly method: string;
  /** Path and query exactly as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The status the server answered with. */
  status?: number;
}

export interface StoredObject {
  readonly bucket: string;
  readonly name: string;
  readonly body: Buffer;
  readonly contentType: string;
  readonly generation: string;
  readonly created: string;
}

/**
 * Answers the next `times` requests whose `METHOD path?query` contains `match` with `status`, or, for a media
 * download with `corrupt`, with the object's bytes damaged under its true X-Goog-Hash.
 */
export interface GcsFault {
  readonly match: string;
  readonly status?: number;
  readonly corrupt?: boolean;
  readonly message?: string;
  /** @default 1 */
  readonly times?: number;
}

export interface GcsServerOptions {
  /** Buckets that exist. */
  readonly buckets: readonly string[];
  /** The most objects one page of a listing holds, whatever maxResults asks (the API may return fewer). @default 1000 */
  readonly maxPageSize?: number;
}

export interface GcsServer {
  /** The value for STORAGE_EMULATOR_HOST: the client puts the JSON API's `/b/...` paths right under it. */
  readonly url: string;
  readonly requests: readonly GcsRequest[];
  /** Requests the server had to refuse as malformed or unknown: a test expects none. */
  readonly problems: readonly string[];
  object(bucket: string, name: string): StoredObject | undefined;
  injectFaults(faults: readonly GcsFault[]): void;
  pendingFaults(): number;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli) as GCS reports it: the big-endian 4 bytes, base64. */
export function crc32cBase64(body: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of body) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

function md5Base64(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

function sendError(res: ServerResponse, err: ApiError): void {
  res.writeHead(err.status, { 'Content-Type': 'application/json; charset=UTF-8' });
  res.end(
    JSON.stringify({
      error: {
        code: err.status,
        message: err.message,
        errors: [{ message: err.message, domain: 'global', reason: err.reason }],
      },
    }),
  );
}

function sendJson(res: ServerResponse, payload: unknown): void {
  res.writeHead(200, { 'Content-Type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(payload));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface Part {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Splits a multipart/related body (RFC 2387) into its parts. */
function parseMultipart(body: Buffer, contentType: string): Part[] {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new ApiError(400, 'invalid', 'multipart upload without a boundary in Content-Type');
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw new ApiError(400, 'invalid', 'multipart body does not start with its boundary');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, at);
    if (next < 0) throw new ApiError(400, 'invalid', 'multipart body is not closed by its final boundary');
    let part = body.subarray(at, next);
    part = part.subarray(part.indexOf('\n') + 1); // the line break after the boundary
    const split = part.indexOf('\r\n\r\n') >= 0 ? part.indexOf('\r\n\r\n') : part.indexOf('\n\n');
    if (split < 0) throw new ApiError(400, 'invalid', 'multipart part without a blank line after its headers');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, split).toString('utf8').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let content = part.subarray(split + (part[split] === 13 ? 4 : 2));
    // The line break before the next boundary belongs to the delimiter, not the content.
    if (content.subarray(-2).toString() === '\r\n') content = content.subarray(0, -2);
    else if (content.subarray(-1).toString() === '\n') content = content.subarray(0, -1);
    parts.push({ headers, body: content });
    at = next;
  }
  return parts;
}

export async function startGcsServer(options: GcsServerOptions): Promise<GcsServer> {
  const buckets = new Map<string, Map<string, StoredObject>>(options.buckets.map((b) => [b, new Map()]));
  const maxPageSize = options.maxPageSize ?? 1000;
  const requests: GcsRequest[] = [];
  const problems: string[] = [];
  const faults: { fault: GcsFault; left: number }[] = [];
  let generation = Date.now() * 1000;
  let base = '';

  const bucketOf = (name: string): Map<string, StoredObject> => {
    const b = buckets.get(name);
    if (!b) throw new ApiError(404, 'notFound', 'The specified bucket does not exist.');
    return b;
  };

  const resource = (o: StoredObject) => {
    const enc = encodeURIComponent(o.name);
    return {
      kind: 'storage#object',
      id: `${o.bucket}/${o.name}/${o.generation}`,
      selfLink: `${base}/storage/v1/b/${o.bucket}/o/${enc}`,
      mediaLink: `${base}/download/storage/v1/b/${o.bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket: o.bucket,
      generation: o.generation,
      metageneration: '1',
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.body.length),
      md5Hash: md5Base64(o.body),
      crc32c: crc32cBase64(o.body),
      etag: `${o.generation}`,
      timeCreated: o.created,
      updated: o.created,
      timeStorageClassUpdated: o.created,
    };
  };

  const upload = async (req: IncomingMessage, bucket: string, query: URLSearchParams) => {
    const objects = bucketOf(bucket);
    const body = await readBody(req);
    const uploadType = query.get('uploadType');
    let name = query.get('name') ?? undefined;
    let contentType = 'application/octet-stream';
    let media: Buffer;
    if (uploadType === 'multipart') {
      const type = req.headers['content-type'] ?? '';
      if (!/^multipart\/related/i.test(type)) {
        throw new ApiError(400, 'invalid', `uploadType=multipart needs Content-Type multipart/related, got "${type}"`);
      }
      const parts = parseMultipart(body, type);
      if (parts.length !== 2) throw new ApiError(400, 'invalid', `a multipart upload has 2 parts, got ${parts.length}`);
      const [meta, data] = parts as [Part, Part];
      if (!/^application\/json/i.test(meta.headers['content-type'] ?? '')) {
        throw new ApiError(
          400,
          'invalid',
          'the first part of a multipart upload must be the application/json metadata',
        );
      }
      let metadata: { name?: unknown; contentType?: unknown };
      try {
        metadata = JSON.parse(meta.body.toString('utf8')) as typeof metadata;
      } catch {
        throw new ApiError(400, 'parseError', 'Parse Error');
      }
      if (typeof metadata.name === 'string') name = metadata.name;
      contentType =
        typeof metadata.contentType === 'string'
          ? metadata.contentType
          : (data.headers['content-type'] ?? 'application/octet-stream');
      media = data.body;
    } else if (uploadType === 'media') {
      contentType = req.headers['content-type'] ?? contentType;
      media = body;
    } else {
      throw new ApiError(400, 'invalid', `uploadType "${uploadType}" is not served by this test server`);
    }
    if (!name) throw new ApiError(400, 'required', 'Required');
    const ifGenerationMatch = query.get('ifGenerationMatch');
    if (ifGenerationMatch !== null && (objects.get(name)?.generation ?? '0') !== ifGenerationMatch) {
      throw new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
    }
    const stored: StoredObject = {
      bucket,
      name,
      body: media,
      contentType,
      generation: String(++generation),
      created: new Date().toISOString(),
    };
    objects.set(name, stored);
    return resource(stored);
  };

  const list = (bucket: string, query: URLSearchParams) => {
    const objects = bucketOf(bucket);
    const prefix = query.get('prefix') ?? '';
    const asked = Number(query.get('maxResults') ?? maxPageSize);
    if (!Number.isInteger(asked) || asked < 1) throw new ApiError(400, 'invalid', `Invalid value for maxResults`);
    const pageSize = Math.min(asked, maxPageSize);
    const token = query.get('pageToken');
    let after = '';
    if (token !== null) {
      after = Buffer.from(token, 'base64url').toString('utf8');
      if (!after.startsWith(prefix)) throw new ApiError(400, 'invalid', 'Invalid page token');
    }
    // The API lists in lexicographic order of the names' bytes, which JavaScript's UTF-16 order matches for these names.
    const names = [...objects.keys()].filter((n) => n.startsWith(prefix) && n > after).sort();
    const page = names.slice(0, pageSize);
    const out: Record<string, unknown> = {
      kind: 'storage#objects',
      items: page.map((n) => resource(objects.get(n) as StoredObject)),
    };
    if (names.length > page.length) out.nextPageToken = Buffer.from(page.at(-1) as string).toString('base64url');
    return out;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const fault = faults.find((f) => f.left > 0 && `${method} ${req.url}`.includes(f.fault.match));
    if (fault) fault.left -= 1;
    if (fault?.fault.status !== undefined) {
      await readBody(req);
      const status = fault.fault.status;
      const err = new ApiError(
        status,
        status >= 500 ? 'backendError' : status === 429 ? 'rateLimitExceeded' : 'forbidden',
        fault.fault.message ?? `injected fault: HTTP ${status}`,
      );
      sendError(res, err);
      return err.status;
    }
    if (!/^gcloud-node-storage\//.test(req.headers['user-agent'] ?? '')) {
      problems.push(`${method} ${req.url}: user-agent "${req.headers['user-agent']}" is not the storage client's`);
    }
    // The client puts uploads under /upload/storage/v1 and everything else right under STORAGE_EMULATOR_HOST;
    // the real API's /storage/v1 prefix is accepted too.
    const path = url.pathname.replace(/^\/storage\/v1(?=\/b\/)/, '');
    const up = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);
    if (up && method === 'POST') {
      sendJson(res, await upload(req, decodeURIComponent(up[1] as string), url.searchParams));
      return 200;
    }
    const listing = /^\/b\/([^/]+)\/o$/.exec(path);
    if (listing && method === 'GET') {
      sendJson(res, list(decodeURIComponent(listing[1] as string), url.searchParams));
      return 200;
    }
    const one = /^\/b\/([^/]+)\/o\/(.+)$/.exec(path);
    if (one && method === 'GET') {
      const bucket = decodeURIComponent(one[1] as string);
      const encoded = one[2] as string;
      if (encoded.includes('/')) {
        problems.push(`${method} ${req.url}: the object name's slashes must be percent-encoded`);
      }
      const name = decodeURIComponent(encoded);
      const o = bucketOf(bucket).get(name);
      if (!o) throw new ApiError(404, 'notFound', `No such object: ${bucket}/${name}`);
      if (url.searchParams.get('alt') === 'media') {
        res.writeHead(200, {
          'Content-Type': o.contentType,
          'Content-Length': String(o.body.length),
          'X-Goog-Hash': `crc32c=${crc32cBase64(o.body)},md5=${md5Base64(o.body)}`,
          'X-Goog-Generation': o.generation,
          'X-Goog-Metageneration': '1',
          'X-Goog-Stored-Content-Encoding': 'identity',
          'X-Goog-Stored-Content-Length': String(o.body.length),
          ETag: o.generation,
        });
        const body = Buffer.from(o.body);
        if (fault?.fault.corrupt && body.length > 0) body[0] = (body[0] as number) ^ 0xff;
        res.end(body);
      } else {
        sendJson(res, resource(o));
      }
      return 200;
    }
    problems.push(`${method} ${req.url}: not a request this server expects`);
    throw new ApiError(404, 'notFound', `Not Found: ${method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    const record: GcsRequest = { method: req.method ?? '', url: req.url ?? '/', headers: req.headers };
    requests.push(record);
    handle(req, res).then(
      (status) => {
        record.status = status;
      },
      (err: unknown) => {
        const apiErr = err instanceof ApiError ? err : new ApiError(500, 'backendError', String(err));
        record.status = apiErr.status;
        if (!res.headersSent) sendError(res, apiErr);
        else res.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    problems,
    object: (bucket, name) => buckets.get(bucket)?.get(name),
    injectFaults(more) {
      for (const fault of more) faults.push({ fault, left: fault.times ?? 1 });
    },
    pendingFaults: () => faults.reduce((n, f) => n + f.left, 0),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
