// Kubernetes' compressed index lists ("1,3-5,7"), as in status.completedIndexes and status.failedIndexes.

/** Formats indexes as the Job controller does (orderedIntervals.String): "3-5" for a run of three or more, "3,4" for two. */
export function formatIndexes(indexes: Iterable<number>): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    // Past the end sorted[j + 1] is undefined, never the next number: no bound needed.
    while (sorted[j + 1] === (sorted[j] as number) + 1) j++;
    if (j === i) parts.push(`${sorted[i]}`);
    else if (j === i + 1) parts.push(`${sorted[i]},${sorted[j]}`);
    else parts.push(`${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Parses "1,3-5,7" (an empty string is no index); throws on anything else. */
export function parseIndexes(text: string | undefined | null): number[] {
  if (!text) return [];
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`not an index list: "${text}" (part "${part}")`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`not an index list: "${text}" (range ${part} runs backwards)`);
    for (let i = from; i <= to; i++) out.push(i);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}
