// Structured logs with pino: JSON lines with the date, processor and run fields as they are.

import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, destination: number | string = 2): Logger {
  return pino(
    { level, base: { service: 'nba-backfill' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: destination, sync: true, mkdir: true }),
  );
}

/** A logger that writes nothing, for library callers and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
