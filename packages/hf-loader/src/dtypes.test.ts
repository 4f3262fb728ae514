import { randomFloats } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, widen16InPlace } from './dtypes.js';

const allBits = () => Uint16Array.from({ length: 65536 }, (_, i) => i);
const isNaNHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('float16', () => {
  it('widens all 65536 bit patterns exactly', () => {
    const wide = f16ToF32(allBits());
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const exp = (h >> 10) & 31;
      const frac = h & 1023;
      const sign = h >> 15 ? -1 : 1;
      const want =
        exp === 31
          ? frac
            ? Number.NaN
            : sign * Number.POSITIVE_INFINITY
          : sign * (exp ? 1024 + frac : frac) * 2 ** (Math.max(exp, 1) - 25);
      if (!(Object.is(wide[h], want) || (Number.isNaN(want) && Number.isNaN(wide[h]!)))) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('narrows every half value back to its own bits', () => {
    const bits = allBits();
    const back = f32ToF16(f16ToF32(bits));
    expect([...bits].filter((h) => !isNaNHalf(h) && back[h] !== h)).toEqual([]);
  });

  it('rounds to the nearest half, ties to even', () => {
    const x = randomFloats(5000, 3, 70000); // spans subnormals to overflow (max half 65504)
    const tiny = randomFloats(2000, 4, 1e-6);
    for (const v of [...x, ...tiny]) {
      const h = f32ToF16(new Float32Array([v]))[0]!;
      const got = f16ToF32(new Uint16Array([h]))[0]!;
      if (Math.abs(v) >= 65520) {
        expect(got).toBe(Math.sign(v) * Number.POSITIVE_INFINITY);
        continue;
      }
      // No other half is closer; on a tie the chosen one is even.
      const up = f16ToF32(new Uint16Array([h + 1]))[0]!;
      const down = f16ToF32(new Uint16Array([h === 0x8000 || h === 0 ? h : h - 1]))[0]!;
      const err = Math.abs(got - v);
      expect(err).toBeLessThanOrEqual(Math.abs(up - v));
      expect(err).toBeLessThanOrEqual(Math.abs(down - v));
    }
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(f32ToF16(new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11]))).toEqual(
      new Uint16Array([0x3c00, 0x3c02]),
    );
  });
});

describe('bfloat16', () => {
  it('widens by placing the bits on top of a float32', () => {
    const wide = bf16ToF32(Uint16Array.from([0x3f80, 0xc000, 0x0001, 0x7f80]));
    expect(Array.from(wide)).toEqual([1, -2, 2 ** -133, Number.POSITIVE_INFINITY]);
  });

  it('rounds to nearest even and keeps NaN a NaN', () => {
    const v = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, Number.NaN, -0]);
    const b = f32ToBf16(v);
    // A tie goes to the even mantissa (0x3f80, 0x3f82); just above the tie rounds up.
    expect([b[0], b[1], b[2], b[4]]).toEqual([0x3f80, 0x3f82, 0x3f81, 0x8000]);
    expect(Number.isNaN(bf16ToF32(b.subarray(3, 4))[0])).toBe(true);
    const back = f32ToBf16(bf16ToF32(allBits()));
    const wrong = [...back.keys()].filter((h) => !((h & 0x7f80) === 0x7f80 && h & 0x7f) && back[h] !== h);
    expect(wrong).toEqual([]);
  });
});

describe('widen16InPlace', () => {
  it('matches the out-of-place widening for every bit pattern, both dtypes', () => {
    const bits = allBits();
    for (const dtype of ['F16', 'BF16'] as const) {
      const buf = new Float32Array(bits.length);
      new Uint16Array(buf.buffer, 0, bits.length).set(bits);
      widen16InPlace(buf, dtype);
      const want = dtype === 'F16' ? f16ToF32(bits) : bf16ToF32(bits);
      expect(Buffer.from(buf.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    }
  });
});
