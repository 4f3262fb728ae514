import * as tf from '@tensorflow/tfjs-core';
import { alibiBias, MASK_VALUE, MASKED_SCORE, visibleKeys } from './bias.js';

/** Options shared by every attention implementation. Tensors are `[B, H, T, Dh]`. */
export interface AttentionOptions {
  /** Per-head ALiBi slopes (`alibiSlopes`), or null/undefined for no positional bias. */
  slopes?: Float32Array | null;
  /** Multiplies `q k^T`; default `1/sqrt(Dh)`. */
  scale?: number;
  /** Hide keys after each query (default true). */
  causal?: boolean;
  /** Absolute position of the first query; default `Tk - Tq` (queries are the newest positions). */
  queryOffset?: number;
  /** `[B, Tk]`, 1 for real keys and 0 for padding. */
  keyMask?: tf.Tensor;
}

export interface ResolvedAttentionOptions {
  slopes: Float32Array | null;
  scale: number;
  causal: boolean;
  queryOffset: number;
  keyMask: tf.Tensor | undefined;
}

export function resolveAttentionOptions(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: AttentionOptions,
): ResolvedAttentionOptions {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new RangeError(
      `attention expects q, k, v as [batch, heads, time, headDim], got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  }
  const [b, h, tq, dh] = q.shape as number[] as [number, number, number, number];
  const same = (t: tf.Tensor) => t.shape[0] === b && t.shape[1] === h && t.shape[3] === dh;
  if (!same(k) || !same(v) || k.shape[2] !== v.shape[2]) {
    throw new RangeError(
      `q [${q.shape}], k [${k.shape}] and v [${v.shape}] disagree on batch, heads, keys or headDim`,
    );
  }
  return resolveAttentionDims(b, h, tq, k.shape[2]!, dh, options);
}

/** `resolveAttentionOptions` for shapes already checked: batch, heads, queries, keys and head dim. */
export function resolveAttentionDims(
  b: number,
  h: number,
  tq: number,
  tk: number,
  dh: number,
  options: AttentionOptions,
): ResolvedAttentionOptions {
  const slopes = options.slopes ?? null;
  if (slopes && slopes.length !== h) throw new RangeError(`got ${slopes.length} ALiBi slopes for ${h} heads`);
  const queryOffset = options.queryOffset ?? tk - tq;
  if (!Number.isInteger(queryOffset) || queryOffset < 0) {
    throw new RangeError(`queryOffset must be a non-negative integer, got ${queryOffset}`);
  }
  if (
    options.keyMask &&
    (options.keyMask.rank !== 2 || options.keyMask.shape[0] !== b || options.keyMask.shape[1] !== tk)
  ) {
    throw new RangeError(`keyMask must be [${b}, ${tk}], got [${options.keyMask.shape}]`);
  }
  return {
    slopes,
    scale: options.scale ?? 1 / Math.sqrt(dh),
    causal: options.causal ?? true,
    queryOffset,
    keyMask: options.keyMask,
  };
}

/**
 * The additive `[1, H, Tq, Tk]` constant for causal attention without a key mask: the ALiBi bias where a key is
 * visible, MASK_VALUE where it is not. Adding MASK_VALUE (-FLT_MAX) to any score below 1e31 in magnitude rounds to
 * MASK_VALUE, so `scores + causalBias` equals `where(visible, scores + alibi, MASK_VALUE)` exactly, without
 * broadcasting a mask over the batch (on tfjs-wasm that Tile took longer than the attention matmuls).
 * `slope * distance` in doubles rounds to the float32 product `alibiBias` computes.
 */
function causalBias(slopes: Float32Array | null, tq: number, tk: number, queryOffset: number): tf.Tensor4D {
  const h = slopes?.length ?? 1;
  const data = new Float32Array(h * tq * tk);
  for (let head = 0; head < h; head++) {
    const slope = slopes ? slopes[head]! : 0;
    for (let i = 0; i < tq; i++) {
      const row = (head * tq + i) * tk;
      const last = queryOffset + i;
      for (let j = 0; j < tk; j++) data[row + j] = j <= last ? (slopes ? slope * (j - last) : 0) : MASK_VALUE;
    }
  }
  return tf.tensor4d(data, [1, h, tq, tk]);
}

/** Attention probabilities `softmax(q k^T * scale + alibi, masked)` as `[B, H, Tq, Tk]`. */
export function attentionProbabilities(q: tf.Tensor, k: tf.Tensor, o: ResolvedAttentionOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const tq = q.shape[2]!;
    const tk = k.shape[2]!;
    // The transposed operand costs nothing extra: the wasm BatchMatMul wrapper materializes it in SIMD.
    let scores = tf.mul(tf.matMul(q, k, false, true), o.scale);
    if (o.causal && !o.keyMask) {
      return tf.softmax(tf.add(scores, causalBias(o.slopes, tq, tk, o.queryOffset))) as tf.Tensor4D;
    }
    if (o.slopes) scores = tf.add(scores, alibiBias(o.slopes, tq, tk, o.queryOffset));
    const visible = visibleKeys(tq, tk, { causal: o.causal, queryOffset: o.queryOffset, keyMask: o.keyMask });
    if (visible)
      scores = tf.where(tf.broadcastTo(visible, scores.shape), scores, tf.fill(scores.shape, MASKED_SCORE));
    return tf.softmax(scores) as tf.Tensor4D;
  });
}

/**
 * The plain-ops attention (`[B, H, Tq, Dh]` out): the reference for the fused kernel, the implementation on wasm
 * and cpu, and differentiable through tfjs autodiff. It materializes the `[B, H, Tq, Tk]` score tensor.
 */
export function attentionReference(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: AttentionOptions = {},
): tf.Tensor4D {
  const o = resolveAttentionOptions(q, k, v, options);
  return tf.tidy(() => tf.matMul(attentionProbabilities(q, k, o), v) as tf.Tensor4D);
}

/**
 * The vector-Jacobian product of attention with plain ops (recomputing the probabilities `P`):
 * `dV = P^T dO`, `dS = P * (dO V^T - rowsum(dO V^T * P))`, `dQ = dS K * scale`, `dK = dS^T Q * scale`.
 */
export function attentionBackward(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  dy: tf.Tensor,
  options: AttentionOptions = {},
): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const o = resolveAttentionOptions(q, k, v, options);
  return tf.tidy(() => {
    const p = attentionProbabilities(q, k, o);
    const dv = tf.matMul(p, dy, true, false);
    const dp = tf.matMul(dy, v, false, true);
    const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true)));
    const dq = tf.mul(tf.matMul(ds, k), o.scale);
    const dk = tf.mul(tf.matMul(ds, q, true, false), o.scale);
    return [dq, dk, dv] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  });
}
