// Stage 3's `pubsub` Phase 4 mode end to end on the real Pub/Sub emulator and real 2021-22 dates: Phase 3
// publishes, the subscriber runs Phase 4 once per date, Stage 3 waits on run history; redeliveries, a failed
// Phase 4, the timeout, and the subscriber program itself. Also the wait's backoff and states, without Pub/Sub.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Adapters, openAdapters } from '../core/adapters/index.js';
import { InProcessEventBus } from '../core/adapters/inprocess/events.js';
import { PubSubEventBus } from '../core/adapters/pubsub/events.js';
import { BundledStatsSource } from '../core/adapters/source/bundled.js';
import { CheckedWarehouse, checkDataOf } from '../core/checks/data.js';
import { loadConfig } from '../core/config.js';
import { runInOneCommit, runPhases1And2, runPhases3And4 } from '../core/dateRun.js';
import type { IsoDate } from '../core/dates.js';
import { ProcessingError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { processorsOfPhase } from '../core/pipeline/definition.js';
import type { PipelinePorts } from '../core/pipeline/processor.js';
import { getSeason } from '../core/pipeline/seasons.js';
import { readPlan, selectDates } from '../core/plan.js';
import {
  type EventHandler,
  type ReceivedEvent,
  TOPIC_PHASE3_COMPLETE,
  TOPIC_PHASE4_COMPLETE,
} from '../core/ports/events.js';
import type { Warehouse, WarehouseChange } from '../core/ports/warehouse.js';
import { phaseProcessors } from '../core/processors.js';
import { type RunRecord, recordRun } from '../core/runs/history.js';
import { ANALYTICS_TABLES, PRECOMPUTE_TABLES } from '../core/schema/derived.js';
import { qualifiedName, type Row } from '../core/schema/table.js';
import {
  awaitPhase4,
  PHASE4_SUBSCRIPTION,
  type Phase4HandlerOutcome,
  Phase4WaitError,
  Phase4Wakeups,
  phase4Handler,
  runPhase3WithRemotePhase4,
} from '../core/stages/phase4Remote.js';
import { runStage3 } from '../core/stages/stage3.js';
import { tableContents } from './support/adapters.js';
import { writeCorrectedFolder } from './support/corrections.js';
import { type PubSubEmulator, runEmulatorTests, usePubSubEmulator } from './support/pubsubEmulator.js';
import { ensureBuilt, REPO_ROOT } from './support/workspace.js';

const log = silentLogger();
const PHASE3 = processorsOfPhase(3).map((d) => d.name);
const PHASE4 = processorsOfPhase(4).map((d) => d.name);
/** The first five game dates of 2021-22: the bootstrap period, processed without blocking. */
const DATES: IsoDate[] = ['2021-10-19', '2021-10-20', '2021-10-21', '2021-10-22', '2021-10-23'];
const stage3Run = { trigger: { command: 'test stage3', stage: 'stage3' }, skipDownstreamTrigger: true };

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function openPipeline(dir: string, events = 'inprocess'): Promise<Adapters> {
  return openAdapters(
    loadConfig({
      env: {},
      flags: { warehouse: `duckdb:${join(dir, 'warehouse.duckdb')}`, objects: `file:${join(dir, 'objects')}`, events },
    }),
  );
}

/** A warehouse whose next commit fails once when armed: a transient outage in the subscriber's pod. */
class FlakyWarehouse extends CheckedWarehouse {
  armed = false;
  override async commit(change: WarehouseChange) {
    if (this.armed) {
      this.armed = false;
      throw new ProcessingError('injected: the warehouse is unavailable', { transient: true });
    }
    return super.commit(change);
  }
}

async function runsOf(warehouse: Warehouse, date: IsoDate, phase: number): Promise<Row[]> {
  return warehouse.query(
    `SELECT processor_name, status, trigger_command, attempt, run_id, rows_processed
       FROM nba_reference.processor_run_history WHERE data_date = @date AND phase = @phase
      ORDER BY finished_at, processor_name`,
    { date, phase },
  );
}

async function precomputeRows(warehouse: Warehouse, date: IsoDate): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of PRECOMPUTE_TABLES) {
    const [r] = await warehouse.query(
      `SELECT COUNT(*) AS n FROM ${qualifiedName(t)} WHERE ${t.partitionColumn} = @date`,
      { date },
    );
    out[t.name] = Number(r?.n);
  }
  return out;
}

describe('awaitPhase4 reads run history with backoff (no Pub/Sub)', () => {
  let adapters: Adapters;
  let clock = 0;
  const sleeps: number[] = [];
  const options = {
    timeoutMs: 20_000,
    now: () => clock,
    sleep: async (_date: IsoDate, ms: number) => {
      sleeps.push(ms);
      clock += ms;
    },
  };
  let n = 0;
  const run = (processor: string, phase: number, date: IsoDate, status: RunRecord['status'], at: string) =>
    recordRun(adapters.warehouse, {
      runId: `run-${++n}`,
      processorName: processor,
      phase,
      dataDate: date,
      season: '2021-22',
      status,
      errorMessage: status === 'success' ? null : `${processor} ${status} on purpose`,
      rowsProcessed: 1,
      decision: status === 'success' ? 'processed' : status === 'blocked' ? 'blocked' : 'failed',
      attempt: 1,
      startedAt: new Date(at),
      finishedAt: new Date(at),
      trigger: { command: 'test' },
      strictMode: true,
      details: {},
    });

  beforeAll(async () => {
    adapters = await openAdapters(loadConfig({ env: {}, flags: { warehouse: 'duckdb::memory:' } }));
  });
  afterAll(async () => adapters.close());

  it('times out with an error naming the date and every missing processor, pausing 250 ms doubling to 5 s', async () => {
    sleeps.length = 0;
    clock = 0;
    const wait = await awaitPhase4(adapters.warehouse, '2021-11-01', options);
    expect(sleeps).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 2250]);
    if (wait.ok) throw new Error('expected a timeout');
    expect(wait.error).toBeInstanceOf(Phase4WaitError);
    expect(wait.error.check).toBe('phase4_timeout');
    expect(wait.error.message).toMatch(
      /^Phase 4 of 2021-11-01 is not done after waiting 20000 ms \(phase4Mode pubsub\): still missing player_daily_cache \(no run\), player_composite_factors \(no run\), ml_feature_store \(no run\)\. Phase 4 runs in the subscribers of nba-phase3-analytics-complete/,
    );
  });

  it('counts only Phase 4 runs newer than Phase 3, waits through a failed run and stops at a blocked one', async () => {
    const date = '2021-11-02';
    for (const p of PHASE4) await run(p, 4, date, 'success', '2021-11-03T10:00:00Z');
    for (const p of PHASE3) await run(p, 3, date, 'success', '2021-11-03T11:00:00Z'); // Phase 3 re-ran after
    clock = 0;
    const stale = await awaitPhase4(adapters.warehouse, date, { ...options, timeoutMs: 300 });
    expect(stale.ok).toBe(false);
    expect(stale.progress.gaps.map((g) => g.state)).toEqual([
      'older_than_phase3',
      'older_than_phase3',
      'older_than_phase3',
    ]);
    expect(stale.ok ? '' : stale.error.message).toContain('player_daily_cache (its latest run, 2021-11-03 10:00:00');

    await run('player_daily_cache', 4, date, 'success', '2021-11-03T11:01:00Z');
    await run('player_composite_factors', 4, date, 'failed', '2021-11-03T11:01:00Z');
    clock = 0;
    const failing = await awaitPhase4(adapters.warehouse, date, { ...options, timeoutMs: 300 });
    expect(failing.ok ? '' : failing.error.reason).toBe('timeout');
    expect(failing.ok ? '' : failing.error.message).toContain(
      'player_composite_factors (failed: player_composite_factors failed on purpose)',
    );

    await run('player_composite_factors', 4, date, 'blocked', '2021-11-03T11:02:00Z');
    sleeps.length = 0;
    const blocked = await awaitPhase4(adapters.warehouse, date, options);
    expect(sleeps).toEqual([]); // at once: redelivery cannot unblock it
    if (blocked.ok) throw new Error('expected a block');
    expect(blocked.error.check).toBe('phase4_blocked');
    expect(blocked.error.processor).toBe('player_composite_factors');
    expect(blocked.error.message).toBe(
      'Phase 4 of 2021-11-02 was blocked in its subscriber (phase4Mode pubsub): player_composite_factors (blocked: player_composite_factors blocked on purpose)',
    );

    await run('player_composite_factors', 4, date, 'success', '2021-11-03T11:03:00Z');
    await run('ml_feature_store', 4, date, 'success', '2021-11-03T11:04:00Z');
    const done = await awaitPhase4(adapters.warehouse, date, options);
    expect(done).toMatchObject({ ok: true, polls: 1 });
  });
});

describe('Phase4Wakeups', () => {
  it('ends a wait early when a Phase 4 completion of its date arrives, and only then', async () => {
    const bus = new InProcessEventBus();
    const wakeups = await Phase4Wakeups.start(bus, 'stage3-wakeups');
    let woken = false;
    // A wait far longer than the test's own timeout: it can only end by the message.
    const waiting = wakeups.wait('2021-11-01', 3_600_000).then(() => (woken = true));
    await bus.publish(TOPIC_PHASE4_COMPLETE, { data: { date: '2021-11-02' }, attributes: {} });
    await bus.drain();
    expect(woken).toBe(false);
    await bus.publish(TOPIC_PHASE4_COMPLETE, { data: { date: '2021-11-01' }, attributes: {} });
    await waiting;
    expect(woken).toBe(true);
    await wakeups.stop();
  });
});

describe.skipIf(!runEmulatorTests)('Stage 3 with phase4Mode pubsub on the Pub/Sub emulator', () => {
  let emulator: PubSubEmulator;
  let dir: string;
  let adapters: Adapters;
  let stage3Bus: PubSubEventBus;
  let observer: PubSubEventBus;
  let subscriberBus: PubSubEventBus;
  let stage3: PipelinePorts;
  let subscriberWarehouse: FlakyWarehouse;
  let wakeups: Phase4Wakeups;
  let stopSubscriber: (() => Promise<void>) | undefined;
  let program: ChildProcess | undefined;
  const outcomes: { date: IsoDate; outcome: Phase4HandlerOutcome; attempt: number }[] = [];
  const phase3Messages: ReceivedEvent[] = [];
  const phase4Messages: ReceivedEvent[] = [];
  /** Set to make the next handled message fail after its work, as if its ack were lost. */
  let loseNextAck = false;

  beforeAll(async () => {
    const built = ensureBuilt(); // for the subscriber program, at the end
    emulator = await usePubSubEmulator();
    dir = mkdtempSync(join(tmpdir(), 'pubsub-phase4-'));
    adapters = await openPipeline(dir);
    for (const date of DATES) {
      const r = await runPhases1And2(adapters, log, date, stage3Run);
      expect(r.failures).toEqual([]);
    }
    // Two pods' worth of clients: Stage 3's and the subscriber's, sharing only the warehouse and Pub/Sub.
    const fast = { minimumBackoffSeconds: 0, maximumBackoffSeconds: 0 };
    stage3Bus = new PubSubEventBus(emulator.projectId, fast);
    subscriberBus = new PubSubEventBus(emulator.projectId, fast);
    stage3 = { ...adapters, events: stage3Bus, warehouse: new CheckedWarehouse(adapters.warehouse) };
    subscriberWarehouse = new FlakyWarehouse(adapters.warehouse);
    observer = new PubSubEventBus(emulator.projectId);
    await observer.subscribe(TOPIC_PHASE3_COMPLETE, 'test-phase3-observer', async (e) => {
      phase3Messages.push(e);
    });
    await observer.subscribe(TOPIC_PHASE4_COMPLETE, 'test-phase4-observer', async (e) => {
      phase4Messages.push(e);
    });
    wakeups = await Phase4Wakeups.start(stage3Bus, 'nba-phase4-precompute-complete-stage3-test');
    const handler = phase4Handler(
      { ...adapters, events: subscriberBus, warehouse: subscriberWarehouse },
      log,
      {},
      (date, outcome, event) => outcomes.push({ date, outcome, attempt: event.deliveryAttempt }),
    );
    const losingAcks: EventHandler = async (event) => {
      await handler(event);
      if (loseNextAck) {
        loseNextAck = false;
        throw new Error('injected: the ack was lost');
      }
    };
    stopSubscriber = await subscriberBus.subscribe(TOPIC_PHASE3_COMPLETE, PHASE4_SUBSCRIPTION, losingAcks);
    await built;
  });

  /** Lets go of the warehouse and Pub/Sub clients (each close may run twice: they are idempotent). */
  const closeClients = async () => {
    await stopSubscriber?.();
    await wakeups?.stop();
    await observer?.close();
    await stage3Bus?.close();
    await subscriberBus?.close();
    if (adapters && !adaptersClosed) {
      adaptersClosed = true;
      await adapters.close();
    }
  };
  let adaptersClosed = false;

  afterAll(async () => {
    if (program && program.exitCode === null) program.kill('SIGKILL');
    await closeClients();
    await emulator?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs Phase 4 in the subscriber once per date while Stage 3 (runStage3, phase4Mode pubsub) waits on run history', async () => {
    const season = getSeason('2021-22');
    const plan = await readPlan(join(REPO_ROOT, 'plans'), season.label);
    const dates = selectDates(plan, season, { seasonType: 'regular', startDate: DATES[0], endDate: DATES[2] });
    expect(dates.map((d) => d.date)).toEqual(DATES.slice(0, 3));
    const result = await runStage3(stage3, log, {
      season: season.label,
      dates,
      phase4Mode: 'pubsub',
      phase4TimeoutMs: 30_000,
    });
    expect(result.summary).toMatchObject({ status: 'succeeded', processed: 3, completedThrough: DATES[2] });
    // Three Phase 3 messages per date: one runs Phase 4, the other two find it done.
    await until('every message handled', () => outcomes.length === 9);
    for (const date of DATES.slice(0, 3)) {
      expect(outcomes.filter((o) => o.date === date).map((o) => o.outcome)).toEqual([
        'ran',
        'already_done',
        'already_done',
      ]);
      const phase4Runs = await runsOf(adapters.warehouse, date, 4);
      expect(phase4Runs.map((r) => [r.processor_name, r.status, r.trigger_command]).sort()).toEqual(
        PHASE4.map((p) => [p, 'success', 'phase4-subscriber']).sort(),
      );
      const phase3Runs = await runsOf(adapters.warehouse, date, 3);
      expect(phase3Runs.map((r) => r.trigger_command)).toEqual([
        'backfill stage3',
        'backfill stage3',
        'backfill stage3',
      ]);
      // The messages, as issue 7 says: processor, date, rows, run id, success; season and backfill attributes.
      await until(
        `the Phase 3 messages of ${date}`,
        () => phase3Messages.filter((m) => m.data.date === date).length === 3,
      );
      const messages = phase3Messages.filter((m) => m.data.date === date);
      // Each also carries the fingerprint of what its run wrote (core/runs/versions.ts).
      for (const m of messages) expect(m.data.fingerprint).toEqual({ rows: expect.any(String) });
      expect(
        messages
          .map(({ data: { fingerprint: _f, ...rest } }) => rest)
          .sort((a, b) => String(a.processor).localeCompare(String(b.processor))),
      ).toEqual(
        [...phase3Runs]
          .sort((a, b) => String(a.processor_name).localeCompare(String(b.processor_name)))
          .map((r) => ({ processor: r.processor_name, date, rows: r.rows_processed, runId: r.run_id, success: true })),
      );
      for (const m of messages) expect(m.attributes).toEqual({ season: '2021-22', backfill: 'true', phase: '3' });
    }
    await until('the Phase 4 completions', () => phase4Messages.length === 9);
    expect(phase4Messages.map((m) => `${m.data.date} ${m.data.processor}`).sort()).toEqual(
      DATES.slice(0, 3)
        .flatMap((d) => PHASE4.map((p) => `${d} ${p}`))
        .sort(),
    );
  });

  it('writes the same Phase 4 rows as the inline mode does', async () => {
    const inlineDir = mkdtempSync(join(tmpdir(), 'pubsub-phase4-inline-'));
    const inline = await openPipeline(inlineDir);
    try {
      const ports = { ...inline, warehouse: new CheckedWarehouse(inline.warehouse) };
      for (const date of DATES.slice(0, 3)) {
        expect((await runPhases1And2(inline, log, date, stage3Run)).failures).toEqual([]);
        expect((await runPhases3And4(ports, log, date, stage3Run)).failures).toEqual([]);
      }
      for (const t of PRECOMPUTE_TABLES) {
        const remote = await tableContents(adapters, qualifiedName(t), t.partitionColumn, DATES.slice(0, 3));
        expect(remote.length).toBeGreaterThan(0);
        expect(remote).toEqual(await tableContents(inline, qualifiedName(t), t.partitionColumn, DATES.slice(0, 3)));
      }
    } finally {
      await inline.close();
      rmSync(inlineDir, { recursive: true, force: true });
    }
  });

  it('a redelivered message, or a copy of one, runs nothing again and duplicates no row', async () => {
    const date = DATES[0] as IsoDate;
    const rowsBefore = await precomputeRows(adapters.warehouse, date);
    const runsBefore = (await runsOf(adapters.warehouse, date, 4)).length;
    const copy = phase3Messages.find((m) => m.data.date === date) as ReceivedEvent;
    outcomes.length = 0;
    await stage3Bus.publish(TOPIC_PHASE3_COMPLETE, { data: copy.data, attributes: copy.attributes });
    await until('the copy handled', () => outcomes.length === 1);
    expect(outcomes).toEqual([{ date, outcome: 'already_done', attempt: 1 }]);
    expect((await runsOf(adapters.warehouse, date, 4)).length).toBe(runsBefore);

    // Phase 3 again, and the ack of the message that runs Phase 4 is lost: Pub/Sub delivers it again.
    outcomes.length = 0;
    loseNextAck = true;
    const again = await runPhase3WithRemotePhase4(stage3, log, date, { ...stage3Run, phase4: { timeoutMs: 30_000 } });
    expect(again.ok).toBe(true);
    await until('the redelivery and the siblings', () => outcomes.length === 4);
    expect(outcomes.filter((o) => o.outcome === 'ran')).toEqual([{ date, outcome: 'ran', attempt: 1 }]);
    expect(outcomes.filter((o) => o.attempt === 2)).toEqual([{ date, outcome: 'already_done', attempt: 2 }]);
    expect((await runsOf(adapters.warehouse, date, 4)).length).toBe(runsBefore + PHASE4.length);
    expect(await precomputeRows(adapters.warehouse, date)).toEqual(rowsBefore);
  });

  it('a Phase 4 that fails is nacked and redelivered until it succeeds, and Stage 3 waits through it', async () => {
    const date = DATES[3] as IsoDate;
    outcomes.length = 0;
    subscriberWarehouse.armed = true;
    const result = await runPhase3WithRemotePhase4(stage3, log, date, { ...stage3Run, phase4: { timeoutMs: 30_000 } });
    expect(result.failures.map((f) => f.error.message)).toEqual([]);
    const runs = await runsOf(adapters.warehouse, date, 4);
    // Phase 4's one commit failed, so all three runs failed with it; then all three succeeded on the redelivery.
    expect(
      runs
        .filter((r) => r.status === 'failed')
        .map((r) => r.processor_name)
        .sort(),
    ).toEqual([...PHASE4].sort());
    expect(
      runs
        .filter((r) => r.status === 'success')
        .map((r) => r.processor_name)
        .sort(),
    ).toEqual([...PHASE4].sort());
    await until('every message handled', () => outcomes.length === 3);
    // The nacked message came back (attempt 2); whichever message came next ran Phase 4, once.
    expect(outcomes.filter((o) => o.outcome === 'ran')).toHaveLength(1);
    expect(outcomes.filter((o) => o.attempt === 2)).toHaveLength(1);
  });

  it('times out with a clear error when no subscriber runs; the subscriber program catches up and stops on SIGTERM', async () => {
    const date = DATES[4] as IsoDate;
    await stopSubscriber?.();
    stopSubscriber = undefined;
    const result = await runPhase3WithRemotePhase4(stage3, log, date, { ...stage3Run, phase4: { timeoutMs: 1500 } });
    expect(result.ok).toBe(false);
    const error = result.failures[0]?.error;
    expect(error).toBeInstanceOf(Phase4WaitError);
    expect(result.failures[0]?.processor).toBe('player_daily_cache');
    // It gave up no sooner than its timeout (how much later depends on the machine, so it is not asserted).
    expect(Number(/after waiting (\d+) ms/.exec(error?.message ?? '')?.[1])).toBeGreaterThanOrEqual(1500);
    expect(error?.message).toMatch(
      /^Phase 4 of 2021-10-23 is not done after waiting \d+ ms \(phase4Mode pubsub\): still missing player_daily_cache \(no run\), player_composite_factors \(no run\), ml_feature_store \(no run\)\./,
    );

    // The DuckDB file has one writer: this process lets go of it for the program.
    await closeClients();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BACKFILL_')) env[k] = v;
    program = spawn(process.execPath, [join(REPO_ROOT, 'build', 'jobs', 'phase4-subscriber', 'main.js')], {
      cwd: dir,
      env: {
        ...env,
        METADATA_SERVER_DETECTION: 'none',
        PUBSUB_EMULATOR_HOST: emulator.host,
        BACKFILL_EVENTS: `pubsub://${emulator.projectId}`,
        BACKFILL_WAREHOUSE: `duckdb:${join(dir, 'warehouse.duckdb')}`,
        BACKFILL_OBJECTS: `file:${join(dir, 'objects')}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    program.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    program.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => program?.once('exit', (code) => resolve(code)));
    // The three messages Stage 3 published while no subscriber ran are still in the subscription.
    await until(
      'the program to run Phase 4 of the date',
      () => lines.some((l) => l.msg === 'phase 4 done' && l.date === date) || program?.exitCode !== null,
      30_000,
    );
    expect(stderr).toBe('');
    expect(lines.find((l) => l.msg === 'phase 4 subscriber listening')).toMatchObject({
      subscription: PHASE4_SUBSCRIPTION,
      concurrency: 1,
    });
    await until(
      'the sibling messages',
      () => lines.filter((l) => l.date === date && /already done/.test(String(l.msg))).length === 2,
    );
    program.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.at(-1)?.msg).toBe('phase 4 subscriber stopped');

    adapters = await openPipeline(dir);
    adaptersClosed = false;
    const runs = await runsOf(adapters.warehouse, date, 4);
    expect(runs.map((r) => [r.processor_name, r.status, r.trigger_command]).sort()).toEqual(
      PHASE4.map((p) => [p, 'success', 'phase4-subscriber']).sort(),
    );
    expect(await awaitPhase4(adapters.warehouse, date, { timeoutMs: 1000 })).toMatchObject({ ok: true, polls: 1 });
  });

  it('handles the three Phase 3 messages of a date delivered at once one after another: Phase 4 runs once', async () => {
    // The in-process bus hands all three to the handler concurrently, which Pub/Sub may do with more concurrency.
    const date = DATES[2] as IsoDate;
    const bus = new InProcessEventBus();
    const ports = { ...adapters, events: bus };
    const seen: Phase4HandlerOutcome[] = [];
    await bus.subscribe(
      TOPIC_PHASE3_COMPLETE,
      PHASE4_SUBSCRIPTION,
      phase4Handler(ports, log, {}, (_d, o) => seen.push(o)),
    );
    const before = (await runsOf(adapters.warehouse, date, 4)).length;
    const result = await runPhase3WithRemotePhase4(ports, log, date, { ...stage3Run, phase4: { timeoutMs: 30_000 } });
    await bus.drain();
    expect(result.ok).toBe(true);
    expect(seen.sort()).toEqual(['already_done', 'already_done', 'ran']);
    expect((await runsOf(adapters.warehouse, date, 4)).length).toBe(before + PHASE4.length);
  });
  it('after a correction: the subscriber reruns a Phase 4 that read a corrected input, and Stage 3 resumes at the first stale date', async () => {
    const [d0, d1, d2] = DATES as [IsoDate, IsoDate, IsoDate];
    const bus = new InProcessEventBus();
    const ports = { ...adapters, events: bus };
    const seen: string[] = [];
    await bus.subscribe(
      TOPIC_PHASE3_COMPLETE,
      PHASE4_SUBSCRIPTION,
      phase4Handler(ports, log, {}, (d, o) => seen.push(`${d} ${o}`)),
    );
    const staleNow = async () =>
      (await checkDataOf(adapters.warehouse).staleRuns('2021-22'))
        .filter((r) => r.date <= d2)
        .map((r) => `${r.processor}@${r.date}`);
    const folder = mkdtempSync(join(tmpdir(), 'pubsub-correction-'));
    try {
      writeCorrectedFolder(folder, d1);
      const corrected = { ...adapters, source: new BundledStatsSource(folder, true) };
      expect((await runPhases1And2(corrected, log, d1, stage3Run)).failures).toEqual([]);
      expect(await staleNow()).toContain(`player_game_summary@${d1}`);

      const message = phase3Messages.find((m) => m.data.date === d2 && m.data.fingerprint !== undefined);
      expect(message).toBeDefined();
      const { data, attributes } = message as ReceivedEvent;
      const { fingerprint: _f, ...bare } = data;
      const deliver = async (body: Record<string, unknown>) => {
        await bus.publish(TOPIC_PHASE3_COMPLETE, { data: body, attributes });
        await bus.drain();
      };
      // Phase 4 of d2 is stale only through d1's stale summaries: running it again would read them again.
      expect(await staleNow()).toContain(`player_daily_cache@${d2}`);
      await deliver(data);
      expect(seen).toEqual([`${d2} already_done`]);

      // Phase 3 of d1 alone (as \`backfill process --phase 3\` runs it): Phase 4 of d2 read d1's old summaries.
      const checked = { ...adapters, warehouse: new CheckedWarehouse(adapters.warehouse) };
      expect((await runInOneCommit(checked, log, d1, phaseProcessors(3), stage3Run)).failures).toEqual([]);
      expect(await staleNow()).toContain(`player_daily_cache@${d2}`);
      // Phase 4 of d2 ran after d2's Phase 3, so by time it is done: a message without data versions finds it
      // done; one that carries the Phase 3 run's fingerprint finds it stale and runs it again.
      seen.length = 0;
      await deliver(bare);
      expect(seen).toEqual([`${d2} already_done`]);
      await deliver(data);
      expect(seen).toEqual([`${d2} already_done`, `${d2} ran`]);
      expect((await staleNow()).filter((r) => r.endsWith(`@${d2}`) && !r.startsWith('player_game_summary'))).toEqual(
        [],
      );

      // Stage 3 in pubsub mode resumes at the first stale date (d2's player summaries) and catches up.
      const season = getSeason('2021-22');
      const plan = await readPlan(join(REPO_ROOT, 'plans'), season.label);
      const dates = selectDates(plan, season, { seasonType: 'regular', startDate: d0, endDate: d2 });
      seen.length = 0;
      const result = await runStage3({ ...ports, warehouse: new CheckedWarehouse(adapters.warehouse) }, log, {
        season: season.label,
        dates,
        phase4Mode: 'pubsub',
        phase4TimeoutMs: 30_000,
      });
      await bus.drain();
      expect(result.summary).toMatchObject({ status: 'succeeded', resumedFrom: d2, completedThrough: d2 });
      expect(seen.filter((o) => o.endsWith(' ran'))).toEqual([`${d2} ran`]);
      expect(await staleNow()).toEqual([]);

      // The same rows as an inline run over the corrected data.
      const inlineDir = mkdtempSync(join(tmpdir(), 'pubsub-correction-inline-'));
      const inline = await openPipeline(inlineDir);
      try {
        const inlineCorrected = { ...inline, source: new BundledStatsSource(folder, true) };
        const inlinePorts = { ...inlineCorrected, warehouse: new CheckedWarehouse(inline.warehouse) };
        for (const date of [d0, d1, d2]) {
          expect((await runPhases1And2(inlineCorrected, log, date, stage3Run)).failures).toEqual([]);
          expect((await runPhases3And4(inlinePorts, log, date, stage3Run)).failures).toEqual([]);
        }
        for (const t of [...ANALYTICS_TABLES, ...PRECOMPUTE_TABLES]) {
          const got = await tableContents(adapters, qualifiedName(t), t.partitionColumn, [d0, d1, d2]);
          expect(got.length).toBeGreaterThan(0);
          expect(got).toEqual(await tableContents(inline, qualifiedName(t), t.partitionColumn, [d0, d1, d2]));
        }
      } finally {
        await inline.close();
        rmSync(inlineDir, { recursive: true, force: true });
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
