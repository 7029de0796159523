// The controller's Prometheus metrics (prom-client), served at /metrics on its health port: per season, what it
// observed of Stage 1, the gate and Stage 3, and its own passes and watch. One Registry per controller, never the
// library's global one, so that two controllers (or two tests) never share a series.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IsoDate } from '../core/dates.js';
import { parseIndexes } from '../core/jobs/indexes.js';
import { COMPONENT_STAGE1 } from '../core/kubernetes/contract.js';
import { jobOutcome, type ObservedState, openFailedDates } from '../core/kubernetes/reconcile.js';
import type { Stage3Summary } from '../core/stages/stage3.js';

/** Buckets of the seconds one Stage 3 date takes (Phase 3 then Phase 4 of a date: seconds to minutes). */
export const STAGE3_DATE_SECONDS_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

/** A season's Stage 1 dates as the controller sees them. */
export interface Stage1DateCounts {
  /** Every date of the season's Stage 1 and retry plans. */
  readonly planned: number;
  /** Dates whose latest attempt completed (in a finished Job, or in one still running). */
  readonly loaded: number;
  /** Dates whose latest finished attempt failed and that no running Job has loaded since. */
  readonly failed: number;
}

/** Stage 1 dates per season, from the Jobs' completed indexes and their plans (pure). */
export function stage1DateCounts(state: ObservedState): Map<string, Stage1DateCounts> {
  const out = new Map<string, Stage1DateCounts>();
  const stage1 = state.jobs.filter((j) => j.component === COMPONENT_STAGE1);
  for (const season of [...new Set(stage1.map((j) => j.season))].sort()) {
    const jobs = stage1.filter((j) => j.season === season);
    const planned = new Set<IsoDate>();
    const completed = new Set<IsoDate>();
    const loadedByRunning = new Set<IsoDate>();
    for (const job of jobs) {
      const lookup = job.planConfigMap ? state.plans.get(job.planConfigMap) : undefined;
      if (!lookup?.ok) continue;
      for (const date of lookup.plan.dates) planned.add(date);
      for (const index of parseIndexes(job.completedIndexes)) {
        const date = lookup.plan.dates[index];
        if (date === undefined) continue;
        completed.add(date);
        if (jobOutcome(job) === null) loadedByRunning.add(date);
      }
    }
    // A date's latest finished attempt decides, unless a Job still running has loaded it since.
    const failed = new Set(openFailedDates(jobs, state.plans).filter((d) => !loadedByRunning.has(d)));
    const loaded = [...completed].filter((d) => !failed.has(d)).length;
    out.set(season, { planned: planned.size, loaded, failed: failed.size });
  }
  return out;
}

/** The gate's latest verdict per season: computed by this process, else the one published in its ConfigMap. */
export function gateVerdicts(state: ObservedState): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const r of state.reports) if (r.kind === 'gate' && r.gatePassed !== null) out.set(r.season, r.gatePassed);
  for (const [season, gate] of state.gates) out.set(season, gate.result.passed);
  return out;
}

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly stage1Dates = new Gauge({
    name: 'nba_backfill_stage1_dates',
    help: 'Stage 1 dates per season: planned (in any Stage 1 or retry plan), loaded (latest attempt completed), failed (latest attempt failed)',
    labelNames: ['season', 'state'] as const,
    registers: [this.registry],
  });
  private readonly gatePassed = new Gauge({
    name: 'nba_backfill_gate_passed',
    help: "The Phase 2 gate's latest verdict per season: 1 passed, 0 failed (no series before it ran)",
    labelNames: ['season'] as const,
    registers: [this.registry],
  });
  private readonly gateRuns = new Counter({
    name: 'nba_backfill_gate_runs_total',
    help: 'Gate runs by this controller, per season and verdict',
    labelNames: ['season', 'verdict'] as const,
    registers: [this.registry],
  });
  private readonly stage3Complete = new Gauge({
    name: 'nba_backfill_stage3_dates_complete',
    help: 'Dates Phase 3-4 complete per season, from the last Stage 3 summary the controller read',
    labelNames: ['season'] as const,
    registers: [this.registry],
  });
  private readonly stage3Dates = new Gauge({
    name: 'nba_backfill_stage3_dates',
    help: "Dates of the season's Stage 3, from the last Stage 3 summary the controller read",
    labelNames: ['season'] as const,
    registers: [this.registry],
  });
  private readonly stage3Runs = new Counter({
    name: 'nba_backfill_stage3_runs_total',
    help: 'Stage 3 Jobs that ended, per season and status of their summary (succeeded, failed, gate_failed, interrupted, unknown)',
    labelNames: ['season', 'status'] as const,
    registers: [this.registry],
  });
  private readonly stage3DateSeconds = new Histogram({
    name: 'nba_backfill_stage3_date_seconds',
    help: 'Seconds each date completed by a Stage 3 run took (Phase 3 then Phase 4), from its summary',
    labelNames: ['season'] as const,
    buckets: STAGE3_DATE_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  private readonly passes = new Counter({
    name: 'nba_backfill_controller_reconcile_passes_total',
    help: 'Reconcile passes (observe, reconcile, act) started',
    registers: [this.registry],
  });
  private readonly passErrors = new Counter({
    name: 'nba_backfill_controller_reconcile_errors_total',
    help: 'Reconcile passes that failed (retried after a pause)',
    registers: [this.registry],
  });
  private readonly watchRestarts = new Counter({
    name: 'nba_backfill_controller_watch_restarts_total',
    help: 'Restarts of the Job watch after an error',
    registers: [this.registry],
  });
  private readonly actions = new Counter({
    name: 'nba_backfill_controller_actions_total',
    help: 'Actions carried out, per kind (reportStage1Failures, runGate, publishGate, createStage3Job, reportStage3Failure, validate, warn)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  private readonly actionFailures = new Counter({
    name: 'nba_backfill_controller_action_failures_total',
    help: "Actions that failed, per kind and season (the season's actions are retried after a pause; other seasons go on)",
    labelNames: ['kind', 'season'] as const,
    registers: [this.registry],
  });

  passStarted(): void {
    this.passes.inc();
  }

  actionFailed(kind: string, season: string): void {
    this.actionFailures.inc({ kind, season });
  }

  passFailed(): void {
    this.passErrors.inc();
  }

  watchRestarted(): void {
    this.watchRestarts.inc();
  }

  acted(kind: string): void {
    this.actions.inc({ kind });
  }

  gateRan(season: string, passed: boolean): void {
    this.gateRuns.inc({ season, verdict: passed ? 'passed' : 'failed' });
  }

  /** Sets the gauges from what a pass observed: level-triggered, like the pass itself. */
  observed(state: ObservedState): void {
    this.stage1Dates.reset();
    for (const [season, counts] of stage1DateCounts(state)) {
      for (const key of ['planned', 'loaded', 'failed'] as const)
        this.stage1Dates.set({ season, state: key }, counts[key]);
    }
    this.gatePassed.reset();
    for (const [season, passed] of gateVerdicts(state)) this.gatePassed.set({ season }, passed ? 1 : 0);
  }

  /**
   * A Stage 3 Job ended and its outcome was reported (once per Job): its summary's progress, and the seconds of
   * each date it completed. Without a summary (no termination message) only the run is counted.
   */
  stage3Ended(season: string, summary: Stage3Summary | null): void {
    this.stage3Runs.inc({ season, status: summary?.status ?? 'unknown' });
    if (!summary) return;
    this.stage3Dates.set({ season }, summary.dates);
    if (summary.datesComplete !== undefined) this.stage3Complete.set({ season }, summary.datesComplete);
    for (const ms of summary.msPerDate ?? []) this.stage3DateSeconds.observe({ season }, ms / 1000);
  }

  /** The text exposition format and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
