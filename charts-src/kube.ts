// The Job objects of core/jobs/spec.ts in cdk8s-plus-28's typed k8s form, field by field, so that the compiler
// checks every field against the Kubernetes schema and a field this file does not map stops the synth.

import { k8s } from 'cdk8s-plus-28';
import type {
  ConfigMapObject,
  ContainerSpec,
  EnvVar,
  IndexedJob,
  JobPodSpec,
  JobPodTemplate,
  PodFailurePolicyRule,
  PodSecurityContext,
  SinglePodJob,
  ContainerSecurityContext as SpecContainerSecurityContext,
  ResourceRequirements as SpecResources,
  Volume,
} from '../core/jobs/spec.js';

/** Refuses an object with a field this file would drop: the synthesized Job must be the built one. */
function onlyKnown(value: object, known: readonly string[], where: string): void {
  const unknown = Object.keys(value).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new Error(`${where}: field(s) ${unknown.join(', ')} are not mapped in charts-src/kube.ts; map them there`);
  }
}

type Meta = { readonly name: string; readonly labels: Readonly<Record<string, string>> } & {
  readonly annotations?: Readonly<Record<string, string>>;
};

export function kubeMetadata(meta: Meta, namespace: string | undefined, annotations: Record<string, string> = {}) {
  onlyKnown(meta, ['name', 'labels', 'annotations'], `metadata of ${meta.name}`);
  const all = { ...meta.annotations, ...annotations };
  return {
    name: meta.name,
    namespace,
    labels: { ...meta.labels },
    annotations: Object.keys(all).length > 0 ? all : undefined,
  } satisfies k8s.ObjectMeta;
}

export function quantities(values: Readonly<Record<string, string>>): Record<string, k8s.Quantity> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, k8s.Quantity.fromString(v)]));
}

export function kubeResources(r: SpecResources): k8s.ResourceRequirements {
  onlyKnown(r, ['requests', 'limits'], 'resources');
  return { requests: quantities(r.requests), limits: quantities(r.limits) };
}

export function kubeEnv(env: readonly EnvVar[], where: string): k8s.EnvVar[] {
  return env.map((e) => {
    onlyKnown(e, ['name', 'value', 'valueFrom'], `${where} env ${e.name}`);
    return {
      name: e.name,
      value: e.value,
      valueFrom: e.valueFrom ? { fieldRef: { fieldPath: e.valueFrom.fieldRef.fieldPath } } : undefined,
    };
  });
}

export function kubeContainerSecurity(s: SpecContainerSecurityContext): k8s.SecurityContext {
  onlyKnown(
    s,
    ['allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'runAsNonRoot', 'capabilities'],
    'securityContext',
  );
  return {
    allowPrivilegeEscalation: s.allowPrivilegeEscalation,
    readOnlyRootFilesystem: s.readOnlyRootFilesystem,
    runAsNonRoot: s.runAsNonRoot,
    capabilities: { drop: [...s.capabilities.drop] },
  };
}

export function kubePodSecurity(s: PodSecurityContext): k8s.PodSecurityContext {
  onlyKnown(s, ['runAsNonRoot', 'runAsUser', 'runAsGroup', 'fsGroup', 'seccompProfile'], 'pod securityContext');
  return {
    runAsNonRoot: s.runAsNonRoot,
    runAsUser: s.runAsUser,
    runAsGroup: s.runAsGroup,
    fsGroup: s.fsGroup,
    seccompProfile: { type: s.seccompProfile.type },
  };
}

const CONTAINER_FIELDS = [
  'name',
  'image',
  'imagePullPolicy',
  'command',
  'env',
  'resources',
  'securityContext',
  'volumeMounts',
  'terminationMessagePath',
  'terminationMessagePolicy',
];

export function kubeContainer(c: ContainerSpec): k8s.Container {
  onlyKnown(c, CONTAINER_FIELDS, `container ${c.name}`);
  return {
    name: c.name,
    image: c.image,
    imagePullPolicy: c.imagePullPolicy,
    command: [...c.command],
    env: kubeEnv(c.env, `container ${c.name}`),
    resources: c.resources ? kubeResources(c.resources) : undefined,
    securityContext: c.securityContext ? kubeContainerSecurity(c.securityContext) : undefined,
    volumeMounts: c.volumeMounts?.map((m) => {
      onlyKnown(m, ['name', 'mountPath', 'readOnly'], `container ${c.name} volumeMount ${m.name}`);
      return { name: m.name, mountPath: m.mountPath, readOnly: m.readOnly };
    }),
    terminationMessagePath: c.terminationMessagePath,
    terminationMessagePolicy: c.terminationMessagePolicy,
  };
}

export function kubeVolume(v: Volume): k8s.Volume {
  onlyKnown(v, ['name', 'configMap', 'emptyDir'], `volume ${v.name}`);
  return {
    name: v.name,
    configMap: v.configMap
      ? { name: v.configMap.name, items: v.configMap.items?.map((i) => ({ key: i.key, path: i.path })) }
      : undefined,
    emptyDir: v.emptyDir
      ? {
          sizeLimit: v.emptyDir.sizeLimit === undefined ? undefined : k8s.Quantity.fromString(v.emptyDir.sizeLimit),
        }
      : undefined,
  };
}

export function kubePodSpec(spec: JobPodSpec): k8s.PodSpec {
  onlyKnown(
    spec,
    [
      'restartPolicy',
      'serviceAccountName',
      'securityContext',
      'containers',
      'volumes',
      'terminationGracePeriodSeconds',
    ],
    'pod spec',
  );
  return {
    restartPolicy: spec.restartPolicy,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
    serviceAccountName: spec.serviceAccountName,
    securityContext: spec.securityContext ? kubePodSecurity(spec.securityContext) : undefined,
    containers: spec.containers.map(kubeContainer),
    volumes: spec.volumes?.map(kubeVolume),
  };
}

/** cdk8s-plus-28 types the 1.28 schema: `status` and `onPodConditions` are required there. */
export function kubePodFailureRule(rule: PodFailurePolicyRule): k8s.PodFailurePolicyRule {
  onlyKnown(rule, ['action', 'onExitCodes', 'onPodConditions'], 'podFailurePolicy rule');
  const conditions = rule.onPodConditions?.map((c) => {
    if (c.status === undefined) throw new Error(`podFailurePolicy condition ${c.type}: set status (the 1.28 schema)`);
    return { type: c.type, status: c.status };
  });
  if (conditions === undefined) throw new Error(`podFailurePolicy rule ${rule.action}: onPodConditions is required`);
  return {
    action: rule.action,
    onExitCodes: rule.onExitCodes
      ? {
          containerName: rule.onExitCodes.containerName,
          operator: rule.onExitCodes.operator,
          values: [...rule.onExitCodes.values],
        }
      : undefined,
    onPodConditions: conditions,
  };
}

const INDEXED_SPEC_FIELDS = [
  'completionMode',
  'completions',
  'parallelism',
  'backoffLimitPerIndex',
  'activeDeadlineSeconds',
  'podFailurePolicy',
  'template',
];

function templateMetadata(meta: JobPodTemplate['metadata']): k8s.ObjectMeta {
  onlyKnown(meta, ['labels', 'annotations'], 'pod template metadata');
  return { labels: { ...meta.labels }, ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}) };
}

/** The Stage 1 Indexed Job's spec in cdk8s-plus-28 types. */
export function kubeIndexedJobSpec(job: IndexedJob): k8s.JobSpec {
  const s = job.spec;
  onlyKnown(s, INDEXED_SPEC_FIELDS, `job ${job.metadata.name} spec`);
  onlyKnown(s.template, ['metadata', 'spec'], `job ${job.metadata.name} template`);
  return {
    completionMode: s.completionMode,
    completions: s.completions,
    parallelism: s.parallelism,
    backoffLimitPerIndex: s.backoffLimitPerIndex,
    activeDeadlineSeconds: s.activeDeadlineSeconds,
    podFailurePolicy: { rules: s.podFailurePolicy.rules.map(kubePodFailureRule) },
    template: { metadata: templateMetadata(s.template.metadata), spec: kubePodSpec(s.template.spec) },
  };
}

/** The Stage 3 single-pod Job's spec in cdk8s-plus-28 types. */
export function kubeSinglePodJobSpec(job: SinglePodJob): k8s.JobSpec {
  const s = job.spec;
  onlyKnown(
    s,
    ['completions', 'parallelism', 'backoffLimit', 'activeDeadlineSeconds', 'podFailurePolicy', 'template'],
    `job ${job.metadata.name} spec`,
  );
  onlyKnown(s.template, ['metadata', 'spec'], `job ${job.metadata.name} template`);
  return {
    completions: s.completions,
    parallelism: s.parallelism,
    backoffLimit: s.backoffLimit,
    activeDeadlineSeconds: s.activeDeadlineSeconds,
    podFailurePolicy: { rules: s.podFailurePolicy.rules.map(kubePodFailureRule) },
    template: { metadata: templateMetadata(s.template.metadata), spec: kubePodSpec(s.template.spec) },
  };
}

/** A ConfigMap object's props for k8s.KubeConfigMap. */
export function kubeConfigMap(cm: ConfigMapObject, namespace: string, annotations: Record<string, string> = {}) {
  onlyKnown(cm, ['apiVersion', 'kind', 'metadata', 'data'], `configmap ${cm.metadata.name}`);
  return {
    metadata: kubeMetadata(cm.metadata, namespace, annotations),
    data: { ...cm.data },
  } satisfies k8s.KubeConfigMapProps;
}
