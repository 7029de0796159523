// The real Pub/Sub emulator of the Google Cloud SDK for tests: the one at PUBSUB_EMULATOR_HOST (started by
// .ci/run), or one this test file starts on a free loopback port and stops afterwards.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, realpathSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';

const EMULATOR_IN_SDK = join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The SDK's emulator script: next to the gcloud on PATH, or where `gcloud info` says the SDK is. */
export function findEmulatorScript(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const gcloud = join(dir, 'gcloud');
    if (!executable(gcloud)) continue;
    // gcloud on PATH is usually a link to <sdk>/bin/gcloud.
    const fromLink = join(dirname(dirname(realpathSync(gcloud))), EMULATOR_IN_SDK);
    if (executable(fromLink)) return fromLink;
    const info = spawnSync(gcloud, ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const root = info.stdout?.trim();
    if (root && executable(join(root, EMULATOR_IN_SDK))) return join(root, EMULATOR_IN_SDK);
  }
  return undefined;
}

/** Whether tests that need the emulator can run: one is configured, or the SDK has one to start. */
export function emulatorAvailable(): boolean {
  return Boolean(process.env.PUBSUB_EMULATOR_HOST) || findEmulatorScript() !== undefined;
}

/**
 * Tests that need the emulator run when one is available, and always in CI, where a missing emulator must
 * fail them rather than skip them.
 */
export const runEmulatorTests = Boolean(process.env.CI) || emulatorAvailable();

export interface PubSubEmulator {
  /** host:port, also put in process.env.PUBSUB_EMULATOR_HOST for the Google client. */
  readonly host: string;
  /** A project of its own, so test files sharing one emulator never see each other's topics. */
  readonly projectId: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether the emulator at host answers its root path with "Ok". */
export async function emulatorAnswers(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(2000) });
    return res.ok && (await res.text()).trim() === 'Ok';
  } catch {
    return false;
  }
}

function newProjectId(): string {
  return `test-${randomBytes(5).toString('hex')}`;
}

/** The emulator for this test file: the configured one, or a new one on a free loopback port. */
export async function usePubSubEmulator(timeoutMs = 60_000): Promise<PubSubEmulator> {
  const configured = process.env.PUBSUB_EMULATOR_HOST;
  if (configured) {
    if (!(await emulatorAnswers(configured))) {
      throw new Error(`PUBSUB_EMULATOR_HOST=${configured} is set but no Pub/Sub emulator answers there`);
    }
    return { host: configured, projectId: newProjectId(), stop: async () => {} };
  }
  const script = findEmulatorScript();
  if (!script) {
    throw new Error(
      'no Pub/Sub emulator: set PUBSUB_EMULATOR_HOST, or install the Google Cloud SDK with its pubsub-emulator component',
    );
  }
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  // Its own process group, so that stopping it also stops the Java process the script starts.
  const child: ChildProcess = spawn(script, [`--host=127.0.0.1`, `--port=${port}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none' },
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  const stop = async () => {
    if (!running || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    const killer = setTimeout(() => child.pid !== undefined && running && process.kill(-child.pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await emulatorAnswers(host))) {
    if (!running || Date.now() > deadline) {
      await stop();
      throw new Error(`the Pub/Sub emulator (${script}) did not answer on ${host}:\n${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.env.PUBSUB_EMULATOR_HOST = host;
  return {
    host,
    projectId: newProjectId(),
    async stop() {
      delete process.env.PUBSUB_EMULATOR_HOST;
      await stop();
    },
  };
}

/**
 * What a subscription holds right now, by a synchronous pull over the emulator's REST API (returnImmediately),
 * acked so that it is gone afterwards. With a control message published last, "only the control message"
 * proves that nothing else is waiting: no sleep stands in for "nothing more arrives".
 */
export async function pullNow(
  emulator: PubSubEmulator,
  subscription: string,
): Promise<{ data: string; attributes: Record<string, string> }[]> {
  const base = `http://${emulator.host}/v1/projects/${emulator.projectId}/subscriptions/${subscription}`;
  const res = await fetch(`${base}:pull`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ maxMessages: 1000, returnImmediately: true }),
  });
  if (!res.ok) throw new Error(`pull ${subscription}: HTTP ${res.status} ${await res.text()}`);
  const body = (await res.json()) as {
    receivedMessages?: { ackId: string; message: { data?: string; attributes?: Record<string, string> } }[];
  };
  const received = body.receivedMessages ?? [];
  if (received.length > 0) {
    await fetch(`${base}:acknowledge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ackIds: received.map((r) => r.ackId) }),
    });
  }
  return received.map((r) => ({
    data: Buffer.from(r.message.data ?? '', 'base64').toString('utf8'),
    attributes: r.message.attributes ?? {},
  }));
}
