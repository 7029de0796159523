// "Did you mean": a typo gets the name it was meant to be; something else gets no guess.

import { describe, expect, it } from 'vitest';
import { PROCESSOR_NAMES } from '../core/pipeline/definition.js';
import { SEASON_TYPE_CHOICES } from '../core/pipeline/seasons.js';
import { closest, didYouMean, editDistance } from '../core/suggest.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', 'abc', 0],
    ['abc', 'abd', 1],
    ['abc', 'ab', 1],
    ['abc', 'abcd', 1],
    ['abc', 'acb', 1],
    ['kitten', 'sitting', 3],
    ['abc', '', 3],
    ['', 'ab', 2],
    // A swap is one edit only where the two letters trade places.
    ['ab', 'ba', 1],
    ['ab', 'ca', 2],
    ['ab', 'cd', 2],
    ['abcd', 'acbd', 1],
  ])('%j to %j is %i', (a, b, n) => {
    expect(editDistance(a, b)).toBe(n);
    expect(editDistance(b, a)).toBe(n);
  });
});

describe('closest', () => {
  it('names the processor a typo was meant to be, case aside', () => {
    expect(closest('player_game_sumary', PROCESSOR_NAMES)).toBe('player_game_summary');
    expect(closest('PLAYER_DAILY_CACHE', PROCESSOR_NAMES)).toBe('player_daily_cache');
    expect(closest('reguler', SEASON_TYPE_CHOICES)).toBe('regular');
    expect(closest('playofs', SEASON_TYPE_CHOICES)).toBe('playoffs');
  });

  it('guesses up to a third of the length in edits (at least one), and no further', () => {
    // Six letters typed: 2 edits away is a typo, 3 are not.
    expect(closest('rgulor', SEASON_TYPE_CHOICES)).toBe('regular');
    expect(closest('rgolor', SEASON_TYPE_CHOICES)).toBeUndefined();
    // A short word still gets one edit.
    expect(closest('al', SEASON_TYPE_CHOICES)).toBe('all');
    expect(closest('xyz', SEASON_TYPE_CHOICES)).toBeUndefined();
  });

  it('of names as close, the first listed', () => {
    expect(closest('ab', ['ax', 'ay'])).toBe('ax');
    expect(closest('ab', ['ay', 'ax'])).toBe('ay');
    expect(closest('ab', [])).toBeUndefined();
  });

  it('writes the suggestion as a sentence, or nothing', () => {
    expect(didYouMean('reguler', SEASON_TYPE_CHOICES)).toBe(' Did you mean "regular"?');
    expect(didYouMean('nope', SEASON_TYPE_CHOICES)).toBe('');
  });
});
