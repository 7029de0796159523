// PATCH on the Kubernetes API server double, through the real client (@kubernetes/client-node) where it can send the
// patch and plain fetch where it cannot (YAML, no fieldManager, another content type, a chosen user agent): JSON
// merge patch, strategic merge patch, JSON patch and server-side apply with field management, and what the real API
// server refuses, answered with its status codes and Status bodies.

import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Job,
  type V1ObjectMeta,
  Watch,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type KubeApiServer,
  type KubeObject,
  startKubeApiServer,
  strategicMergePatch,
} from './support/kubeApiServer.js';
import { ADMIN_TOKEN, NAMESPACE, TOKENS } from './support/kubeFixtures.js';

const MERGE = PatchStrategy.MergePatch;
const STRATEGIC = PatchStrategy.StrategicMergePatch;
const JSON_PATCH = PatchStrategy.JsonPatch;
const APPLY = PatchStrategy.ServerSideApply;

/** People bound to one Role each in the namespace: what RBAC lets them do with ConfigMaps. */
const PATCHER_TOKEN = 'patcher-token';
const CREATOR_TOKEN = 'creator-token';
const READER_TOKEN = 'reader-token';
const configMapRole = (user: string, verbs: string[]) => ({
  user,
  namespace: NAMESPACE,
  rules: [{ apiGroups: [''], resources: ['configmaps'], verbs }],
});

let server: KubeApiServer;
let core: CoreV1Api;
let batch: BatchV1Api;

beforeEach(async () => {
  server = await startKubeApiServer({
    tokens: {
      ...TOKENS,
      [PATCHER_TOKEN]: configMapRole('patcher', ['get', 'patch']),
      [CREATOR_TOKEN]: configMapRole('creator', ['get', 'patch', 'create']),
      [READER_TOKEN]: configMapRole('reader', ['get']),
    },
  });
  const kc = server.kubeConfig(ADMIN_TOKEN, NAMESPACE);
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
});
afterEach(async () => {
  await server.close();
});

/** client-node sends a patch with the content type its middleware sets. */
const as = (type: PatchStrategy) => setHeaderOptions('Content-Type', type);

const CM = (name: string) => `/api/v1/namespaces/${NAMESPACE}/configmaps/${name}`;
const JOB = (name: string) => `/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${name}`;

const STATUS = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure' };

interface Status {
  readonly message: string;
  readonly reason?: string;
  readonly details?: Record<string, unknown>;
  readonly code: number;
}

/** The Status of a client-node call the server refused. */
async function refusal(call: Promise<unknown>): Promise<Status> {
  const err = await call.then(
    () => {
      throw new Error('the server accepted the call');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiException);
  const status = JSON.parse((err as ApiException<string>).body) as Status;
  expect(status.code).toBe((err as ApiException<string>).code);
  return status;
}

/** A PATCH with plain fetch. */
async function patch(
  path: string,
  contentType: string,
  body: unknown,
  options: { readonly query?: string; readonly token?: string; readonly userAgent?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}${options.query ? `?${options.query}` : ''}`, {
    method: 'PATCH',
    headers: {
      authorization: `Bearer ${options.token ?? ADMIN_TOKEN}`,
      'content-type': contentType,
      ...(options.userAgent ? { 'user-agent': options.userAgent } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A server-side apply of a ConfigMap with plain fetch (`manager` null: no fieldManager). */
const applyConfigMap = (
  name: string,
  body: unknown,
  manager: string | null,
  options: { readonly query?: string; readonly token?: string } = {},
) =>
  patch(CM(name), APPLY, body, {
    ...options,
    query: [manager === null ? '' : `fieldManager=${manager}`, options.query ?? ''].filter(Boolean).join('&'),
  });

const configMap = (name: string, data: Record<string, string>, metadata: Partial<V1ObjectMeta> = {}): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...metadata },
  data,
});

/** A Job with one container and two env entries. */
const job = (name: string, image = 'busybox:1.36'): V1Job => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name },
  spec: {
    parallelism: 1,
    completions: 1,
    backoffLimit: 0,
    template: {
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'main',
            image,
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
        ],
      },
    },
  },
});

interface ManagedFieldsEntry {
  readonly manager?: string;
  readonly operation: string;
  readonly apiVersion: string;
  readonly time: string;
  readonly fieldsType: string;
  readonly fieldsV1: Record<string, unknown>;
}

/** The stored object's managedFields, by manager. */
function managedFields(resource: 'configmaps' | 'jobs', name: string): ManagedFieldsEntry[] {
  const entries = (server.get(resource, NAMESPACE, name)?.metadata.managedFields ?? []) as ManagedFieldsEntry[];
  return [...entries].sort((a, b) => (a.manager ?? '').localeCompare(b.manager ?? ''));
}
const owners = (resource: 'configmaps' | 'jobs', name: string) =>
  managedFields(resource, name).map((e) => [e.manager, e.operation, e.fieldsV1]);

/** The watch events of a resource since a resourceVersion: the history the server replays at once. */
function eventsSince(path: string, resourceVersion: string, count: number) {
  const events: { type: string; object: KubeObject }[] = [];
  return new Promise<typeof events>((resolve, reject) => {
    new Watch(server.kubeConfig(ADMIN_TOKEN, NAMESPACE))
      .watch(
        path,
        { resourceVersion },
        (type, object: KubeObject) => {
          events.push({ type, object });
          if (events.length === count) resolve(events);
        },
        (err) => (err ? reject(err) : resolve(events)),
      )
      .catch(reject);
  });
}

describe('JSON merge patch (application/merge-patch+json, RFC 7386)', () => {
  it('merges maps, deletes a key set to null and replaces a list whole', async () => {
    await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap('settings', { a: '1', b: '2' }, { labels: { app: 'x' }, finalizers: ['example.com/a'] }),
    });
    const patched = await core.patchNamespacedConfigMap(
      {
        name: 'settings',
        namespace: NAMESPACE,
        body: { data: { b: null, c: '3' }, metadata: { labels: { tier: 'y' }, finalizers: ['example.com/b'] } },
      },
      as(MERGE),
    );
    expect(patched.data).toEqual({ a: '1', c: '3' });
    expect(patched.metadata?.labels).toEqual({ app: 'x', tier: 'y' });
    expect(patched.metadata?.finalizers).toEqual(['example.com/b']);
  });
});

describe('strategic merge patch (application/strategic-merge-patch+json)', () => {
  const owner = (uid: string, name: string) => ({ apiVersion: 'batch/v1', kind: 'Job', name, uid });

  it('merges a list with a patch merge key item by item, deletes an item with $patch: delete, merges a set list', async () => {
    await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap(
        'owned',
        { a: '1' },
        { ownerReferences: [owner('u1', 'j1'), owner('u2', 'j2')], finalizers: ['example.com/a'] },
      ),
    });
    const patched = await core.patchNamespacedConfigMap(
      {
        name: 'owned',
        namespace: NAMESPACE,
        body: {
          metadata: {
            // ownerReferences merge by uid; finalizers merge as a set.
            ownerReferences: [{ uid: 'u1', name: 'j1-renamed' }, { uid: 'u2', $patch: 'delete' }, owner('u3', 'j3')],
            finalizers: ['example.com/b', 'example.com/a'],
          },
        },
      },
      as(STRATEGIC),
    );
    expect(patched.metadata?.ownerReferences?.map((r) => [r.uid, r.name, r.kind])).toEqual([
      ['u1', 'j1-renamed', 'Job'],
      ['u3', 'j3', 'Job'],
    ]);
    expect(patched.metadata?.finalizers).toEqual(['example.com/a', 'example.com/b']);

    const pruned = await core.patchNamespacedConfigMap(
      {
        name: 'owned',
        namespace: NAMESPACE,
        body: { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/a'] } },
      },
      as(STRATEGIC),
    );
    expect(pruned.metadata?.finalizers).toEqual(['example.com/b']);
  });

  it('replaces a map marked $patch: replace instead of merging it', async () => {
    await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap('labelled', { a: '1' }, { labels: { app: 'x', tier: 'y' } }),
    });
    const patched = await core.patchNamespacedConfigMap(
      { name: 'labelled', namespace: NAMESPACE, body: { metadata: { labels: { $patch: 'replace', only: 'z' } } } },
      as(STRATEGIC),
    );
    expect(patched.metadata?.labels).toEqual({ only: 'z' });
  });

  it('merges containers and their env by name: naming one env entry keeps the others, where a merge patch replaces them', async () => {
    await batch.createNamespacedJob({ namespace: NAMESPACE, body: job('env-merge') });
    const body = { spec: { template: { spec: { containers: [{ name: 'main', env: [{ name: 'A', value: '1' }] }] } } } };
    // The pod template is immutable: the strategic merge leaves it as it was, so the server accepts it.
    const patched = await batch.patchNamespacedJob({ name: 'env-merge', namespace: NAMESPACE, body }, as(STRATEGIC));
    expect(patched.spec?.template.spec?.containers.map((c) => [c.name, c.image, c.env])).toEqual([
      [
        'main',
        'busybox:1.36',
        [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      ],
    ]);
    // The same body as a merge patch replaces the container list: a container without an image.
    const status = await refusal(
      batch.patchNamespacedJob({ name: 'env-merge', namespace: NAMESPACE, body }, as(MERGE)),
    );
    expect(status).toMatchObject({
      code: 422,
      reason: 'Invalid',
      message: 'Job.batch "env-merge" is invalid: spec.template.spec.containers[0].image: Required value',
    });
  });

  it('merges as the server does: env by name with $patch: delete, volumeMounts by mountPath, tolerations replaced, a list replaced by {$patch: replace}', () => {
    const pod = {
      spec: {
        containers: [
          {
            name: 'main',
            image: 'a',
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
              { name: 'C', value: '3' },
            ],
            volumeMounts: [{ name: 'plan', mountPath: '/plan' }],
          },
          { name: 'side', image: 's' },
        ],
        tolerations: [{ key: 'k1', operator: 'Exists' }],
      },
    };
    expect(
      strategicMergePatch(pod, {
        spec: {
          containers: [
            {
              name: 'main',
              env: [
                { name: 'B', $patch: 'delete' },
                { name: 'A', value: '10' },
                { name: 'D', value: '4' },
              ],
              volumeMounts: [{ name: 'other', mountPath: '/plan', readOnly: true }],
            },
          ],
          tolerations: [{ key: 'k2', operator: 'Exists' }],
        },
      }),
    ).toEqual({
      spec: {
        containers: [
          {
            name: 'main',
            image: 'a',
            env: [
              { name: 'A', value: '10' },
              { name: 'C', value: '3' },
              { name: 'D', value: '4' },
            ],
            volumeMounts: [{ name: 'other', mountPath: '/plan', readOnly: true }],
          },
          { name: 'side', image: 's' },
        ],
        tolerations: [{ key: 'k2', operator: 'Exists' }],
      },
    });
    expect(
      strategicMergePatch(pod, { spec: { containers: [{ name: 'only', image: 'o' }, { $patch: 'replace' }] } }),
    ).toEqual({
      spec: { containers: [{ name: 'only', image: 'o' }], tolerations: [{ key: 'k1', operator: 'Exists' }] },
    });
    // The original is untouched.
    expect(pod.spec.containers[0]?.env).toHaveLength(3);
  });

  it('answers an item without its merge key as the server does: a plain error, 500', async () => {
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('owned', { a: '1' }) });
    const status = await refusal(
      core.patchNamespacedConfigMap(
        { name: 'owned', namespace: NAMESPACE, body: { metadata: { ownerReferences: [{ name: 'x' }] } } },
        as(STRATEGIC),
      ),
    );
    expect(status).toEqual({
      ...STATUS,
      message: 'map: map[name:x] does not contain declared merge key: uid',
      code: 500,
    });
  });
});

describe('JSON patch (application/json-patch+json, RFC 6902)', () => {
  it('applies add, replace, remove, move, copy and test in order', async () => {
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('settings', { a: '1', b: '2' }) });
    const patched = await core.patchNamespacedConfigMap(
      {
        name: 'settings',
        namespace: NAMESPACE,
        body: [
          { op: 'test', path: '/data/a', value: '1' },
          { op: 'add', path: '/data/c', value: '3' },
          { op: 'replace', path: '/data/a', value: '10' },
          { op: 'remove', path: '/data/b' },
          { op: 'move', from: '/data/c', path: '/data/d' },
          { op: 'copy', from: '/data/d', path: '/data/e' },
          { op: 'add', path: '/metadata/labels', value: { x: 'y' } },
          { op: 'add', path: '/metadata/labels/app.kubernetes.io~1name', value: 'z' },
        ],
      },
      as(JSON_PATCH),
    );
    expect(patched.data).toEqual({ a: '10', d: '3', e: '3' });
    expect(patched.metadata?.labels).toEqual({ x: 'y', 'app.kubernetes.io/name': 'z' });
  });

  it.each([
    [
      'a failed test',
      [
        { op: 'test', path: '/data/a', value: 'other' },
        { op: 'replace', path: '/data/a', value: 'x' },
      ],
    ],
    ['a missing path', [{ op: 'remove', path: '/data/missing' }]],
    ['a replace of a missing path', [{ op: 'replace', path: '/data/missing', value: 'x' }]],
    ['an index past the end of a list', [{ op: 'add', path: '/metadata/finalizers/2', value: 'example.com/c' }]],
    ['an unknown operation', [{ op: 'increment', path: '/data/a' }]],
  ])('answers %s with 422 and the generic message, changing nothing', async (_what, ops) => {
    const created = await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap('settings', { a: '1' }, { finalizers: ['example.com/a'] }),
    });
    const status = await refusal(
      core.patchNamespacedConfigMap({ name: 'settings', namespace: NAMESPACE, body: ops }, as(JSON_PATCH)),
    );
    expect(status).toEqual({
      ...STATUS,
      message: 'the server rejected our request due to an error in our request',
      reason: 'Invalid',
      details: {},
      code: 422,
    });
    const stored = server.get('configmaps', NAMESPACE, 'settings');
    expect(stored?.metadata.resourceVersion).toBe(created.metadata?.resourceVersion);
    expect(stored?.data).toEqual({ a: '1' });
  });

  it('answers a body that is not a list of operations with 400, and more than 10000 operations with 413', async () => {
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('settings', { a: '1' }) });
    expect(await patch(CM('settings'), JSON_PATCH, { op: 'remove', path: '/data/a' })).toEqual({
      status: 400,
      body: {
        ...STATUS,
        message: 'error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp',
        reason: 'BadRequest',
        code: 400,
      },
    });
    const many = Array.from({ length: 10001 }, () => ({ op: 'test', path: '/data/a', value: '1' }));
    expect(await patch(CM('settings'), JSON_PATCH, many)).toEqual({
      status: 413,
      body: {
        ...STATUS,
        message: 'Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001',
        reason: 'RequestEntityTooLarge',
        code: 413,
      },
    });
  });
});

describe('server-side apply (application/apply-patch+yaml)', () => {
  const applied = (name: string, data: Record<string, string>, metadata: Record<string, unknown> = {}) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ...metadata },
    data,
  });

  it('requires a fieldManager: 422 on PatchOptions', async () => {
    const status = await refusal(
      core.patchNamespacedConfigMap(
        { name: 'settings', namespace: NAMESPACE, body: applied('settings', { a: '1' }) },
        as(APPLY),
      ),
    );
    expect(status).toEqual({
      ...STATUS,
      message: 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      reason: 'Invalid',
      details: {
        group: 'meta.k8s.io',
        kind: 'PatchOptions',
        causes: [
          {
            reason: 'FieldValueRequired',
            message: 'Required value: is required for apply patch',
            field: 'fieldManager',
          },
        ],
      },
      code: 422,
    });
    expect(server.get('configmaps', NAMESPACE, 'settings')).toBeUndefined();
  });

  it('creates a missing object: 201, the applier owning what it applied (operation Apply)', async () => {
    const created = await core.patchNamespacedConfigMapWithHttpInfo(
      {
        name: 'applied',
        namespace: NAMESPACE,
        body: applied('applied', { a: '1' }, { labels: { app: 'x' } }),
        fieldManager: 'deployer',
      },
      as(APPLY),
    );
    expect(created.httpStatusCode).toBe(201);
    expect(created.data.data).toEqual({ a: '1' });
    expect(managedFields('configmaps', 'applied')).toEqual([
      {
        manager: 'deployer',
        operation: 'Apply',
        apiVersion: 'v1',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:data': { 'f:a': {} }, 'f:metadata': { 'f:labels': { 'f:app': {} } } },
      },
    ]);
  });

  it('takes a YAML body', async () => {
    const yaml = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  answer: "42"\n';
    const res = await applyConfigMap('from-yaml', yaml, 'deployer');
    expect(res.status).toBe(201);
    expect(res.body.data).toEqual({ answer: '42' });
  });

  it.each([
    [
      'another kind',
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } },
      'invalid object type: /v1, Kind=Secret',
    ],
    ['no kind', { apiVersion: 'v1', metadata: { name: 'x' } }, 'invalid object type: /v1, Kind='],
    [
      'managedFields of its own',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', managedFields: [] } },
      'metadata.managedFields must be nil',
    ],
    [
      'another name',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'y' } },
      'the name of the object (y) does not match the name on the URL (x)',
    ],
  ])('answers a configuration with %s with 400', async (_what, body, message) => {
    expect(await applyConfigMap('x', body, 'deployer')).toEqual({
      status: 400,
      body: { ...STATUS, message, reason: 'BadRequest', code: 400 },
    });
    expect(server.get('configmaps', NAMESPACE, 'x')).toBeUndefined();
  });

  it('refuses to change a field another applier owns: 409 Conflict naming the manager and the field, until force takes it', async () => {
    expect((await patch(JOB('scaled'), APPLY, job('scaled'), { query: 'fieldManager=deployer' })).status).toBe(201);
    const scale = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'scaled' }, spec: { parallelism: 3 } };

    expect(await patch(JOB('scaled'), APPLY, scale, { query: 'fieldManager=scaler' })).toEqual({
      status: 409,
      body: {
        ...STATUS,
        message: 'Apply failed with 1 conflict: conflict with "deployer": .spec.parallelism',
        reason: 'Conflict',
        details: {
          causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "deployer"', field: '.spec.parallelism' }],
        },
        code: 409,
      },
    });
    expect(server.get('jobs', NAMESPACE, 'scaled')?.spec).toMatchObject({ parallelism: 1 });

    const forced = await batch.patchNamespacedJob(
      { name: 'scaled', namespace: NAMESPACE, body: scale, fieldManager: 'scaler', force: true },
      as(APPLY),
    );
    expect(forced.spec?.parallelism).toBe(3);
    const [deployer, scaler] = managedFields('jobs', 'scaled');
    expect(scaler).toMatchObject({
      manager: 'scaler',
      operation: 'Apply',
      fieldsV1: { 'f:spec': { 'f:parallelism': {} } },
    });
    expect(deployer).toMatchObject({ manager: 'deployer', operation: 'Apply' });
    expect(Object.keys(deployer?.fieldsV1['f:spec'] as object).sort()).toEqual([
      'f:backoffLimit',
      'f:completions',
      'f:template',
    ]);
  });

  it('names an Update manager with its API version, counts every conflict, and shares a field applied at its value', async () => {
    await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap('shared', { a: '1', b: '2' }),
      fieldManager: 'creator',
    });
    expect((await applyConfigMap('shared', applied('shared', { a: '10' }), 'applier')).body.message).toBe(
      'Apply failed with 1 conflict: conflict with "creator" using v1: .data.a',
    );
    expect((await applyConfigMap('shared', applied('shared', { a: '10', b: '20' }), 'applier')).body.message).toBe(
      'Apply failed with 2 conflicts: conflicts with "creator" using v1:\n- .data.a\n- .data.b',
    );

    expect((await applyConfigMap('shared', applied('shared', { a: '1' }), 'applier')).status).toBe(200);
    expect(owners('configmaps', 'shared')).toEqual([
      ['applier', 'Apply', { 'f:data': { 'f:a': {} } }],
      ['creator', 'Update', { 'f:data': { '.': {}, 'f:a': {}, 'f:b': {} } }],
    ]);
  });

  it('removes a field its applier no longer applies, unless another manager owns it', async () => {
    expect((await applyConfigMap('pruned', applied('pruned', { a: '1', b: '2', c: '3' }), 'deployer')).status).toBe(
      201,
    );
    // Another applier applies c at its value: both own it.
    expect((await applyConfigMap('pruned', applied('pruned', { c: '3' }), 'auditor')).status).toBe(200);

    const res = await applyConfigMap('pruned', applied('pruned', { a: '1' }), 'deployer');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ a: '1', c: '3' });
    expect(owners('configmaps', 'pruned')).toEqual([
      ['auditor', 'Apply', { 'f:data': { 'f:c': {} } }],
      ['deployer', 'Apply', { 'f:data': { 'f:a': {} } }],
    ]);
  });

  it('needs the verb patch, and create too when the apply creates the object (RBAC)', async () => {
    const body = applied('rbac', { a: '1' });
    expect(await applyConfigMap('rbac', body, 'deployer', { token: PATCHER_TOKEN })).toEqual({
      status: 403,
      body: {
        ...STATUS,
        message: 'configmaps "rbac" is forbidden: ',
        reason: 'Forbidden',
        details: { name: 'rbac', kind: 'configmaps' },
        code: 403,
      },
    });
    expect(server.get('configmaps', NAMESPACE, 'rbac')).toBeUndefined();
    expect(server.requests.at(-1)).toMatchObject({
      verb: 'patch',
      resource: 'configmaps',
      user: 'patcher',
      status: 403,
    });

    expect((await applyConfigMap('rbac', body, 'deployer', { token: CREATOR_TOKEN })).status).toBe(201);
    expect(
      (await applyConfigMap('rbac', applied('rbac', { a: '2' }), 'deployer', { token: PATCHER_TOKEN })).status,
    ).toBe(200);
    expect(await applyConfigMap('rbac', body, 'deployer', { token: READER_TOKEN })).toMatchObject({
      status: 403,
      body: {
        message:
          'configmaps "rbac" is forbidden: User "reader" cannot patch resource "configmaps" in API group "" in the namespace "nba-backfill"',
      },
    });
  });
});

describe('field management of the writes that are not apply', () => {
  it('records a create, an update or a patch as an Update by its fieldManager, else its user agent, taking the fields it changes', async () => {
    // client-node's user agent is node-fetch's: "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)".
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('tracked', { a: '1', b: '2' }) });
    expect(managedFields('configmaps', 'tracked')).toEqual([
      {
        manager: 'node-fetch',
        operation: 'Update',
        apiVersion: 'v1',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:data': { '.': {}, 'f:a': {}, 'f:b': {} } },
      },
    ]);

    expect((await patch(CM('tracked'), MERGE, { data: { b: '20' } }, { query: 'fieldManager=editor' })).status).toBe(
      200,
    );
    const kubectl = 'kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0';
    expect((await patch(CM('tracked'), STRATEGIC, { data: { c: '3' } }, { userAgent: kubectl })).status).toBe(200);
    expect(owners('configmaps', 'tracked')).toEqual([
      ['editor', 'Update', { 'f:data': { 'f:b': {} } }],
      ['kubectl', 'Update', { 'f:data': { 'f:c': {} } }],
      ['node-fetch', 'Update', { 'f:data': { '.': {}, 'f:a': {} } }],
    ]);

    // managedFields: [{}] clears them.
    expect((await patch(CM('tracked'), MERGE, { metadata: { managedFields: [{}] } })).status).toBe(200);
    expect(server.get('configmaps', NAMESPACE, 'tracked')?.metadata.managedFields).toBeUndefined();
  });

  it('gives the fields of an object that has no managedFields to "before-first-apply" on its first apply', async () => {
    server.create('configmaps', NAMESPACE, configMap('legacy', { a: '1' }) as KubeObject);
    const res = await applyConfigMap(
      'legacy',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'legacy' }, data: { a: '2' } },
      'deployer',
    );
    expect(res.body.message).toBe('Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a');
  });
});

describe('immutable Job fields through every kind of patch', () => {
  it.each([
    [MERGE, { spec: { template: { spec: { containers: [{ name: 'main', image: 'busybox:1.37' }] } } } }],
    [STRATEGIC, { spec: { template: { spec: { containers: [{ name: 'main', image: 'busybox:1.37' }] } } } }],
    [JSON_PATCH, [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'busybox:1.37' }]],
    [APPLY, job('fixed', 'busybox:1.37')],
  ])('%s that changes the pod template: 422 field is immutable', async (type, body) => {
    // Created by the applier that applies the change, so that its apply meets no conflict first.
    expect((await patch(JOB('fixed'), APPLY, job('fixed'), { query: 'fieldManager=deployer' })).status).toBe(201);
    const res = await patch(JOB('fixed'), type, body, { query: type === APPLY ? 'fieldManager=deployer' : '' });
    expect(res).toEqual({
      status: 422,
      body: {
        ...STATUS,
        message: 'Job.batch "fixed" is invalid: spec.template: Invalid value: field is immutable',
        reason: 'Invalid',
        details: {
          name: 'fixed',
          group: 'batch',
          kind: 'Job',
          causes: [{ field: 'spec.template', message: 'field is immutable', reason: 'FieldValueInvalid' }],
        },
        code: 422,
      },
    });
    const containers = (server.get('jobs', NAMESPACE, 'fixed')?.spec as V1Job['spec'])?.template.spec?.containers;
    expect(containers?.map((c) => c.image)).toEqual(['busybox:1.36']);
  });

  it('lets a patch change a mutable field (parallelism)', async () => {
    await batch.createNamespacedJob({ namespace: NAMESPACE, body: job('scalable') });
    const patched = await batch.patchNamespacedJob(
      { name: 'scalable', namespace: NAMESPACE, body: { spec: { parallelism: 2 } } },
      as(MERGE),
    );
    expect(patched.spec?.parallelism).toBe(2);
  });
});

describe('what the real server refuses of any PATCH', () => {
  it('answers a content type that is no patch type with 415 Unsupported Media Type', async () => {
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('settings', { a: '1' }) });
    expect(await patch(CM('settings'), 'application/json', { data: { a: '2' } })).toEqual({
      status: 415,
      body: {
        ...STATUS,
        message:
          'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml',
        reason: 'UnsupportedMediaType',
        code: 415,
      },
    });
    expect(server.get('configmaps', NAMESPACE, 'settings')?.data).toEqual({ a: '1' });
  });

  it.each([
    [MERGE, {}],
    [STRATEGIC, {}],
    [JSON_PATCH, []],
  ])('answers %s of a missing object with 404 NotFound, as a read of it', async (type, body) => {
    const read = await refusal(core.readNamespacedConfigMap({ name: 'missing', namespace: NAMESPACE }));
    const status = await refusal(
      core.patchNamespacedConfigMap({ name: 'missing', namespace: NAMESPACE, body }, as(type)),
    );
    expect(status).toEqual({
      ...STATUS,
      message: 'configmaps "missing" not found',
      reason: 'NotFound',
      details: { name: 'missing', kind: 'configmaps' },
      code: 404,
    });
    expect(status).toEqual(read);
  });

  it('answers a patch carrying another resourceVersion with 409 Conflict; the current one applies', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap('settings', { a: '1' }),
    });
    const conflict = {
      ...STATUS,
      message:
        'Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'settings', kind: 'configmaps' },
      code: 409,
    };
    const stale = { metadata: { resourceVersion: '1' }, data: { a: '2' } };
    expect(
      await refusal(core.patchNamespacedConfigMap({ name: 'settings', namespace: NAMESPACE, body: stale }, as(MERGE))),
    ).toEqual(conflict);
    expect(
      await refusal(
        core.patchNamespacedConfigMap({ name: 'settings', namespace: NAMESPACE, body: stale }, as(STRATEGIC)),
      ),
    ).toEqual(conflict);
    expect(
      await refusal(
        core.patchNamespacedConfigMap(
          {
            name: 'settings',
            namespace: NAMESPACE,
            body: [{ op: 'replace', path: '/metadata/resourceVersion', value: '1' }],
          },
          as(JSON_PATCH),
        ),
      ),
    ).toEqual(conflict);
    // An apply of the value the field has (no field conflict to meet first) at a stale resourceVersion.
    const apply = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings', resourceVersion: '1' },
      data: { a: '1' },
    };
    expect((await applyConfigMap('settings', apply, 'deployer')).body).toEqual(conflict);
    expect(server.get('configmaps', NAMESPACE, 'settings')?.data).toEqual({ a: '1' });

    const current = { metadata: { resourceVersion: created.metadata?.resourceVersion }, data: { a: '2' } };
    const patched = await core.patchNamespacedConfigMap(
      { name: 'settings', namespace: NAMESPACE, body: current },
      as(MERGE),
    );
    expect(patched.data).toEqual({ a: '2' });
  });

  it('answers force on a patch that is not an apply with 422', async () => {
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('settings', { a: '1' }) });
    expect(await patch(CM('settings'), MERGE, { data: { a: '2' } }, { query: 'force=true' })).toEqual({
      status: 422,
      body: {
        ...STATUS,
        message: 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
        reason: 'Invalid',
        details: {
          group: 'meta.k8s.io',
          kind: 'PatchOptions',
          causes: [
            {
              reason: 'FieldValueForbidden',
              message: 'Forbidden: may not be specified for non-apply patch',
              field: 'force',
            },
          ],
        },
        code: 422,
      },
    });
  });

  it('authorizes a patch as the verb patch', async () => {
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: configMap('settings', { a: '1' }) });
    expect(await patch(CM('settings'), MERGE, { data: { a: '2' } }, { token: READER_TOKEN })).toMatchObject({
      status: 403,
      body: {
        message:
          'configmaps "settings" is forbidden: User "reader" cannot patch resource "configmaps" in API group "" in the namespace "nba-backfill"',
      },
    });
    expect((await patch(CM('settings'), MERGE, { data: { a: '2' } }, { token: PATCHER_TOKEN })).status).toBe(200);
    expect(server.requests.slice(-2).map((r) => [r.method, r.verb, r.user, r.status])).toEqual([
      ['PATCH', 'patch', 'reader', 403],
      ['PATCH', 'patch', 'patcher', 200],
    ]);
  });
});

describe('a patch is an update for watchers', () => {
  it('writes a MODIFIED event at the next resourceVersion; an apply that creates writes ADDED', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: configMap('settings', { a: '1' }),
    });
    const rv = Number(created.metadata?.resourceVersion);
    const patched = await core.patchNamespacedConfigMap(
      { name: 'settings', namespace: NAMESPACE, body: { data: { a: '2' } } },
      as(MERGE),
    );
    expect(patched.metadata?.resourceVersion).toBe(String(rv + 1));
    const fresh = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fresh' }, data: { x: '1' } };
    expect((await applyConfigMap('fresh', fresh, 'deployer')).status).toBe(201);

    const events = await eventsSince(`/api/v1/namespaces/${NAMESPACE}/configmaps`, String(rv), 2);
    expect(
      events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion, e.object.data]),
    ).toEqual([
      ['MODIFIED', 'settings', String(rv + 1), { a: '2' }],
      ['ADDED', 'fresh', String(rv + 2), { x: '1' }],
    ]);
  });
});
