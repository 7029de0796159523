// `--force` and BACKFILL_FORCE: a Stage 1 pod writes a date whose raw files did not change only when told to,
// and a forced Job is another Job (its pod template differs), so GitOps creates it instead of failing on an
// immutable template.

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { FORCE_ENV } from '../core/jobs/spec.js';
import { stage1Job } from '../core/stages/stage1.js';
import { forceOf } from '../jobs/phase2-date/runIndex.js';

describe('BACKFILL_FORCE in the pod', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['false', false],
    ['true', true],
  ])('%j means %s', (value, expected) => {
    expect(forceOf(value === undefined ? {} : { [FORCE_ENV]: value })).toBe(expected);
  });

  it.each(['1', 'yes', 'TRUE', 'ture'])('a typo (%j) is refused, naming the setting', (value) => {
    expect(() => forceOf({ [FORCE_ENV]: value })).toThrow(`${FORCE_ENV}=${value}: must be true or false`);
  });
});

describe('a forced Stage 1 Job', () => {
  const config = loadConfig({ env: {}, file: undefined });
  const base = { season: '2021-22', dates: ['2021-10-19', '2021-10-20'], parallelism: 2, config };

  it('sets BACKFILL_FORCE in its pods and has a name of its own; an unforced one sets nothing', () => {
    const plain = stage1Job(base);
    const forced = stage1Job({ ...base, force: true });
    const envOf = (job: typeof plain) =>
      Object.fromEntries((job.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(envOf(forced)[FORCE_ENV]).toBe('true');
    expect(envOf(plain)[FORCE_ENV]).toBeUndefined();
    expect(forced.metadata.name).not.toBe(plain.metadata.name);
    expect(stage1Job({ ...base, force: false }).metadata.name).toBe(plain.metadata.name);
  });
});
