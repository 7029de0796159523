// Bytes processed and billed on the BigQuery double, as BigQuery's on-demand pricing counts them: the logical
// bytes of the referenced columns in the partitions a statement scans, a DELETE's whole partitions on top,
// rounded up to the MiB with 10 MiB minimums per table and per statement. Sent through the real client.

import { BigQuery } from '@google-cloud/bigquery';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BigQueryDouble, billedBytes } from './support/bigqueryServer.js';

const PROJECT = 'billing-test';
const MIB = 1024 * 1024;

let double: BigQueryDouble | undefined;
let bq: BigQuery;
let previousHost: string | undefined;

beforeEach(async () => {
  previousHost = process.env.BIGQUERY_EMULATOR_HOST;
  double = await BigQueryDouble.start({ project: PROJECT });
  process.env.BIGQUERY_EMULATOR_HOST = double.url;
  bq = new BigQuery({ projectId: PROJECT });
  const [dataset] = await bq.createDataset('ds');
  const fields = [
    { name: 'd', type: 'DATE', mode: 'REQUIRED' },
    { name: 'k', type: 'STRING', mode: 'REQUIRED' },
    { name: 'v', type: 'INT64' },
    { name: 'b', type: 'BOOL' },
  ];
  for (const id of ['p', 's']) {
    await dataset.createTable(id, { schema: { fields }, timePartitioning: { type: 'DAY', field: 'd' } });
  }
  // Logical bytes per row (DATE 8, STRING 2 + UTF-8 bytes, INT64 8, BOOL 1, NULL 0):
  //   2021-10-19 'abc' 1 true   8 + 5 + 8 + 1 = 22
  //   2021-10-19 'é'  NULL NULL 8 + 4 + 0 + 0 = 12   ('é' is 2 bytes of UTF-8)
  //   2021-10-20 'xy' 5 false   8 + 4 + 8 + 1 = 21
  const insert = 'INSERT INTO ds.p (d, k, v, b) VALUES';
  await run(`${insert} (@d, @k, @v, @b)`, { d: bq.date('2021-10-19'), k: 'abc', v: 1, b: true });
  await run(`${insert} (@d, @k, CAST(NULL AS INT64), CAST(NULL AS BOOL))`, { d: bq.date('2021-10-19'), k: 'é' });
  await run(`${insert} (@d, @k, @v, @b)`, { d: bq.date('2021-10-20'), k: 'xy', v: 5, b: false });
});
afterEach(async () => {
  if (previousHost === undefined) delete process.env.BIGQUERY_EMULATOR_HOST;
  else process.env.BIGQUERY_EMULATOR_HOST = previousHost;
  await double?.close();
  double = undefined;
});

/** Runs a query job; resolves with the job's statistics as jobs.get reports them. */
async function run(query: string, params: Record<string, unknown> = {}) {
  const [job] = await bq.createQueryJob({ query, params, useLegacySql: false });
  await job.getQueryResults();
  const [meta] = await job.getMetadata();
  const stats = meta.statistics.query as { totalBytesProcessed: string; totalBytesBilled: string };
  return { processed: Number(stats.totalBytesProcessed), billed: Number(stats.totalBytesBilled) };
}

describe('billedBytes: rounding and minimums', () => {
  it('rounds up to the MiB, with 10 MiB per table referenced and per statement', () => {
    expect(billedBytes([])).toBe(0);
    expect(billedBytes([0])).toBe(10 * MIB);
    expect(billedBytes([10 * MIB])).toBe(10 * MIB);
    expect(billedBytes([10 * MIB + 1])).toBe(11 * MIB);
    expect(billedBytes([1, 1])).toBe(20 * MIB);
    expect(billedBytes([11 * MIB, 0])).toBe(21 * MIB);
  });
});

describe('bytes a statement processes', () => {
  it('counts the logical bytes of the referenced columns only, NULLs as nothing', async () => {
    // k: 5 + 4 + 4; no other column is read.
    expect(await run('SELECT k FROM ds.p WHERE k <> @x', { x: 'q' })).toEqual({ processed: 13, billed: 10 * MIB });
    expect(await run('SELECT v, b FROM ds.p')).toEqual({ processed: 16 + 2, billed: 10 * MIB });
  });

  it('counts only the partitions a constant filter on the partition column selects', async () => {
    expect(await run('SELECT k, v FROM ds.p WHERE d = @d', { d: bq.date('2021-10-19') })).toEqual({
      processed: 16 + 9 + 8,
      billed: 10 * MIB,
    });
    expect((await run('SELECT * FROM ds.p WHERE d > @d', { d: bq.date('2021-10-19') })).processed).toBe(21);
    // A filter on another column prunes nothing.
    expect((await run('SELECT * FROM ds.p WHERE v = 5')).processed).toBe(55);
  });

  it('bills 10 MiB for each table a statement references', async () => {
    const two = await run('SELECT p.k FROM ds.p AS p JOIN ds.s AS s ON p.k = s.k');
    expect(two.billed).toBe(20 * MIB);
    // A table read twice is one table referenced, over the union of what both reads need.
    const twice = await run('SELECT k FROM ds.p WHERE v IN (SELECT v FROM ds.p WHERE d = @d)', {
      d: bq.date('2021-10-20'),
    });
    expect(twice).toEqual({ processed: 24 + 13 + 16, billed: 10 * MIB });
  });

  it('bills a DELETE for its scan plus every column of the partitions it deletes from', async () => {
    // q' = d over 2021-10-19 (16); t' = every column of that day (22 + 12).
    expect(await run('DELETE FROM ds.p WHERE d = @d', { d: bq.date('2021-10-19') })).toEqual({
      processed: 16 + 34,
      billed: 10 * MIB,
    });
  });

  it('adds up a script statement by statement, and the job log keeps what each job was billed', async () => {
    const script = await run(
      `BEGIN TRANSACTION;
       DELETE FROM ds.p WHERE d = @d;
       INSERT INTO ds.p (d, k) SELECT d, k FROM ds.s WHERE d = @d;
       COMMIT TRANSACTION;`,
      { d: bq.date('2021-10-20') },
    );
    // The DELETE: d (8) + the day's row (21); the INSERT reads ds.s, which is empty.
    expect(script).toEqual({ processed: 29, billed: 20 * MIB });
    const logged = double?.jobLog.filter((j) => j.kind !== 'load').map((j) => [j.kind, (j.bytesBilled ?? 0) / MIB]);
    // The set-up's INSERT ... VALUES scan no table and bill nothing.
    expect(logged).toEqual([
      ['dml', 0],
      ['dml', 0],
      ['dml', 0],
      ['script', 20],
    ]);
  });
});
