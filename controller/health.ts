// The controller's HTTP endpoints on its health port: /healthz for the Deployment's liveness and readiness probes,
// /metrics for Prometheus.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { messageOf } from '../core/errors.js';
import { CONTROLLER_HEALTH_PATH, CONTROLLER_METRICS_PATH } from '../core/jobs/spec.js';

/** What /healthz reports: ok, and a line saying why. */
export type HealthCheck = () => { ok: boolean; detail: string };

/** What /metrics serves: the exposition text and its content type. */
export type MetricsSource = () => Promise<{ contentType: string; body: string }>;

/**
 * Serves GET /healthz (CONTROLLER_HEALTH_PATH) (200 when healthy, 503 otherwise) and, given a source, GET /metrics
 * (CONTROLLER_METRICS_PATH) on the port; 0 picks a free one.
 */
export async function startHealthServer(
  check: HealthCheck,
  port: number,
  host = '0.0.0.0',
  metrics?: MetricsSource,
): Promise<{ server: Server; port: number }> {
  const paths = metrics ? [CONTROLLER_HEALTH_PATH, CONTROLLER_METRICS_PATH] : [CONTROLLER_HEALTH_PATH];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!paths.includes(path)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end(`not found: the controller serves ${paths.join(' and ')} only\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' });
      res.end(`method ${req.method} not allowed\n`);
      return;
    }
    if (path === CONTROLLER_METRICS_PATH && metrics) {
      metrics().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'Content-Type': contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`metrics failed: ${messageOf(err)}\n`);
        },
      );
      return;
    }
    const { ok, detail } = check();
    res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' });
    res.end(`${detail}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
