// The local executor: carries out the reconcile's decisions on this machine (Stage 1 as an Indexed Job on the
// local job runtime, the gate, Stage 3 and Stage 4 in this process) and observes what they did in the
// reconcile's terms, as the controller observes the cluster. `backfill run` drives it.

import { observedStage1Job, observedStage3Job } from '../core/adapters/local/observed.js';
import type { IsoDate } from '../core/dates.js';
import { formatGate, type GateResult, runGate } from '../core/gate.js';
import { stage3JobName } from '../core/jobs/spec.js';
import type {
  Action,
  GateOutcome,
  ObservedJob,
  ObservedReport,
  ObservedState,
  PlanLookup,
  Stage3Spec,
  Stage3Termination,
} from '../core/kubernetes/reconcile.js';
import type { Season } from '../core/pipeline/seasons.js';
import type { PlanDate } from '../core/plan.js';
import type { Executor } from '../core/ports/executor.js';
import type { Stage3Summary } from '../core/stages/stage3.js';
import { runStage1Job, type Stage1SeasonJson, stage1Json } from './commands/stage1.js';
import { runStage3Season } from './commands/stage3.js';
import { runValidation } from './commands/validate.js';
import type { CommandContext } from './context.js';
import type { RuntimeFlags } from './selection.js';
import { type Streams, streamsFor } from './streams.js';

/** A season and the dates of the plan selected in it. */
export interface LocalSelection {
  readonly season: Season;
  readonly dates: readonly PlanDate[];
}

/** What the run did, for its last words and exit code. */
export interface LocalResults {
  /** The gate verdicts published, by season. */
  readonly gates: ReadonlyMap<string, GateResult>;
  /** Stage 3 summaries, by season (an interrupted one included). */
  readonly stage3: ReadonlyMap<string, Stage3Summary>;
  /** Whether each season's validation passed. */
  readonly validations: ReadonlyMap<string, boolean>;
  /** Each season's Stage 1 job, as `stage1 --format json` shows it. */
  readonly stage1: ReadonlyMap<string, Stage1SeasonJson>;
  /** Each season's validation report (HTML). */
  readonly reportFiles: ReadonlyMap<string, string>;
}

export class LocalExecutor implements Executor, LocalResults {
  readonly gates = new Map<string, GateResult>();
  readonly stage3 = new Map<string, Stage3Summary>();
  readonly validations = new Map<string, boolean>();
  readonly stage1 = new Map<string, Stage1SeasonJson>();
  readonly reportFiles = new Map<string, string>();
  private readonly jobs: ObservedJob[] = [];
  private readonly plans = new Map<string, PlanLookup>();
  private readonly terminations = new Map<string, Stage3Termination | null>();
  private readonly reports: ObservedReport[] = [];
  private readonly computed = new Map<string, GateOutcome>();
  private readonly bySeason: ReadonlyMap<string, LocalSelection>;

  constructor(
    private readonly ctx: CommandContext,
    private readonly flags: RuntimeFlags,
    selections: readonly LocalSelection[],
    private readonly signal?: AbortSignal,
    private readonly io: Streams = streamsFor(),
  ) {
    this.bySeason = new Map(selections.map((s) => [s.season.label, s]));
  }

  async observe(): Promise<ObservedState> {
    const specs = new Map<string, Stage3Spec>();
    const selection = new Map<string, IsoDate[]>();
    for (const [season, s] of this.bySeason) {
      const dates = s.dates.map((d) => d.date);
      selection.set(season, dates);
      // Named as the cluster names the season's Stage 3 Job; there is no manifest to create here.
      if (dates.length > 0) specs.set(season, { ok: true, jobName: stage3JobName(season, dates), manifest: {} });
    }
    return {
      namespace: '',
      jobs: [...this.jobs],
      plans: new Map(this.plans),
      stage3Specs: specs,
      stage3Pods: new Map(this.terminations),
      reports: [...this.reports],
      gates: new Map(this.computed),
      selection,
    };
  }

  /** The plan dates (with game ids) of some dates of a season. */
  private planDates(season: string, dates: readonly IsoDate[]): PlanDate[] {
    const wanted = new Set(dates);
    return (this.bySeason.get(season)?.dates ?? []).filter((d) => wanted.has(d.date));
  }

  private report(kind: ObservedReport['kind'], season: string, over: Partial<ObservedReport> = {}): void {
    this.reports.push({
      name: `${kind}-${season}`,
      kind,
      season,
      jobUid: null,
      gateKey: null,
      gatePassed: null,
      ...over,
    });
  }

  async act(a: Action): Promise<void> {
    const selected = this.bySeason.get(a.season);
    switch (a.kind) {
      case 'startStage1': {
        const result = await runStage1Job(
          this.ctx,
          selected?.season as Season,
          a.dates,
          this.flags,
          'stage1',
          this.signal,
          this.io,
        );
        this.stage1.set(a.season, stage1Json(result));
        this.jobs.push(observedStage1Job(result.status, a.season, result.dates));
        this.plans.set(result.jobName, {
          ok: true,
          plan: { jobName: result.jobName, season: a.season, dates: result.dates },
        });
        return;
      }
      case 'reportStage1Failures':
        // Stage 1 printed its failures and wrote its failure log (a file and a table) as it ended.
        this.report('failures', a.season, { jobUid: a.jobUid });
        return;
      case 'runGate': {
        const result = await runGate(this.ctx.adapters.warehouse, [
          { season: a.season, dates: this.planDates(a.season, a.dates) },
        ]);
        this.computed.set(a.season, { key: a.key, result });
        return;
      }
      case 'publishGate':
        this.io.say(formatGate(a.result));
        this.gates.set(a.season, a.result);
        this.report('gate', a.season, { gateKey: a.key, gatePassed: a.result.passed });
        return;
      case 'createStage3Job': {
        const run = await runStage3Season(
          this.ctx,
          selected?.season as Season,
          selected?.dates ?? [],
          {},
          this.signal,
          this.io,
        );
        this.stage3.set(a.season, run.summary);
        // Interrupted: the Job is left running, as a stopped run leaves it; the drive ends on the signal.
        if (run.summary.status === 'interrupted') return;
        const { job, termination } = observedStage3Job(a.job, a.season, run.summary);
        this.jobs.push(job);
        this.terminations.set(a.job, termination);
        return;
      }
      case 'reportStage3Failure':
        // Stage 3 printed where it stopped and wrote its summary file.
        this.report('stage3-failure', a.season, { jobUid: a.jobUid });
        return;
      case 'validate': {
        const { report, files } = await runValidation(
          this.ctx,
          [{ season: selected?.season as Season, dates: this.planDates(a.season, a.dates) }],
          undefined,
          this.io,
        );
        this.validations.set(a.season, report.passed);
        this.reportFiles.set(a.season, files.html);
        this.report('validation', a.season, { jobUid: a.jobUid });
        return;
      }
      case 'warn':
        return;
    }
  }
}
