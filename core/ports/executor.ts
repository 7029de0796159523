// The executor port: how a mode of running the backfill (the controller on Kubernetes, `backfill run` on this
// machine) lets the reconcile drive it. An executor observes (Stage 1 Jobs with their status and indexes, gate
// verdicts, Stage 3 outcomes, reports made) and carries out decisions; the reconcile decides and imports no
// executor. It sits with the other ports because, like them, it is what core asks of the outside.

import { ProcessingError } from '../errors.js';
import { type Action, type ObservedState, reconcile } from '../kubernetes/reconcile.js';

export interface Executor {
  /** What the reconcile decides on, as things stand now. */
  observe(): Promise<ObservedState>;
  /** Carries out one decision; what it changed shows in the next observation. */
  act(decision: Action): Promise<void>;
}

export interface DriveHooks {
  /** Told each decision before it is carried out. */
  readonly onDecision?: (decision: Action) => void;
  /** Asked before each decision: true stops the drive there (a signal came). */
  readonly stopped?: () => boolean;
}

export interface Driven {
  /** Every decision carried out, in order. */
  readonly decisions: readonly Action[];
  /** Stopped on request (`hooks.stopped`), not because nothing was left. */
  readonly stopped: boolean;
}

/** What a pass decided, for telling two passes apart. */
const passKey = (actions: readonly Action[]) => actions.map((a) => `${a.kind} ${a.season} ${a.why}`).join('\n');

/**
 * observe -> reconcile -> act on each decision -> observe again, until a pass decides nothing to act on (a
 * warning is told, not acted on, as only a person can act on it) or `stopped` says so. For an executor that
 * does all its work itself (`backfill run`); the controller runs single passes when the cluster changes.
 */
export async function drive(executor: Executor, hooks: DriveHooks = {}): Promise<Driven> {
  const decisions: Action[] = [];
  // A standing warning comes back every pass: told once.
  const warned = new Set<string>();
  const warn = (w: Action) => {
    if (warned.has(passKey([w]))) return;
    warned.add(passKey([w]));
    hooks.onDecision?.(w);
  };
  let previous: string | null = null;
  for (;;) {
    const actions = reconcile(await executor.observe());
    const todo = actions.filter((a) => a.kind !== 'warn');
    if (todo.length === 0) {
      for (const w of actions) warn(w);
      return { decisions, stopped: false };
    }
    // An executor whose acts do not show in its next observation would loop for ever: a bug, said as one.
    const key = passKey(todo);
    if (key === previous) throw new ProcessingError(`the executor did not carry out: ${todo[0]?.why}`);
    previous = key;
    for (const action of actions) {
      if (action.kind === 'warn') {
        warn(action);
        continue;
      }
      if (hooks.stopped?.()) return { decisions, stopped: true };
      hooks.onDecision?.(action);
      decisions.push(action);
      await executor.act(action);
    }
    if (hooks.stopped?.()) return { decisions, stopped: true };
  }
}
