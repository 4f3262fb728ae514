import { describe, expect, it } from 'vitest';
import { hashSeed, permutation, uniformAt } from './random.js';

describe('seeded randomness', () => {
  it('permutation() is a permutation, fixed by its seed', () => {
    const p = permutation(1000, 42);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(permutation(1000, 42)).toEqual(p);
    expect(permutation(1000, 43)).not.toEqual(p);
  });

  it('hashSeed() separates its parts', () => {
    expect(hashSeed(1, 'a')).not.toBe(hashSeed(1, 'b'));
    expect(hashSeed('ab', 'c')).not.toBe(hashSeed('a', 'bc'));
    expect(hashSeed(2 ** 40)).not.toBe(hashSeed(0));
  });

  it('uniformAt() is uniform on [0, 1) (chi-square over 20 bins)', () => {
    const bins = new Array<number>(20).fill(0);
    const n = 40_000;
    for (let i = 0; i < n; i++) {
      const u = uniformAt(7, 'mix', i);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      bins[Math.floor(u * 20)]!++;
    }
    const expected = n / 20;
    const chi2 = bins.reduce((a, b) => a + (b - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(43.8); // p = 0.001 for 19 degrees of freedom
  });

  it('first permutation elements are not biased towards the identity', () => {
    let fixed = 0;
    for (let s = 0; s < 2000; s++) if (permutation(10, s)[0] === 0) fixed++;
    expect(fixed).toBeGreaterThan(140); // expected 200 (1/10), sd ~13
    expect(fixed).toBeLessThan(260);
  });
});
