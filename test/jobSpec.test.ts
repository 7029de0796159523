// The Job objects of core/jobs/spec.ts: the fields the cluster and the local runtime both read, one by one,
// and the names the chart and the controller agree on.

import { describe, expect, it } from 'vitest';
import { PLAN_HASH_LABEL, planHash } from '../core/jobs/runNames.js';
import {
  buildJobPlanConfigMap,
  buildStage1Job,
  buildStage3Job,
  EXIT_INDEX_PERMANENT,
  JOB_PLAN_ENV,
  PLAN_CONFIGMAP_ANNOTATION,
  planConfigMapName,
  stage1JobWithPlan,
  stage3JobName,
  stage3TemplateConfigMapName,
} from '../core/jobs/spec.js';

const dates = ['2021-10-19', '2021-10-20', '2021-10-21'];

describe('buildStage1Job', () => {
  const job = buildStage1Job({ season: '2021-22', dates, parallelism: 3, env: { BACKFILL_SOURCE: 'bundled' } });
  const container = () => {
    const [c] = job.spec.template.spec.containers;
    if (!c) throw new Error('no container');
    return c;
  };

  it('is an Indexed Job with one index per date and one retry per index', () => {
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.completions).toBe(3);
    expect(job.spec.parallelism).toBe(3);
    expect(job.spec.backoffLimitPerIndex).toBe(1);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(job.spec).not.toHaveProperty('maxFailedIndexes');
    expect(job.spec).not.toHaveProperty('ttlSecondsAfterFinished');
    expect(job.spec.activeDeadlineSeconds).toBe(3600);
  });

  it('ignores disruptions and fails an index at once on the permanent exit code', () => {
    expect(job.spec.podFailurePolicy.rules).toEqual([
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
      {
        action: 'FailIndex',
        onExitCodes: { containerName: 'phase2-date', operator: 'In', values: [EXIT_INDEX_PERMANENT] },
        onPodConditions: [],
      },
    ]);
  });

  it('runs the phase2-date program with its settings and the failure count from the pod annotation', () => {
    const c = container();
    expect(c.command).toEqual(['node', 'build/jobs/phase2-date/main.js']);
    expect(c.env).toContainEqual({ name: 'BACKFILL_SOURCE', value: 'bundled' });
    expect(c.env).toContainEqual({
      name: 'BACKFILL_INDEX_FAILURE_COUNT',
      valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-index-failure-count']" } },
    });
  });

  it('has a short name, unique per plan and per pod template, valid with the pod suffixes', () => {
    const name = job.metadata.name;
    expect(name).toMatch(/^nba-stage1-202122-[0-9a-f]{8}$/);
    // The same inputs give the same name; other dates, another image, another setting or parallelism another.
    const same = { season: '2021-22', dates, parallelism: 3, env: { BACKFILL_SOURCE: 'bundled' } };
    expect(buildStage1Job(same).metadata.name).toBe(name);
    const others = [
      buildStage1Job({ ...same, dates: dates.slice(1) }),
      buildStage1Job({ ...same, image: `nba-backfill@sha256:${'1'.repeat(64)}` }),
      buildStage1Job({ ...same, image: `nba-backfill@sha256:${'2'.repeat(64)}` }),
      buildStage1Job({ ...same, env: { BACKFILL_SOURCE: 'bundled', BACKFILL_LOG_LEVEL: 'debug' } }),
      buildStage1Job({ ...same, parallelism: 2 }),
    ].map((j) => j.metadata.name);
    expect(new Set([name, ...others]).size).toBe(6);
    // The dates' hash stays a label, whatever the template.
    expect(job.metadata.labels[PLAN_HASH_LABEL]).toBe(planHash(dates));
    expect(`${name}-651-abcde`.length).toBeLessThanOrEqual(63);
    expect(buildStage1Job({ ...same, purpose: 'retry' }).metadata.name).toMatch(/^nba-retry-202122-[0-9a-f]{8}$/);
  });

  it('mounts its plan ConfigMap where BACKFILL_JOB_PLAN points, and names it in an annotation', () => {
    expect(job.metadata.annotations?.[PLAN_CONFIGMAP_ANNOTATION]).toBe(`${job.metadata.name}-plan`);
    expect(job.spec.template.spec.volumes).toContainEqual({
      name: 'job-plan',
      configMap: { name: `${job.metadata.name}-plan`, items: [{ key: 'job-plan.json', path: 'job-plan.json' }] },
    });
    expect(container().volumeMounts).toContainEqual({
      name: 'job-plan',
      mountPath: '/etc/nba-backfill/plan',
      readOnly: true,
    });
    expect(container().env).toContainEqual({ name: JOB_PLAN_ENV, value: '/etc/nba-backfill/plan/job-plan.json' });

    const elsewhere = buildStage1Job({ season: '2021-22', dates, jobPlanPath: '/plans/today.json' });
    const [c] = elsewhere.spec.template.spec.containers;
    expect(c?.volumeMounts).toContainEqual({ name: 'job-plan', mountPath: '/plans', readOnly: true });
    expect(elsewhere.spec.template.spec.volumes?.[0]?.configMap?.items).toEqual([
      { key: 'job-plan.json', path: 'today.json' },
    ]);
    expect(() => buildStage1Job({ season: '2021-22', dates, jobPlanPath: 'plan.json' })).toThrow(/must be absolute/);
  });

  it('meets the restricted profile: non-root 1000, no escalation, no capabilities, RuntimeDefault, read-only root', () => {
    const pod = job.spec.template.spec;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container().securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } });
    expect(container().volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(pod.serviceAccountName).toBe('nba-backfill-job');
  });

  it('logs into the emptyDir unless the settings say otherwise', () => {
    expect(container().env).toContainEqual({ name: 'BACKFILL_LOG_DIR', value: '/tmp/nba-backfill/logs' });
    const own = buildStage1Job({ season: '2021-22', dates, env: { BACKFILL_LOG_DIR: '/var/log/nba' } });
    const env = own.spec.template.spec.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name === 'BACKFILL_LOG_DIR')).toEqual([
      { name: 'BACKFILL_LOG_DIR', value: '/var/log/nba' },
    ]);
  });

  it('sets requests and limits, and refuses a value that is not a quantity', () => {
    expect(container().resources).toEqual({
      requests: { cpu: '250m', memory: '384Mi', 'ephemeral-storage': '256Mi' },
      limits: { cpu: '1', memory: '768Mi', 'ephemeral-storage': '1Gi' },
    });
    expect(() =>
      buildStage1Job({
        season: '2021-22',
        dates,
        resources: { requests: { cpu: 'lots', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } },
      }),
    ).toThrow(/resources.requests.cpu "lots": not a quantity/);
  });

  it('refuses an empty plan and a bad parallelism', () => {
    expect(() => buildStage1Job({ season: '2021-22', dates: [] })).toThrow(/no dates/);
    expect(() => buildStage1Job({ season: '2021-22', dates, parallelism: 0 })).toThrow(
      /parallelism 0: must be a whole number >= 1/,
    );
  });
});

describe('the plan ConfigMap', () => {
  it('holds {jobName, season, dates} under job-plan.json, named after the job', () => {
    const { job, planConfigMap } = stage1JobWithPlan({ season: '2022-23', dates, purpose: 'retry' });
    expect(job.metadata.name).toMatch(/^nba-retry-202223-/);
    expect(planConfigMap.metadata.name).toBe(planConfigMapName(job.metadata.name));
    expect(planConfigMap.metadata.labels['nba-backfill/season']).toBe('2022-23');
    expect(JSON.parse(planConfigMap.data['job-plan.json'] ?? '')).toEqual({
      jobName: job.metadata.name,
      season: '2022-23',
      dates,
    });
    expect(buildJobPlanConfigMap({ jobName: job.metadata.name, season: '2022-23', dates })).toEqual(planConfigMap);
  });
});

describe('buildStage3Job', () => {
  const job = buildStage3Job({ season: '2023-24', dates, env: { BACKFILL_WAREHOUSE: 'bigquery://example-project' } });
  const [c] = job.spec.template.spec.containers;

  it('is one pod, no retry, disruptions ignored, named per plan', () => {
    expect(job.metadata.name).toBe(stage3JobName('2023-24', dates));
    expect(job.metadata.name).toMatch(/^nba-stage3-202324-[0-9a-f]{8}$/);
    expect(job.spec.completions).toBe(1);
    expect(job.spec.parallelism).toBe(1);
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.podFailurePolicy.rules).toEqual([
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    ]);
  });

  it('writes its summary to the termination message, logs into the emptyDir, carries no Argo CD tracking', () => {
    expect(c?.terminationMessagePath).toBe('/dev/termination-log');
    expect(c?.env).toContainEqual({ name: 'BACKFILL_SUMMARY_FILE', value: '/dev/termination-log' });
    expect(c?.env).toContainEqual({ name: 'BACKFILL_LOG_DIR', value: '/tmp/nba-backfill/logs' });
    expect(c?.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(job.metadata.labels).not.toHaveProperty('app.kubernetes.io/instance');
    expect(job.metadata).not.toHaveProperty('annotations');
    expect(job.metadata.labels['app.kubernetes.io/managed-by']).toBe('nba-backfill-controller');
  });

  it('lives in a ConfigMap named per season, which the controller reads through the API', () => {
    expect(stage3TemplateConfigMapName('2023-24')).toBe('nba-backfill-stage3-202324');
  });
});
