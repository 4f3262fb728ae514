/**
 * The f16 attention kernels' check problems and their float64 references: attention of the f16-rounded inputs,
 * forward (O and log-sum-exps) and backward (dQ, dK, dV, with dO rounded as well), with the fused kernels' ALiBi
 * (`slope * (j - i)`), causal mask, key mask and query offset.
 */
import { roundToF16 } from '@mptjs/kernels';

/** One attention problem: sizes, options, and the inputs' generator seed. */
export interface FlashCase {
  b: number;
  h: number;
  tq: number;
  tk: number;
  dh: number;
  causal: boolean;
  alibi: boolean;
  queryOffset: number;
  scale: number;
  /** Keys masked out at the start of the last batch's key mask. */
  maskedKeys: number;
  withLse: boolean;
}

/** Uneven on purpose: rows past a block, keys past a tile, head dims past the matrices', masks and offsets. */
export const FLASH_CHECK_CASES: readonly FlashCase[] = [
  {
    b: 1,
    h: 2,
    tq: 70,
    tk: 70,
    dh: 24,
    causal: true,
    alibi: true,
    queryOffset: 0,
    scale: 24 ** -0.5,
    maskedKeys: 0,
    withLse: true,
  },
  {
    b: 2,
    h: 3,
    tq: 5,
    tk: 43,
    dh: 64,
    causal: true,
    alibi: true,
    queryOffset: 38,
    scale: 0.125,
    maskedKeys: 3,
    withLse: true,
  },
  {
    b: 1,
    h: 1,
    tq: 33,
    tk: 19,
    dh: 16,
    causal: false,
    alibi: false,
    queryOffset: 0,
    scale: 0.3,
    maskedKeys: 0,
    withLse: false,
  },
  {
    b: 1,
    h: 1,
    tq: 20,
    tk: 20,
    dh: 128,
    causal: true,
    alibi: true,
    queryOffset: 0,
    scale: 128 ** -0.5,
    maskedKeys: 0,
    withLse: true,
  },
];

function randomValues(count: number, seed: number, amplitude: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * amplitude;
  }
  return out;
}

/** The case's inputs: Q and K in [-2, 2], V in [-1, 1], ALiBi slopes 2^-(1..h), the key mask. */
export function flashCaseInputs(c: FlashCase, seed: number) {
  const qSize = c.b * c.h * c.tq * c.dh;
  const kSize = c.b * c.h * c.tk * c.dh;
  const keyMask = new Float32Array(c.b * c.tk).fill(1);
  for (let j = 0; j < c.maskedKeys; j++) keyMask[(c.b - 1) * c.tk + j] = 0;
  return {
    q: randomValues(qSize, seed, 2),
    k: randomValues(kSize, seed + 1, 2),
    v: randomValues(kSize, seed + 2, 1),
    slopes: Float32Array.from({ length: c.h }, (_, i) => (c.alibi ? 2 ** -(i + 1) : 0)),
    keyMask,
  };
}

/**
 * float64 attention of the f16-rounded Q, K and V (what a correct f16 kernel gives up to f32 sums and the f16
 * rounding of the probabilities): O `[B, H, Tq, Dh]` and each row's log-sum-exp (0 and zeros for a row that
 * sees no key), with the fused kernels' ALiBi (`slope * (j - i)`), causal mask, key mask and query offset.
 */
export function referenceFlashAttention(
  c: FlashCase,
  inputs: ReturnType<typeof flashCaseInputs>,
): { o: Float64Array; lse: Float64Array } {
  const q = Float64Array.from(inputs.q, roundToF16);
  const k = Float64Array.from(inputs.k, roundToF16);
  const v = Float64Array.from(inputs.v, roundToF16);
  const o = new Float64Array(c.b * c.h * c.tq * c.dh);
  const lse = new Float64Array(c.b * c.h * c.tq);
  const s = new Float64Array(c.tk);
  for (let bh = 0; bh < c.b * c.h; bh++) {
    const b = Math.floor(bh / c.h);
    const slope = inputs.slopes[bh % c.h]!;
    for (let i = 0; i < c.tq; i++) {
      const pos = c.queryOffset + i;
      const qRow = (bh * c.tq + i) * c.dh;
      let max = -Infinity;
      for (let j = 0; j < c.tk; j++) {
        const seen = inputs.keyMask[b * c.tk + j] !== 0 && (!c.causal || j <= pos);
        if (!seen) {
          s[j] = -Infinity;
          continue;
        }
        let dot = 0;
        for (let d = 0; d < c.dh; d++) dot += q[qRow + d]! * k[(bh * c.tk + j) * c.dh + d]!;
        s[j] = dot * c.scale + slope * (j - pos);
        max = Math.max(max, s[j]!);
      }
      if (max === -Infinity) continue;
      let sum = 0;
      for (let j = 0; j < c.tk; j++) {
        if (s[j] === -Infinity) continue;
        const p = Math.exp(s[j]! - max);
        sum += p;
        for (let d = 0; d < c.dh; d++) o[qRow + d]! += p * v[(bh * c.tk + j) * c.dh + d]!;
      }
      for (let d = 0; d < c.dh; d++) o[qRow + d]! /= sum;
      lse[bh * c.tq + i] = max + Math.log(sum);
    }
  }
  return { o, lse };
}

/** The case's output gradient dO `[B, H, Tq, Dh]`, in [-1, 1]. */
export function flashCaseOutputGrad(c: FlashCase, seed: number): Float32Array {
  return randomValues(c.b * c.h * c.tq * c.dh, seed, 1);
}

/**
 * float64 gradients of attention of the f16-rounded Q, K, V and dO (the f16 backward rounds P and
 * `dS = P * (dP - D)` too, which bounds its error): dQ, dK and dV, each laid out as its input.
 */
export function referenceFlashAttentionGrads(
  c: FlashCase,
  inputs: ReturnType<typeof flashCaseInputs>,
  dyValues: Float32Array,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const q = Float64Array.from(inputs.q, roundToF16);
  const k = Float64Array.from(inputs.k, roundToF16);
  const v = Float64Array.from(inputs.v, roundToF16);
  const dy = Float64Array.from(dyValues, roundToF16);
  const { o } = referenceFlashAttention(c, inputs);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const p = new Float64Array(c.tk);
  for (let bh = 0; bh < c.b * c.h; bh++) {
    const b = Math.floor(bh / c.h);
    const slope = inputs.slopes[bh % c.h]!;
    for (let i = 0; i < c.tq; i++) {
      const pos = c.queryOffset + i;
      const row = (bh * c.tq + i) * c.dh;
      let max = -Infinity;
      for (let j = 0; j < c.tk; j++) {
        p[j] = -Infinity;
        if (inputs.keyMask[b * c.tk + j] === 0 || (c.causal && j > pos)) continue;
        let dot = 0;
        for (let d = 0; d < c.dh; d++) dot += q[row + d]! * k[(bh * c.tk + j) * c.dh + d]!;
        p[j] = dot * c.scale + slope * (j - pos);
        max = Math.max(max, p[j]!);
      }
      if (max === -Infinity) continue;
      let sum = 0;
      for (let j = 0; j < c.tk; j++) {
        p[j] = p[j] === -Infinity ? 0 : Math.exp(p[j]! - max);
        sum += p[j]!;
      }
      let delta = 0;
      for (let d = 0; d < c.dh; d++) delta += dy[row + d]! * o[row + d]!;
      for (let j = 0; j < c.tk; j++) {
        const pj = p[j]! / sum;
        if (pj === 0) continue;
        const key = (bh * c.tk + j) * c.dh;
        let dp = 0;
        for (let d = 0; d < c.dh; d++) dp += dy[row + d]! * v[key + d]!;
        const ds = pj * (dp - delta) * c.scale;
        for (let d = 0; d < c.dh; d++) {
          dq[row + d]! += ds * k[key + d]!;
          dk[key + d]! += ds * q[row + d]!;
          dv[key + d]! += pj * dy[row + d]!;
        }
      }
    }
  }
  return { dq, dk, dv };
}

/** The worst error of a kernel's output against the reference: O relative to max |V|, and the log-sum-exps. */
export function flashErrors(
  c: FlashCase,
  got: Float32Array,
  want: { o: Float64Array; lse: Float64Array },
  v: Float32Array,
): { o: number; lse: number } {
  const scale = Math.max(...v.map(Math.abs));
  let o = 0;
  for (let i = 0; i < want.o.length; i++) o = Math.max(o, Math.abs(got[i]! - want.o[i]!) / scale);
  let lse = 0;
  if (c.withLse) {
    for (let i = 0; i < want.lse.length; i++)
      lse = Math.max(lse, Math.abs(got[want.o.length + i]! - want.lse[i]!));
  }
  return { o: Number.isNaN(o) ? Infinity : o, lse: Number.isNaN(lse) ? Infinity : lse };
}

/** The largest |got - want| over the largest |want| (Infinity for a NaN). */
export function relativeMaxError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  }
  const r = worst / (scale || 1);
  return Number.isNaN(r) ? Infinity : r;
}
