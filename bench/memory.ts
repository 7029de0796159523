// Peak memory of a process tree (a stage process and the pods it starts), sampled from `ps`.

import { execFileSync } from 'node:child_process';

/** Resident memory of a process and all its descendants, in KiB. */
export function treeRssKiB(root: number): number {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,rss='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const inTree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of table) {
      if (pid !== undefined && ppid !== undefined && inTree.has(ppid) && !inTree.has(pid)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  return table.reduce((kib, [pid, , rss]) => (pid !== undefined && inTree.has(pid) ? kib + (rss ?? 0) : kib), 0);
}
