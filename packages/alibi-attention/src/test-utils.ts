// Helpers for this package's tests: a seeded uniform generator and a naive loop implementation of attention.
import * as tf from '@tensorflow/tfjs-core';

/** Mulberry32: small, seeded, good enough for test inputs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rand = seededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rand() * 2 - 1) * scale;
  return tf.tensor(data, shape);
}

/** Attention by explicit loops in float64: the independent check on the tfjs implementations. */
export function naiveAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  [b, h, tq, tk, dh]: [number, number, number, number, number],
  {
    slopes,
    scale,
    causal,
    queryOffset,
    keyMask,
  }: {
    slopes: Float32Array | null;
    scale: number;
    causal: boolean;
    queryOffset: number;
    keyMask?: Float32Array;
  },
): Float64Array {
  const out = new Float64Array(b * h * tq * dh);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      for (let i = 0; i < tq; i++) {
        const qOff = ((bi * h + hi) * tq + i) * dh;
        const scores: number[] = [];
        const keys: number[] = [];
        for (let j = 0; j < tk; j++) {
          if (causal && j > queryOffset + i) continue;
          if (keyMask && keyMask[bi * tk + j] === 0) continue;
          const kOff = ((bi * h + hi) * tk + j) * dh;
          let s = 0;
          for (let d = 0; d < dh; d++) s += q[qOff + d]! * k[kOff + d]!;
          s = s * scale + (slopes ? slopes[hi]! * (j - (queryOffset + i)) : 0);
          scores.push(s);
          keys.push(j);
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, c) => a + c, 0);
        for (let n = 0; n < keys.length; n++) {
          const vOff = ((bi * h + hi) * tk + keys[n]!) * dh;
          for (let d = 0; d < dh; d++) out[qOff + d] = out[qOff + d]! + (e[n]! / sum) * v[vOff + d]!;
        }
      }
    }
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
