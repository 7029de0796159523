// The user's JSON files (fault file, job plan, validation report, failure log, plan) read by one helper: bad
// input names the kind of file, its path and, for a body of the wrong shape, the first field that is wrong.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../core/errors.js';
import { loadFaults } from '../core/faults.js';
import { parseJsonFile, readJsonFile } from '../core/files.js';
import { JobPlanSchema, readJobPlan } from '../core/jobs/jobPlan.js';
import { readPlan } from '../core/plan.js';
import { readFailureLog } from '../core/stages/failureLog.js';
import { readValidationReports } from '../core/stages/observe.js';

/** A file `name` holding `text` in a fresh folder; the folder and the file's path. */
function fileWith(name: string, text: string): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'json-files-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return { dir, path };
}

async function refusal(read: () => unknown): Promise<BadInputError> {
  try {
    await read();
  } catch (err) {
    if (err instanceof BadInputError) return err;
    throw err;
  }
  throw new Error('expected bad input');
}

/** Each reader, the file name it reads, the kind it names and a body of the wrong shape with its first field. */
const READERS = [
  {
    name: 'fault file',
    file: 'faults.json',
    read: (_dir: string, path: string) => loadFaults(path),
    wrongShape: { body: { transient: ['2021-10-19'], surprise: 1 }, field: '(root)' },
  },
  {
    name: 'job plan',
    file: 'job-plan.json',
    read: (_dir: string, path: string) => readJobPlan(path),
    wrongShape: { body: { jobName: 'j', season: '2021-22', dates: ['2021-10-19', '19/10/2021'] }, field: 'dates.1' },
  },
  {
    name: 'validation report',
    file: 'validation-2021-22.json',
    read: (dir: string) => readValidationReports(dir),
    wrongShape: { body: { seasons: ['2021-22'], dates: [], passed: 'yes', generatedAt: 'x' }, field: 'passed' },
  },
  {
    name: 'failure log',
    file: 'failures.json',
    read: (_dir: string, path: string) => readFailureLog(path),
    wrongShape: {
      body: { jobName: 'j', season: '2021-22', completedIndexes: '', failedIndexes: '', failed: 5 },
      field: 'failed',
    },
  },
  {
    name: 'plan',
    file: '2021-22.json',
    read: (dir: string) => readPlan(dir, '2021-22'),
    wrongShape: {
      body: { season: '2021-22', source: 'elsewhere', totals: { dates: 1, games: 1 }, dates: [] },
      field: 'source',
    },
  },
] as const;

describe('a JSON file of the user that is not valid JSON', () => {
  it.each(READERS)('$name: names the kind, the file and that it is not JSON', async ({ name, file, read }) => {
    const { dir, path } = fileWith(file, '{"season": "2021-22",');
    const err = await refusal(() => read(dir, path));
    expect(err.message).toMatch(new RegExp(`^${name} ${path.replace(/[.]/g, '\\.')}: not valid JSON: `));
    expect(err.where).toBe(path);
  });
});

describe('a JSON file of the user of the wrong shape', () => {
  it.each(READERS)(
    '$name: names the kind, the file and the first wrong field',
    async ({ name, file, read, wrongShape }) => {
      const { dir, path } = fileWith(file, JSON.stringify(wrongShape.body));
      const err = await refusal(() => read(dir, path));
      expect(err.message.startsWith(`${name} ${path}: ${wrongShape.field}: `)).toBe(true);
      expect(err.where).toBe(path);
    },
  );
});

describe('the helper itself', () => {
  it('returns the parsed body, with the schema’s defaults applied', () => {
    const { path } = fileWith('faults.json', '{}');
    expect(loadFaults(path)).toEqual({ transient: [], permanent: [], corrupt: [] });
    const plan = { jobName: 'j', season: '2021-22', dates: ['2021-10-19'] };
    expect(parseJsonFile(JSON.stringify(plan), 'p.json', 'job plan', JobPlanSchema)).toEqual(plan);
  });

  it('names a file it cannot read, with the reason', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'json-files-')), 'missing.json');
    const err = await refusal(() => readJsonFile(path, 'job plan', JobPlanSchema));
    expect(err.message).toMatch(new RegExp(`^job plan ${path.replace(/[.]/g, '\\.')}: ENOENT`));
  });
});
