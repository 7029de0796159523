// What the controller tests share: the controller's RBAC (the contract with the chart), tokens for the API
// server double, Stage 1 Jobs with their plan ConfigMaps and the Stage 3 spec ConfigMap as the manifests
// put them in a cluster, and a wait that names what it waited for.

import type { V1ConfigMap, V1Job } from '@kubernetes/client-node';
import type { IsoDate } from '../../core/dates.js';
import { buildStage3Job, stage1JobWithPlan, stage3TemplateConfigMapName } from '../../core/jobs/spec.js';
import { CONTROLLER_ROLE_RULES } from '../../core/kubernetes/contract.js';
import { KubeClient } from '../../core/kubernetes/kube.js';
import type { KubeApiServer, PolicyRule, TokenGrant } from './kubeApiServer.js';

export const NAMESPACE = 'nba-backfill';
export const ADMIN_TOKEN = 'admin-token';
export const CONTROLLER_TOKEN = 'controller-token';
export const CONTROLLER_USER = 'system:serviceaccount:nba-backfill:nba-backfill-controller';

/** The controller's Role, as the chart grants it: nothing else. */
export const CONTROLLER_RULES: readonly PolicyRule[] = CONTROLLER_ROLE_RULES.map((r) => ({
  apiGroups: [...r.apiGroups],
  resources: [...r.resources],
  verbs: [...r.verbs],
}));

/**
 * A person running `backfill logs --cluster` and `backfill retry --cluster` with their own credentials: besides
 * what the controller may do, read a Job, a pod and its log (docs/kubernetes.md lists it).
 */
export const OPERATOR_TOKEN = 'operator-token';
export const OPERATOR_RULES: readonly PolicyRule[] = [
  ...CONTROLLER_RULES,
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get'] },
  { apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get'] },
];

export const TOKENS: Readonly<Record<string, TokenGrant>> = {
  [ADMIN_TOKEN]: 'admin',
  [CONTROLLER_TOKEN]: { user: CONTROLLER_USER, rules: CONTROLLER_RULES, namespace: NAMESPACE },
  [OPERATOR_TOKEN]: { user: 'operator@example.com', rules: OPERATOR_RULES, namespace: NAMESPACE },
};

/** A real client-node client on the double, as kubectl's user (admin) or as the controller. */
export function clientFor(server: KubeApiServer, token: string, namespace = NAMESPACE): KubeClient {
  return new KubeClient(server.kubeConfig(token, namespace), namespace);
}

/** A Stage 1 (or retry) Job and its plan ConfigMap, created as `kubectl apply -f dist/` would. */
export async function applyStage1(
  admin: KubeClient,
  season: string,
  dates: readonly IsoDate[],
  options: { purpose?: string; parallelism?: number } = {},
): Promise<{ job: string; planConfigMap: string }> {
  const { job, planConfigMap } = stage1JobWithPlan({
    season,
    dates,
    parallelism: options.parallelism ?? 2,
    purpose: options.purpose ?? 'stage1',
  });
  await admin.createConfigMap(planConfigMap as unknown as V1ConfigMap);
  await admin.createJob(job as unknown as V1Job);
  return { job: job.metadata.name, planConfigMap: planConfigMap.metadata.name };
}

/** The season's Stage 3 spec ConfigMap, as the chart synthesizes it. */
export async function applyStage3Spec(admin: KubeClient, season: string, dates: readonly IsoDate[]): Promise<string> {
  const job = buildStage3Job({ season, dates });
  await admin.createConfigMap({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: stage3TemplateConfigMapName(season),
      labels: { 'app.kubernetes.io/component': 'stage3-template' },
    },
    data: { 'job.json': `${JSON.stringify(job, null, 2)}\n` },
  });
  return job.metadata.name;
}

/** Polls until `check` gives a value (not undefined/false), failing with `what` after the timeout. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
