// Progress of a batch of dates: one rewritten line on a terminal, periodic plain lines in a log file.

import type { IndexEvent } from './ports/jobRuntime.js';

export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export class ProgressReporter {
  private done = 0;
  private failed = 0;
  private retried = 0;
  private interrupted = 0;
  private lastLine = 0;
  private lastDecile = 0;
  private readonly started: number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: ProgressOutput,
    private readonly now: () => number = () => performance.now(),
    /** How often a non-terminal gets a line, at the least. @default 10000 */
    private readonly everyMs = 10_000,
  ) {
    this.started = now();
  }

  /** Failures and retries get their own line, so a log file shows every one of them. */
  onIndex(event: IndexEvent, describe: (index: number) => string): void {
    // Done, failed and remaining add up to the total: a failed date is finished, but it is not done.
    if (event.outcome === 'succeeded') this.done++;
    else if (event.outcome === 'failed') this.failed++;
    else if (event.outcome === 'interrupted') this.interrupted++;
    else this.retried++;
    if (event.outcome !== 'succeeded') {
      const what =
        event.outcome === 'failed'
          ? 'FAILED'
          : event.outcome === 'retrying'
            ? 'failed, retrying once'
            : event.outcome === 'interrupted'
              ? 'interrupted, not loaded'
              : 'disrupted, running again';
      this.print(`${this.label} ${describe(event.index)} ${what} (exit ${event.exitCode ?? '-'})`, true);
    }
    this.tick();
  }

  line(): string {
    const elapsed = (this.now() - this.started) / 1000;
    const finished = this.done + this.failed;
    const rate = elapsed > 0 ? finished / elapsed : 0;
    const remaining = this.total - finished;
    const eta = rate > 0 ? `, ETA ${Math.ceil(remaining / rate)} s` : '';
    // Interrupted dates stay in `remaining`: they were not loaded and the next run loads them.
    const interrupted = this.interrupted > 0 ? `, ${this.interrupted} interrupted` : '';
    return `${this.label} ${this.done}/${this.total} done, ${this.failed} failed, ${this.retried} retried${interrupted}, ${remaining} remaining, ${rate.toFixed(1)} dates/s${eta}`;
  }

  private tick(): void {
    const t = this.now();
    const decile = Math.floor((10 * (this.done + this.failed)) / Math.max(1, this.total));
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${this.line()}`);
    else if (decile > this.lastDecile || t - this.lastLine >= this.everyMs) {
      this.lastDecile = decile;
      this.lastLine = t;
      this.out.write(`${this.line()}\n`);
    }
  }

  private print(text: string, own: boolean): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${text}\n`);
    else if (own) this.out.write(`${text}\n`);
  }

  finish(): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${this.line()}\n`);
    else if (this.lastDecile < 10) this.out.write(`${this.line()}\n`);
  }
}
