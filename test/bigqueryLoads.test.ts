// Load and copy jobs on the BigQuery double, sent by the real client library as the adapter will send them:
// a day of a partitioned table replaced atomically through its partition decorator, a row of another day or
// a schema that differs failing the whole job with nothing written, the daily table operations quota counted
// with failed jobs and enforced, and a truncating load making an open mutating transaction lose at COMMIT.

import { BigQuery, type Job } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BigQueryDouble, type BigQueryTiming } from './support/bigqueryServer.js';

const PROJECT = 'loads-test';
const FIELDS = [
  { name: 'd', type: 'DATE', mode: 'REQUIRED' },
  { name: 'k', type: 'STRING', mode: 'REQUIRED' },
  { name: 'v', type: 'INT64' },
];

let double: BigQueryDouble | undefined;
let bq: BigQuery;
let previousHost: string | undefined;

beforeEach(() => {
  previousHost = process.env.BIGQUERY_EMULATOR_HOST;
});
afterEach(async () => {
  if (previousHost === undefined) delete process.env.BIGQUERY_EMULATOR_HOST;
  else process.env.BIGQUERY_EMULATOR_HOST = previousHost;
  await double?.close();
  double = undefined;
});

/** A double with `ds.p` (partitioned by day on d) and `ds.s` (the same schema), and a client pointed at it. */
async function start(timing: BigQueryTiming = {}): Promise<BigQueryDouble> {
  double = await BigQueryDouble.start({ project: PROJECT, ...timing });
  process.env.BIGQUERY_EMULATOR_HOST = double.url;
  // A load from memory goes through the client's multipart upload, which needs request headers: against an
  // emulator the client sends none unless it has credentials, so it gets a fixed token (no network).
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'test-token', expiry_date: Date.UTC(2100, 0, 1) });
  bq = new BigQuery({ projectId: PROJECT, authClient: auth });
  const [dataset] = await bq.createDataset('ds');
  for (const id of ['p', 's']) {
    await dataset.createTable(id, { schema: { fields: FIELDS }, timePartitioning: { type: 'DAY', field: 'd' } });
  }
  return double;
}

interface Row {
  d: string;
  k: string;
  v: number | null;
}

/** Loads rows through `table` (e.g. `p$20211019`) as createWriteStream does; resolves with the job's error. */
function load(
  table: string,
  rows: readonly Row[],
  options: { write?: string; fields?: unknown[] } = {},
): Promise<(Error & { errors?: { reason: string; location?: string; message: string }[] }) | null> {
  return new Promise((resolve) => {
    const stream = bq
      .dataset('ds')
      .table(table)
      .createWriteStream({
        sourceFormat: 'NEWLINE_DELIMITED_JSON',
        writeDisposition: options.write ?? 'WRITE_TRUNCATE',
        createDisposition: 'CREATE_NEVER',
        schema: { fields: options.fields ?? FIELDS },
      } as never);
    stream.on('complete', () => resolve(null));
    stream.on('error', (err: Error) => resolve(err));
    stream.end(rows.map((r) => JSON.stringify(r)).join('\n'));
  });
}

async function rowsOf(d: BigQueryDouble, table = 'p') {
  return (await d.rows('ds', table, 'd, k')).map((r) => `${r.d} ${r.k} ${r.v}`);
}

const day = (d: string, ...keys: string[]): Row[] => keys.map((k, i) => ({ d, k, v: i }));

describe('load jobs into a day of a partitioned table', () => {
  it('WRITE_TRUNCATE on t$YYYYMMDD replaces exactly that day, and the job log says it was a load', async () => {
    const d = await start();
    expect(await load('p$20211019', day('2021-10-19', 'a', 'b'))).toBeNull();
    expect(await load('p$20211020', day('2021-10-20', 'c'))).toBeNull();
    expect(await load('p$20211019', day('2021-10-19', 'x'))).toBeNull();
    expect(await rowsOf(d)).toEqual(['2021-10-19 x 0', '2021-10-20 c 0']);
    expect(d.jobLog.map((j) => [j.kind, j.tables])).toEqual([
      ['load', ['ds.p']],
      ['load', ['ds.p']],
      ['load', ['ds.p']],
    ]);
    expect(d.violations).toEqual([]);
  });

  it('WRITE_APPEND adds to the day', async () => {
    const d = await start();
    expect(await load('p$20211019', day('2021-10-19', 'a'))).toBeNull();
    expect(await load('p$20211019', day('2021-10-19', 'b'), { write: 'WRITE_APPEND' })).toBeNull();
    expect(await rowsOf(d)).toEqual(['2021-10-19 a 0', '2021-10-19 b 0']);
  });

  it('fails the whole job on a row of another day, with BigQuery’s message, and writes nothing', async () => {
    const d = await start();
    expect(await load('p$20211019', day('2021-10-19', 'a'))).toBeNull();
    const err = await load('p$20211019', [...day('2021-10-19', 'b'), ...day('2021-10-20', 'c')]);
    expect(err?.message).toBe('Some rows belong to different partitions rather than destination partition 20211019');
    expect(err?.errors?.[0]?.reason).toBe('invalid');
    expect(await rowsOf(d)).toEqual(['2021-10-19 a 0']);
  });

  it.each([
    { name: 'a field missing', fields: FIELDS.slice(0, 2), message: /Field v is missing in new schema/ },
    {
      name: 'a type changed',
      fields: [FIELDS[0], FIELDS[1], { name: 'v', type: 'STRING' }],
      message: /Field v has changed/,
    },
    {
      name: 'a mode changed',
      fields: [FIELDS[0], { name: 'k', type: 'STRING' }, FIELDS[2]],
      message: /Field k has changed/,
    },
  ])('refuses a schema that is not the table’s ($name), writing nothing', async ({ fields, message }) => {
    const d = await start();
    const err = await load('p$20211019', day('2021-10-19', 'a'), { fields });
    expect(err?.message).toMatch(/^Provided Schema does not match Table loads-test:ds\.p\./);
    expect(err?.message).toMatch(message);
    expect(await rowsOf(d)).toEqual([]);
  });

  it.each([
    { name: 'a REQUIRED value missing', row: { d: '2021-10-19', v: 1 }, why: /Missing required field: k/ },
    { name: 'a field the table lacks', row: { d: '2021-10-19', k: 'a', w: 1 }, why: /No such field: w/ },
    { name: 'a value of the wrong type', row: { d: '2021-10-19', k: 'a', v: 'many' }, why: /field v/ },
  ])('fails the whole job on $name, writing nothing', async ({ row, why }) => {
    const d = await start();
    const err = await load('p$20211019', [...day('2021-10-19', 'ok'), row as unknown as Row]);
    expect(err?.message).toMatch(/^Error while reading data, error message: JSON table encountered too many errors/);
    expect(err?.message).toMatch(why);
    expect(await rowsOf(d)).toEqual([]);
  });
});

describe('the daily table operations quota (https://cloud.google.com/bigquery/quotas)', () => {
  it('counts load jobs per table and day, failed ones too, and fails the one past it with quotaExceeded', async () => {
    let today = '2021-10-19';
    const d = await start({ tableOperationsPerDay: 3, day: () => today });
    expect(d.quota.tableOperationsPerDay).toBe(3);
    expect(await load('p$20211019', day('2021-10-19', 'a'))).toBeNull();
    // A failed load counts.
    expect(await load('p$20211019', day('2021-10-20', 'x'))).not.toBeNull();
    // Another table has its own count.
    expect(await load('s$20211019', day('2021-10-19', 'a'))).toBeNull();
    expect(await load('p$20211020', day('2021-10-20', 'b'))).toBeNull();
    const err = await load('p$20211021', day('2021-10-21', 'c'));
    expect(err?.errors?.[0]).toMatchObject({ reason: 'quotaExceeded', location: 'load_job_per_table.long' });
    expect(err?.message).toMatch(/^Quota exceeded: Your table exceeded quota for imports or query appends per table/);
    expect(await rowsOf(d)).toEqual(['2021-10-19 a 0', '2021-10-20 b 0']);
    // The next day's quota is fresh.
    today = '2021-10-20';
    expect(await load('p$20211021', day('2021-10-21', 'c'))).toBeNull();
  });

  it('is 1,500 a table a day unless a test lowers it', async () => {
    const d = await start();
    expect(d.quota.tableOperationsPerDay).toBe(1500);
  });
});

describe('copy jobs between days', () => {
  it('WRITE_TRUNCATE from s$D to p$D replaces that day of p with that day of s', async () => {
    const d = await start();
    expect(await load('p$20211019', day('2021-10-19', 'old'))).toBeNull();
    expect(await load('p$20211020', day('2021-10-20', 'keep'))).toBeNull();
    expect(await load('s$20211019', day('2021-10-19', 'new1', 'new2'))).toBeNull();
    const [job] = (await bq.dataset('ds').table('s$20211019').createCopyJob(bq.dataset('ds').table('p$20211019'), {
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_NEVER',
    })) as [Job, unknown];
    await job.promise();
    expect(await rowsOf(d)).toEqual(['2021-10-19 new1 0', '2021-10-19 new2 1', '2021-10-20 keep 0']);
    expect(d.jobLog.at(-1)?.kind).toBe('copy');
  });
});

describe('a truncating load and an open transaction', () => {
  it('the load is never cancelled, and the transaction that mutated the table before it loses at COMMIT', async () => {
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    let holding = () => {};
    const reached = new Promise<void>((r) => (holding = r));
    const d = await start({
      onStatement: async (job, index) => {
        if (job.kind === 'script' && index === 1) {
          holding();
          await held;
        }
      },
    });
    expect(await load('p$20211019', day('2021-10-19', 'a'))).toBeNull();
    const script = bq.query({
      query: [
        'BEGIN TRANSACTION;',
        'DELETE FROM ds.p WHERE d = @d;',
        'INSERT INTO ds.p (d, k, v) VALUES (@d, @k, 1);',
        'COMMIT TRANSACTION;',
      ].join('\n'),
      params: { d: bq.date('2021-10-19'), k: 'tx' },
      useLegacySql: false,
    });
    const outcome = script.then(
      () => null,
      (e: Error) => e,
    );
    await reached;
    expect(await load('p$20211019', day('2021-10-19', 'load'))).toBeNull();
    release();
    expect((await outcome)?.message).toMatch(
      /^Transaction is aborted due to concurrent update against table loads-test:ds\.p\. Transaction ID: /,
    );
    expect(await rowsOf(d)).toEqual(['2021-10-19 load 0']);
    expect(d.abortedTransactions).toBe(1);
  });
});

describe('jobs run asynchronously (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/insert)', () => {
  /** A double whose query and load latencies wait until the test calls `release`. */
  async function held() {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const d = await start({ latencyMs: { query: 1, load: 1 }, sleep: () => gate });
    const get = async (path: string) =>
      (await (await fetch(`${d.url}/bigquery/v2/projects/${PROJECT}/${path}`)).json()) as {
        jobComplete?: boolean;
        status?: { state: string };
        rows?: unknown[];
      };
    return { d, release, get };
  }

  it('jobs.insert answers RUNNING, jobs.get says DONE only once the query ran, and results wait for it', async () => {
    const { release, get } = await held();
    const [job, created] = await bq.createQueryJob({
      query: 'SELECT k FROM ds.p WHERE d = @d',
      params: { d: bq.date('2021-10-19') },
    });
    expect(created.status?.state).toBe('RUNNING');
    expect((await get(`jobs/${job.id}`)).status?.state).toBe('RUNNING');
    expect((await get(`queries/${job.id}?timeoutMs=0`)).jobComplete).toBe(false);
    release();
    const [rows] = await job.getQueryResults();
    expect(rows).toEqual([]);
    expect((await get(`jobs/${job.id}`)).status?.state).toBe('DONE');
  });

  it('a load job is RUNNING when the upload returns and completes after it ran', async () => {
    const { d, release, get } = await held();
    const stream = bq
      .dataset('ds')
      .table('p$20211019')
      .createWriteStream({
        sourceFormat: 'NEWLINE_DELIMITED_JSON',
        writeDisposition: 'WRITE_TRUNCATE',
        createDisposition: 'CREATE_NEVER',
        schema: { fields: FIELDS },
      } as never);
    const created = new Promise<Job>((resolve) => stream.on('job', resolve));
    const done = new Promise<void>((resolve, reject) => {
      stream.on('complete', () => resolve());
      stream.on('error', reject);
    });
    stream.end(JSON.stringify({ d: '2021-10-19', k: 'a', v: 1 }));
    const job = await created;
    expect(job.metadata.status.state).toBe('RUNNING');
    expect(await rowsOf(d)).toEqual([]);
    release();
    await done;
    expect((await get(`jobs/${job.id}`)).status?.state).toBe('DONE');
    expect(await rowsOf(d)).toEqual(['2021-10-19 a 1']);
  });

  it('jobs.query stops waiting after timeoutMs and the job runs on', async () => {
    const { release, get } = await held();
    const res = await fetch(`${double?.url}/bigquery/v2/projects/${PROJECT}/queries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'SELECT COUNT(*) AS n FROM ds.p WHERE d > @d',
        timeoutMs: 0,
        useLegacySql: false,
        parameterMode: 'NAMED',
        queryParameters: [{ name: 'd', parameterType: { type: 'DATE' }, parameterValue: { value: '2021-10-01' } }],
      }),
    });
    const first = (await res.json()) as { jobComplete: boolean; jobReference: { jobId: string } };
    expect(first.jobComplete).toBe(false);
    expect((await get(`jobs/${first.jobReference.jobId}`)).status?.state).toBe('RUNNING');
    release();
    const results = await get(`queries/${first.jobReference.jobId}`);
    expect(results.jobComplete).toBe(true);
    expect(results.rows).toEqual([{ f: [{ v: '0' }] }]);
  });
});
