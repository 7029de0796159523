// drive(): observe -> reconcile -> act until nothing is left, a signal stops it, or an executor fails to carry a
// decision out. The executor here keeps its world in memory (the real ones are run by oneBrain.test.ts); it
// observes what it did through the local executor's own conversions.

import { describe, expect, it } from 'vitest';
import { observedStage1Job, observedStage3Job } from '../core/adapters/local/observed.js';
import type { IsoDate } from '../core/dates.js';
import { ProcessingError } from '../core/errors.js';
import type {
  Action,
  GateOutcome,
  ObservedJob,
  ObservedReport,
  ObservedState,
  Stage3Termination,
} from '../core/kubernetes/reconcile.js';
import { drive, type Executor } from '../core/ports/executor.js';

const SEASON = '2021-22';
const DATES: IsoDate[] = ['2021-10-19', '2021-10-20'];
const STAGE3 = 'nba-stage3-202122-aaaa0000';

class MemoryExecutor implements Executor {
  readonly acted: Action['kind'][] = [];
  private readonly jobs: ObservedJob[] = [];
  private readonly reports: ObservedReport[] = [];
  private readonly gates = new Map<string, GateOutcome>();
  private readonly pods = new Map<string, Stage3Termination | null>();

  constructor(private readonly world: { gatePasses: boolean; spec?: boolean; ignores?: Action['kind'] }) {}

  async observe(): Promise<ObservedState> {
    return {
      namespace: '',
      jobs: [...this.jobs],
      plans: new Map([['job-1', { ok: true, plan: { jobName: 'job-1', season: SEASON, dates: DATES } }]]),
      stage3Specs: new Map(
        this.world.spec === false ? [] : [[SEASON, { ok: true, jobName: STAGE3, manifest: {} }] as const],
      ),
      stage3Pods: new Map(this.pods),
      reports: [...this.reports],
      gates: new Map(this.gates),
      selection: new Map([[SEASON, DATES]]),
    };
  }

  async act(a: Action): Promise<void> {
    this.acted.push(a.kind);
    if (a.kind === this.world.ignores) return;
    const report = (kind: ObservedReport['kind'], over: Partial<ObservedReport>) =>
      this.reports.push({ name: kind, kind, season: SEASON, jobUid: null, gateKey: null, gatePassed: null, ...over });
    switch (a.kind) {
      case 'startStage1':
        this.jobs.push(
          observedStage1Job(
            {
              jobName: 'job-1',
              completedIndexes: '0-1',
              failedIndexes: '',
              succeeded: 2,
              failed: 0,
              conditions: [{ type: 'Complete', status: 'True' }],
              startTime: '2024-01-01T00:00:00Z',
              completionTime: '2024-01-01T00:01:00Z',
              indexes: [],
            },
            SEASON,
            DATES,
          ),
        );
        return;
      case 'runGate':
        this.gates.set(SEASON, {
          key: a.key,
          result: {
            passed: this.world.gatePasses,
            seasons: [SEASON],
            dates: 2,
            games: 20,
            range: null,
            tables: [],
            runProblems: this.world.gatePasses
              ? []
              : [{ processor: 'nbac_schedule', date: '2021-10-20', problem: 'failed', error: 'x' }],
          },
        });
        return;
      case 'publishGate':
        report('gate', { gateKey: a.key, gatePassed: a.result.passed });
        return;
      case 'createStage3Job': {
        const summary = { status: 'succeeded', season: SEASON, dates: 2, processed: 2, resumedFrom: null } as const;
        const { job, termination } = observedStage3Job(a.job, SEASON, { ...summary, completedThrough: '2021-10-20' });
        this.jobs.push(job);
        this.pods.set(a.job, termination);
        return;
      }
      case 'validate':
        report('validation', { jobUid: a.jobUid });
        return;
      default:
        throw new Error(`not in this world: ${a.kind}`);
    }
  }
}

describe('drive', () => {
  it.each([
    {
      name: 'the gate passes: Stage 1, the gate, its verdict and Stage 3, validation, then nothing is left',
      world: { gatePasses: true },
      kinds: ['startStage1', 'runGate', 'publishGate', 'createStage3Job', 'validate'],
    },
    {
      name: 'the gate fails: its verdict is the last decision',
      world: { gatePasses: false },
      kinds: ['startStage1', 'runGate', 'publishGate'],
    },
  ])('$name', async ({ world, kinds }) => {
    const executor = new MemoryExecutor(world);
    const told: string[] = [];
    const driven = await drive(executor, { onDecision: (d) => told.push(d.kind) });
    expect(driven.stopped).toBe(false);
    expect(driven.decisions.map((d) => d.kind)).toEqual(kinds);
    expect(told).toEqual(kinds);
    expect(executor.acted).toEqual(kinds);
  });

  it.each([
    { name: 'stopped before the first decision: nothing acted', after: 0, kinds: [] },
    { name: 'stopped during Stage 1: nothing after it', after: 1, kinds: ['startStage1'] },
    { name: 'stopped during the gate: its verdict not published', after: 2, kinds: ['startStage1', 'runGate'] },
  ])('$name', async ({ after, kinds }) => {
    const executor = new MemoryExecutor({ gatePasses: true });
    const driven = await drive(executor, { stopped: () => executor.acted.length >= after });
    expect(driven.stopped).toBe(true);
    expect(driven.decisions.map((d) => d.kind)).toEqual(kinds);
    expect(executor.acted).toEqual(kinds);
  });

  it('a warning is told, not acted on, and ends the drive when nothing else is left', async () => {
    const executor = new MemoryExecutor({ gatePasses: true, spec: false });
    const told: Action[] = [];
    const driven = await drive(executor, { onDecision: (d) => told.push(d) });
    expect(told.map((d) => d.kind)).toEqual(['startStage1', 'runGate', 'publishGate', 'warn']);
    expect(told.at(-1)?.why).toBe('gate passed but no Stage 3 spec: not found');
    expect(driven.decisions.map((d) => d.kind)).toEqual(['startStage1', 'runGate', 'publishGate']);
    expect(executor.acted).not.toContain('warn');
  });

  it('an executor that does not carry a decision out: a ProcessingError naming it, not an endless loop', async () => {
    const executor = new MemoryExecutor({ gatePasses: true, ignores: 'runGate' });
    const run = drive(executor);
    await expect(run).rejects.toThrow(ProcessingError);
    await expect(run).rejects.toThrow(
      'the executor did not carry out: every Stage 1 job of 2021-22 finished (1 job, 2 dates): run the gate',
    );
    expect(executor.acted).toEqual(['startStage1', 'runGate']);
  });
});
