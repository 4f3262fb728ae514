import { SeededRandom, sampleToken } from '@mptjs/mpt-model';
import { describe, expect, it } from 'vitest';
import { chooseToken } from './choose-token.js';

function randomLogits(n: number, seed: number): Float32Array {
  const r = new SeededRandom(seed);
  // Coarse values, so ties (also at the top-k boundary) occur.
  return Float32Array.from({ length: n }, () => Math.round(r.next() * 40) / 4);
}

describe('chooseToken', () => {
  it.each([
    { temperature: 0.7, topK: 40 },
    { temperature: 1.3, topK: 5, topP: 0.8 },
    { temperature: 1, topK: 1 },
    { temperature: 0.9, topK: 50, repetitionPenalty: 1.3 },
  ])('draws the same tokens as sampleToken for %o', (options) => {
    const seen = [3, 17, 17, 256];
    const fast = new SeededRandom(11);
    const reference = new SeededRandom(11);
    for (let step = 0; step < 30; step++) {
      const logits = randomLogits(5000, step);
      const want = sampleToken(logits.slice(), options, reference, seen);
      expect(chooseToken(logits.slice(), options, fast, seen)).toBe(want);
    }
  });

  it('takes the reference path for greedy and for top-p alone', () => {
    const logits = randomLogits(1000, 3);
    const want = sampleToken(logits.slice(), { temperature: 0.8, topP: 0.9 }, new SeededRandom(5));
    expect(chooseToken(logits.slice(), { temperature: 0.8, topP: 0.9 }, new SeededRandom(5), [])).toBe(want);
    expect(chooseToken(logits.slice(), { temperature: 0 }, new SeededRandom(5), [])).toBe(
      sampleToken(logits.slice(), { temperature: 0 }, new SeededRandom(5)),
    );
  });
});
