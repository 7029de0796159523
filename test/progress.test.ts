// Progress lines: rewritten in place on a terminal, plain periodic lines in a log file, failures always shown.

import { describe, expect, it } from 'vitest';
import { ProgressReporter } from '../core/progress.js';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  return { out: { isTTY, write: (t: string) => chunks.push(t) }, chunks };
}

describe('ProgressReporter', () => {
  it('writes a line per tenth to a log file, with done, failed, remaining and rate', () => {
    const { out, chunks } = capture(false);
    let now = 0;
    const p = new ProgressReporter('[stage1 2021-22]', 20, out, () => now);
    for (let i = 0; i < 20; i++) {
      now += 500;
      p.onIndex(
        { index: i, exitCode: i === 7 ? 1 : 0, outcome: i === 7 ? 'failed' : 'succeeded' },
        (x) => `index ${x}`,
      );
    }
    p.finish();
    const text = chunks.join('');
    expect(text).not.toContain('\r');
    expect(text).toContain('[stage1 2021-22] index 7 FAILED (exit 1)\n');
    expect(text).toContain('[stage1 2021-22] 2/20 done, 0 failed, 0 retried, 18 remaining, 2.0 dates/s, ETA 9 s\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe(
      '[stage1 2021-22] 19/20 done, 1 failed, 0 retried, 0 remaining, 2.0 dates/s, ETA 0 s',
    );
    expect(text.split('\n').length).toBeLessThan(15);
  });

  it('rewrites one line on a terminal and keeps failures and retries on lines of their own', () => {
    const { out, chunks } = capture(true);
    const p = new ProgressReporter('[s]', 2, out, () => 1000);
    p.onIndex({ index: 0, exitCode: 1, outcome: 'retrying' }, () => '2021-11-03');
    p.onIndex({ index: 0, exitCode: 0, outcome: 'succeeded' }, () => '2021-11-03');
    expect(chunks[0]).toBe('\r\x1b[2K[s] 2021-11-03 failed, retrying once (exit 1)\n');
    expect(chunks.at(-1)?.startsWith('\r\x1b[2K[s] 1/2 done, 0 failed, 1 retried, 1 remaining')).toBe(true);
  });
});
