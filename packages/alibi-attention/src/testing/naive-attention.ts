// Attention by explicit loops, the independent check on this package's tfjs implementations.

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
