// Google credentials at a pod's start. On GKE with Workload Identity, a pod gets its access token from the GKE
// metadata server, which is often not ready for a new pod's first seconds ("the GKE metadata server needs a few
// seconds to start accepting requests on a new Pod", https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication).
// A Stage 1 pod lives for one date, so ~650 of them meet that window: without waiting it out, a date would use up
// its one retry (or fail) on a start-up race that is no fault of its own.

import type { Config } from '../../config.js';
import { messageOf, ProcessingError } from '../../errors.js';
import type { Logger } from '../../log.js';

export interface CredentialWait {
  /** Tries in all. @default 8 */
  readonly attempts?: number;
  /** The pause after the first failure, doubled after each one. @default 500 */
  readonly baseDelayMs?: number;
  /** @default 8000 (8 tries wait about 0.5 + 1 + 2 + 4 + 8 + 8 + 8 = 31.5 s in all) */
  readonly maxDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Obtains an access token: Application Default Credentials by default (the metadata server in a pod). */
  readonly getToken?: () => Promise<unknown>;
}

/**
 * The Google services the configured adapters talk to for real (an adapter pointed at an emulator needs no
 * credentials): the reason to wait for credentials, or nothing to wait for.
 */
export function googleServicesIn(config: Config, env: Readonly<Record<string, string | undefined>>): string[] {
  const services: string[] = [];
  if (config.warehouse.kind === 'bigquery' && !env.BIGQUERY_EMULATOR_HOST) services.push('BigQuery');
  if (config.objects.kind === 'gs' && !env.STORAGE_EMULATOR_HOST) services.push('Cloud Storage');
  if (config.events.kind === 'pubsub' && !env.PUBSUB_EMULATOR_HOST) services.push('Pub/Sub');
  return services;
}

/**
 * Waits until Google credentials can be obtained, trying `attempts` times with a doubling pause and logging each
 * failure; then throws a transient ProcessingError naming the services and the last error, so that the date's
 * attempt fails as retriable (the Job tries the index again) rather than as bad input.
 */
export async function awaitGoogleCredentials(services: readonly string[], log: Logger, wait: CredentialWait = {}) {
  if (services.length === 0) return;
  const attempts = wait.attempts ?? 8;
  const sleep = wait.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const getToken =
    wait.getToken ??
    (async () => {
      const { GoogleAuth } = await import('google-auth-library');
      return new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getAccessToken();
    });
  let waited = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      await getToken();
      if (attempt > 1) log.info({ attempt, waitedMs: waited }, 'Google credentials obtained');
      return;
    } catch (err) {
      if (attempt >= attempts) {
        throw new ProcessingError(
          `could not obtain Google credentials for ${services.join(', ')} after ${attempt} tries over ${Math.round(waited / 1000)} s: ${messageOf(err)}`,
          { transient: true, cause: err },
        );
      }
      const delay = Math.min(wait.maxDelayMs ?? 8000, (wait.baseDelayMs ?? 500) * 2 ** (attempt - 1));
      log.warn(
        { attempt, retryInMs: delay, err: messageOf(err) },
        'Google credentials not available yet (a new pod may wait a few seconds for the GKE metadata server); trying again',
      );
      await sleep(delay);
      waited += delay;
    }
  }
}
