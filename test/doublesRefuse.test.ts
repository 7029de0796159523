// The local stand-ins for BigQuery, GCS and the stats API refuse bad requests the way the real services do,
// and record them: a double that answered everything would let a broken adapter pass.

import { BigQuery } from '@google-cloud/bigquery';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { HttpStatsSource } from '../core/adapters/source/http.js';
import { BigQueryDouble } from './support/bigqueryServer.js';
import { type GcsServer, startGcsServer } from './support/gcsServer.js';
import { type StatsServer, startStatsServer } from './support/statsServer.js';

const PROJECT = 'refuse-test';

describe('the BigQuery double refuses what BigQuery refuses', () => {
  let double: BigQueryDouble;
  beforeAll(async () => {
    double = await BigQueryDouble.start({ project: PROJECT });
  });
  afterAll(async () => {
    await double?.close();
  });

  const post = (path: string, body: string) =>
    fetch(`${double.url}/bigquery/v2/projects/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });

  it.each([
    {
      name: 'SQL that does not parse',
      path: `${PROJECT}/queries`,
      body: { query: 'SELEC 1', useLegacySql: false },
      status: 400,
      reason: 'invalidQuery',
      message: /^Syntax error/,
      violation: /cannot parse/,
    },
    {
      name: 'legacy SQL (the adapter must always send useLegacySql: false)',
      path: `${PROJECT}/queries`,
      body: { query: 'SELECT 1' },
      status: 400,
      reason: 'invalid',
      message: /useLegacySql/,
      violation: /useLegacySql/,
    },
    {
      name: 'a field jobs.query does not have',
      path: `${PROJECT}/queries`,
      body: { query: 'SELECT 1', useLegacySql: false, sql: 'SELECT 2' },
      status: 400,
      reason: 'invalid',
      message: /Invalid/,
      violation: /sql/,
    },
    {
      name: 'a parameter the query names but the request lacks',
      path: `${PROJECT}/queries`,
      body: { query: 'SELECT @missing AS x', useLegacySql: false, parameterMode: 'NAMED', queryParameters: [] },
      status: 400,
      reason: 'invalidQuery',
      message: /Query parameter 'missing' not found/,
      violation: null,
    },
    {
      name: 'a table in a dataset that does not exist',
      path: `${PROJECT}/queries`,
      body: { query: 'SELECT * FROM nowhere.t', useLegacySql: false },
      status: 404,
      reason: 'notFound',
      message: /nowhere/,
      violation: null,
    },
    {
      name: 'another project',
      path: 'someone-else/queries',
      body: { query: 'SELECT 1', useLegacySql: false },
      status: 404,
      reason: 'notFound',
      message: /Not found: Project someone-else/,
      violation: null,
    },
    {
      name: 'an API the adapter must not call (streaming inserts)',
      path: `${PROJECT}/datasets/d/tables/t/insertAll`,
      body: { rows: [] },
      status: 404,
      reason: 'notFound',
      message: /not an API the adapter should call/,
      violation: /unexpected request POST/,
    },
  ])('$name', async ({ path, body, status, reason, message, violation }) => {
    const before = double.violations.length;
    const res = await post(path, JSON.stringify(body));
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: { code: number; message: string; errors: { reason: string }[] } };
    expect(json.error.code).toBe(status);
    expect(json.error.errors[0]?.reason).toBe(reason);
    expect(json.error.message).toMatch(message);
    const added = double.violations.slice(before);
    if (violation) expect(added.join('\n')).toMatch(violation);
    else expect(added).toEqual([]);
  });

  it('answers a body that is not JSON with parseError', async () => {
    const res = await post(`${PROJECT}/queries`, '{"query": ');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { errors: { reason: string }[] } }).error.errors[0]?.reason).toBe(
      'parseError',
    );
  });

  it('hands its error to the real client library, which raises it', async () => {
    const previous = process.env.BIGQUERY_EMULATOR_HOST;
    process.env.BIGQUERY_EMULATOR_HOST = double.url;
    try {
      const bq = new BigQuery({ projectId: PROJECT });
      const err = (await bq.query({ query: 'SELEC 1', useLegacySql: false }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/Syntax error/);
    } finally {
      if (previous === undefined) delete process.env.BIGQUERY_EMULATOR_HOST;
      else process.env.BIGQUERY_EMULATOR_HOST = previous;
    }
  });
});

describe('the GCS double refuses what GCS refuses', () => {
  let gcs: GcsServer;
  const CLIENT = { 'user-agent': 'gcloud-node-storage/7.22.0' };
  beforeAll(async () => {
    gcs = await startGcsServer({ buckets: ['raw'] });
  });
  afterAll(async () => {
    await gcs?.close();
  });

  it.each([
    {
      name: 'a bucket that does not exist',
      method: 'GET',
      path: '/b/missing/o',
      headers: CLIENT,
      status: 404,
      problem: null,
    },
    {
      name: 'a multipart upload sent as JSON',
      method: 'POST',
      path: '/upload/storage/v1/b/raw/o?uploadType=multipart&name=a.json',
      headers: { ...CLIENT, 'content-type': 'application/json' },
      status: 400,
      problem: null,
    },
    {
      name: 'an upload type the adapter does not use',
      method: 'POST',
      path: '/upload/storage/v1/b/raw/o?uploadType=resumable&name=a.json',
      headers: CLIENT,
      status: 400,
      problem: null,
    },
    {
      name: 'a request that is not the storage client',
      method: 'GET',
      path: '/b/raw/o',
      headers: { 'user-agent': 'curl/8' },
      status: 200,
      problem: /user-agent "curl\/8" is not the storage client's/,
    },
    {
      name: 'an object name whose slashes are not percent-encoded',
      method: 'GET',
      path: '/b/raw/o/a/b.json',
      headers: CLIENT,
      status: 404,
      problem: /slashes must be percent-encoded/,
    },
    {
      name: 'a verb the adapter never sends (delete)',
      method: 'DELETE',
      path: '/b/raw/o/a.json',
      headers: CLIENT,
      status: 404,
      problem: /not a request this server expects/,
    },
  ])('$name', async ({ method, path, headers, status, problem }) => {
    const before = gcs.problems.length;
    const res = await fetch(`${gcs.url}${path}`, { method, headers, body: method === 'POST' ? '{}' : undefined });
    expect(res.status).toBe(status);
    await res.text();
    const added = gcs.problems.slice(before);
    if (problem) expect(added.join('\n')).toMatch(problem);
    else expect(added).toEqual([]);
  });
});

describe('the stats API double refuses what NBA.com refuses', () => {
  let stats: StatsServer;
  beforeAll(async () => {
    stats = await startStatsServer(new BundledStatsSource());
  });
  afterAll(async () => {
    await stats?.close();
  });

  const gameLog =
    '/stats/leaguegamelog?Counter=0&DateFrom=10/19/2021&DateTo=10/19/2021&Direction=ASC&LeagueID=00&PlayerOrTeam=T&Season=2021-22&SeasonType=Regular+Season&Sorter=DATE';

  it.each([
    {
      name: 'a date not in MM/DD/YYYY',
      path: gameLog.replace('DateFrom=10/19/2021', 'DateFrom=2021-10-19'),
      body: /DateFrom/,
    },
    { name: 'another league', path: gameLog.replace('LeagueID=00', 'LeagueID=10'), body: /LeagueID must be 00/ },
    { name: 'an unknown season type', path: gameLog.replace('Regular+Season', 'Preseason'), body: /SeasonType/ },
    {
      name: 'neither players nor teams',
      path: gameLog.replace('PlayerOrTeam=T', 'PlayerOrTeam=X'),
      body: /PlayerOrTeam/,
    },
    {
      name: 'an unknown team roster',
      path: '/espn/teams/XYZ/roster?season=2021-22&date=2021-10-19',
      body: /unknown team/,
    },
  ])('answers 400 to $name', async ({ path, body }) => {
    const res = await fetch(`${stats.url}${path}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(body);
  });

  it('the real HTTP source reports the 400 with its message and does not retry it', async () => {
    const source = new HttpStatsSource({ baseUrl: stats.url, minIntervalMs: 0, sleep: async () => {} });
    const before = stats.requests.length;
    const err = (await source
      .teamRoster({ season: '2021-22', teamAbbr: 'XYZ', asOf: '2021-10-19' })
      .catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/HTTP 400.*unknown team "XYZ".*not retried|not retried.*unknown team/s);
    expect(stats.requests.length - before).toBe(1);
  });
});
