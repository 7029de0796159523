// Kubernetes' compressed index lists, both ways.

import { describe, expect, it } from 'vitest';
import { formatIndexes, parseIndexes } from '../core/jobs/indexes.js';

describe('formatIndexes', () => {
  it.each([
    [[], ''],
    [[0], '0'],
    [[1, 3, 4, 5, 7], '1,3-5,7'],
    // Two in a row are listed, not ranged, as the Job controller writes them.
    [[3, 4], '3,4'],
    [[9, 2, 2, 3, 4, 8], '2-4,8,9'],
  ])('%j -> "%s"', (input, expected) => {
    expect(formatIndexes(input)).toBe(expected);
  });
});

describe('parseIndexes', () => {
  it.each([
    ['', []],
    ['1,3-5,7', [1, 3, 4, 5, 7]],
    ['3,4', [3, 4]],
    ['0-2,1', [0, 1, 2]],
  ])('"%s" -> %j', (input, expected) => {
    expect(parseIndexes(input)).toEqual(expected);
  });

  it('rejects what is not an index list, saying which part', () => {
    expect(() => parseIndexes('1,x')).toThrow(/part "x"/);
    expect(() => parseIndexes('5-3')).toThrow(/runs backwards/);
  });

  it('round-trips', () => {
    const idx = [0, 1, 2, 5, 6, 9, 11, 12, 13, 14];
    expect(parseIndexes(formatIndexes(idx))).toEqual(idx);
  });
});
