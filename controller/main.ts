// The controller's program (the Deployment runs `node build/controller/main.js`): configuration from the
// environment, the warehouse from it, the cluster from the pod's service account, /healthz and /metrics on
// port 8080, JSON logs on stdout. Stops cleanly on SIGTERM.

import { hostname } from 'node:os';
import { openAdapters } from '../core/adapters/index.js';
import { loadConfig } from '../core/config.js';
import { BadInputError, exitCodeOf, messageOf, redact } from '../core/errors.js';
import { CONTROLLER_HEALTH_PORT, NAMESPACE_ENV } from '../core/jobs/spec.js';
import { DEFAULT_NAMESPACE } from '../core/kubernetes/contract.js';
import { KubeClient } from '../core/kubernetes/kube.js';
import { createLogger } from '../core/log.js';
import { startHealthServer } from './health.js';
import { LeaseElector } from './lease.js';
import { Controller } from './loop.js';
import { planDatesFrom } from './plans.js';

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env });
  const namespace = process.env[NAMESPACE_ENV] || DEFAULT_NAMESPACE;
  const port = Number(process.env.BACKFILL_HEALTH_PORT || CONTROLLER_HEALTH_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BadInputError(`BACKFILL_HEALTH_PORT "${process.env.BACKFILL_HEALTH_PORT}": not a port number`);
  }
  const log = createLogger(config.logLevel, 1).child({ component: 'controller', namespace });
  const adapters = await openAdapters(config);
  const kube = KubeClient.fromDefault(namespace);
  const kubernetes = await kube.requireMinimumVersion();
  const instance = process.env.HOSTNAME || hostname();
  const elector = new LeaseElector({ api: kube, identity: instance, log, now: () => new Date() });
  const controller = new Controller({
    kube,
    warehouse: adapters.warehouse,
    log,
    planDates: planDatesFrom(config.planDir),
    now: () => new Date(),
    instance,
    leading: () => elector.isLeader(),
  });
  let started = false;
  const health = await startHealthServer(
    // A candidate waiting for the lease is alive: it must not be restarted for not leading.
    () => (started ? controller.health() : { ok: true, detail: 'standby: waiting for the leader lease' }),
    port,
    undefined,
    () => controller.metrics.render(),
  );
  log.info(
    { server: kube.server, kubernetes, warehouse: adapters.warehouse.description, healthPort: health.port },
    'controller starting',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'controller stopping');
    await controller.stop();
    health.server.close();
    await adapters.close();
    log.info('controller stopped');
    // Idle keep-alive sockets of the Kubernetes client must not hold the pod past its grace period.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => {
    elector.stop();
    void stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    elector.stop();
    void stop('SIGINT');
  });
  const outcome = await elector.run(() => {
    started = true;
    void controller.start();
  });
  if (outcome === 'lost') {
    // Another candidate may hold the lease now: stop acting at once, and let the Deployment start us again.
    await stop('lease lost');
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`controller: ${redact(messageOf(err))}\n`);
  process.exit(exitCodeOf(err));
});
