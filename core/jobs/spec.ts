// The Stage 1 Indexed Job, built once as a plain batch/v1 Job: the cdk8s chart synthesizes it into
// dist/, and the local job runtime runs the very same object on this machine.

import { createHash } from 'node:crypto';
import type { IsoDate } from '../dates.js';

/** Exit codes of the phase2-date program; the pod failure policy fails an index at once on PERMANENT. */
export const EXIT_INDEX_OK = 0;
export const EXIT_INDEX_RETRIABLE = 1;
export const EXIT_INDEX_PERMANENT = 2;

export const PHASE2_DATE_CONTAINER = 'phase2-date';
/** Where the pod finds the job's dates (a ConfigMap volume in the cluster, a file locally). */
export const JOB_PLAN_ENV = 'BACKFILL_JOB_PLAN';
/** How many times this index already failed; the cluster fills it from the pod annotation. */
export const INDEX_FAILURE_COUNT_ENV = 'BACKFILL_INDEX_FAILURE_COUNT';

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: { readonly fieldRef: { readonly fieldPath: string } };
}

export interface PodFailurePolicyRule {
  readonly action: 'FailJob' | 'FailIndex' | 'Ignore' | 'Count';
  readonly onExitCodes?: {
    readonly containerName?: string;
    readonly operator: 'In' | 'NotIn';
    readonly values: readonly number[];
  };
  readonly onPodConditions?: readonly { readonly type: string; readonly status?: string }[];
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly env: readonly EnvVar[];
  readonly [key: string]: unknown;
}

/** The subset of batch/v1 Job this project sets and the local runtime reads. */
export interface IndexedJob {
  readonly apiVersion: 'batch/v1';
  readonly kind: 'Job';
  readonly metadata: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly completionMode: 'Indexed';
    readonly completions: number;
    readonly parallelism: number;
    readonly backoffLimitPerIndex: number;
    readonly activeDeadlineSeconds: number;
    readonly podFailurePolicy: { readonly rules: readonly PodFailurePolicyRule[] };
    readonly template: {
      readonly metadata: { readonly labels: Readonly<Record<string, string>> };
      readonly spec: {
        readonly restartPolicy: 'Never';
        readonly containers: readonly ContainerSpec[];
        readonly [key: string]: unknown;
      };
    };
  };
}

/** The job plan: what one Stage 1 Job does, the file its pods read their date from. */
export interface JobPlan {
  readonly jobName: string;
  readonly season: string;
  readonly dates: readonly IsoDate[];
}

export interface Stage1JobOptions {
  readonly season: string;
  readonly dates: readonly IsoDate[];
  /** Pods running at once. @default 2 */
  readonly parallelism?: number;
  /** @default 'nba-backfill:latest' */
  readonly image?: string;
  /** Where the job plan file is mounted in the pod. @default '/etc/nba-backfill/plan/job-plan.json' */
  readonly jobPlanPath?: string;
  /** Settings passed to the pods (warehouse, objects, source, ...) as BACKFILL_* variables. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** A name suffix for retry jobs, e.g. `retry`. */
  readonly purpose?: string;
  /** @default 3600 (one hour for a season at parallelism 2 leaves a wide margin) */
  readonly activeDeadlineSeconds?: number;
}

/**
 * Short and unique per plan: the season and a hash of the dates. Pod names add `-<index>-<random>`, and the
 * job name is also a label value (63 characters at most), so it stays well under that.
 */
export function stage1JobName(season: string, dates: readonly IsoDate[], purpose = 'stage1'): string {
  const hash = createHash('sha256').update(dates.join(',')).digest('hex').slice(0, 8);
  return `nba-${purpose}-${season.replace('-', '')}-${hash}`;
}

export function buildStage1Job(options: Stage1JobOptions): IndexedJob {
  if (options.dates.length === 0) throw new Error(`Stage 1 job for ${options.season}: no dates`);
  const parallelism = options.parallelism ?? 2;
  if (!Number.isInteger(parallelism) || parallelism < 1) {
    throw new Error(`Stage 1 job parallelism ${parallelism}: must be a whole number >= 1`);
  }
  const name = stage1JobName(options.season, options.dates, options.purpose ?? 'stage1');
  const labels = {
    'app.kubernetes.io/name': 'nba-backfill',
    'app.kubernetes.io/component': 'stage1',
    'app.kubernetes.io/part-of': 'nba-backfill',
    'nba-backfill/season': options.season,
  };
  const env: EnvVar[] = [
    { name: JOB_PLAN_ENV, value: options.jobPlanPath ?? '/etc/nba-backfill/plan/job-plan.json' },
    // Kubernetes counts an index's failures on its pods; the program uses it as the attempt number.
    {
      name: INDEX_FAILURE_COUNT_ENV,
      valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-index-failure-count']" } },
    },
    { name: 'BACKFILL_LOG_LEVEL', value: 'info' },
    ...Object.entries(options.env ?? {})
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => ({ name: k, value: v })),
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels },
    spec: {
      completionMode: 'Indexed',
      completions: options.dates.length,
      parallelism,
      // One retry per date: a transient failure gets a second chance, then the date is recorded as failed.
      backoffLimitPerIndex: 1,
      activeDeadlineSeconds: options.activeDeadlineSeconds ?? 3600,
      podFailurePolicy: {
        rules: [
          // An eviction or preemption is not the date's fault and must not use up its retry.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
          // Bad input will not get better by trying again.
          {
            action: 'FailIndex',
            onExitCodes: { containerName: PHASE2_DATE_CONTAINER, operator: 'In', values: [EXIT_INDEX_PERMANENT] },
          },
        ],
      },
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: PHASE2_DATE_CONTAINER,
              image: options.image ?? 'nba-backfill:latest',
              command: ['node', 'build/jobs/phase2-date/main.js'],
              env,
            },
          ],
        },
      },
    },
  };
}

export const PHASE3_RUNNER_CONTAINER = 'phase3-runner';
/** Where the Stage 3 pod writes its summary; Kubernetes shows the file as the pod's termination message. */
export const TERMINATION_MESSAGE_PATH = '/dev/termination-log';

/** batch/v1 Job for Stage 3: one pod, no retry on error, evictions ignored so a replacement pod resumes. */
export interface SinglePodJob {
  readonly apiVersion: 'batch/v1';
  readonly kind: 'Job';
  readonly metadata: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly completions: 1;
    readonly parallelism: 1;
    readonly backoffLimit: 0;
    readonly activeDeadlineSeconds: number;
    readonly podFailurePolicy: { readonly rules: readonly PodFailurePolicyRule[] };
    readonly template: {
      readonly metadata: { readonly labels: Readonly<Record<string, string>> };
      readonly spec: {
        readonly restartPolicy: 'Never';
        readonly containers: readonly ContainerSpec[];
        readonly [key: string]: unknown;
      };
    };
  };
}

export interface Stage3JobOptions {
  readonly season: string;
  /** The plan's dates: the name is unique per plan, so a new plan gets a new Stage 3 Job. */
  readonly dates: readonly IsoDate[];
  /** @default 'regular' */
  readonly seasonType?: string;
  /** @default 'nba-backfill:latest' */
  readonly image?: string;
  /** Settings passed to the pod as BACKFILL_* variables. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** @default 7200 */
  readonly activeDeadlineSeconds?: number;
}

/** Deterministic per plan: the controller creates it once; "already exists" means it was created. */
export function stage3JobName(season: string, dates: readonly IsoDate[]): string {
  return stage1JobName(season, dates, 'stage3');
}

export function buildStage3Job(options: Stage3JobOptions): SinglePodJob {
  if (options.dates.length === 0) throw new Error(`Stage 3 job for ${options.season}: no dates`);
  const labels = {
    'app.kubernetes.io/name': 'nba-backfill',
    'app.kubernetes.io/component': 'stage3',
    'app.kubernetes.io/part-of': 'nba-backfill',
    'nba-backfill/season': options.season,
  };
  const env: EnvVar[] = [
    { name: 'BACKFILL_SEASON', value: options.season },
    { name: 'BACKFILL_SEASON_TYPE', value: options.seasonType ?? 'regular' },
    { name: 'BACKFILL_SUMMARY_FILE', value: TERMINATION_MESSAGE_PATH },
    { name: 'BACKFILL_LOG_LEVEL', value: 'info' },
    ...Object.entries(options.env ?? {})
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => ({ name: k, value: v })),
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: stage3JobName(options.season, options.dates), labels },
    spec: {
      completions: 1,
      parallelism: 1,
      // An error stops Stage 3 for a person to look at; a rerun resumes at the first incomplete date.
      backoffLimit: 0,
      activeDeadlineSeconds: options.activeDeadlineSeconds ?? 7200,
      podFailurePolicy: {
        rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] }],
      },
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: PHASE3_RUNNER_CONTAINER,
              image: options.image ?? 'nba-backfill:latest',
              command: ['node', 'build/jobs/phase3-runner/main.js'],
              env,
              terminationMessagePath: TERMINATION_MESSAGE_PATH,
              terminationMessagePolicy: 'File',
            },
          ],
        },
      },
    },
  };
}
