import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../random.js';
import { chooseToken } from './choose-token.js';
import { sampleToken } from './sampling.js';

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

  it.each([
    { temperature: 0.8, topP: 0.9 },
    { temperature: 1 },
    { temperature: 0.3, topP: 0.5 },
    { temperature: 2, topP: 0.999 },
    { temperature: 0.7, topP: 0.95, repetitionPenalty: 1.2 },
  ])('draws the same tokens as sampleToken without top-k for %o', (options) => {
    const seen = [3, 17, 17, 256];
    const fast = new SeededRandom(23);
    const reference = new SeededRandom(23);
    for (let step = 0; step < 40; step++) {
      // Coarse values (many ties, also at the nucleus boundary) and a few smooth ones.
      const logits =
        step % 4 === 3
          ? new SeededRandom(step).fillNormal(new Float32Array(5000), 2)
          : randomLogits(3000 + step * 37, step);
      const want = sampleToken(logits.slice(), options, reference, seen);
      expect(chooseToken(logits.slice(), options, fast, seen)).toBe(want);
    }
  });

  it('samples a one-token vocabulary and a peaked distribution', () => {
    expect(chooseToken(Float32Array.of(1.5), { temperature: 1, topP: 0.5 }, new SeededRandom(1), [])).toBe(0);
    const peaked = new Float32Array(50432).fill(-20);
    peaked[777] = 20;
    for (let seed = 0; seed < 5; seed++) {
      expect(chooseToken(peaked.slice(), { temperature: 1, topP: 0.9 }, new SeededRandom(seed), [])).toBe(
        777,
      );
    }
  });

  it('takes the reference path for greedy', () => {
    const logits = randomLogits(1000, 3);
    expect(chooseToken(logits.slice(), { temperature: 0 }, new SeededRandom(5), [])).toBe(
      sampleToken(logits.slice(), { temperature: 0 }, new SeededRandom(5)),
    );
  });
});
