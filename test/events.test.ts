// In-process events: Pub/Sub's shape and redelivery, and the completion messages processors publish.

import { describe, expect, it } from 'vitest';
import { InProcessEventBus } from '../core/adapters/inprocess/events.js';
import { silentLogger } from '../core/log.js';
import { type ReceivedEvent, TOPIC_PHASE2_COMPLETE } from '../core/ports/events.js';
import { getProcessor } from '../core/processors.js';
import { runProcessor } from '../core/runner.js';
import { openTestPipeline } from './support/adapters.js';

describe('InProcessEventBus', () => {
  it('delivers to every subscription and redelivers a nacked message', async () => {
    const bus = new InProcessEventBus({ redeliveryDelayMs: () => 0 });
    const a: number[] = [];
    let failures = 1;
    await bus.subscribe('t', 'a', async (e) => {
      a.push(e.deliveryAttempt);
    });
    const b: number[] = [];
    await bus.subscribe('t', 'b', async (e) => {
      b.push(e.deliveryAttempt);
      if (failures-- > 0) throw new Error('nack');
    });
    await bus.publish('t', { data: { x: 1 }, attributes: {} });
    await bus.drain();
    expect(a).toEqual([1]);
    expect(b).toEqual([1, 2]);
  });

  it('sets aside a message after its last delivery', async () => {
    const bus = new InProcessEventBus({ maxDeliveries: 3, redeliveryDelayMs: () => 0 });
    await bus.subscribe('t', 's', async () => {
      throw new Error('always');
    });
    await bus.publish('t', { data: {}, attributes: {} });
    await bus.drain();
    expect(bus.deadLetters.map((e) => e.deliveryAttempt)).toEqual([3]);
  });
});

describe('completion events', () => {
  it('a Phase 2 processor publishes its completion, and publishes nothing with skipDownstreamTrigger', async () => {
    const t = await openTestPipeline();
    try {
      const got: ReceivedEvent[] = [];
      await t.adapters.events.subscribe(TOPIC_PHASE2_COMPLETE, 'test', async (e) => {
        got.push(e);
      });
      const log = silentLogger();
      for (const name of ['nbac_team_game_log_scraper', 'nbac_schedule']) {
        await runProcessor(t.adapters, log, getProcessor(name), '2021-10-19', { trigger: { command: 'test' } });
      }
      await runProcessor(t.adapters, log, getProcessor('nbac_schedule'), '2021-10-19', {
        trigger: { command: 'test' },
        skipDownstreamTrigger: true,
      });
      await (t.adapters.events as InProcessEventBus).drain();
      expect(got).toHaveLength(1);
      expect(got[0]?.data).toMatchObject({ processor: 'nbac_schedule', date: '2021-10-19', rows: 2, success: true });
      expect(got[0]?.attributes).toMatchObject({ season: '2021-22', backfill: 'true' });
    } finally {
      await t.dispose();
    }
  });
});
