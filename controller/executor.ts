// The Kubernetes executor: the executor port (core/ports/executor.ts) on the cluster. It observes the Jobs the
// watch holds (plus those it created that the watch has not shown yet), their ConfigMaps and pods, and the gate
// results it computed; it carries out a decision through `act`.

import { type ObserveCache, observe } from '../core/kubernetes/observe.js';
import type { Action, GateOutcome, ObservedState } from '../core/kubernetes/reconcile.js';
import type { ClusterJob } from '../core/ports/cluster.js';
import type { Executor } from '../core/ports/executor.js';
import { type ActPorts, act } from './act.js';

export class KubeExecutor implements Executor {
  private readonly gates = new Map<string, GateOutcome>();
  private readonly cache: ObserveCache = { plans: new Map() };
  /** Jobs this executor created that the watch has not shown yet ("expectations"). */
  private readonly expected = new Map<string, ClusterJob>();

  /** `watched`: the Jobs the watch holds now. */
  constructor(
    private readonly ports: ActPorts,
    private readonly watched: () => ClusterJob[],
  ) {}

  /** The Jobs the watch holds, plus those this executor created and the watch has not shown yet. */
  private currentJobs(): ClusterJob[] {
    const jobs = [...this.watched()];
    const names = new Set(jobs.map((j) => j.metadata?.name));
    for (const [name, job] of this.expected) {
      if (names.has(name)) this.expected.delete(name);
      else jobs.push(job);
    }
    return jobs;
  }

  /** The gate result this executor computed for a season, if any. */
  gateOf(season: string): GateOutcome | undefined {
    return this.gates.get(season);
  }

  observe(): Promise<ObservedState> {
    return observe(this.ports.kube, this.currentJobs(), this.gates, this.cache);
  }

  async act(action: Action): Promise<void> {
    const outcome = await act(this.ports, action);
    if (outcome.gate && action.kind === 'runGate') this.gates.set(action.season, outcome.gate);
    if (outcome.createdJob?.metadata?.name) this.expected.set(outcome.createdJob.metadata.name, outcome.createdJob);
  }
}
