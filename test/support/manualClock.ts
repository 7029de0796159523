// A clock and timer a test moves by hand, for LocalJobRuntime's `now` and `setTimer` options: time stands still
// until the test advances it, and a timer fires when time reaches its moment (at once if already reached).

interface Timer {
  readonly at: number;
  readonly fn: () => void;
}

export class ManualClock {
  private t: number;
  private readonly timers = new Set<Timer>();

  constructor(startMs: number) {
    this.t = startMs;
  }

  readonly now = (): number => this.t;

  readonly setTimer = (fn: () => void, ms: number): (() => void) => {
    const timer: Timer = { at: this.t + ms, fn };
    this.timers.add(timer);
    // A moment already reached fires on the next microtask, as a 0 ms timeout fires without waiting.
    if (ms <= 0) queueMicrotask(() => this.fire());
    return () => {
      this.timers.delete(timer);
    };
  };

  /** The moments of the timers still waiting, earliest first. */
  pending(): number[] {
    return [...this.timers].map((t) => t.at).sort((a, b) => a - b);
  }

  /** Moves time on by `ms` and fires every timer whose moment it reached, in order. */
  advance(ms: number): void {
    this.t += ms;
    this.fire();
  }

  /** Moves time on without firing a timer: an event loop too busy to run one on time. */
  jump(ms: number): void {
    this.t += ms;
  }

  private fire(): void {
    for (const timer of [...this.timers].sort((a, b) => a.at - b.at)) {
      if (timer.at > this.t || !this.timers.has(timer)) continue;
      this.timers.delete(timer);
      timer.fn();
    }
  }
}
