// The cdk8s charts of the backfill: namespace, RBAC, the Stage 3 templates, the controller, and one Stage 1
// chart per season (plan ConfigMap and Indexed Job), each rendered as one YAML file of dist/.

import { readdirSync } from 'node:fs';
import { App, Chart, Yaml } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { podSettings } from '../core/config.js';
import {
  APP_NAME,
  buildStage3Job,
  COMPONENT_CONTROLLER,
  COMPONENT_LABEL,
  COMPONENT_STAGE3_TEMPLATE,
  CONTAINER_SECURITY_CONTEXT,
  CONTROLLER_CONTAINER,
  CONTROLLER_HEALTH_PATH,
  CONTROLLER_HEALTH_PORT,
  CONTROLLER_METRICS_PATH,
  CONTROLLER_NAME,
  CONTROLLER_SERVICE_ACCOUNT,
  INDEX_FAILURE_COUNT_ENV,
  JOB_NAME_ENV,
  JOB_PLAN_ENV,
  JOB_SERVICE_ACCOUNT,
  LOG_DIR_ENV,
  MANAGED_BY_LABEL,
  NAME_LABEL,
  NAMESPACE_ENV,
  PART_OF_LABEL,
  POD_LOG_DIR,
  POD_SECURITY_CONTEXT,
  SEASON_LABEL,
  STAGE3_TEMPLATE_KEY,
  stage1JobWithPlan,
  stage3JobName,
  stage3TemplateConfigMapName as stage3TemplateName,
  TMP_DIR,
  WORKLOAD_IDENTITY_ANNOTATION,
} from '../core/jobs/spec.js';
import { CONTROLLER_ROLE_RULES, kubectlLogsCommand, MIN_KUBERNETES } from '../core/kubernetes/contract.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import type { ChartConfig } from './config.js';
import {
  kubeConfigMap,
  kubeContainerSecurity,
  kubeIndexedJobSpec,
  kubeMetadata,
  kubePodSecurity,
  kubeSinglePodJobSpec,
  quantities,
} from './kube.js';

/** Argo CD applies lower waves first and waits for them to be healthy before the next. */
export const SYNC_WAVE_ANNOTATION = 'argocd.argoproj.io/sync-wave';
export const SYNC_WAVES = { namespace: '-1', config: '0', controller: '1', jobs: '2' } as const;
/** Recommended label for what wrote the manifest (the Stage 3 Job created at run time says the controller). */
export const MANAGED_BY = 'cdk8s';

const wave = (w: string) => ({ [SYNC_WAVE_ANNOTATION]: w });

function labels(component: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    [NAME_LABEL]: APP_NAME,
    [COMPONENT_LABEL]: component,
    [PART_OF_LABEL]: APP_NAME,
    [MANAGED_BY_LABEL]: MANAGED_BY,
    ...extra,
  };
}

/** One season's work, as read from its plan file. */
export interface SeasonDates {
  readonly season: string;
  readonly dates: readonly string[];
}

/** The BACKFILL_* settings every pod gets: the local runtime's podSettings() of the chart's settings, then extras. */
export function podEnv(config: ChartConfig): Record<string, string> {
  const settings = podSettings(config.settings);
  // Variables the builders and the controller Deployment set themselves: a second entry would be ambiguous.
  const own = [LOG_DIR_ENV, JOB_PLAN_ENV, INDEX_FAILURE_COUNT_ENV, NAMESPACE_ENV, JOB_NAME_ENV, 'BACKFILL_LOG_LEVEL'];
  for (const name of Object.keys(config.extraEnv)) {
    if (
      name in settings ||
      own.includes(name) ||
      name.startsWith('BACKFILL_SEASON') ||
      name === 'BACKFILL_SUMMARY_FILE'
    ) {
      throw new Error(`CHART_EXTRA_ENV sets ${name}, which the chart sets itself (use its CHART_* setting)`);
    }
  }
  return { ...settings, ...config.extraEnv };
}

export interface NamespaceChartProps {
  readonly namespace: string;
}

/** The namespace, enforcing the Pod Security Standard "restricted" on every pod in it. */
export class NamespaceChart extends Chart {
  constructor(scope: Construct, id: string, props: NamespaceChartProps) {
    super(scope, id);
    new k8s.KubeNamespace(this, 'namespace', {
      metadata: {
        name: props.namespace,
        labels: {
          ...labels('namespace'),
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
        annotations: wave(SYNC_WAVES.namespace),
      },
    });
  }
}

export interface RbacChartProps {
  readonly namespace: string;
  /** The Google service account both Kubernetes ServiceAccounts act as. */
  readonly gcpServiceAccount: string;
}

/** The controller's and the Jobs' ServiceAccounts; a Role with only what the controller does. */
export class RbacChart extends Chart {
  constructor(scope: Construct, id: string, props: RbacChartProps) {
    super(scope, id);
    const { namespace } = props;
    const annotations = { ...wave(SYNC_WAVES.config), [WORKLOAD_IDENTITY_ANNOTATION]: props.gcpServiceAccount };
    new k8s.KubeServiceAccount(this, 'controller-sa', {
      metadata: { name: CONTROLLER_SERVICE_ACCOUNT, namespace, labels: labels(COMPONENT_CONTROLLER), annotations },
    });
    // The Job pods talk to Google Cloud only: this account has no Role, and its pods get no API token.
    new k8s.KubeServiceAccount(this, 'job-sa', {
      metadata: { name: JOB_SERVICE_ACCOUNT, namespace, labels: labels('job'), annotations },
      automountServiceAccountToken: false,
    });
    new k8s.KubeRole(this, 'role', {
      metadata: {
        name: CONTROLLER_NAME,
        namespace,
        labels: labels(COMPONENT_CONTROLLER),
        annotations: wave(SYNC_WAVES.config),
      },
      rules: CONTROLLER_ROLE_RULES.map((r) => ({
        apiGroups: [...r.apiGroups],
        resources: [...r.resources],
        verbs: [...r.verbs],
      })),
    });
    new k8s.KubeRoleBinding(this, 'binding', {
      metadata: {
        name: CONTROLLER_NAME,
        namespace,
        labels: labels(COMPONENT_CONTROLLER),
        annotations: wave(SYNC_WAVES.config),
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CONTROLLER_NAME },
      subjects: [{ kind: 'ServiceAccount', name: CONTROLLER_SERVICE_ACCOUNT, namespace }],
    });
  }
}

export interface Stage3TemplatesChartProps {
  readonly config: ChartConfig;
  readonly seasons: readonly SeasonDates[];
}

/**
 * For each season, the Stage 3 Job the controller creates once the gate passes, as JSON in a ConfigMap. The
 * Job itself is not in Git: Argo CD tracks the ConfigMap, and the Job created from it carries no tracking.
 */
export class Stage3TemplatesChart extends Chart {
  constructor(scope: Construct, id: string, props: Stage3TemplatesChartProps) {
    super(scope, id);
    const { config } = props;
    for (const { season, dates } of props.seasons) {
      const job = buildStage3Job({
        season,
        dates,
        seasonType: config.seasonType,
        image: config.image,
        imagePullPolicy: config.imagePullPolicy,
        env: podEnv(config),
        activeDeadlineSeconds: config.stage3DeadlineSeconds,
      });
      // Rendered through the typed KubeJob so that the template obeys the same schema as the Stage 1 Jobs.
      const manifest = k8s.KubeJob.manifest({
        metadata: kubeMetadata(job.metadata, undefined),
        spec: kubeSinglePodJobSpec(job),
      });
      const name = stage3TemplateName(season);
      new k8s.KubeConfigMap(this, `stage3-${season}`, {
        metadata: {
          name,
          namespace: config.namespace,
          labels: labels(COMPONENT_STAGE3_TEMPLATE, { [SEASON_LABEL]: season }),
          annotations: wave(SYNC_WAVES.config),
        },
        data: { [STAGE3_TEMPLATE_KEY]: `${JSON.stringify(sortKeys(manifest), null, 2)}\n` },
      });
    }
  }
}

export interface ControllerChartProps {
  readonly config: ChartConfig;
  readonly seasons: readonly SeasonDates[];
}

const CONTROLLER_RESOURCES = {
  requests: { cpu: '100m', memory: '256Mi' },
  limits: { cpu: '1', memory: '512Mi' },
};

/** The controller: one replica (Recreate, so two never run at once), its probes, its Stage 3 templates. */
export class ControllerChart extends Chart {
  constructor(scope: Construct, id: string, props: ControllerChartProps) {
    super(scope, id);
    const { config } = props;
    const selector = { [NAME_LABEL]: APP_NAME, [COMPONENT_LABEL]: COMPONENT_CONTROLLER };
    const probe = (periodSeconds: number, failureThreshold: number): k8s.Probe => ({
      httpGet: { path: CONTROLLER_HEALTH_PATH, port: k8s.IntOrString.fromString('health') },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 2,
    });
    const env: k8s.EnvVar[] = [
      { name: NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'BACKFILL_LOG_LEVEL', value: 'info' },
      ...Object.entries({ [LOG_DIR_ENV]: POD_LOG_DIR, ...podEnv(config) })
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, value]) => ({ name, value })),
    ];
    new k8s.KubeDeployment(this, 'controller', {
      metadata: {
        name: CONTROLLER_NAME,
        namespace: config.namespace,
        labels: labels(COMPONENT_CONTROLLER),
        annotations: wave(SYNC_WAVES.controller),
      },
      spec: {
        replicas: 1,
        revisionHistoryLimit: 3,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: labels(COMPONENT_CONTROLLER),
            // The common Prometheus convention (kubernetes-pods job): scrape /metrics on the health port.
            annotations: {
              'prometheus.io/scrape': 'true',
              'prometheus.io/port': String(CONTROLLER_HEALTH_PORT),
              'prometheus.io/path': CONTROLLER_METRICS_PATH,
            },
          },
          spec: {
            serviceAccountName: CONTROLLER_SERVICE_ACCOUNT,
            securityContext: kubePodSecurity(POD_SECURITY_CONTEXT),
            containers: [
              {
                name: CONTROLLER_CONTAINER,
                image: config.image,
                imagePullPolicy: config.imagePullPolicy,
                command: ['node', 'build/controller/main.js'],
                env,
                ports: [{ name: 'health', containerPort: CONTROLLER_HEALTH_PORT, protocol: 'TCP' }],
                livenessProbe: probe(20, 3),
                readinessProbe: probe(10, 1),
                resources: {
                  requests: quantities(CONTROLLER_RESOURCES.requests),
                  limits: quantities(CONTROLLER_RESOURCES.limits),
                },
                securityContext: kubeContainerSecurity(CONTAINER_SECURITY_CONTEXT),
                // The Stage 3 templates are read through the API (configmaps get), not mounted.
                volumeMounts: [{ name: 'tmp', mountPath: TMP_DIR }],
              },
            ],
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('1Gi') } }],
          },
        },
      },
    });
  }
}

export interface Stage1ChartProps {
  readonly config: ChartConfig;
  readonly season: SeasonDates;
}

/** A season's Stage 1: the plan ConfigMap, then the Indexed Job that reads it (both from core/jobs/spec.ts). */
export class Stage1Chart extends Chart {
  /** The Job exactly as buildStage1Job returned it, before cdk8s rendered it. */
  readonly built: ReturnType<typeof stage1JobWithPlan>;

  constructor(scope: Construct, id: string, props: Stage1ChartProps) {
    super(scope, id);
    const { config, season } = props;
    this.built = stage1JobWithPlan({
      season: season.season,
      dates: season.dates,
      parallelism: config.stage1Parallelism,
      image: config.image,
      imagePullPolicy: config.imagePullPolicy,
      env: podEnv(config),
      activeDeadlineSeconds: config.stage1DeadlineSeconds,
    });
    const { planConfigMap, job } = this.built;
    const cm = new k8s.KubeConfigMap(
      this,
      'plan',
      kubeConfigMap(planConfigMap, config.namespace, wave(SYNC_WAVES.config)),
    );
    const kubeJob = new k8s.KubeJob(this, 'job', {
      metadata: kubeMetadata(job.metadata, config.namespace, wave(SYNC_WAVES.jobs)),
      spec: kubeIndexedJobSpec(job),
    });
    // kubectl applies a file top to bottom: the plan exists before the pods that mount it.
    kubeJob.addDependency(cm);
  }
}

/** Chart overrides `instanceof` (any chart is an instance of every chart class), so this looks at the field. */
export function isStage1Chart(chart: Chart): chart is Stage1Chart {
  return (chart as Partial<Stage1Chart>).built !== undefined;
}

/** The seasons with a plan file (`plans/<season>.json`), sorted. */
export function seasonsWithPlans(planDir: string): string[] {
  return readdirSync(planDir)
    .map((f) => /^(\d{4}-\d{2})\.json$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/** Each selected season's dates, from its committed plan file and the chart's season type. */
export async function loadSeasons(config: ChartConfig): Promise<SeasonDates[]> {
  const labels = config.seasons ?? seasonsWithPlans(config.planDir);
  if (labels.length === 0) throw new Error(`no plan files in ${config.planDir}: run backfill plan first`);
  const out: SeasonDates[] = [];
  for (const label of labels) {
    const season = getSeason(label);
    const dates = selectDates(await readPlan(config.planDir, label), season, { seasonType: config.seasonType });
    if (dates.length === 0) throw new Error(`plan ${label} has no ${config.seasonType} dates`);
    out.push({ season: label, dates: dates.map((d) => d.date) });
  }
  return out;
}

/** One file of dist/: its name and the charts' objects in it. */
export interface SynthFile {
  readonly file: string;
  readonly chart: Chart;
}

/** The app and the file each chart goes to; kubectl apply -f dist/ reads the files in name order. */
export function buildApp(config: ChartConfig, seasons: readonly SeasonDates[]): { app: App; files: SynthFile[] } {
  const app = new App({ outdir: 'dist' });
  const files: SynthFile[] = [
    { file: '00-namespace.k8s.yaml', chart: new NamespaceChart(app, 'namespace', { namespace: config.namespace }) },
    {
      file: '10-rbac.k8s.yaml',
      chart: new RbacChart(app, 'rbac', { namespace: config.namespace, gcpServiceAccount: config.gcpServiceAccount }),
    },
    {
      file: '20-stage3-templates.k8s.yaml',
      chart: new Stage3TemplatesChart(app, 'stage3-templates', { config, seasons }),
    },
    { file: '30-controller.k8s.yaml', chart: new ControllerChart(app, 'controller', { config, seasons }) },
  ];
  for (const season of seasons) {
    files.push({
      file: `40-stage1-${season.season}.k8s.yaml`,
      chart: new Stage1Chart(app, `stage1-${season.season}`, { config, season }),
    });
  }
  return { app, files };
}

/** Object keys in code-point order at every level, so that the output never depends on insertion order. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export const GENERATED_HEADER = '# Generated by `npm run synth` from charts-src/ and plans/. Do not edit.\n';

/** The manifests of every file, as objects. */
export function manifestsOf(files: readonly SynthFile[]): Map<string, Record<string, unknown>[]> {
  return new Map(
    files.map((f) => [f.file, f.chart.toJson().map((o: unknown) => sortKeys(o) as Record<string, unknown>)]),
  );
}

/** file name -> YAML text, deterministic: sorted keys, no timestamps, the charts in a fixed order. */
export function renderFiles(files: readonly SynthFile[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [file, manifests] of manifestsOf(files))
    out.set(file, `${GENERATED_HEADER}${Yaml.stringify(...manifests)}`);
  return out;
}

/** dist/README.md: what each file holds and the settings the files were made with. */
export function distReadme(config: ChartConfig, seasons: readonly SeasonDates[], files: readonly SynthFile[]): string {
  const s = config.settings;
  const rows = files
    .map((f) => f.chart)
    .filter(isStage1Chart)
    .map((chart) => {
      const { job, planConfigMap } = chart.built;
      const season = job.metadata.labels[SEASON_LABEL] ?? '';
      const dates = seasons.find((x) => x.season === season)?.dates ?? [];
      return `| ${season} | \`${job.metadata.name}\` | ${job.spec.completions} (${dates[0]} .. ${dates.at(-1)}) | ${job.spec.parallelism} | \`${planConfigMap.metadata.name}\` | \`${stage3JobName(season, dates)}\` in \`${stage3TemplateName(season)}\` |`;
    });
  return `# dist/

Kubernetes manifests synthesized by \`npm run synth\` from \`charts-src/\` (cdk8s, cdk8s-plus-28) and the plan files
in \`plans/\`. Do not edit them by hand: \`npm run synth:check\` (run by CI) fails when they differ from the chart.
This README is generated too. How to apply them, with kubectl or Argo CD: \`docs/kubernetes.md\`.

**Kubernetes ${MIN_KUBERNETES.join('.')} or later**: the Stage 1 Jobs use \`backoffLimitPerIndex\` and the pod failure
policy action \`FailIndex\` (on by default from ${MIN_KUBERNETES.join('.')}); the controller checks the API server's
version at start-up and refuses an older one.

\`kubectl apply -f dist/\` applies the files in name order (namespace first). Applying a Stage 1 file starts that
season's backfill.

| file | holds | Argo CD sync wave |
|---|---|---|
| \`00-namespace.k8s.yaml\` | Namespace \`${config.namespace}\`, Pod Security Standard "restricted" enforced | ${SYNC_WAVES.namespace} |
| \`10-rbac.k8s.yaml\` | ServiceAccounts \`${CONTROLLER_SERVICE_ACCOUNT}\` and \`${JOB_SERVICE_ACCOUNT}\` (GKE Workload Identity), the controller's Role and RoleBinding | ${SYNC_WAVES.config} |
| \`20-stage3-templates.k8s.yaml\` | per season, ConfigMap \`nba-backfill-stage3-<season>\` with the Stage 3 Job (\`${STAGE3_TEMPLATE_KEY}\`) that the controller creates once the gate passes | ${SYNC_WAVES.config} |
| \`30-controller.k8s.yaml\` | the controller Deployment (one replica, /healthz probes) | ${SYNC_WAVES.controller} |
| \`40-stage1-<season>.k8s.yaml\` | per season, the plan ConfigMap (its dates) and the Stage 1 Indexed Job (one index per date) | ${SYNC_WAVES.config} and ${SYNC_WAVES.jobs} |

## The controller's Role

Everything the controller may do, in namespace \`${config.namespace}\` only (no ClusterRole), which is exactly what it
does; the Jobs' ServiceAccount \`${JOB_SERVICE_ACCOUNT}\` has no Role and its pods mount no API token.

| API group | resource | verbs |
|---|---|---|
${CONTROLLER_ROLE_RULES.flatMap((r) => r.resources.map((res) => `| ${r.apiGroups.map((g) => (g === '' ? 'core' : g)).join(', ')} | ${res} | ${r.verbs.join(', ')} |`)).join('\n')}

## Stage 1 Jobs

| season | Stage 1 Job | dates (indexes) | parallelism | plan ConfigMap | Stage 3 Job, created by the controller |
|---|---|---|---|---|---|
${rows.join('\n')}

A date's pod logs, whole and with each attempt's pod named: \`${kubectlLogsCommand(config.namespace, '<job>', '<index>')}\`
(the index of a date is its position in the plan ConfigMap's \`dates\`, from 0).

## Settings these files were synthesized with

| setting | value |
|---|---|
| image | \`${config.image}\` |
| imagePullPolicy | \`${config.imagePullPolicy}\` |
| namespace | \`${config.namespace}\` |
| BACKFILL_WAREHOUSE | \`${s.warehouse.url}\` |
| BACKFILL_OBJECTS | \`${s.objects.url}\` |
| BACKFILL_EVENTS | \`${s.events.url}\` |
| BACKFILL_SOURCE | \`${s.source.url}\` |
| Google service account (Workload Identity) | \`${config.gcpServiceAccount}\` |
| season type | ${config.seasonType} |
| Stage 1 activeDeadlineSeconds | ${config.stage1DeadlineSeconds} |
| Stage 3 activeDeadlineSeconds | ${config.stage3DeadlineSeconds} |
| extra pod variables | ${Object.keys(config.extraEnv).length ? Object.keys(config.extraEnv).sort().join(', ') : 'none'} |

\`example-project\` and \`example-bucket\` are placeholders: set yours in \`charts-src/config.ts\` (or the CHART_*
variables, wherever synth and synth:check run) and run \`npm run synth\`.
`;
}

export const README = 'README.md';

/** Everything `npm run synth` writes (the YAML files and README.md), from the settings and the plan files. */
export async function synthesize(config: ChartConfig): Promise<Map<string, string>> {
  const seasons = await loadSeasons(config);
  const { files } = buildApp(config, seasons);
  const out = renderFiles(files);
  out.set(README, distReadme(config, seasons, files));
  return out;
}
