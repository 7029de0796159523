// The Kubernetes adapter with the real client library (@kubernetes/client-node) against the API server double:
// Indexed Jobs with per-index backoff and the pod failure policy as the Job controller runs them, pods and
// their logs, "already exists" and "not found" as values, RBAC and validation errors that say what was
// refused, and the Job watch: list then watch, and a relist after 410 Gone.

import { Watch } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildStage3Job, EXIT_INDEX_PERMANENT, stage1JobWithPlan } from '../core/jobs/spec.js';
import { KubeApiError, type KubeClient } from '../core/kubernetes/kube.js';
import { JOB_SELECTOR } from '../core/kubernetes/observe.js';
import { type KubeApiServer, type KubeObject, type PodScript, startKubeApiServer } from './support/kubeApiServer.js';
import {
  ADMIN_TOKEN,
  applyStage1,
  CONTROLLER_TOKEN,
  clientFor,
  NAMESPACE,
  OPERATOR_TOKEN,
  TOKENS,
  waitFor,
} from './support/kubeFixtures.js';

const DATES = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22', '2021-10-23'];

let server: KubeApiServer;
let admin: KubeClient;
/** The adapter as a person's `backfill ... --cluster` uses it (the controller's Role plus reads of Jobs, pods, logs). */
let kube: KubeClient;

beforeEach(async () => {
  server = await startKubeApiServer({ tokens: TOKENS });
  admin = clientFor(server, ADMIN_TOKEN);
  kube = clientFor(server, OPERATOR_TOKEN);
});
afterEach(async () => {
  await server.close();
});

const finished = (job: KubeObject | undefined) =>
  ((job?.status as { conditions?: { type: string }[] } | undefined)?.conditions ?? []).some(
    (c) => c.type === 'Complete' || c.type === 'Failed',
  );

describe('the Job controller of the double, read through client-node', () => {
  it('runs an Indexed Job: per-index retry, FailIndex on the permanent exit code, disruptions ignored', async () => {
    // index 0 ok; 1 fails twice (one retry, then failed); 2 bad input (failed at once); 3 evicted then ok;
    // 4 fails once then ok on its retry.
    const script: PodScript = ({ index, attempt }) => {
      const log = `{"msg":"index ${index} attempt ${attempt}"}\n`;
      if (index === 1) return { result: 'fail', exitCode: 1, log };
      if (index === 2) return { result: 'fail', exitCode: EXIT_INDEX_PERMANENT, log };
      if (index === 3 && attempt === 1) return { result: 'disrupted', log };
      if (index === 4 && attempt === 1) return { result: 'fail', exitCode: 1, log };
      return { result: 'succeed', log };
    };
    server.setPodScript(script);
    const { job } = await applyStage1(admin, '2021-22', DATES);
    await waitFor('the job to finish', () => finished(server.get('jobs', NAMESPACE, job)));
    await waitFor('the terminal condition', async () => (await kube.getJob(job))?.status?.conditions?.length === 2);

    const read = await kube.getJob(job);
    expect(read?.status).toMatchObject({
      completedIndexes: '0,3,4',
      failedIndexes: '1,2',
      succeeded: 3,
      // Index 1 twice, index 2 once, index 4 once; the eviction of index 3 does not count.
      failed: 4,
    });
    expect(read?.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['FailureTarget', 'True', 'FailedIndexes'],
      ['Failed', 'True', 'FailedIndexes'],
    ]);
    expect(read?.spec?.backoffLimit).toBe(2147483647);

    const pods = await kube.listPods(`job-name=${job},batch.kubernetes.io/job-completion-index=1`);
    expect(pods.map((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-index-failure-count']).sort()).toEqual([
      '0',
      '1',
    ]);
    expect(pods.every((p) => p.status?.phase === 'Failed')).toBe(true);
    expect(pods[0]?.metadata?.name).toMatch(new RegExp(`^${job}-1-[a-z0-9]{5}$`));
    expect(await kube.listPods(`job-name=${job},batch.kubernetes.io/job-completion-index=2`)).toHaveLength(1);
    const evicted = await kube.listPods(`job-name=${job},batch.kubernetes.io/job-completion-index=3`);
    expect(evicted).toHaveLength(2);
    expect(evicted.flatMap((p) => p.status?.conditions?.map((c) => c.type) ?? [])).toContain('DisruptionTarget');
    expect(evicted.map((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-index-failure-count'])).toEqual([
      '0',
      '0',
    ]);
    const first = pods.find((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-index-failure-count'] === '0');
    expect(await kube.podLog(first?.metadata?.name ?? '')).toBe('{"msg":"index 1 attempt 1"}\n');
  });

  it('completes an Indexed Job whose every index succeeds, with SuccessCriteriaMet then Complete', async () => {
    const { job } = await applyStage1(admin, '2021-22', DATES.slice(0, 4), { parallelism: 3 });
    await waitFor('Complete', async () => (await kube.getJob(job))?.status?.completionTime);
    const read = await kube.getJob(job);
    expect(read?.status).toMatchObject({ completedIndexes: '0-3', failedIndexes: '', succeeded: 4 });
    expect(read?.status?.failed).toBeUndefined();
    expect(read?.status?.conditions?.map((c) => c.type)).toEqual(['SuccessCriteriaMet', 'Complete']);
  });

  it('fails the single-pod Stage 3 Job at its first error (backoffLimit 0), keeping the termination message', async () => {
    const summary = JSON.stringify({ status: 'failed', season: '2021-22', failedDate: '2021-10-22' });
    // The first pod is evicted (ignored, replaced); the replacement stops with an error and its summary.
    server.setPodScript(({ attempt }) =>
      attempt === 1 ? { result: 'disrupted' } : { result: 'fail', exitCode: 1, terminationMessage: summary },
    );
    const manifest = buildStage3Job({ season: '2021-22', dates: DATES });
    expect((await kube.createJob(manifest as never)).created).toBe(true);
    const name = manifest.metadata.name;
    await waitFor('Failed', async () => (await kube.getJob(name))?.status?.conditions?.length === 2);
    const read = await kube.getJob(name);
    expect(read?.status?.conditions?.map((c) => [c.type, c.reason])).toEqual([
      ['FailureTarget', 'BackoffLimitExceeded'],
      ['Failed', 'BackoffLimitExceeded'],
    ]);
    expect(read?.status?.failed).toBe(1);
    const pods = await kube.listPods(`job-name=${name}`);
    expect(pods).toHaveLength(2);
    const failedPod = pods.find((p) => !p.status?.conditions?.some((c) => c.type === 'DisruptionTarget'));
    expect(failedPod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 1,
      message: summary,
    });
    expect(failedPod?.metadata?.labels?.['batch.kubernetes.io/job-completion-index']).toBeUndefined();
  });
});

describe('the adapter', () => {
  it('answers "already exists" and "not found" as values, as the API says them (409, 404)', async () => {
    const { job } = await applyStage1(admin, '2021-22', DATES);
    const again = stage1JobWithPlan({ season: '2021-22', dates: DATES });
    expect(await kube.createJob(again.job as never)).toEqual({ created: false, job: null });
    expect(await kube.getJob('nba-stage1-nope')).toBeNull();
    expect(await kube.getConfigMap('nope')).toBeNull();
    const event = {
      metadata: { name: `${job}.abc.failed-dates` },
      involvedObject: { apiVersion: 'batch/v1', kind: 'Job', name: job, namespace: NAMESPACE },
      type: 'Warning',
      reason: 'DatesFailed',
      message: 'm',
    };
    expect(await kube.createEvent(event)).toBe(true);
    expect(await kube.createEvent(event)).toBe(false);
    const conflicts = server.requests.filter((r) => r.status === 409);
    expect(conflicts.map((r) => [r.method, r.resource])).toEqual([
      ['POST', 'jobs'],
      ['POST', 'events'],
    ]);
  });

  it('creates a ConfigMap, then replaces it at its current resourceVersion', async () => {
    const cm = (v: string) => ({ metadata: { name: 'report', labels: { a: 'b' } }, data: { 'x.json': v } });
    expect(await kube.upsertConfigMap(cm('1'))).toBe('created');
    expect(await kube.upsertConfigMap(cm('2'))).toBe('updated');
    expect((await kube.getConfigMap('report'))?.data).toEqual({ 'x.json': '2' });
    const put = server.requests.find((r) => r.method === 'PUT');
    expect(put?.status).toBe(200);
    expect((await kube.listConfigMaps('a=b')).map((c) => c.metadata?.name)).toEqual(['report']);
  });

  it("says what the API server refused and why: RBAC (403), validation (422), in the server's words", async () => {
    await expect(kube.podLog('missing-pod')).rejects.toThrow(
      'Kubernetes API: read the log of pod "missing-pod" in namespace nba-backfill: HTTP 404 NotFound: pods "missing-pod" not found',
    );
    const broken = structuredClone(buildStage3Job({ season: '2021-22', dates: DATES })) as unknown as {
      spec: { template: { spec: { restartPolicy: string } } };
    };
    broken.spec.template.spec.restartPolicy = 'Always';
    const err = await kube.createJob(broken as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(422);
    expect((err as KubeApiError).message).toMatch(
      /create job "nba-stage3-202122-[0-9a-f]{8}" in namespace nba-backfill: HTTP 422 Invalid: Job\.batch "nba-stage3-202122-[0-9a-f]{8}" is invalid: spec\.template\.spec\.restartPolicy: Unsupported value: "Always"/,
    );
    // The Role is bound in the controller's namespace only.
    const elsewhere = await clientFor(server, CONTROLLER_TOKEN, 'kube-system')
      .listJobs()
      .catch((e: unknown) => e);
    expect((elsewhere as KubeApiError).message).toMatch(
      /HTTP 403 Forbidden: jobs\.batch is forbidden: User "system:serviceaccount:nba-backfill:nba-backfill-controller" cannot list resource "jobs" in API group "batch" in the namespace "kube-system"/,
    );
    // A verb the Role lacks (the adapter never deletes; a raw request shows the double refuses it).
    await admin.upsertConfigMap({ metadata: { name: 'report' }, data: {} });
    const denied = await fetch(`${server.url}/api/v1/namespaces/${NAMESPACE}/configmaps/report`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${CONTROLLER_TOKEN}` },
    });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      message: `configmaps "report" is forbidden: User "system:serviceaccount:nba-backfill:nba-backfill-controller" cannot delete resource "configmaps" in API group "" in the namespace "nba-backfill"`,
    });
    // The controller reads no pod logs and gets no Job by name: its Role does not allow it.
    await expect(clientFor(server, CONTROLLER_TOKEN).podLog('missing-pod')).rejects.toThrow(
      /HTTP 403 Forbidden: .*cannot get resource "pods\/log" in API group "" in the namespace "nba-backfill"/,
    );
    await expect(clientFor(server, CONTROLLER_TOKEN).getJob('nba-stage1-nope')).rejects.toThrow(
      /HTTP 403 Forbidden: .*cannot get resource "jobs" in API group "batch"/,
    );
    const anonymous = await fetch(`${server.url}/apis/batch/v1/namespaces/${NAMESPACE}/jobs`);
    expect(anonymous.status).toBe(401);
  });

  it('refuses a changed pod template under the same Job name (422 field is immutable), as kubectl apply meets it', async () => {
    const digest = (d: string) => `nba-backfill@sha256:${d.repeat(64)}`;
    const first = stage1JobWithPlan({ season: '2021-22', dates: DATES, image: digest('a') }).job;
    await admin.upsertConfigMap({ metadata: { name: `${first.metadata.name}-plan` }, data: {} });
    expect((await admin.createJob(first as never)).created).toBe(true);
    const put = (body: unknown) =>
      fetch(`${server.url}/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${first.metadata.name}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    // The same Job with a new image, under its old name: refused, as on a real cluster.
    const changed = structuredClone(first) as unknown as {
      spec: { parallelism: number; template: { spec: { containers: { image: string }[] } } };
      metadata: { labels: Record<string, string> };
    };
    (changed.spec.template.spec.containers[0] as { image: string }).image = digest('b');
    const refused = await put(changed);
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({
      kind: 'Status',
      reason: 'Invalid',
      message: `Job.batch "${first.metadata.name}" is invalid: spec.template: Invalid value: field is immutable`,
    });
    // What may change does: parallelism and the Job's own labels.
    const mutable = structuredClone(first) as unknown as typeof changed;
    mutable.spec.parallelism = 5;
    mutable.metadata.labels = { ...mutable.metadata.labels, team: 'data' };
    expect((await put(mutable)).status).toBe(200);
    expect(server.get('jobs', NAMESPACE, first.metadata.name)?.spec).toMatchObject({ parallelism: 5 });
    // The chart names the new template's Job anew, so it is created beside the old one instead.
    const second = stage1JobWithPlan({ season: '2021-22', dates: DATES, image: digest('b') }).job;
    expect(second.metadata.name).not.toBe(first.metadata.name);
    await admin.upsertConfigMap({ metadata: { name: `${second.metadata.name}-plan` }, data: {} });
    expect((await admin.createJob(second as never)).created).toBe(true);
  });

  it('lets Events expire after their TTL (the API server keeps them an hour), so nothing may rely on them', async () => {
    let clock = 0;
    await server.close();
    server = await startKubeApiServer({ tokens: TOKENS, eventTtlMs: 3_600_000, clock: () => clock });
    const client = clientFor(server, OPERATOR_TOKEN);
    const event = {
      metadata: { name: 'nba-stage1-202122-x.abc.failed-dates' },
      involvedObject: { apiVersion: 'batch/v1', kind: 'Job', name: 'nba-stage1-202122-x', namespace: NAMESPACE },
      type: 'Warning',
      reason: 'DatesFailed',
      message: 'm',
    };
    expect(await client.createEvent(event)).toBe(true);
    clock += 3_599_999;
    expect(await client.createEvent(event)).toBe(false);
    clock += 1;
    // Gone: the same name can be created again (the controller's reports live in ConfigMaps, not Events).
    expect(await client.createEvent(event)).toBe(true);
  });

  it('keeps a pod Pending while its image cannot be pulled or its ConfigMap is missing, and starts it once the ConfigMap exists', async () => {
    await server.close();
    server = await startKubeApiServer({ tokens: TOKENS, imagePullable: (image) => !image.includes('missing') });
    admin = clientFor(server, ADMIN_TOKEN);
    const waiting = (job: string) =>
      (server.list('pods', NAMESPACE) as KubeObject[])
        .filter((p) => (p.metadata.labels as Record<string, string>)['batch.kubernetes.io/job-name'] === job)
        .map((p) => {
          const st = p.status as { phase: string; containerStatuses?: { state?: { waiting?: { reason: string } } }[] };
          return `${st.phase} ${st.containerStatuses?.[0]?.state?.waiting?.reason ?? ''}`.trim();
        });
    const unpullable = stage1JobWithPlan({
      season: '2021-22',
      dates: DATES.slice(0, 1),
      image: 'nba-backfill:missing',
    });
    await admin.upsertConfigMap(unpullable.planConfigMap as never);
    await admin.createJob(unpullable.job as never);
    await waitFor(
      'ImagePullBackOff',
      () => waiting(unpullable.job.metadata.name)[0] === 'Pending ImagePullBackOff' || undefined,
    );
    const noPlan = stage1JobWithPlan({ season: '2021-22', dates: DATES.slice(1, 2) });
    await admin.createJob(noPlan.job as never);
    await waitFor(
      'ContainerCreating',
      () => waiting(noPlan.job.metadata.name)[0] === 'Pending ContainerCreating' || undefined,
    );
    // The ConfigMap arrives (Argo CD's next wave, say): the kubelet's next mount try starts the pod.
    await admin.upsertConfigMap(noPlan.planConfigMap as never);
    await waitFor('the job to finish', () => finished(server.get('jobs', NAMESPACE, noPlan.job.metadata.name)));
    expect(waiting(unpullable.job.metadata.name)).toEqual(['Pending ImagePullBackOff']);
  });

  it('reads the Jobs through a set-based label selector, as the controller watches them', async () => {
    await applyStage1(admin, '2021-22', DATES);
    await admin.upsertConfigMap({ metadata: { name: 'other' }, data: {} });
    await admin.createJob({
      metadata: { name: 'unrelated', labels: { 'app.kubernetes.io/component': 'stage1' } },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } },
    });
    const jobs = await kube.listJobs(JOB_SELECTOR);
    expect(jobs.map((j) => j.metadata?.name)).toEqual([expect.stringMatching(/^nba-stage1-202122-/)]);
    const bad = await kube.listJobs('app.kubernetes.io/component in (stage1').catch((e: unknown) => e);
    expect((bad as Error).message).toMatch(/HTTP 400 BadRequest: unable to parse requirement/);
  });
});

describe('the Job watch', () => {
  it('lists, then watches: a Job created later arrives as an event', async () => {
    let lists = 0;
    const informer = kube.jobInformer(JOB_SELECTOR, () => lists++);
    const seen: string[] = [];
    informer.on('add', (j) => seen.push(j.metadata?.name ?? ''));
    await informer.start();
    try {
      expect(lists).toBe(1);
      const { job } = await applyStage1(admin, '2021-22', DATES);
      await waitFor('the new job in the cache', () => informer.get(job, NAMESPACE));
      expect(seen).toEqual([job]);
      // Its status changes arrive too, up to the terminal condition.
      await waitFor('Complete in the cache', () =>
        informer.get(job, NAMESPACE)?.status?.conditions?.some((c) => c.type === 'Complete'),
      );
    } finally {
      await informer.stop();
    }
  });

  it('relists after its resourceVersion expired (410 Gone), seeing what changed meanwhile', async () => {
    let lists = 0;
    const informer = kube.jobInformer(JOB_SELECTOR, () => lists++);
    await informer.start();
    try {
      const first = await applyStage1(admin, '2021-22', DATES.slice(0, 2));
      await waitFor('the first job complete in the cache', () =>
        informer.get(first.job, NAMESPACE)?.status?.conditions?.some((c) => c.type === 'Complete'),
      );
      // Other writes move the resourceVersion past the watch's; the watch then drops (an API server restart),
      // a Job is created while it is down, and the history it would resume from is compacted away.
      await admin.upsertConfigMap({ metadata: { name: 'unrelated' }, data: { a: '1' } });
      server.closeWatches();
      const { job: missed } = stage1JobWithPlan({ season: '2022-23', dates: ['2022-10-18'] });
      server.create('jobs', NAMESPACE, missed as unknown as KubeObject);
      server.compact();
      await waitFor('the job created while the watch was down', () => informer.get(missed.metadata.name, NAMESPACE));
      // The relist fills the cache before the client opens its next watch: wait for that watch (an event the
      // double records), not for time, before reading the sequence of requests.
      const jobGets = () => server.requests.filter((r) => r.resource === 'jobs' && r.method === 'GET');
      await waitFor(
        'the watch resumed after the relist',
        () => server.watchCount() === 1 && jobGets().at(-1)?.verb === 'watch',
      );
      expect(lists).toBe(2);
      const watches = server.requests.filter((r) => r.resource === 'jobs' && r.verb === 'watch');
      const lastFailed = watches.at(-2);
      expect(lastFailed?.query.resourceVersion).toMatch(/^\d+$/);
      expect(Number(lastFailed?.query.resourceVersion)).toBeGreaterThan(0);
      // The sequence the client went through: list, watch, watch (410), list, watch.
      const verbs = jobGets().map((r) => r.verb);
      expect(verbs.slice(-3)).toEqual(['watch', 'list', 'watch']);
      expect(server.watchCount()).toBe(1);
    } finally {
      await informer.stop();
    }
  });

  it('answers a watch from an expired resourceVersion with an ERROR event holding a 410 Expired Status', async () => {
    const { job } = await applyStage1(admin, '2021-22', DATES.slice(0, 1));
    await waitFor('the job to finish', () => finished(server.get('jobs', NAMESPACE, job)));
    const old = Number(server.get('jobs', NAMESPACE, job)?.metadata.resourceVersion) - 1;
    server.compact();
    const events: { type: string; object: Record<string, unknown> }[] = [];
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kube.kubeConfig).watch(
        `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`,
        { resourceVersion: String(old) },
        (type, object) => events.push({ type, object }),
        resolve,
      );
    });
    expect(await ended).toBeNull();
    expect(events).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: expect.stringMatching(/^too old resource version: \d+ \(\d+\)$/),
          reason: 'Expired',
          code: 410,
        },
      },
    ]);
  });
});
