// The chart's settings: placeholder defaults for a GCP project, each overridable by a CHART_* variable at
// synth time, validated with the same rules the programs apply to their BACKFILL_* settings.

import { join } from 'node:path';
import { type Config, ConfigSchema, DEFAULTS, isInlineFaults } from '../core/config.js';
import { BadInputError, messageOf } from '../core/errors.js';
import { loadFaults } from '../core/faults.js';
import {
  DEFAULT_IMAGE,
  DEFAULT_NAMESPACE,
  type ImagePullPolicy,
  imagePullPolicyFor,
  imageReferenceProblem,
  POD_LOG_DIR,
} from '../core/jobs/spec.js';
import { packageRoot } from '../core/paths.js';
import { SEASON_TYPE_CHOICES, type SeasonTypeChoice } from '../core/pipeline/seasons.js';

/**
 * The chart's own variables. They are not the programs' BACKFILL_* variables on purpose: a shell set up for
 * local runs (BACKFILL_WAREHOUSE=duckdb:...) must not leak into the committed manifests.
 */
export const CHART_ENV = {
  namespace: 'CHART_NAMESPACE',
  image: 'CHART_IMAGE',
  imagePullPolicy: 'CHART_IMAGE_PULL_POLICY',
  gcpProject: 'CHART_GCP_PROJECT',
  gcsBucket: 'CHART_GCS_BUCKET',
  gcsPrefix: 'CHART_GCS_PREFIX',
  warehouse: 'CHART_WAREHOUSE',
  objects: 'CHART_OBJECTS',
  events: 'CHART_EVENTS',
  source: 'CHART_SOURCE',
  gcpServiceAccount: 'CHART_GCP_SERVICE_ACCOUNT',
  seasons: 'CHART_SEASONS',
  seasonType: 'CHART_SEASON_TYPE',
  stage1Parallelism: 'CHART_STAGE1_PARALLELISM',
  stage1DeadlineSeconds: 'CHART_STAGE1_DEADLINE_SECONDS',
  stage3DeadlineSeconds: 'CHART_STAGE3_DEADLINE_SECONDS',
  extraEnv: 'CHART_EXTRA_ENV',
  planDir: 'CHART_PLAN_DIR',
} as const;

/** Placeholders: edit them here (committed, so `npm run synth:check` agrees) or set the variables. */
export const CHART_DEFAULTS = {
  namespace: DEFAULT_NAMESPACE,
  image: DEFAULT_IMAGE,
  gcpProject: 'example-project',
  gcsBucket: 'example-bucket',
  gcsPrefix: 'nba-backfill',
  source: 'bundled',
  seasonType: 'regular' as SeasonTypeChoice,
  /** BigQuery DML per date is slower than DuckDB: more pods at once, and a deadline of hours, not one. */
  stage1Parallelism: 4,
  stage1DeadlineSeconds: 4 * 3600,
  stage3DeadlineSeconds: 6 * 3600,
} as const;

export interface ChartConfig {
  /** @default 'nba-backfill' */
  readonly namespace: string;
  /** An image reference without a registry host by default; a digest (`repo@sha256:...`) in production. @default 'nba-backfill:latest' */
  readonly image: string;
  /**
   * Every pod's pull policy: Always for a tag (it can move), IfNotPresent for a digest. Override only for an
   * image loaded into the nodes by hand (kind), which no registry serves.
   */
  readonly imagePullPolicy: ImagePullPolicy;
  /** The programs' settings (the BACKFILL_* variables of every pod), validated by core/config.ts. */
  readonly settings: Config;
  /** The Google service account every Kubernetes ServiceAccount acts as (GKE Workload Identity). */
  readonly gcpServiceAccount: string;
  /** Seasons to synthesize; each needs `plans/<season>.json`. @default every plan file in planDir */
  readonly seasons: readonly string[] | undefined;
  /** @default 'regular' */
  readonly seasonType: SeasonTypeChoice;
  /** @default 4 */
  readonly stage1Parallelism: number;
  /** @default 14400 */
  readonly stage1DeadlineSeconds: number;
  /** @default 21600 */
  readonly stage3DeadlineSeconds: number;
  /** Variables added to every pod after the settings (for example emulator hosts in kind). @default {} */
  readonly extraEnv: Readonly<Record<string, string>>;
  /** @default '<package root>/plans' */
  readonly planDir: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function wholeNumber(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BadInputError(`${name}=${raw}: must be a whole number from ${min} to ${max}`, { where: name });
  }
  return n;
}

/** `A=1,B=two` to { A: '1', B: 'two' }; names as environment variable names. */
export function parseExtraEnv(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part.trim() : part.slice(0, eq).trim();
    if (eq < 0 || !/^[A-Z_][A-Z0-9_]*$/.test(name)) {
      throw new BadInputError(
        `${CHART_ENV.extraEnv}: "${part}" is not NAME=value (NAME in capitals, digits and _; pairs separated by commas, so a value holds none)`,
        { where: CHART_ENV.extraEnv },
      );
    }
    out[name] = part.slice(eq + 1);
  }
  checkExtraFaults(out.BACKFILL_FAULTS);
  return out;
}

/**
 * Faults for the pods (BACKFILL_FAULTS in CHART_EXTRA_ENV, as the kind run injects one) must be the fault JSON
 * itself: the image holds no fault file and a pod's root filesystem is read-only. Checked at synth time, so that
 * a mistake fails here rather than every Stage 1 index. CHART_EXTRA_ENV splits on commas, so the JSON can hold
 * none: one date per list, `{"permanent":["2021-10-20"]}`.
 */
function checkExtraFaults(value: string | undefined): void {
  if (!value) return;
  const where = { where: CHART_ENV.extraEnv };
  if (!isInlineFaults(value)) {
    throw new BadInputError(
      `${CHART_ENV.extraEnv}: BACKFILL_FAULTS=${value}: must be the fault JSON itself, starting with { (a pod has no fault file to read)`,
      where,
    );
  }
  try {
    loadFaults(value);
  } catch (err) {
    throw new BadInputError(`${CHART_ENV.extraEnv}: ${messageOf(err)}`, where);
  }
}

/** The chart's settings from the defaults and the CHART_* variables in `env`. */
export function loadChartConfig(env: Env = process.env): ChartConfig {
  const pick = (key: keyof typeof CHART_ENV): string | undefined => {
    const v = env[CHART_ENV[key]];
    return v === undefined || v === '' ? undefined : v;
  };
  const project = pick('gcpProject') ?? CHART_DEFAULTS.gcpProject;
  const bucket = pick('gcsBucket') ?? CHART_DEFAULTS.gcsBucket;
  const prefix = pick('gcsPrefix') ?? CHART_DEFAULTS.gcsPrefix;
  const wanted = {
    warehouse: pick('warehouse') ?? `bigquery://${project}`,
    objects: pick('objects') ?? (prefix ? `gs://${bucket}/${prefix}` : `gs://${bucket}`),
    events: pick('events') ?? `pubsub://${project}`,
    source: pick('source') ?? CHART_DEFAULTS.source,
  };
  const parsed = ConfigSchema.safeParse({ ...DEFAULTS, ...wanted, logDir: POD_LOG_DIR });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]) as keyof typeof wanted;
      const derivedFrom = {
        warehouse: CHART_ENV.gcpProject,
        events: CHART_ENV.gcpProject,
        objects: `${CHART_ENV.gcsBucket} and ${CHART_ENV.gcsPrefix}`,
        source: 'the default',
      };
      const from = pick(key) !== undefined ? CHART_ENV[key] : derivedFrom[key];
      return `${key} = ${JSON.stringify(wanted[key])} (from ${from}): ${issue.message}`;
    });
    throw new BadInputError(`invalid chart settings:\n  ${lines.join('\n  ')}`, { where: 'chart settings' });
  }
  const production = { warehouse: 'bigquery', objects: 'gs', events: 'pubsub' } as const;
  for (const key of ['warehouse', 'objects', 'events'] as const) {
    if (parsed.data[key].kind !== production[key]) {
      throw new BadInputError(
        `${CHART_ENV[key]}=${wanted[key]}: a cluster needs the production adapter (pods share no disk)`,
        { where: CHART_ENV[key] },
      );
    }
  }
  const seasonType = (pick('seasonType') ?? CHART_DEFAULTS.seasonType) as SeasonTypeChoice;
  if (!SEASON_TYPE_CHOICES.includes(seasonType)) {
    throw new BadInputError(`${CHART_ENV.seasonType}=${seasonType}: must be one of ${SEASON_TYPE_CHOICES.join(', ')}`, {
      where: CHART_ENV.seasonType,
    });
  }
  const gcpServiceAccount = pick('gcpServiceAccount') ?? `nba-backfill@${project}.iam.gserviceaccount.com`;
  if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$/.test(gcpServiceAccount)) {
    throw new BadInputError(
      `${CHART_ENV.gcpServiceAccount}=${gcpServiceAccount}: not a Google service account email (name@project.iam.gserviceaccount.com)`,
      { where: CHART_ENV.gcpServiceAccount },
    );
  }
  const namespace = pick('namespace') ?? CHART_DEFAULTS.namespace;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new BadInputError(`${CHART_ENV.namespace}=${namespace}: not a namespace name (RFC 1123 label)`, {
      where: CHART_ENV.namespace,
    });
  }
  const image = pick('image') ?? CHART_DEFAULTS.image;
  const imageProblem = imageReferenceProblem(image);
  if (imageProblem) {
    throw new BadInputError(`${CHART_ENV.image}="${image}": ${imageProblem}`, { where: CHART_ENV.image });
  }
  const pullPolicy = pick('imagePullPolicy') ?? imagePullPolicyFor(image);
  if (!['Always', 'IfNotPresent', 'Never'].includes(pullPolicy)) {
    throw new BadInputError(`${CHART_ENV.imagePullPolicy}=${pullPolicy}: must be Always, IfNotPresent or Never`, {
      where: CHART_ENV.imagePullPolicy,
    });
  }
  const seasons = pick('seasons')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    namespace,
    image,
    imagePullPolicy: pullPolicy as ImagePullPolicy,
    settings: parsed.data,
    gcpServiceAccount,
    seasons,
    seasonType,
    stage1Parallelism: wholeNumber(env, CHART_ENV.stage1Parallelism, CHART_DEFAULTS.stage1Parallelism, 1, 64),
    stage1DeadlineSeconds: wholeNumber(
      env,
      CHART_ENV.stage1DeadlineSeconds,
      CHART_DEFAULTS.stage1DeadlineSeconds,
      60,
      7 * 86400,
    ),
    stage3DeadlineSeconds: wholeNumber(
      env,
      CHART_ENV.stage3DeadlineSeconds,
      CHART_DEFAULTS.stage3DeadlineSeconds,
      60,
      7 * 86400,
    ),
    extraEnv: parseExtraEnv(pick('extraEnv')),
    planDir: pick('planDir') ?? join(packageRoot(), 'plans'),
  };
}
