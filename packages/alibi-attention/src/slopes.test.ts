import { describe, expect, it } from 'vitest';
import { alibiSlopes } from './slopes.js';

const pow2 = (exponents: number[]) => exponents.map((e) => 2 ** -e);

describe('alibiSlopes', () => {
  it('gives 2^-(m * 8/16) for the 16 heads of mpt-1b in both dialects', () => {
    const expected = pow2(Array.from({ length: 16 }, (_, i) => (i + 1) / 2));
    for (const dialect of ['mpt', 'mosaic_gpt'] as const) {
      const got = Array.from(alibiSlopes(16, 8, dialect));
      got.forEach((s, i) => {
        expect(s).toBeCloseTo(expected[i]!, 7);
      });
    }
  });

  it('interleaves the next power of two for mpt and stays plain for mosaic_gpt (12 heads)', () => {
    // n' = 16: exponents m/2 for m = 2,4,...,16 then 1,3,5,7.
    const mpt = pow2([1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5]);
    Array.from(alibiSlopes(12, 8, 'mpt')).forEach((s, i) => {
      expect(s).toBeCloseTo(mpt[i]!, 7);
    });
    const mosaic = pow2(Array.from({ length: 12 }, (_, i) => ((i + 1) * 8) / 12));
    Array.from(alibiSlopes(12, 8, 'mosaic_gpt')).forEach((s, i) => {
      expect(s).toBeCloseTo(mosaic[i]!, 6);
    });
  });

  it('handles 3 heads and a different alibi_bias_max', () => {
    // n' = 4, max 16: exponents 4, 8, 12, 16 -> odd positions (8, 16) then even (4, 12), first 3.
    expect(Array.from(alibiSlopes(3, 16, 'mpt'))).toEqual(pow2([8, 16, 4]).map(Math.fround));
  });

  it('rejects bad arguments precisely', () => {
    expect(() => alibiSlopes(0)).toThrow('nHeads must be a positive integer, got 0');
    expect(() => alibiSlopes(4, -1)).toThrow('alibiBiasMax must be a positive number, got -1');
  });
});
