// Kubernetes' compressed index lists, both ways.

import { describe, expect, it } from 'vitest';
import { formatIndexes, parseIndexes } from '../core/jobs/indexes.js';
import { jobControllerIndexes } from './support/kubeApiServer.js';

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
    // Sorted as numbers, each once, whatever the order given.
    ['10,9,2', [2, 9, 10]],
    ['3,1,1', [1, 3]],
    // Spaces around a part are allowed.
    [' 1, 3-4 ', [1, 3, 4]],
  ])('"%s" -> %j', (input, expected) => {
    expect(parseIndexes(input)).toEqual(expected);
  });

  it('rejects what is not an index list, saying which part', () => {
    expect(() => parseIndexes('1,x')).toThrow(/part "x"/);
    expect(() => parseIndexes('5-3')).toThrow(/runs backwards/);
    // The whole part must be an index or a range: nothing before, nothing after.
    for (const bad of ['a1', '1a', '1-3x', 'x1-3', '1--3', '-1']) {
      expect(() => parseIndexes(bad), bad).toThrow(/not an index list/);
    }
  });

  it('round-trips', () => {
    const idx = [0, 1, 2, 5, 6, 9, 11, 12, 13, 14];
    expect(parseIndexes(formatIndexes(idx))).toEqual(idx);
  });
});

describe('core and the API server double format alike', () => {
  // Two implementations written apart (the double follows the Job controller's orderedIntervals): a bug in
  // either shows as a difference, instead of hiding on both sides of a test.
  it.each([
    {
      name: 'every subset of 0..9',
      sets: Array.from({ length: 1024 }, (_v, m) => [...Array(10).keys()].filter((i) => m & (1 << i))),
    },
    {
      name: 'sparse large indexes',
      sets: [
        [0, 164],
        [100, 101, 163, 164],
        [7, 8, 9, 10, 650],
      ],
    },
  ])('$name', ({ sets }) => {
    for (const set of sets) expect(formatIndexes(set)).toBe(jobControllerIndexes(set));
  });
});
