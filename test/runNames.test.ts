// Run ids, local Job names at Kubernetes' limits, and the log lines `backfill logs` prints for people.

import { describe, expect, it } from 'vitest';
import type { IsoDate } from '../core/dates.js';
import { BadInputError } from '../core/errors.js';
import {
  checkJobName,
  checkRunId,
  localJobName,
  MAX_RUN_ID_LENGTH,
  newRunId,
  PLAN_HASH_LABEL,
  planHash,
  RUN_ID_LABEL,
  runIdFrom,
} from '../core/jobs/runNames.js';
import { buildStage1Job } from '../core/jobs/spec.js';
import { formatLogLine, latestRun, renderLog } from '../core/runs/runLogs.js';

const DATES = ['2021-10-19', '2021-10-20'] as IsoDate[];
/** A random source that returns the given values in turn. */
const randoms = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};

describe('run ids', () => {
  it('are the UTC time to the millisecond and 4 base-36 characters, from the injected clock and randomness', () => {
    expect(newRunId(new Date('2026-12-01T10:15:30.123Z'), randoms(0, 0.5, 0.999, 0.1))).toBe('20261201-101530123-0iz3');
    expect(newRunId(new Date('2026-01-02T03:04:05.006Z'), randoms(0))).toBe('20260102-030405006-0000');
  });

  it('sort by the time they were drawn, and differ within one millisecond', () => {
    const times = ['2026-12-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z', '2027-01-01T00:00:00.001Z'];
    const ids = times.map((t) => newRunId(new Date(t), randoms(0.99)));
    expect([...ids].sort()).toEqual(ids);
    const same = new Date('2027-01-01T00:00:00.000Z');
    expect(newRunId(same, randoms(0.1))).not.toBe(newRunId(same, randoms(0.2)));
  });

  it('come from $BACKFILL_RUN_ID when it is set, else from the clock', () => {
    const clock = () => new Date('2026-12-01T10:15:30.123Z');
    expect(runIdFrom({ BACKFILL_RUN_ID: 'ci-build-42' }, clock)).toBe('ci-build-42');
    expect(runIdFrom({}, clock, randoms(0))).toBe('20261201-101530123-0000');
    expect(runIdFrom({ BACKFILL_RUN_ID: '' }, clock, randoms(0))).toBe('20261201-101530123-0000');
  });

  it.each([
    { name: 'at the limit (45 characters)', id: 'a'.repeat(MAX_RUN_ID_LENGTH), ok: true },
    { name: 'one over the limit (46)', id: 'a'.repeat(MAX_RUN_ID_LENGTH + 1), ok: false },
    { name: 'upper case', id: 'Run-1', ok: false },
    { name: 'an underscore', id: 'run_1', ok: false },
    { name: "a leading '-'", id: '-run1', ok: false },
    { name: "a trailing '-'", id: 'run1-', ok: false },
    { name: 'one character', id: 'r', ok: true },
  ])('$name: ok $ok', ({ id, ok }) => {
    if (ok) expect(checkRunId(id, 'BACKFILL_RUN_ID')).toBe(id);
    else expect(() => checkRunId(id, 'BACKFILL_RUN_ID')).toThrow(BadInputError);
  });

  it('names the setting, the rule and the length when it refuses one', () => {
    expect(() => checkRunId('a'.repeat(46), 'BACKFILL_RUN_ID')).toThrow(
      `BACKFILL_RUN_ID "${'a'.repeat(46)}": a run id is lowercase letters, digits and '-' (a letter or digit at each end), at most 45 characters (it has 46)`,
    );
  });
});

describe('local Job names', () => {
  it.each([
    { name: '63 characters', job: `nba-${'x'.repeat(59)}`, ok: true },
    { name: '64 characters', job: `nba-${'x'.repeat(60)}`, ok: false },
    { name: 'upper case', job: 'nba-Stage1', ok: false },
    { name: 'a dot', job: 'nba.stage1', ok: false },
    { name: "a trailing '-'", job: 'nba-stage1-', ok: false },
  ])('$name: ok $ok', ({ job, ok }) => {
    if (ok) expect(checkJobName(job)).toBe(job);
    else expect(() => checkJobName(job)).toThrow(BadInputError);
  });

  it.each(['stage1', 'stage3', 'retry'])('%s: the longest run id makes a name of at most 63 characters', (p) => {
    const name = localJobName(p, '2021-22', 'z'.repeat(MAX_RUN_ID_LENGTH));
    expect(name).toBe(`nba-${p}-202122-${'z'.repeat(45)}`);
    expect(name.length).toBe(p === 'retry' ? 62 : 63);
  });

  it('a Stage 1 Job of a run is named after the run and keeps the plan hash in a label', () => {
    const job = buildStage1Job({ season: '2021-22', dates: DATES, runId: '20261201-101530123-k3x9' });
    expect(job.metadata.name).toBe('nba-stage1-202122-20261201-101530123-k3x9');
    expect(job.metadata.labels[RUN_ID_LABEL]).toBe('20261201-101530123-k3x9');
    expect(job.metadata.labels[PLAN_HASH_LABEL]).toBe(planHash(DATES));
    expect(job.spec.template.metadata.labels[RUN_ID_LABEL]).toBe('20261201-101530123-k3x9');
    // Without a run (the chart, the controller, retry --cluster): named by the hash of its template and dates,
    // with the same plan-hash label.
    const cluster = buildStage1Job({ season: '2021-22', dates: DATES });
    expect(cluster.metadata.name).toMatch(/^nba-stage1-202122-[0-9a-f]{8}$/);
    expect(cluster.metadata.labels[PLAN_HASH_LABEL]).toBe(planHash(DATES));
    expect(cluster.metadata.labels[RUN_ID_LABEL]).toBeUndefined();
  });

  it('two runs of the same dates get two names; one run of two seasons shares its id', () => {
    const a = buildStage1Job({ season: '2021-22', dates: DATES, runId: 'run-a' }).metadata.name;
    const b = buildStage1Job({ season: '2021-22', dates: DATES, runId: 'run-b' }).metadata.name;
    expect(a).not.toBe(b);
    const other = buildStage1Job({ season: '2022-23', dates: ['2022-10-18'] as IsoDate[], runId: 'run-a' });
    expect(other.metadata.name).toBe('nba-stage1-202223-run-a');
  });
});

describe('log lines for people', () => {
  const t = '2026-12-01T10:15:30.123Z';
  it.each([
    {
      name: 'a processor line (pino, numeric level)',
      line: `{"level":30,"time":"${t}","processor":"nbac_schedule","rows":12,"msg":"processor succeeded"}`,
      out: `${t} INFO  nbac_schedule: processor succeeded`,
    },
    {
      name: 'a line without a processor',
      line: `{"level":30,"time":"${t}","index":4,"msg":"index started"}`,
      out: `${t} INFO  index started`,
    },
    {
      name: 'an error with its message on one line',
      line: `{"level":50,"time":"${t}","processor":"p","err":{"message":"first\\n  second","stack":"Error: first"},"msg":"processor failed"}`,
      out: `${t} ERROR p: processor failed: first second`,
    },
    {
      name: "Cloud Logging's severity",
      line: `{"severity":"warning","time":"${t}","message":"slow"}`,
      out: `${t} WARNING slow`,
    },
    { name: 'a level name', line: `{"level":"debug","time":"${t}","msg":"m"}`, out: `${t} DEBUG m` },
    { name: 'an unknown level number', line: `{"level":35,"time":"${t}","msg":"m"}`, out: `${t} 35    m` },
    { name: 'an epoch time', line: '{"level":40,"time":0,"msg":"m"}', out: '1970-01-01T00:00:00.000Z WARN  m' },
    { name: 'no time, no level', line: '{"msg":"m"}', out: '- -     m' },
    { name: 'not JSON (a crash on stderr)', line: 'Segmentation fault', out: 'Segmentation fault' },
    { name: 'JSON but not an object', line: '[1,2]', out: '[1,2]' },
  ])('$name', ({ line, out }) => {
    expect(formatLogLine(line)).toBe(out);
  });

  it('--json keeps the raw lines, --tail keeps the last N, blank lines are dropped', () => {
    const text = `{"level":30,"time":"${t}","msg":"a"}\n\n{"level":30,"time":"${t}","msg":"b"}\n{"level":30,"time":"${t}","msg":"c"}\n`;
    expect(renderLog(text, { tail: 2 })).toBe(`${t} INFO  b\n${t} INFO  c\n`);
    expect(renderLog(text, { json: true, tail: 1 })).toBe(`{"level":30,"time":"${t}","msg":"c"}\n`);
    expect(renderLog(text, { tail: 5 })).toBe(`${t} INFO  a\n${t} INFO  b\n${t} INFO  c\n`);
  });

  it("the latest run is the last log's run: both jobs of one `backfill run`, or a job without a run id alone", () => {
    const log = (runId: string | null, job: string) => ({ runId, job, index: 0, file: `${job}.log` });
    expect(latestRun([log('a', 's1-a'), log('b', 's1-b'), log('b', 's3-b')]).map((l) => l.job)).toEqual([
      's1-b',
      's3-b',
    ]);
    expect(latestRun([log(null, 'old1'), log(null, 'old2')]).map((l) => l.job)).toEqual(['old2']);
    expect(latestRun([])).toEqual([]);
  });
});
