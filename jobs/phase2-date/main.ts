// The Stage 1 pod: one index of the Indexed Job (Phase 1-2 for one game date), logging JSON to stdout.
// With BACKFILL_LOCAL_WORKER=1 (set by the local job runtime) it stays up and runs one index per message.

import { createFileLogger, createLogger, type Logger } from '../../core/log.js';
import { type IndexAssignment, podLogFields, runPhase2Index } from './runIndex.js';

interface RunMessage {
  readonly type: 'run';
  readonly index: number;
  readonly env: Record<string, string>;
  readonly logFile: string;
}

if (process.env.BACKFILL_LOCAL_WORKER === '1' && process.send) {
  process.on('message', async (m: RunMessage) => {
    if (m?.type !== 'run') return;
    const files: { close(): void }[] = [];
    const env = { ...process.env, ...m.env };
    const logFor = (a: IndexAssignment | undefined, level: string): Logger => {
      const f = createFileLogger(level, m.logFile);
      files.push(f);
      return f.log.child(podLogFields(a, env));
    };
    const exitCode = await runPhase2Index(env, logFor);
    for (const f of files) f.close();
    process.send?.({ type: 'done', index: m.index, exitCode });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  // Node as PID 1 ignores SIGTERM unless it listens: an evicted pod stops at once (its date's transaction
  // never committed, so nothing partial is left), and the failure policy ignores the disruption.
  process.on('SIGTERM', () => process.exit(143));
  const exitCode = await runPhase2Index(process.env, (a, level) =>
    createLogger(level, 1).child(podLogFields(a, process.env)),
  );
  process.exit(exitCode);
}
