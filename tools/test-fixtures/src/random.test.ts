import { describe, expect, it } from 'vitest';
import { randomFloats, seededRandom } from './random.js';

describe('seededRandom', () => {
  it('keeps its sequence: generated corpora and tiny runs depend on it', () => {
    const next = seededRandom(1);
    expect([next(), next(), next()].map((x) => x * 2 ** 32)).toEqual([2693262067, 11749833, 2265367787]);
  });

  it('repeats for a seed, differs across seeds, and stays in [0, 1)', () => {
    const a = Array.from({ length: 1000 }, seededRandom(42));
    expect(Array.from({ length: 1000 }, seededRandom(42))).toEqual(a);
    expect(Array.from({ length: 1000 }, seededRandom(43))).not.toEqual(a);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe('randomFloats', () => {
  it('scales the generator to [-scale, scale)', () => {
    const next = seededRandom(7);
    const want = Float32Array.from({ length: 64 }, () => (next() * 2 - 1) * 0.5);
    const got = randomFloats(64, 7, 0.5);
    expect(got).toEqual(want);
    expect(got.every((x) => x >= -0.5 && x < 0.5)).toBe(true);
  });
});
