// The Pub/Sub event bus against the real emulator: publish and subscribe, the completion messages processors
// publish, redelivery after a nack, the dead-letter topic, and the subscriptions it creates.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdapters } from '../core/adapters/index.js';
import { PubSubEventBus } from '../core/adapters/pubsub/events.js';
import { loadConfig, parseSetting } from '../core/config.js';
import { runPhases1And2 } from '../core/dateRun.js';
import { BadInputError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { type ReceivedEvent, TOPIC_PHASE2_COMPLETE } from '../core/ports/events.js';
import { type PubSubEmulator, pullNow, runEmulatorTests, usePubSubEmulator } from './support/pubsubEmulator.js';

/** Resolves once `check` holds, polling; fails with `what` after `ms`. */
async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!runEmulatorTests)('PubSubEventBus on the Pub/Sub emulator', () => {
  let emulator: PubSubEmulator;
  let bus: PubSubEventBus;
  let admin: PubSub;

  beforeAll(async () => {
    emulator = await usePubSubEmulator();
    // Short backoffs so that redeliveries take a fraction of a second.
    bus = new PubSubEventBus(emulator.projectId, { minimumBackoffSeconds: 0, maximumBackoffSeconds: 0 });
    admin = new PubSub({ projectId: emulator.projectId });
  });
  afterAll(async () => {
    await bus?.close();
    await admin?.close();
    await emulator?.stop();
  });

  it('describes itself with its project and the emulator it uses', () => {
    expect(bus.description).toBe(`pubsub://${emulator.projectId} (emulator at ${emulator.host})`);
    expect(() => parseSetting('events', 'pubsub://x')).toThrow(BadInputError);
    expect(() => parseSetting('events', 'pubsub://x')).toThrow(
      'events = "pubsub://x": must be inprocess or pubsub://<project>',
    );
  });

  it('creates a missing topic on publish and delivers the JSON body and attributes as sent', async () => {
    const got: ReceivedEvent[] = [];
    const stop = await bus.subscribe('nba-test-roundtrip', 'nba-test-roundtrip-sub', async (e) => {
      got.push(e);
    });
    const id = await bus.publish('nba-test-roundtrip', {
      data: { processor: 'p', date: '2021-10-19', rows: 3, nested: { a: [1, 'é'] } },
      attributes: { season: '2021-22', backfill: 'true' },
    });
    await until('the message', () => got.length === 1);
    await stop();
    expect(got[0]).toEqual({
      id,
      topic: 'nba-test-roundtrip',
      data: { processor: 'p', date: '2021-10-19', rows: 3, nested: { a: [1, 'é'] } },
      attributes: { season: '2021-22', backfill: 'true' },
      deliveryAttempt: 1,
    });
  });

  it('creates subscriptions with the ack deadline, retry policy and dead-letter topic it documents', async () => {
    const plain = new PubSubEventBus(emulator.projectId);
    try {
      const stop = await plain.subscribe('nba-test-policy', 'nba-test-policy-sub', async () => {});
      await stop();
      const [metadata] = await admin.subscription('nba-test-policy-sub').getMetadata();
      expect(metadata.topic).toBe(`projects/${emulator.projectId}/topics/nba-test-policy`);
      expect(metadata.ackDeadlineSeconds).toBe(60);
      expect(Number(metadata.retryPolicy?.minimumBackoff?.seconds)).toBe(10);
      expect(Number(metadata.retryPolicy?.maximumBackoff?.seconds)).toBe(600);
      expect(metadata.deadLetterPolicy).toEqual({
        deadLetterTopic: `projects/${emulator.projectId}/topics/nba-test-policy-sub-dead-letter`,
        maxDeliveryAttempts: 5,
      });
      const [keeper] = await admin.subscription('nba-test-policy-sub-dead-letter').getMetadata();
      expect(keeper.topic).toBe(`projects/${emulator.projectId}/topics/nba-test-policy-sub-dead-letter`);
      // Subscribing again reuses the subscription; on another topic the name is refused.
      await (await plain.subscribe('nba-test-policy', 'nba-test-policy-sub', async () => {}))();
      await expect(plain.subscribe('nba-test-other', 'nba-test-policy-sub', async () => {})).rejects.toThrow(
        /subscription nba-test-policy-sub exists on .*nba-test-policy, not on .*nba-test-other/,
      );
    } finally {
      await plain.close();
    }
  });

  it.concurrent('redelivers a nacked message with a higher delivery attempt, and not after the ack', async () => {
    const attempts: number[] = [];
    const stop = await bus.subscribe('nba-test-nack', 'nba-test-nack-sub', async (e) => {
      attempts.push(e.deliveryAttempt);
      if (e.deliveryAttempt < 3) throw new Error('not yet');
    });
    await bus.publish('nba-test-nack', { data: { n: 1 }, attributes: {} });
    await until('the third delivery', () => attempts.length >= 3);
    await stop();
    expect(attempts).toEqual([1, 2, 3]);
    // Acked: the subscription holds nothing but a control message published now.
    await bus.publish('nba-test-nack', { data: { control: true }, attributes: {} });
    expect((await pullNow(emulator, 'nba-test-nack-sub')).map((m) => m.data)).toEqual(['{"control":true}']);
  });

  it.concurrent('sends a message that always fails, or is not JSON, to the dead-letter topic after 5 deliveries', async () => {
    let deliveries = 0;
    const stop = await bus.subscribe('nba-test-dead', 'nba-test-dead-sub', async () => {
      deliveries++;
      throw new Error('always fails');
    });
    await bus.publish('nba-test-dead', { data: { poison: true }, attributes: { kind: 'poison' } });
    // Published around the bus: a body the handler can never read.
    await admin.topic('nba-test-dead').publishMessage({ data: Buffer.from('not json'), attributes: { kind: 'raw' } });
    const dead: { body: string; attributes: Record<string, string> }[] = [];
    const keeper = admin.subscription('nba-test-dead-sub-dead-letter');
    keeper.on('message', (m) => {
      dead.push({ body: m.data.toString('utf8'), attributes: { kind: m.attributes.kind ?? '' } });
      m.ack();
    });
    await until('both dead letters', () => dead.length === 2, 30_000);
    await keeper.close();
    await stop();
    expect(deliveries).toBe(5); // the raw message never reached the handler
    expect(dead.sort((a, b) => (a.attributes.kind ?? '').localeCompare(b.attributes.kind ?? ''))).toEqual([
      { body: '{"poison":true}', attributes: { kind: 'poison' } },
      { body: 'not json', attributes: { kind: 'raw' } },
    ]);
  });

  it.concurrent('stopping a subscription lets the handler under way finish and ack', async () => {
    let release: () => void = () => {};
    const started: number[] = [];
    const stop = await bus.subscribe('nba-test-stop', 'nba-test-stop-sub', async (e) => {
      started.push(e.deliveryAttempt);
      await new Promise<void>((r) => (release = r));
    });
    await bus.publish('nba-test-stop', { data: { n: 1 }, attributes: {} });
    await until('the delivery', () => started.length === 1);
    let stopped = false;
    const stopping = stop().then(() => (stopped = true));
    // Stopping waits for the handler under way: it has not ended while the handler holds.
    await Promise.resolve();
    expect(stopped).toBe(false);
    release();
    await stopping;
    // Acked: the subscription holds nothing but a control message published now.
    await bus.publish('nba-test-stop', { data: { control: true }, attributes: {} });
    expect((await pullNow(emulator, 'nba-test-stop-sub')).map((m) => m.data)).toEqual(['{"control":true}']);
  });

  it('carries the completion messages Phase 2 processors publish: body and attributes as issue 7 says', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-phase2-'));
    const config = loadConfig({
      env: {},
      flags: { warehouse: 'duckdb::memory:', objects: `file:${dir}`, events: `pubsub://${emulator.projectId}` },
    });
    const adapters = await openAdapters(config);
    try {
      expect(adapters.events).toBeInstanceOf(PubSubEventBus);
      const got: ReceivedEvent[] = [];
      const stop = await adapters.events.subscribe(TOPIC_PHASE2_COMPLETE, 'nba-test-phase2-observer', async (e) => {
        got.push(e);
      });
      const log = silentLogger();
      const published = await runPhases1And2(adapters, log, '2021-10-19', { trigger: { command: 'test' } });
      expect(published.failures).toEqual([]);
      // Stage 1's contract: no downstream trigger.
      await runPhases1And2(adapters, log, '2021-10-20', { trigger: { command: 'test' }, skipDownstreamTrigger: true });
      await until('5 Phase 2 completions', () => got.length >= 5);
      await stop();
      // Nothing else is waiting (the second date published nothing): only a control message published now.
      await adapters.events.publish(TOPIC_PHASE2_COMPLETE, { data: { control: true }, attributes: {} });
      expect((await pullNow(emulator, 'nba-test-phase2-observer')).map((m) => m.data)).toEqual(['{"control":true}']);
      const runs = await adapters.warehouse.query(
        `SELECT run_id, processor_name, rows_processed, details FROM nba_reference.processor_run_history
          WHERE phase = 2 ORDER BY processor_name`,
      );
      expect(runs.length).toBe(10);
      const day1 = runs.filter((r) => got.some((e) => e.data.runId === r.run_id));
      expect(got.map((e) => e.data).sort((a, b) => String(a.processor).localeCompare(String(b.processor)))).toEqual(
        day1.map((r) => ({
          processor: r.processor_name,
          date: '2021-10-19',
          rows: r.rows_processed,
          runId: r.run_id,
          success: true,
          // The fingerprint of what the run wrote, as its run history records it (core/runs/versions.ts).
          fingerprint: (JSON.parse(String(r.details)) as { fingerprint: unknown }).fingerprint,
        })),
      );
      expect(day1).toHaveLength(5);
      for (const e of got) {
        expect(e.topic).toBe(TOPIC_PHASE2_COMPLETE);
        expect(e.attributes).toEqual({ season: '2021-22', backfill: 'true', phase: '2' });
      }
    } finally {
      await adapters.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
