// Peak memory and CPU time of a process tree (a stage process and the pods it starts), sampled from `ps` and /proc.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A process and all its descendants, from `ps`, with each one's resident memory in KiB. */
function processTree(root: number): Map<number, number> {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,rss='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const inTree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of table) {
      if (pid !== undefined && ppid !== undefined && inTree.has(ppid) && !inTree.has(pid)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  return new Map(table.flatMap(([pid, , rss]) => (pid !== undefined && inTree.has(pid) ? [[pid, rss ?? 0]] : [])));
}

/** Resident memory of a process and all its descendants, in KiB. */
export function treeRssKiB(root: number): number {
  return [...processTree(root).values()].reduce((a, b) => a + b, 0);
}

/** Clock ticks a second, as /proc counts CPU time (Linux: 100). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user and system) each process of a tree has used so far, from /proc (Linux), so that a
 * benchmark sampling it until the tree ends can say what the parent and its pods cost. Empty elsewhere.
 */
export function treeCpuSeconds(root: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of processTree(root).keys()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / TICKS);
    } catch {
      // gone between ps and the read, or no /proc
    }
  }
  return out;
}
