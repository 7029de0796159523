// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it (client-node
// has no helper). The Deployment runs one replica with the Recreate strategy, but a node partition can still
// leave the old pod running while a new one starts: only the holder of the Lease acts.
//
// The rules (https://kubernetes.io/docs/concepts/architecture/leases/, and client-go's LeaseLock):
// - the Lease names its holder (`holderIdentity`) and is valid `leaseDurationSeconds` after its `renewTime`;
// - a candidate takes a Lease that does not exist, is its own, or has expired, by create or by update at the
//   resourceVersion it read (a 409 means another candidate changed it first: read again);
// - the holder renews every `retryPeriod`; if it cannot renew within `renewDeadline` (shorter than the lease
//   duration), it stops acting before any other candidate can take the Lease over.

import { messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ClusterLease } from '../core/ports/cluster.js';

/** What the elector needs of the cluster (KubeClient implements it). */
export interface LeaseApi {
  readonly namespace: string;
  getLease(name: string): Promise<ClusterLease | null>;
  createLease(lease: ClusterLease): Promise<boolean>;
  replaceLease(lease: ClusterLease): Promise<ClusterLease | null>;
}

export interface LeaseOptions {
  readonly api: LeaseApi;
  /** @default 'nba-backfill-controller' */
  readonly name?: string;
  /** This candidate: its pod name. */
  readonly identity: string;
  readonly log: Logger;
  readonly now: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
  /** client-go's defaults: 15 s, 10 s, 2 s. */
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
}

export const CONTROLLER_LEASE = 'nba-backfill-controller';

/** A Lease's renewTime as the API sends it: a Date from client-node, an RFC 3339 string from raw JSON. */
function timeOf(value: unknown): number | null {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const t = Date.parse(value);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

export class LeaseElector {
  private holding = false;
  private stopped = false;
  /** When this candidate last renewed (its clock). */
  private renewedAt = 0;
  private readonly name: string;
  private readonly durationMs: number;
  private readonly deadlineMs: number;
  private readonly retryMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: LeaseOptions) {
    this.name = o.name ?? CONTROLLER_LEASE;
    this.durationMs = o.leaseDurationMs ?? 15_000;
    this.deadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
    if (!(this.deadlineMs < this.durationMs)) throw new Error('the renew deadline must be shorter than the lease');
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** True while this candidate holds the Lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.holding && this.o.now().getTime() - this.renewedAt < this.deadlineMs;
  }

  /**
   * One try to take or renew the Lease: true when this candidate holds it afterwards. Never throws: an API
   * error counts as a failed try (logged).
   */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.o.now();
    try {
      const current = await this.o.api.getLease(this.name);
      const spec = {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.ceil(this.durationMs / 1000),
        renewTime: now,
      };
      if (!current) {
        const created = await this.o.api.createLease({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.o.api.namespace },
          spec: { ...spec, acquireTime: now, leaseTransitions: 0 },
        } as ClusterLease);
        return this.settle(created, now);
      }
      const held = current.spec?.holderIdentity;
      const renewed = timeOf(current.spec?.renewTime) ?? 0;
      const validMs = (current.spec?.leaseDurationSeconds ?? 0) * 1000;
      if (held && held !== this.o.identity && renewed + validMs > now.getTime()) {
        return this.settle(false, now);
      }
      const mine = held === this.o.identity;
      const replaced = await this.o.api.replaceLease({
        ...current,
        spec: {
          ...current.spec,
          ...spec,
          acquireTime: mine ? current.spec?.acquireTime : now,
          leaseTransitions: (current.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      } as ClusterLease);
      return this.settle(replaced !== null, now);
    } catch (err) {
      this.o.log.warn({ lease: this.name, err: messageOf(err) }, 'could not take or renew the lease');
      return this.settle(false, now);
    }
  }

  private settle(holds: boolean, at: Date): boolean {
    if (holds) {
      if (!this.holding) this.o.log.info({ lease: this.name, identity: this.o.identity }, 'leading: holding the lease');
      this.holding = true;
      this.renewedAt = at.getTime();
    } else if (this.holding && !this.isLeader()) {
      this.holding = false;
      this.o.log.error({ lease: this.name }, 'lost the lease: stopping');
    }
    return this.holding && this.isLeader();
  }

  /**
   * Tries every retry period until this candidate leads, then calls `onLeading` and renews every retry
   * period; resolves once the lease is lost (the caller stops acting) or `stop` was called.
   */
  async run(onLeading: () => void): Promise<'lost' | 'stopped'> {
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await this.sleep(this.retryMs);
    if (this.stopped) return 'stopped';
    onLeading();
    while (!this.stopped) {
      await this.sleep(this.retryMs);
      if (this.stopped) break;
      await this.tryAcquireOrRenew();
      if (!this.isLeader()) return 'lost';
    }
    return 'stopped';
  }

  stop(): void {
    this.stopped = true;
  }
}
