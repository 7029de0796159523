// The controller's /healthz endpoint for the Deployment's liveness and readiness probes.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CONTROLLER_HEALTH_PATH } from '../core/jobs/spec.js';

/** What /healthz reports: ok, and a line saying why. */
export type HealthCheck = () => { ok: boolean; detail: string };

/** Serves GET /healthz (CONTROLLER_HEALTH_PATH) (200 when healthy, 503 otherwise) on the port; 0 picks a free one. */
export async function startHealthServer(
  check: HealthCheck,
  port: number,
  host = '0.0.0.0',
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== CONTROLLER_HEALTH_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found: the controller serves /healthz only\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' });
      res.end(`method ${req.method} not allowed\n`);
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
