// "Did you mean": the closest of a list of names to a mistyped one, for error messages.

/** Edit distance (insertions, deletions, substitutions, and swaps of neighbours). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    // Stryker disable next-line ConditionalExpression: equivalent for `j === 0` as true, the loop below sets every cell past column 0.
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: equivalent guards, at i or j of 1 a[i - 2] or b[j - 2] is undefined, which equals no letter.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The name closest to `value` when it is close enough to be a typo (at most a third of its length, and at
 * least 1, edits away; case ignored), else undefined.
 */
export function closest(value: string, names: readonly string[]): string | undefined {
  const v = value.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(v, name.toLowerCase());
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(value.length / 3)) ? best.name : undefined;
}

/** ` Did you mean "x"?` or nothing, to append to a message. */
export function didYouMean(value: string, names: readonly string[]): string {
  const name = closest(value, names);
  return name ? ` Did you mean "${name}"?` : '';
}
