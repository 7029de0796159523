// The BigQuery double lets jobs that write one table run side by side only as BigQuery does
// (test/support/bigqueryContention.ts): a second mutating transaction is cancelled with BigQuery's error,
// appends run beside a mutation, DML outside a transaction waits its turn (2 running, 20 queued, then an
// error), and a transaction loses at COMMIT to a mutation committed after it began. Every wait here ends on
// an event the test controls (a held statement, a sleep it releases), never on the wall clock.

import { BigQuery } from '@google-cloud/bigquery';
import { afterEach, describe, expect, it } from 'vitest';
import { DML_QUEUED_PER_TABLE, DML_RUNNING_PER_TABLE, type JobRecord } from './support/bigqueryContention.js';
import { BigQueryDouble, type BigQueryTiming } from './support/bigqueryServer.js';

const PROJECT = 'contention-test';
const TABLE = 'ds.t';

let double: BigQueryDouble | undefined;
afterEach(async () => {
  await double?.close();
  double = undefined;
});

/** A double with one table `ds.t (k STRING, v STRING)`. */
async function start(timing: BigQueryTiming = {}): Promise<BigQueryDouble> {
  double = await BigQueryDouble.start({ project: PROJECT, ...timing });
  const post = (path: string, body: unknown) =>
    fetch(`${double?.url}/bigquery/v2/projects/${PROJECT}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  expect((await post('datasets', { datasetReference: { datasetId: 'ds' } })).status).toBe(200);
  const fields = [
    { name: 'k', type: 'STRING' },
    { name: 'v', type: 'STRING' },
  ];
  const table = { tableReference: { projectId: PROJECT, datasetId: 'ds', tableId: 't' }, schema: { fields } };
  expect((await post('datasets/ds/tables', table)).status).toBe(200);
  return double;
}

interface Answer {
  status: number;
  reason?: string;
  message?: string;
}

/** jobs.query with STRING parameters; the answer's status and, for an error, its reason and message. */
async function query(d: BigQueryDouble, sql: string, params: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${d.url}/bigquery/v2/projects/${PROJECT}/queries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: sql,
      useLegacySql: false,
      // The answer waits for the job: its end is what the test controls, so the wait must not end first
      // (jobs.query gives up after timeoutMs, 10 s by default; BigQuery caps it at about 200 s).
      timeoutMs: 200_000,
      parameterMode: 'NAMED',
      queryParameters: Object.entries(params).map(([name, value]) => ({
        name,
        parameterType: { type: 'STRING' },
        parameterValue: { value },
      })),
    }),
  });
  const body = (await res.json()) as { error?: { message: string; errors: { reason: string }[] } };
  return body.error
    ? { status: res.status, reason: body.error.errors[0]?.reason ?? '', message: body.error.message }
    : { status: res.status };
}

const replace = (k: string, v: string) =>
  `${[
    `BEGIN TRANSACTION;`,
    `DELETE FROM ${TABLE} WHERE k = @k;`,
    `INSERT INTO ${TABLE} (k, v) VALUES (@k, @v);`,
    `COMMIT TRANSACTION;`,
  ].join('\n')}\n-- ${k}=${v}`;

/** A gate a test opens: `wait()` resolves once `open()` was called. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, wait: () => opened };
}

/** Yields to the event loop until `ready()` holds (each turn lets the double's requests move on). */
/**
 * Waits until `ready()` holds. What it waits for is the double's own progress (a statement reaching its held
 * sleep after DuckDB ran the one before), which takes DuckDB's time: a bound on event-loop turns alone was a
 * clock in disguise (about 50 ms) and failed on a loaded machine. The bound here only ends a test that is
 * stuck; nothing is asserted about how long the wait took.
 */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 30_000 && !ready(); i++) await new Promise((r) => setTimeout(r, i < 100 ? 0 : 2));
  expect(ready()).toBe(true);
}

async function rows(d: BigQueryDouble) {
  return (await d.rows('ds', 't', 'k, v')).map((r) => `${r.k}=${r.v}`);
}

const ABORT =
  /^Transaction is aborted due to concurrent update against table contention-test:ds\.t\. Transaction ID: [0-9a-f-]{36}$/;

describe('transactions on one table (https://cloud.google.com/bigquery/docs/transactions)', () => {
  /** A double whose first script holds after its DELETE (statement 2) until the test opens `held`. */
  async function holdingFirstTransaction() {
    const held = gate();
    const holding = gate();
    let first: string | undefined;
    const d = await start({
      onStatement: async (job, index) => {
        first ??= job.id;
        if (job.id === first && index === 1) {
          holding.open();
          await held.wait();
        }
      },
    });
    return { d, held, holding };
  }

  it('cancels a second transaction that mutates a table an open one mutated, with BigQuery’s error', async () => {
    const { d, held, holding } = await holdingFirstTransaction();
    const a = query(d, replace('g1', 'a'), { k: 'g1', v: 'a' });
    await holding.wait();
    const b = await query(d, replace('g1', 'b'), { k: 'g1', v: 'b' });
    expect(b).toMatchObject({ status: 400, reason: 'invalidQuery' });
    expect(b.message).toMatch(ABORT);
    held.open();
    expect(await a).toEqual({ status: 200 });
    expect(await rows(d)).toEqual(['g1=a']);
    expect(d.abortedTransactions).toBe(1);
    const [ja, jb] = d.jobLog;
    expect([ja?.kind, jb?.kind]).toEqual(['script', 'script']);
    expect(jb?.error?.message).toBe(b.message);
    expect(jb?.error?.message).toContain(jb?.transactionId);
    expect(ja?.error).toBeUndefined();
  });

  it('hands the abort to the real client library as the error BigQuery raises', async () => {
    const { d, held, holding } = await holdingFirstTransaction();
    const previous = process.env.BIGQUERY_EMULATOR_HOST;
    process.env.BIGQUERY_EMULATOR_HOST = d.url;
    try {
      const bq = new BigQuery({ projectId: PROJECT });
      const run = (v: string) => bq.query({ query: replace('g1', v), params: { k: 'g1', v }, useLegacySql: false });
      const a = run('a');
      await holding.wait();
      const err = (await run('b').catch((e: unknown) => e)) as Error & { code?: number };
      expect(err.message).toMatch(ABORT);
      expect(err.code).toBe(400);
      held.open();
      await a;
      expect(await rows(d)).toEqual(['g1=a']);
    } finally {
      if (previous === undefined) delete process.env.BIGQUERY_EMULATOR_HOST;
      else process.env.BIGQUERY_EMULATOR_HOST = previous;
    }
  });

  it('lets a transaction that only appends run beside the open mutating one', async () => {
    const { d, held, holding } = await holdingFirstTransaction();
    const a = query(d, replace('g1', 'a'), { k: 'g1', v: 'a' });
    await holding.wait();
    const append = ['BEGIN TRANSACTION;', `INSERT INTO ${TABLE} (k, v) VALUES (@k, @v);`, 'COMMIT TRANSACTION;'].join(
      '\n',
    );
    expect(await query(d, append, { k: 'g2', v: 'x' })).toEqual({ status: 200 });
    held.open();
    expect(await a).toEqual({ status: 200 });
    expect(await rows(d)).toEqual(['g1=a', 'g2=x']);
    expect(d.abortedTransactions).toBe(0);
  });

  it('once the first commits, the same transaction runs: the lock lasts as long as the transaction', async () => {
    const { d, held, holding } = await holdingFirstTransaction();
    const a = query(d, replace('g1', 'a'), { k: 'g1', v: 'a' });
    await holding.wait();
    held.open();
    await a;
    expect(await query(d, replace('g1', 'b'), { k: 'g1', v: 'b' })).toEqual({ status: 200 });
    expect(await rows(d)).toEqual(['g1=b']);
  });

  it('cancels a transaction at COMMIT when a mutation of its table committed after it began', async () => {
    // The transaction holds right after BEGIN; a DELETE outside any transaction then runs and commits.
    const held = gate();
    const holding = gate();
    const d = await start({
      onStatement: async (job, index) => {
        if (job.kind === 'script' && index === 0) {
          holding.open();
          await held.wait();
        }
      },
    });
    const a = query(d, replace('g1', 'a'), { k: 'g1', v: 'a' });
    await holding.wait();
    expect(await query(d, `DELETE FROM ${TABLE} WHERE k = @k`, { k: 'g9' })).toEqual({ status: 200 });
    held.open();
    const answer = await a;
    expect(answer).toMatchObject({ status: 400, reason: 'invalidQuery' });
    expect(answer.message).toMatch(ABORT);
    expect(await rows(d)).toEqual([]);
  });
});

describe('DML outside a transaction (https://cloud.google.com/bigquery/docs/data-manipulation-language)', () => {
  /** A double whose DML latency is a sleep the test ends, one at a time. */
  async function withHeldDml() {
    const sleeping: (() => void)[] = [];
    const d = await start({
      latencyMs: { dml: 1 },
      sleep: () => new Promise<void>((resolve) => sleeping.push(resolve)),
    });
    return { d, sleeping };
  }

  it(`runs ${DML_RUNNING_PER_TABLE} mutating statements on a table at once, queues ${DML_QUEUED_PER_TABLE}, and refuses the next`, async () => {
    expect([DML_RUNNING_PER_TABLE, DML_QUEUED_PER_TABLE]).toEqual([2, 20]);
    const { d, sleeping } = await withHeldDml();
    const del = (k: string) => query(d, `DELETE FROM ${TABLE} WHERE k = @k`, { k });
    const outstanding = Array.from({ length: 22 }, (_, i) => del(`k${i}`));
    await until(() => d.jobLog.length === 22 && sleeping.length === 2);
    expect(d.maxQueuedDml).toBe(20);
    const refused = await del('k22');
    expect(refused).toEqual({
      status: 400,
      reason: 'resourcesExceeded',
      message:
        'Resources exceeded during query execution: Too many DML statements outstanding against table contention-test:ds.t, limit is 20.',
    });
    // Each statement that ends lets the first queued one run: never more than two sleep at once.
    for (let done = 0; done < 22; done++) {
      await until(() => sleeping.length > 0);
      expect(sleeping.length).toBeLessThanOrEqual(2);
      sleeping.shift()?.();
    }
    expect((await Promise.all(outstanding)).every((a) => a.status === 200)).toBe(true);
    // First come, first run: the statements ended in the order they were sent.
    const ended = d.jobLog
      .filter((j): j is JobRecord & { end: number } => j.error === undefined)
      .sort((a, b) => a.end - b.end);
    expect(ended.map((j) => j.seq)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
  });

  it('an INSERT never waits in the queue of mutating statements', async () => {
    const { d, sleeping } = await withHeldDml();
    const del = (k: string) => query(d, `DELETE FROM ${TABLE} WHERE k = @k`, { k });
    const outstanding = Array.from({ length: 22 }, (_, i) => del(`k${i}`));
    await until(() => sleeping.length === 2 && d.jobLog.length === 22);
    // An INSERT takes its (held) latency beside them and is not refused.
    const insert = query(d, `INSERT INTO ${TABLE} (k, v) VALUES (@k, @v)`, { k: 'new', v: 'x' });
    await until(() => sleeping.length === 3);
    sleeping.pop()?.();
    expect(await insert).toEqual({ status: 200 });
    for (let done = 0; done < 22; done++) {
      await until(() => sleeping.length > 0);
      sleeping.shift()?.();
    }
    await Promise.all(outstanding);
    expect(await rows(d)).toEqual(['new=x']);
  });

  it('waits behind an open mutating transaction on its table, then runs', async () => {
    const held = gate();
    const holding = gate();
    const d = await start({
      onStatement: async (job, index) => {
        if (job.kind === 'script' && index === 1) {
          holding.open();
          await held.wait();
        }
      },
    });
    const a = query(d, replace('g1', 'a'), { k: 'g1', v: 'a' });
    await holding.wait();
    let deleted = false;
    const del = query(d, `DELETE FROM ${TABLE} WHERE k = @k`, { k: 'g1' }).then((r) => {
      deleted = true;
      return r;
    });
    await until(() => d.jobLog.length === 2);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(deleted).toBe(false);
    held.open();
    expect(await a).toEqual({ status: 200 });
    expect(await del).toEqual({ status: 200 });
    expect(await rows(d)).toEqual([]);
  });
});

describe('modeled time', () => {
  it('each kind takes its latency, a script its latency per statement, on the clock the double is given', async () => {
    let t = 0;
    const timers: { at: number; resolve: () => void }[] = [];
    const d = await start({
      latencyMs: { query: 1000, dml: 3000, scriptStatement: 2000 },
      now: () => t,
      sleep: (ms) => new Promise<void>((resolve) => timers.push({ at: t + ms, resolve })),
    });
    /** Moves the clock to the next timer and fires it. */
    const step = async () => {
      await until(() => timers.length > 0);
      timers.sort((a, b) => a.at - b.at);
      const next = timers.shift() as { at: number; resolve: () => void };
      t = next.at;
      next.resolve();
    };
    const read = query(d, `SELECT k FROM ${TABLE} WHERE k = @k`, { k: 'g1' });
    await step();
    await read;
    const script = query(d, replace('g1', 'a'), { k: 'g1', v: 'a' });
    for (let i = 0; i < 4; i++) await step();
    await script;
    const dml = query(d, `DELETE FROM ${TABLE} WHERE k = @k`, { k: 'g1' });
    await step();
    await dml;
    expect(d.jobLog.map((j) => [j.kind, j.start, j.end])).toEqual([
      ['query', 0, 1000],
      ['script', 1000, 9000],
      ['dml', 9000, 12000],
    ]);
  });
});
