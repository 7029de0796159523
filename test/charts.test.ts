// The cdk8s chart: every manifest valid against the Kubernetes schemas with no unknown field, every pod
// "restricted", the Job fields one by one, the contract with the controller, and dist/ in sync with the chart.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { getSerializationType } from '@kubernetes/client-node/dist/util.js';
import { Yaml } from 'cdk8s';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, ServiceAccount } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildApp,
  isStage1Chart,
  loadSeasons,
  manifestsOf,
  type SeasonDates,
  SYNC_WAVE_ANNOTATION,
  synthesize,
} from '../charts-src/charts.js';
import { CHART_DEFAULTS, loadChartConfig } from '../charts-src/config.js';
import { compareWith, describeStaleness, isStale, readFiles } from '../charts-src/files.js';
import { PLAN_HASH_LABEL, planHash } from '../core/jobs/runNames.js';
import {
  CONTROLLER_HEALTH_PATH,
  CONTROLLER_HEALTH_PORT,
  EXIT_INDEX_PERMANENT,
  INDEX_FAILURE_COUNT_ENV,
  JOB_PLAN_ENV,
  JOB_PLAN_KEY,
  NAMESPACE_ENV,
  PLAN_CONFIGMAP_ANNOTATION,
  POD_LOG_DIR,
  planConfigMapName,
  STAGE3_TEMPLATE_KEY,
  stage3JobName,
  stage3TemplateConfigMapName,
  WORKLOAD_IDENTITY_ANNOTATION,
} from '../core/jobs/spec.js';
import { kubectlLogsCommand } from '../core/kubernetes/contract.js';
import { packageRoot } from '../core/paths.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import { stage1Job } from '../core/stages/stage1.js';
import { resolveAssignment } from '../jobs/phase2-date/runIndex.js';

/** The fields of the synthesized manifests that these tests read (parsed JSON, checked field by field). */
interface Meta {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: { fieldPath: string } };
}
interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  seccompProfile?: { type: string };
  capabilities?: { drop?: string[]; add?: string[] };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command: string[];
  env: EnvVar[];
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  terminationMessagePath?: string;
  terminationMessagePolicy?: string;
}
interface KeyToPath {
  key: string;
  path: string;
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: KeyToPath[] };
  emptyDir?: { sizeLimit?: string };
  projected?: { sources: { configMap: { name: string; items: KeyToPath[] } }[] };
  hostPath?: { path: string };
}
interface PodSpec {
  restartPolicy?: string;
  serviceAccountName?: string;
  securityContext?: SecurityContext;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}
interface Spec {
  // Job
  completionMode?: string;
  completions?: number;
  parallelism?: number;
  backoffLimitPerIndex?: number;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  podFailurePolicy?: { rules: unknown[] };
  // Deployment
  replicas?: number;
  strategy?: unknown;
  selector?: { matchLabels: Record<string, string> };
  template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  [field: string]: unknown;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec: Spec;
  data: Record<string, string>;
  rules?: unknown[];
  roleRef?: unknown;
  subjects?: unknown[];
}

const config = loadChartConfig({});
let seasons: SeasonDates[] = [];
/** Every object of every file, with its file. */
let objects: { file: string; obj: Manifest }[] = [];
let built: ReturnType<typeof buildApp>;

/** The four regular seasons and their game dates (DESIGN.md: 165, 164, 160 and 163). */
const REGULAR_SEASON_DATES: Record<string, number> = { '2021-22': 165, '2022-23': 164, '2023-24': 160, '2024-25': 163 };

beforeAll(async () => {
  seasons = await loadSeasons(config);
  built = buildApp(config, seasons);
  objects = [...manifestsOf(built.files)].flatMap(([file, list]) =>
    list.map((obj) => ({ file, obj: obj as unknown as Manifest })),
  );
});

function must<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`missing: ${what}`);
  return value;
}

/** A copy of `obj` with one field set (or added) at `path`: for the checks that must fail. */
function withField<T>(obj: T, path: readonly (string | number)[], value: unknown): T {
  const copy = structuredClone(obj);
  let at = copy as unknown as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  at[path.at(-1) as string | number] = value;
  return copy;
}

const ofKind = (kind: string) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const stage1Jobs = () => ofKind('Job');
const firstJob = () => must(stage1Jobs()[0], 'a Stage 1 Job');
const seasonOf = (m: Manifest) => must(m.metadata.labels['nba-backfill/season'], `season label of ${m.metadata.name}`);
const stage3Templates = () =>
  ofKind('ConfigMap').filter((c) => c.metadata.labels['app.kubernetes.io/component'] === 'stage3-template');
const templateJob = (cm: Manifest): Manifest =>
  JSON.parse(must(cm.data[STAGE3_TEMPLATE_KEY], `${STAGE3_TEMPLATE_KEY} of ${cm.metadata.name}`));
const configMapNamed = (name: string) =>
  must(
    ofKind('ConfigMap').find((c) => c.metadata.name === name),
    name,
  );
/** The synthesized objects and the Stage 3 Jobs inside their ConfigMaps: every manifest a cluster gets. */
const allManifests = (): { where: string; obj: Manifest }[] => [
  ...objects.map(({ file, obj }) => ({ where: `${file} ${obj.kind}/${obj.metadata.name}`, obj })),
  ...stage3Templates().map((cm) => ({ where: `${cm.metadata.name} ${STAGE3_TEMPLATE_KEY}`, obj: templateJob(cm) })),
];
const containerOf = (m: Manifest): Container =>
  must(m.spec.template.spec.containers[0], `the container of ${m.metadata.name}`);
const envOf = (container: Container): Record<string, string | undefined> =>
  Object.fromEntries(container.env.map((e) => [e.name, e.value]));

// ---- Schema validation ----

const MODELS: Record<string, (data: unknown) => { validate(): void }> = {
  Namespace: (d) => new Namespace(d as ConstructorParameters<typeof Namespace>[0]),
  ServiceAccount: (d) => new ServiceAccount(d as ConstructorParameters<typeof ServiceAccount>[0]),
  ConfigMap: (d) => new ConfigMap(d as ConstructorParameters<typeof ConfigMap>[0]),
  Role: (d) => new Role(d as ConstructorParameters<typeof Role>[0]),
  RoleBinding: (d) => new RoleBinding(d as ConstructorParameters<typeof RoleBinding>[0]),
  Deployment: (d) => new Deployment(d as ConstructorParameters<typeof Deployment>[0]),
  Job: (d) => new Job(d as ConstructorParameters<typeof Job>[0]),
};

/** kubernetes-models checks types, enums and required fields against the official schemas (not unknown fields). */
function validateSchema(obj: Manifest): void {
  const model = MODELS[obj.kind];
  if (!model) throw new Error(`no schema model for kind ${obj.kind}`);
  model(structuredClone(obj)).validate();
}

/** What @kubernetes/client-node keeps of an object: a field its models do not know disappears. */
function roundTrip(obj: Manifest): Manifest {
  const type = getSerializationType(obj.apiVersion, obj.kind);
  return JSON.parse(JSON.stringify(ObjectSerializer.serialize(ObjectSerializer.deserialize(obj, type), type)));
}

describe('every manifest against the official Kubernetes schemas', () => {
  it('synthesizes the kinds expected, one Stage 1 Job and one Stage 3 template per season', () => {
    expect(seasons.map((s) => s.season)).toEqual(Object.keys(REGULAR_SEASON_DATES));
    expect(new Set(objects.map((o) => o.obj.kind))).toEqual(
      new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Deployment', 'Job']),
    );
    expect(stage1Jobs()).toHaveLength(4);
    expect(stage3Templates()).toHaveLength(4);
    expect(allManifests()).toHaveLength(objects.length + 4);
  });

  it('validates every manifest (the Stage 3 Jobs inside their ConfigMaps included) with kubernetes-models', () => {
    for (const { where, obj } of allManifests()) {
      expect(() => validateSchema(obj), where).not.toThrow();
    }
  });

  it('the schema check fails on a wrong type or value (it can fail)', () => {
    const job = withField(
      withField(firstJob(), ['spec', 'completions'], 'many'),
      ['spec', 'podFailurePolicy', 'rules', 1, 'action'],
      'Retry',
    );
    expect(() => validateSchema(job)).toThrow(/completions must be integer.*action must be equal to one of/s);
  });

  it('has no field that @kubernetes/client-node (Kubernetes 1.34 models) does not know', () => {
    for (const { where, obj } of allManifests()) {
      expect(roundTrip(obj), where).toEqual(obj);
    }
  });

  it('the round trip drops an unknown field, so the check above can fail', () => {
    const typo = withField(firstJob(), ['spec', 'backofLimitPerIndex'], 1);
    const misplaced = withField(
      firstJob(),
      ['spec', 'template', 'spec', 'containers', 0, 'readOnlyRootFilesystem'],
      true,
    );
    for (const job of [typo, misplaced]) {
      expect(roundTrip(job)).not.toEqual(job);
      expect(roundTrip(job)).toEqual(firstJob());
    }
  });

  it('knows the Job fields this chart relies on (backoffLimitPerIndex, podFailurePolicy, FailIndex)', () => {
    const back = roundTrip(firstJob());
    expect(back.spec.backoffLimitPerIndex).toBe(1);
    expect(back.spec.podFailurePolicy?.rules[1]).toMatchObject({ action: 'FailIndex' });
  });
});

// ---- Pod Security Standard "restricted" ----

const ALLOWED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

/** The "restricted" profile's checks (https://kubernetes.io/docs/concepts/security/pod-security-standards/). */
function restrictedViolations(pod: PodSpec): string[] {
  const out: string[] = [];
  const psc = pod.securityContext ?? {};
  for (const key of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (pod[key]) out.push(`${key} is set`);
  for (const v of pod.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (!type || !ALLOWED_VOLUMES.includes(type)) out.push(`volume ${v.name} is of type ${type}`);
  }
  if (psc.runAsUser === 0) out.push('pod runAsUser 0');
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const sc = c.securityContext ?? {};
    const where = `container ${c.name}`;
    if (sc.privileged) out.push(`${where} is privileged`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${where} allows privilege escalation`);
    if (!(sc.runAsNonRoot === true || (psc.runAsNonRoot === true && sc.runAsNonRoot !== false)))
      out.push(`${where} may run as root`);
    if (sc.runAsUser === 0) out.push(`${where} runAsUser 0`);
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${where} seccomp ${seccomp}`);
    if (!sc.capabilities?.drop?.includes('ALL')) out.push(`${where} does not drop ALL capabilities`);
    for (const cap of sc.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') out.push(`${where} adds ${cap}`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`${where} uses hostPort ${p.hostPort}`);
    // Not in the profile, but asked of every pod here: a read-only root with an emptyDir for /tmp.
    if (sc.readOnlyRootFilesystem !== true) out.push(`${where} root filesystem is writable`);
    const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === '/tmp');
    const tmpVolume = (pod.volumes ?? []).find((v) => v.name === tmp?.name);
    if (!tmpVolume?.emptyDir) out.push(`${where} has no emptyDir at /tmp`);
  }
  return out;
}

/** Every pod template a cluster runs: the Stage 1 Jobs, the Stage 3 Jobs and the controller. */
const podTemplates = (): { where: string; pod: PodSpec; labels: Record<string, string> }[] =>
  allManifests()
    .filter(({ obj }) => obj.kind === 'Job' || obj.kind === 'Deployment')
    .map(({ where, obj }) => ({ where, pod: obj.spec.template.spec, labels: obj.spec.template.metadata.labels }));

describe('Pod Security Standard "restricted"', () => {
  it('holds for every pod template, with a read-only root and /tmp as an emptyDir', () => {
    const pods = podTemplates();
    expect(pods).toHaveLength(4 + 4 + 1);
    for (const { where, pod } of pods) expect(restrictedViolations(pod), where).toEqual([]);
  });

  it('the check finds each violation (it can fail)', () => {
    const bad = structuredClone(firstJob().spec.template.spec);
    bad.securityContext = { runAsUser: 0 };
    bad.hostNetwork = true;
    bad.volumes = [...(bad.volumes ?? []), { name: 'host', hostPath: { path: '/' } }];
    bad.containers = [{ ...containerOf(firstJob()), securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }];
    expect(restrictedViolations(bad)).toEqual([
      'hostNetwork is set',
      'volume host is of type hostPath',
      'pod runAsUser 0',
      'container phase2-date allows privilege escalation',
      'container phase2-date may run as root',
      'container phase2-date seccomp undefined',
      'container phase2-date does not drop ALL capabilities',
      'container phase2-date adds SYS_ADMIN',
      'container phase2-date root filesystem is writable',
    ]);
  });

  it('labels the namespace to enforce "restricted"', () => {
    const ns = must(ofKind('Namespace')[0], 'the Namespace');
    expect(ns.metadata.name).toBe('nba-backfill');
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('writes logs into the emptyDir: BACKFILL_LOG_DIR is under /tmp in every pod', () => {
    expect(POD_LOG_DIR.startsWith('/tmp/')).toBe(true);
    for (const { where, pod } of podTemplates()) {
      expect(envOf(must(pod.containers[0], where)).BACKFILL_LOG_DIR, where).toBe(POD_LOG_DIR);
    }
  });

  it('runs as the image user 1000, with no Secret, key file or credentials variable anywhere', () => {
    for (const { where, pod } of podTemplates()) {
      expect(pod.securityContext?.runAsUser, where).toBe(1000);
      const names = must(pod.containers[0], where).env.map((e) => e.name);
      expect(
        names.filter((n) => /CREDENTIALS|KEY|SECRET|TOKEN|PASSWORD/.test(n)),
        where,
      ).toEqual([]);
      expect(JSON.stringify(pod), where).not.toMatch(/secret/i);
    }
    expect(ofKind('Secret')).toEqual([]);
  });
});

// ---- Stage 1 ----

describe('the Stage 1 Indexed Job of each season, field by field', () => {
  it('has one index per regular-season game date of the committed plan', async () => {
    for (const job of stage1Jobs()) {
      const season = seasonOf(job);
      const plan = await readPlan(join(packageRoot(), 'plans'), season);
      const dates = selectDates(plan, getSeason(season), { seasonType: 'regular' }).map((d) => d.date);
      expect(dates).toHaveLength(must(REGULAR_SEASON_DATES[season], season));
      expect(job.spec.completionMode).toBe('Indexed');
      expect(job.spec.completions).toBe(dates.length);
      expect(job.metadata.name).toMatch(new RegExp(`^nba-stage1-${season.replace('-', '')}-[0-9a-f]{8}$`));
      expect(job.metadata.labels[PLAN_HASH_LABEL]).toBe(planHash(dates));
    }
  });

  it('runs `parallelism` dates at once, retries a date once, never stops for failed dates', () => {
    for (const job of stage1Jobs()) {
      expect(job.spec.parallelism).toBe(CHART_DEFAULTS.stage1Parallelism);
      expect(job.spec.backoffLimitPerIndex).toBe(1);
      expect(job.spec).not.toHaveProperty('maxFailedIndexes');
      expect(job.spec).not.toHaveProperty('backoffLimit');
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
    }
  });

  it('ignores disruptions and fails an index at once on the bad-input exit code', () => {
    for (const job of stage1Jobs()) {
      expect(job.spec.podFailurePolicy?.rules).toEqual([
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        {
          action: 'FailIndex',
          onExitCodes: { containerName: containerOf(job).name, operator: 'In', values: [EXIT_INDEX_PERMANENT] },
          onPodConditions: [],
        },
      ]);
    }
  });

  it('sets activeDeadlineSeconds, requests and limits; no ttlSecondsAfterFinished', () => {
    for (const job of stage1Jobs()) {
      expect(job.spec.activeDeadlineSeconds).toBe(CHART_DEFAULTS.stage1DeadlineSeconds);
      expect(job.spec).not.toHaveProperty('ttlSecondsAfterFinished');
      const { requests, limits } = containerOf(job).resources;
      // Ephemeral storage too: the /tmp emptyDir counts against it, and a pod without a request is the first
      // one a node under disk pressure evicts.
      expect(Object.keys(requests).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
      expect(Object.keys(limits).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
    }
  });

  it('has names short, unique per plan and valid with the `-<index>` suffix Kubernetes adds', () => {
    const names = stage1Jobs().map((j) => j.metadata.name);
    expect(new Set(names).size).toBe(names.length);
    for (const job of stage1Jobs()) {
      const lastPodHostname = `${job.metadata.name}-${must(job.spec.completions, 'completions') - 1}`;
      expect(lastPodHostname).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      // Pod names add a random 5-character suffix to the `<job>-<index>` hostname; both must fit a DNS label.
      expect(`${lastPodHostname}-abcde`.length).toBeLessThanOrEqual(63);
    }
  });

  it('runs the phase2-date program of the image with the production settings', () => {
    for (const job of stage1Jobs()) {
      const c = containerOf(job);
      expect(c.command).toEqual(['node', 'build/jobs/phase2-date/main.js']);
      expect(c.image).toBe('nba-backfill:latest');
      // dist/ names a tag, which can move: every pod pulls it.
      expect(c.imagePullPolicy).toBe('Always');
      const env = envOf(c);
      expect(env.BACKFILL_WAREHOUSE).toBe('bigquery://example-project');
      expect(env.BACKFILL_OBJECTS).toBe('gs://example-bucket/nba-backfill');
      expect(env.BACKFILL_EVENTS).toBe('pubsub://example-project');
      expect(c.env).toContainEqual({
        name: INDEX_FAILURE_COUNT_ENV,
        valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-index-failure-count']" } },
      });
      expect(job.spec.template.spec.serviceAccountName).toBe('nba-backfill-job');
    }
  });

  it('reads its dates from the plan ConfigMap named by its annotation, as the controller expects', () => {
    for (const job of stage1Jobs()) {
      const name = must(job.metadata.annotations?.[PLAN_CONFIGMAP_ANNOTATION], 'plan annotation');
      expect(name).toBe(planConfigMapName(job.metadata.name));
      expect(job.metadata.labels['app.kubernetes.io/component']).toBe('stage1');
      const cm = configMapNamed(name);
      const file = objects.find((o) => o.obj === job)?.file;
      expect(objects.find((o) => o.obj === cm)?.file, 'the plan is in the Job file').toBe(file);
      const plan = JSON.parse(must(cm.data[JOB_PLAN_KEY], JOB_PLAN_KEY));
      expect(Object.keys(plan)).toEqual(['jobName', 'season', 'dates']);
      expect(plan.jobName).toBe(job.metadata.name);
      expect(plan.season).toBe(seasonOf(job));
      expect(plan.dates).toHaveLength(must(job.spec.completions, 'completions'));
      // The pod mounts that ConfigMap where BACKFILL_JOB_PLAN points.
      const volume = must(
        job.spec.template.spec.volumes?.find((v) => v.configMap?.name === name),
        'plan volume',
      );
      const mount = must(
        containerOf(job).volumeMounts?.find((m) => m.name === volume.name),
        'plan mount',
      );
      const item = must(
        volume.configMap?.items?.find((i) => i.key === JOB_PLAN_KEY),
        'plan item',
      );
      expect(envOf(containerOf(job))[JOB_PLAN_ENV]).toBe(`${mount.mountPath}/${item.path}`);
      expect(mount.readOnly).toBe(true);
    }
  });

  it('resolves the first and last index to the plan’s first and last date with the pod’s own code', () => {
    const dir = mkdtempSync(join(tmpdir(), 'charts-plan-'));
    try {
      for (const job of stage1Jobs()) {
        const text = must(configMapNamed(planConfigMapName(job.metadata.name)).data[JOB_PLAN_KEY], JOB_PLAN_KEY);
        const file = join(dir, `${job.metadata.name}.json`);
        writeFileSync(file, text);
        const dates = JSON.parse(text).dates as string[];
        const n = must(job.spec.completions, 'completions');
        const first = resolveAssignment({ JOB_COMPLETION_INDEX: '0', [JOB_PLAN_ENV]: file });
        const last = resolveAssignment({
          JOB_COMPLETION_INDEX: String(n - 1),
          [JOB_PLAN_ENV]: file,
          [INDEX_FAILURE_COUNT_ENV]: '1',
        });
        expect(first.date).toBe(dates[0]);
        expect(last.date).toBe(dates.at(-1));
        expect(last.attempt).toBe(2);
        expect(() => resolveAssignment({ JOB_COMPLETION_INDEX: String(n), [JOB_PLAN_ENV]: file })).toThrow(
          /outside job/,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is exactly what buildStage1Job returned, only placed in the namespace and its sync wave', () => {
    const charts = built.files.map((f) => f.chart).filter(isStage1Chart);
    expect(charts).toHaveLength(4);
    for (const chart of charts) {
      const { job, planConfigMap } = chart.built;
      const dist = must(
        stage1Jobs().find((j) => j.metadata.name === job.metadata.name),
        job.metadata.name,
      );
      expect(dist).toEqual({
        ...job,
        metadata: {
          ...job.metadata,
          namespace: 'nba-backfill',
          annotations: { ...job.metadata.annotations, [SYNC_WAVE_ANNOTATION]: '2' },
        },
      });
      expect(configMapNamed(planConfigMap.metadata.name)).toEqual({
        ...planConfigMap,
        metadata: {
          ...planConfigMap.metadata,
          namespace: 'nba-backfill',
          annotations: { [SYNC_WAVE_ANNOTATION]: '0' },
        },
      });
    }
  });

  it('is the Job the local runtime runs (core/stages/stage1.ts): same builder, command, env and semantics', () => {
    for (const dist of stage1Jobs()) {
      const season = seasonOf(dist);
      const dates = must(
        seasons.find((s) => s.season === season),
        season,
      ).dates;
      // `backfill stage1` with the chart's settings and parallelism builds this object and runs it locally.
      const local = stage1Job({
        season,
        dates,
        parallelism: config.stage1Parallelism,
        purpose: 'stage1',
        config: config.settings,
      });
      const localContainer = must(local.spec.template.spec.containers[0], 'local container');
      // Named from their templates, which differ in the image and the deadline only: the same plan.
      expect(dist.metadata.labels[PLAN_HASH_LABEL]).toBe(local.metadata.labels[PLAN_HASH_LABEL]);
      expect(containerOf(dist).command).toEqual(localContainer.command);
      expect(containerOf(dist).env).toEqual(localContainer.env);
      expect(dist.spec.completionMode).toBe(local.spec.completionMode);
      expect(dist.spec.completions).toBe(local.spec.completions);
      expect(dist.spec.parallelism).toBe(local.spec.parallelism);
      expect(dist.spec.backoffLimitPerIndex).toBe(local.spec.backoffLimitPerIndex);
      expect(dist.spec.podFailurePolicy).toEqual(local.spec.podFailurePolicy);
      // The one difference: a cluster with BigQuery gets a longer deadline than the local default (and so,
      // the Job being named from its spec, another name, which its plan ConfigMap's name follows).
      const renamed = JSON.parse(
        JSON.stringify({ ...dist.spec, activeDeadlineSeconds: local.spec.activeDeadlineSeconds }).replaceAll(
          dist.metadata.name,
          local.metadata.name,
        ),
      );
      expect(renamed).toEqual(local.spec);
      // The local runtime takes every variable's value from the spec, except the failure count it sets itself.
      const fromDownwardApi = containerOf(dist)
        .env.filter((e) => e.value === undefined)
        .map((e) => e.name);
      expect(fromDownwardApi).toEqual([INDEX_FAILURE_COUNT_ENV]);
    }
  });
});

// ---- Stage 3 templates ----

describe('the Stage 3 Job templates the controller creates from', () => {
  it('are ConfigMaps named per season with the component label and the job.json key', () => {
    for (const { season, dates } of seasons) {
      const cm = must(
        stage3Templates().find((c) => seasonOf(c) === season),
        season,
      );
      expect(cm.metadata.name).toBe(stage3TemplateConfigMapName(season));
      expect(cm.metadata.name).toBe(`nba-backfill-stage3-${season.replace('-', '')}`);
      expect(Object.keys(cm.data)).toEqual([STAGE3_TEMPLATE_KEY]);
      expect(templateJob(cm).metadata.name).toBe(stage3JobName(season, dates));
    }
  });

  it('keep their pod through a scale-down and give it time to commit its batch after SIGTERM', () => {
    for (const cm of stage3Templates()) {
      const job = templateJob(cm) as unknown as {
        spec: {
          template: {
            metadata: { annotations?: Record<string, string> };
            spec: {
              terminationGracePeriodSeconds?: number;
              containers: { resources: { requests: Record<string, string> } }[];
            };
          };
        };
      };
      const pod = job.spec.template;
      expect(pod.metadata.annotations).toEqual({ 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false' });
      // Ten minutes: more than a batch of dates takes on BigQuery, where Kubernetes' default is 30 s.
      expect(pod.spec.terminationGracePeriodSeconds).toBe(600);
      expect(pod.spec.containers[0]?.resources.requests['ephemeral-storage']).toBe('256Mi');
    }
  });

  it('hold a one-pod Job: no retry on error, disruptions ignored, summary as the termination message', () => {
    for (const cm of stage3Templates()) {
      const job = templateJob(cm);
      expect(job.apiVersion).toBe('batch/v1');
      expect(job.kind).toBe('Job');
      expect(job.spec.completions).toBe(1);
      expect(job.spec.parallelism).toBe(1);
      expect(job.spec.backoffLimit).toBe(0);
      expect(job.spec.activeDeadlineSeconds).toBe(CHART_DEFAULTS.stage3DeadlineSeconds);
      expect(job.spec.podFailurePolicy?.rules).toEqual([
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
      ]);
      expect(job.spec).not.toHaveProperty('ttlSecondsAfterFinished');
      expect(job.spec).not.toHaveProperty('completionMode');
      const c = containerOf(job);
      expect(c.command).toEqual(['node', 'build/jobs/phase3-runner/main.js']);
      expect(c.terminationMessagePath).toBe('/dev/termination-log');
      expect(c.terminationMessagePolicy).toBe('File');
      expect(envOf(c).BACKFILL_SUMMARY_FILE).toBe('/dev/termination-log');
      expect(envOf(c).BACKFILL_SEASON).toBe(seasonOf(cm));
      expect(envOf(c).BACKFILL_SEASON_TYPE).toBe('regular');
      expect(job.metadata.labels['app.kubernetes.io/component']).toBe('stage3');
    }
  });

  it('carry no namespace and no Argo CD tracking label or annotation (Argo CD would prune the Job)', () => {
    for (const cm of stage3Templates()) {
      expect(templateJob(cm).metadata).not.toHaveProperty('namespace');
      const text = must(cm.data[STAGE3_TEMPLATE_KEY], STAGE3_TEMPLATE_KEY);
      expect(text).not.toContain('app.kubernetes.io/instance');
      expect(text).not.toContain('argocd.argoproj.io');
    }
  });

  it('use the same settings as the Stage 1 Jobs of the same chart', () => {
    const settings = (env: Record<string, string | undefined>) =>
      Object.fromEntries(
        Object.entries(env).filter(([k]) => /^BACKFILL_(WAREHOUSE|OBJECTS|EVENTS|SOURCE|HTTP_|LOG_DIR)/.test(k)),
      );
    const stage1 = settings(envOf(containerOf(firstJob())));
    expect(Object.keys(stage1)).toHaveLength(10);
    for (const cm of stage3Templates()) expect(settings(envOf(containerOf(templateJob(cm))))).toEqual(stage1);
  });
});

// ---- Controller and RBAC ----

describe('the controller and its RBAC', () => {
  const deployment = () => must(ofKind('Deployment')[0], 'the Deployment');

  it('is one replica of the image running build/controller/main.js, never two at once', () => {
    const d = deployment();
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    const c = containerOf(d);
    expect(c.command).toEqual(['node', 'build/controller/main.js']);
    expect(c.image).toBe(containerOf(firstJob()).image);
    expect(d.spec.template.spec.serviceAccountName).toBe('nba-backfill-controller');
    const matchLabels = must(d.spec.selector, 'selector').matchLabels;
    expect(matchLabels).toEqual({
      'app.kubernetes.io/component': 'controller',
      'app.kubernetes.io/name': 'nba-backfill',
    });
    for (const [k, v] of Object.entries(matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
  });

  it('knows its namespace from the downward API and has the Jobs’ BACKFILL_* settings', () => {
    const c = containerOf(deployment());
    expect(c.env).toContainEqual({ name: NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    const jobEnv = containerOf(firstJob()).env.filter((e) => e.value !== undefined && e.name !== JOB_PLAN_ENV);
    expect(jobEnv.length).toBeGreaterThan(5);
    for (const e of jobEnv) expect(c.env).toContainEqual(e);
  });

  it('serves /healthz on port 8080 for the liveness and readiness probes', () => {
    const c = containerOf(deployment());
    const port = must(
      c.ports?.find((p) => p.containerPort === CONTROLLER_HEALTH_PORT),
      'health port',
    );
    for (const probe of [c.livenessProbe, c.readinessProbe]) {
      expect(probe?.httpGet.path).toBe(CONTROLLER_HEALTH_PATH);
      expect([port.name, CONTROLLER_HEALTH_PORT]).toContain(probe?.httpGet.port);
    }
  });

  it('asks Prometheus to scrape /metrics on the health port (the pod annotations)', () => {
    const d = deployment();
    expect(d.spec.template.metadata.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(CONTROLLER_HEALTH_PORT),
      'prometheus.io/path': '/metrics',
    });
    expect(containerOf(d).ports?.map((p) => p.containerPort)).toEqual([CONTROLLER_HEALTH_PORT]);
  });

  it('mounts no Stage 3 template (it reads them through the API), only its /tmp', () => {
    const d = deployment();
    expect(d.spec.template.spec.volumes?.map((v) => v.name)).toEqual(['tmp']);
    expect(containerOf(d).volumeMounts?.map((m) => m.mountPath)).toEqual(['/tmp']);
  });

  it('grants only the verbs and resources the controller uses', () => {
    const role = must(ofKind('Role')[0], 'the Role');
    // Exactly what the controller calls (controllerLoop checks that it uses each of them, and nothing else).
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch', 'create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'update'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]);
    const binding = must(ofKind('RoleBinding')[0], 'the RoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'nba-backfill-controller', namespace: 'nba-backfill' },
    ]);
    expect(ofKind('ClusterRole')).toEqual([]);
    expect(ofKind('ClusterRoleBinding')).toEqual([]);
  });

  it("gives both ServiceAccounts the GKE Workload Identity annotation; the Jobs' pods get no API token", () => {
    const accounts = ofKind('ServiceAccount');
    const byName = Object.fromEntries(
      accounts.map((a) => [a.metadata.name, a as { automountServiceAccountToken?: boolean }]),
    );
    expect(byName['nba-backfill-job']?.automountServiceAccountToken).toBe(false);
    expect(byName['nba-backfill-controller']?.automountServiceAccountToken).toBeUndefined();
    expect(accounts.map((a) => a.metadata.name).sort()).toEqual(['nba-backfill-controller', 'nba-backfill-job']);
    for (const a of accounts) {
      expect(a.metadata.annotations?.[WORKLOAD_IDENTITY_ANNOTATION]).toBe(
        'nba-backfill@example-project.iam.gserviceaccount.com',
      );
    }
  });
});

// ---- Argo CD, labels, namespace ----

describe('Argo CD and the recommended labels', () => {
  const waveOf = (o: Manifest) => Number(o.metadata.annotations?.[SYNC_WAVE_ANNOTATION]);
  const waves = (kinds: string[]) => objects.filter((o) => kinds.includes(o.obj.kind)).map((o) => waveOf(o.obj));

  it('applies the namespace, then RBAC and ConfigMaps, then the controller, then the Jobs', () => {
    for (const { obj } of objects) expect(Number.isInteger(waveOf(obj)), obj.metadata.name).toBe(true);
    const config = ['ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap'];
    expect(Math.max(...waves(['Namespace']))).toBeLessThan(Math.min(...waves(config)));
    expect(Math.max(...waves(config))).toBeLessThan(Math.min(...waves(['Deployment'])));
    expect(Math.max(...waves(['Deployment']))).toBeLessThan(Math.min(...waves(['Job'])));
  });

  it('puts every namespaced object in the namespace', () => {
    for (const { obj } of objects.filter((o) => o.obj.kind !== 'Namespace')) {
      expect(obj.metadata.namespace, `${obj.kind}/${obj.metadata.name}`).toBe('nba-backfill');
    }
  });

  it('labels every object and pod template with app.kubernetes.io/name, part-of and component', () => {
    const labelled = [
      ...allManifests().map(({ where, obj }) => ({ where, labels: obj.metadata.labels })),
      ...podTemplates().map(({ where, labels }) => ({ where: `${where} pod template`, labels })),
    ];
    for (const { where, labels } of labelled) {
      expect(labels['app.kubernetes.io/name'], where).toBe('nba-backfill');
      expect(labels['app.kubernetes.io/part-of'], where).toBe('nba-backfill');
      expect(labels['app.kubernetes.io/component'], where).toBeTruthy();
      // Argo CD's default tracking label in label mode: set only by Argo CD, never by the chart.
      expect(labels, where).not.toHaveProperty('app.kubernetes.io/instance');
    }
  });
});

// ---- dist/ ----

describe('dist/', () => {
  let fresh: Map<string, string>;
  const sortEnv = process.env.CDK8S_DISABLE_SORT;
  beforeAll(async () => {
    fresh = await synthesize(loadChartConfig({}));
  });
  afterAll(() => {
    if (sortEnv === undefined) delete process.env.CDK8S_DISABLE_SORT;
    else process.env.CDK8S_DISABLE_SORT = sortEnv;
  });

  it('is in sync with the chart (run `npm run synth` and commit dist/ when this fails)', () => {
    const staleness = compareWith(join(packageRoot(), 'dist'), fresh);
    expect(describeStaleness(staleness)).toEqual([]);
    expect(isStale(staleness)).toBe(false);
  });

  it('synthesizes the same bytes twice, whatever cdk8s is told about key order', async () => {
    process.env.CDK8S_DISABLE_SORT = '1';
    const again = await synthesize(loadChartConfig({}));
    expect([...again.keys()]).toEqual([...fresh.keys()]);
    for (const [file, text] of fresh) expect(again.get(file), file).toBe(text);
    for (const text of fresh.values()) expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
  });

  it('holds, file by file, the objects the chart builds', () => {
    const dist = readFiles(join(packageRoot(), 'dist'));
    for (const [file, list] of manifestsOf(built.files)) {
      expect(dist.has(file), file).toBe(true);
      expect(Yaml.load(join(packageRoot(), 'dist', file)), file).toEqual(list);
    }
  });

  it('names the stale files when dist/ differs (what synth:check prints)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'charts-dist-'));
    try {
      const [first, second] = [...fresh.keys()].filter((f) => f.endsWith('.k8s.yaml'));
      for (const [f, text] of fresh) if (f !== second) writeFileSync(join(dir, f), f === first ? `${text}#\n` : text);
      writeFileSync(join(dir, '99-old.k8s.yaml'), 'kind: Job\n');
      expect(describeStaleness(compareWith(dir, fresh), 'dist')).toEqual([
        `  dist/${first} differs from what the chart makes`,
        `  dist/${second} is missing`,
        '  dist/99-old.k8s.yaml is no longer made by the chart',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- Settings ----

describe('chart settings', () => {
  it('take the CHART_* variables and derive the adapters from the project and bucket', () => {
    const c = loadChartConfig({
      CHART_GCP_PROJECT: 'my-nba-project',
      CHART_GCS_BUCKET: 'my-bucket',
      CHART_GCS_PREFIX: 'raw',
      CHART_IMAGE: 'nba-backfill:1.2.3',
      CHART_STAGE1_PARALLELISM: '8',
      CHART_SEASONS: '2022-23',
      CHART_EXTRA_ENV: 'BIGQUERY_EMULATOR_HOST=http://bq:9050,METADATA_SERVER_DETECTION=none',
    });
    expect(c.settings.warehouse).toMatchObject({ kind: 'bigquery', url: 'bigquery://my-nba-project' });
    expect(c.settings.objects).toMatchObject({ kind: 'gs', url: 'gs://my-bucket/raw', bucket: 'my-bucket' });
    expect(c.settings.events).toMatchObject({ kind: 'pubsub', url: 'pubsub://my-nba-project' });
    expect(c.gcpServiceAccount).toBe('nba-backfill@my-nba-project.iam.gserviceaccount.com');
    expect(c.image).toBe('nba-backfill:1.2.3');
    expect(c.stage1Parallelism).toBe(8);
    expect(c.seasons).toEqual(['2022-23']);
    expect(c.extraEnv).toEqual({ BIGQUERY_EMULATOR_HOST: 'http://bq:9050', METADATA_SERVER_DETECTION: 'none' });
  });

  it('refuse a local adapter, a bad project, a bad number and a malformed extra variable, naming the variable', () => {
    expect(() => loadChartConfig({ CHART_WAREHOUSE: 'duckdb:/tmp/w.duckdb' })).toThrow(
      /CHART_WAREHOUSE=duckdb:\/tmp\/w.duckdb: a cluster needs the production adapter/,
    );
    expect(() => loadChartConfig({ CHART_GCP_PROJECT: 'Bad_Project' })).toThrow(
      /warehouse = "bigquery:\/\/Bad_Project" \(from CHART_GCP_PROJECT/,
    );
    expect(() => loadChartConfig({ CHART_STAGE1_PARALLELISM: '0' })).toThrow(
      /CHART_STAGE1_PARALLELISM=0: must be a whole number from 1 to 64/,
    );
    expect(() => loadChartConfig({ CHART_EXTRA_ENV: 'lower=1' })).toThrow(
      /CHART_EXTRA_ENV: "lower=1" is not NAME=value/,
    );
    expect(() => loadChartConfig({ CHART_SEASON_TYPE: 'preseason' })).toThrow(/CHART_SEASON_TYPE=preseason/);
  });

  it('synthesize only the seasons asked for, with the extra variables in every pod', async () => {
    const c = loadChartConfig({ CHART_SEASONS: '2023-24', CHART_EXTRA_ENV: 'PUBSUB_EMULATOR_HOST=pubsub:8085' });
    const files = await synthesize(c);
    expect([...files.keys()].filter((f) => f.startsWith('40-'))).toEqual(['40-stage1-2023-24.k8s.yaml']);
    for (const f of ['40-stage1-2023-24.k8s.yaml', '30-controller.k8s.yaml', '20-stage3-templates.k8s.yaml']) {
      expect(files.get(f), f).toContain('PUBSUB_EMULATOR_HOST');
    }
  });

  it('pull a tag on every pod start and a digest only when missing, in every pod of the chart', async () => {
    const digest = `registry.invalid/team/nba-backfill@sha256:${'ab'.repeat(32)}`;
    expect(loadChartConfig({}).imagePullPolicy).toBe('Always');
    expect(loadChartConfig({ CHART_IMAGE: 'nba-backfill:1.2.3' }).imagePullPolicy).toBe('Always');
    expect(loadChartConfig({ CHART_IMAGE: digest }).imagePullPolicy).toBe('IfNotPresent');
    expect(loadChartConfig({ CHART_IMAGE: `nba-backfill:1.2.3@sha256:${'0'.repeat(64)}` }).imagePullPolicy).toBe(
      'IfNotPresent',
    );
    // An image loaded into the nodes by hand (kind) is served by no registry: the policy can be set.
    expect(loadChartConfig({ CHART_IMAGE_PULL_POLICY: 'IfNotPresent' }).imagePullPolicy).toBe('IfNotPresent');
    const files = await synthesize(loadChartConfig({ CHART_IMAGE: digest, CHART_SEASONS: '2021-22' }));
    const policies = [...files.values()].join('\n').match(/imagePullPolicy: \S+/g) ?? [];
    // The controller, the Stage 1 Job and the Stage 3 template (inside its ConfigMap, as JSON).
    expect(policies).toEqual(['imagePullPolicy: IfNotPresent', 'imagePullPolicy: IfNotPresent']);
    expect([...files.values()].join('\n').match(/"imagePullPolicy": ?"\w+"/g)).toEqual([
      '"imagePullPolicy": "IfNotPresent"',
    ]);
  });

  it('name each Stage 1 Job from its whole template: two image digests, two Job names, one plan', async () => {
    const names = async (digit: string) => {
      const files = await synthesize(
        loadChartConfig({ CHART_IMAGE: `nba-backfill@sha256:${digit.repeat(64)}`, CHART_SEASONS: '2021-22' }),
      );
      const job = must(files.get('40-stage1-2021-22.k8s.yaml'), 'the Stage 1 file');
      const name = /name: (nba-stage1-202122-[0-9a-f]{8})/.exec(job)?.[1];
      const plan = /nba-backfill\/plan-hash: ([0-9a-f]{8})/.exec(job)?.[1];
      return { name, plan };
    };
    const a = await names('a');
    const b = await names('b');
    expect(a.name).toMatch(/^nba-stage1-202122-[0-9a-f]{8}$/);
    expect(b.name).not.toBe(a.name);
    expect(b.plan).toBe(a.plan);
    // And the same settings twice, the same name.
    expect((await names('a')).name).toBe(a.name);
  });

  it('refuse a malformed image reference or pull policy, naming the variable', () => {
    expect(() => loadChartConfig({ CHART_IMAGE: `nba-backfill@sha256:${'ab'.repeat(31)}` })).toThrow(
      /CHART_IMAGE="nba-backfill@sha256:(ab)+": a digest is @sha256: and 64 lowercase hex digits/,
    );
    expect(() => loadChartConfig({ CHART_IMAGE: 'NBA-backfill:1' })).toThrow(
      /CHART_IMAGE="NBA-backfill:1": not an image reference/,
    );
    expect(() => loadChartConfig({ CHART_IMAGE: 'nba backfill' })).toThrow(/CHART_IMAGE="nba backfill"/);
    expect(() => loadChartConfig({ CHART_IMAGE_PULL_POLICY: 'always' })).toThrow(
      /CHART_IMAGE_PULL_POLICY=always: must be Always, IfNotPresent or Never/,
    );
  });

  it('refuse an extra variable that would shadow a setting', async () => {
    const c = loadChartConfig({ CHART_EXTRA_ENV: 'BACKFILL_WAREHOUSE=bigquery://other-project' });
    await expect(synthesize(c)).rejects.toThrow(/CHART_EXTRA_ENV sets BACKFILL_WAREHOUSE/);
  });
});

describe('printed kubectl logs commands', () => {
  // With -l, kubectl prints only each pod's last 10 lines unless told --tail=-1, and interleaves the attempts of
  // a date unless each line is prefixed with its pod.
  it('read whole logs, prefixed by pod, selected by the batch.kubernetes.io/job-name label, in every doc', () => {
    const files = [
      'dist/README.md',
      'docs/kubernetes.md',
      'controller/README.md',
      '.github/kind-e2e/run.sh',
      'README.md',
    ];
    let commands = 0;
    for (const file of files) {
      const text = readFileSync(join(packageRoot(), file), 'utf8');
      for (const line of text.split('\n').filter((l) => /kubectl logs -/.test(l))) {
        commands++;
        expect(line, file).toContain('--tail=-1 --prefix');
        expect(line, file).toMatch(/-l "?batch\.kubernetes\.io\/job-name=/);
      }
    }
    expect(commands).toBeGreaterThanOrEqual(4);
    expect(kubectlLogsCommand('ns', 'job', 3)).toBe(
      'kubectl logs -n ns -l batch.kubernetes.io/job-name=job,batch.kubernetes.io/job-completion-index=3 --tail=-1 --prefix',
    );
  });
});
