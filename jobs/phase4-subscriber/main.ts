// The Phase 4 subscriber (a Deployment in `pubsub` Phase 4 mode): runs Phase 4 for the date of each
// nba-phase3-analytics-complete message, JSON logs on stdout; SIGTERM or SIGINT stop it cleanly (exit 0).
// Configuration is the CLI's (BACKFILL_* variables); BACKFILL_PHASE4_SUBSCRIPTION names the shared
// subscription and BACKFILL_PHASE4_CONCURRENCY how many dates one process runs at once (default 1).

import { openAdapters } from '../../core/adapters/index.js';
import { PubSubEventBus } from '../../core/adapters/pubsub/events.js';
import { loadConfig } from '../../core/config.js';
import { BadInputError, exitCodeOf, messageOf } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { PHASE4_SUBSCRIPTION, startPhase4Subscriber } from '../../core/stages/phase4Remote.js';

const log = createLogger(process.env.BACKFILL_LOG_LEVEL || 'info', 1).child({ program: 'phase4-subscriber' });

async function main(): Promise<number> {
  // Listened for first, so that a signal during start-up still ends in a clean stop.
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const config = loadConfig({});
  if (config.events.kind !== 'pubsub') {
    throw new BadInputError(
      `the Phase 4 subscriber needs Pub/Sub events (BACKFILL_EVENTS=pubsub://<project>), got "${config.events.url}"`,
      { where: 'BACKFILL_EVENTS' },
    );
  }
  const rawConcurrency = process.env.BACKFILL_PHASE4_CONCURRENCY || '1';
  const concurrency = Number(rawConcurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) {
    throw new BadInputError(
      `BACKFILL_PHASE4_CONCURRENCY must be a whole number from 1 to 16, got "${rawConcurrency}"`,
      {
        where: 'BACKFILL_PHASE4_CONCURRENCY',
      },
    );
  }
  const subscription = process.env.BACKFILL_PHASE4_SUBSCRIPTION || PHASE4_SUBSCRIPTION;

  const adapters = await openAdapters(config);
  let fail: (err: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (fail = resolve));
  const events = new PubSubEventBus(config.events.project, {
    maxConcurrentMessages: concurrency,
    // The client retries transient stream errors itself: one that reaches us stops the pod for a restart.
    onSubscriptionError: (error) => fail(error),
  });
  const ports = { ...adapters, events };
  try {
    const stop = await startPhase4Subscriber(ports, log, { subscription });
    log.info(
      { subscription, events: events.description, warehouse: adapters.warehouse.description, concurrency },
      'phase 4 subscriber listening',
    );
    const reason = await Promise.race([stopped, failed]);
    if (reason instanceof Error) {
      log.error({ err: reason, subscription }, 'subscription failed');
      await stop();
      return 1;
    }
    log.info({ signal: reason }, 'stopping: finishing the messages under way');
    await stop();
    log.info('phase 4 subscriber stopped');
    return 0;
  } finally {
    await events.close();
    await adapters.close();
  }
}

let exitCode: number;
try {
  exitCode = await main();
} catch (err) {
  log.error({ err }, messageOf(err));
  exitCode = exitCodeOf(err);
}
// The logger writes synchronously, so nothing is lost; gRPC's timers must not keep a stopped pod alive.
process.exit(exitCode);
