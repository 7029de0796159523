// Leader election on a Lease (controller/lease.ts), through client-node against the API server double with the
// controller's Role: one holder at a time, a takeover only once the lease has expired (15 s after its renewal),
// a holder that cannot renew for 10 s stops leading before anyone else can take over, and two candidates racing
// for an expired lease are settled by the API server's resourceVersion check (one gets 409).

import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONTROLLER_LEASE, LeaseElector } from '../controller/lease.js';
import { type KubeApiServer, startKubeApiServer } from './support/kubeApiServer.js';
import { CONTROLLER_TOKEN, CONTROLLER_USER, clientFor, NAMESPACE, TOKENS } from './support/kubeFixtures.js';

let server: KubeApiServer;
let clock: number;
const logs: Record<string, unknown>[] = [];
const log = pino({ level: 'info' }, { write: (l: string) => logs.push(JSON.parse(l)) });

beforeEach(async () => {
  server = await startKubeApiServer({ tokens: TOKENS });
  clock = Date.parse('2026-12-01T12:00:00Z');
  logs.length = 0;
});
afterEach(async () => {
  await server.close();
});

function candidate(identity: string, failing?: { on: boolean }): LeaseElector {
  const kube = clientFor(server, CONTROLLER_TOKEN);
  // A partitioned candidate: its API calls fail while `failing.on`.
  const api = {
    namespace: kube.namespace,
    getLease: (n: string) => (failing?.on ? Promise.reject(new Error('dial tcp: i/o timeout')) : kube.getLease(n)),
    createLease: (l: Parameters<typeof kube.createLease>[0]) => kube.createLease(l),
    replaceLease: (l: Parameters<typeof kube.replaceLease>[0]) => kube.replaceLease(l),
  };
  return new LeaseElector({ api, identity, log, now: () => new Date(clock) });
}

const holder = () =>
  (server.get('leases', NAMESPACE, CONTROLLER_LEASE)?.spec as { holderIdentity?: string })?.holderIdentity;

describe('the leader lease', () => {
  it('has one holder; another takes over only once it expired, 15 s after its last renewal', async () => {
    const a = candidate('controller-a');
    const b = candidate('controller-b');
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(holder()).toBe('controller-a');
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock += 5_000;
    expect(await a.tryAcquireOrRenew()).toBe(true);
    // a stops renewing (its pod is partitioned away): just before expiry b still waits, at expiry it takes over.
    clock += 14_999;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock += 1;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(holder()).toBe('controller-b');
    const spec = server.get('leases', NAMESPACE, CONTROLLER_LEASE)?.spec as Record<string, unknown>;
    expect(spec).toMatchObject({ leaseDurationSeconds: 15, leaseTransitions: 1 });
    // a, back, finds the lease held and does not lead.
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(a.isLeader()).toBe(false);
    expect(logs.some((l) => l.msg === 'lost the lease: stopping')).toBe(true);
  });

  it('stops leading 10 s after its last renewal when it cannot renew, before any other can take over', async () => {
    const partition = { on: false };
    const a = candidate('controller-a', partition);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    partition.on = true;
    clock += 9_999;
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(a.isLeader()).toBe(true);
    clock += 1;
    expect(a.isLeader()).toBe(false);
    expect(await a.tryAcquireOrRenew()).toBe(false);
    // The lease itself is still valid for 5 s more: nobody else leads yet either.
    expect(await candidate('controller-b').tryAcquireOrRenew()).toBe(false);
  });

  it('two candidates racing for an expired lease: the API server lets one update win (409 for the other)', async () => {
    expect(await candidate('controller-old').tryAcquireOrRenew()).toBe(true);
    clock += 60_000;
    const results = await Promise.all([
      candidate('controller-a').tryAcquireOrRenew(),
      candidate('controller-b').tryAcquireOrRenew(),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(holder()).toBe(results[0] ? 'controller-a' : 'controller-b');
    const updates = server.requests.filter((r) => r.resource === 'leases' && r.verb === 'update');
    expect(updates.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it('needs only the Role the chart grants: get, create and update on leases', async () => {
    const a = candidate('controller-a');
    await a.tryAcquireOrRenew();
    clock += 2_000;
    await a.tryAcquireOrRenew();
    const used = server.requests.filter((r) => r.user === CONTROLLER_USER);
    expect(new Set(used.map((r) => `${r.verb} ${r.resource} ${r.status}`))).toEqual(
      new Set(['get leases 404', 'create leases 201', 'get leases 200', 'update leases 200']),
    );
  });

  it('run: waits while another leads, calls onLeading once it holds, and returns "lost" when it cannot renew', async () => {
    const partition = { on: false };
    const other = candidate('controller-other');
    expect(await other.tryAcquireOrRenew()).toBe(true);
    const sleeps: number[] = [];
    const kube = clientFor(server, CONTROLLER_TOKEN);
    let led = 0;
    const a = new LeaseElector({
      api: {
        namespace: kube.namespace,
        getLease: (n) => (partition.on ? Promise.reject(new Error('connection refused')) : kube.getLease(n)),
        createLease: (l) => kube.createLease(l),
        replaceLease: (l) => kube.replaceLease(l),
      },
      identity: 'controller-a',
      log,
      now: () => new Date(clock),
      // Each pause moves the clock: a retry period of 2 s.
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
        // Once leading for a while, the partition begins.
        if (led > 0 && sleeps.length >= 10) partition.on = true;
      },
    });
    expect(await a.run(() => led++)).toBe('lost');
    expect(led).toBe(1);
    // It waited for the other's lease to expire (15 s in 2 s steps), led, then lost it 10 s into the partition.
    expect(sleeps.every((ms) => ms === 2_000)).toBe(true);
    expect(holder()).toBe('controller-a');
  });
});
