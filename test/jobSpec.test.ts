// The Stage 1 Indexed Job object: the fields the cluster and the local runtime both read, one by one.

import { describe, expect, it } from 'vitest';
import { buildStage1Job, EXIT_INDEX_PERMANENT, stage1JobName } from '../core/jobs/spec.js';

const dates = ['2021-10-19', '2021-10-20', '2021-10-21'];

describe('buildStage1Job', () => {
  const job = buildStage1Job({ season: '2021-22', dates, parallelism: 3, env: { BACKFILL_SOURCE: 'bundled' } });

  it('is an Indexed Job with one index per date and one retry per index', () => {
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.completions).toBe(3);
    expect(job.spec.parallelism).toBe(3);
    expect(job.spec.backoffLimitPerIndex).toBe(1);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(job.spec).not.toHaveProperty('maxFailedIndexes');
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });

  it('ignores disruptions and fails an index at once on the permanent exit code', () => {
    expect(job.spec.podFailurePolicy.rules).toEqual([
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
      {
        action: 'FailIndex',
        onExitCodes: { containerName: 'phase2-date', operator: 'In', values: [EXIT_INDEX_PERMANENT] },
      },
    ]);
  });

  it('runs the phase2-date program with its settings and the failure count from the pod annotation', () => {
    const [c] = job.spec.template.spec.containers;
    expect(c?.command).toEqual(['node', 'build/jobs/phase2-date/main.js']);
    expect(c?.env).toContainEqual({ name: 'BACKFILL_SOURCE', value: 'bundled' });
    expect(c?.env).toContainEqual({
      name: 'BACKFILL_INDEX_FAILURE_COUNT',
      valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-index-failure-count']" } },
    });
  });

  it('has a short name, unique per plan, valid with the pod suffixes', () => {
    const name = stage1JobName('2021-22', dates);
    expect(job.metadata.name).toBe(name);
    expect(name).toMatch(/^nba-stage1-202122-[0-9a-f]{8}$/);
    expect(stage1JobName('2021-22', dates.slice(1))).not.toBe(name);
    expect(`${name}-651-abcde`.length).toBeLessThanOrEqual(63);
    expect(stage1JobName('2021-22', dates, 'retry')).toMatch(/^nba-retry-202122-/);
  });

  it('refuses an empty plan and a bad parallelism', () => {
    expect(() => buildStage1Job({ season: '2021-22', dates: [] })).toThrow(/no dates/);
    expect(() => buildStage1Job({ season: '2021-22', dates, parallelism: 0 })).toThrow(
      /parallelism 0: must be a whole number >= 1/,
    );
  });
});
