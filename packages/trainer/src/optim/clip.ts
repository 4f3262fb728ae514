import { rowSumsOfSquares } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** Sum of squares of every gradient, as one number (FSDP ranks all-reduce this before taking the root). */
export async function gradSumOfSquares(grads: readonly tf.Tensor[]): Promise<number> {
  if (grads.length === 0) return 0;
  // tfjs-webgpu's addN binds every input in one shader and WebGPU allows 8 storage buffers per stage by
  // default, so the per-tensor sums are added in groups of at most 4.
  const rowsFirst = tf.getBackend() === 'webgpu';
  const total = tf.tidy(() => {
    let terms = grads.map((g) => sumOfSquares(g, rowsFirst));
    while (terms.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < terms.length; i += 4) {
        const group = terms.slice(i, i + 4);
        next.push(group.length === 1 ? group[0]! : tf.addN(group));
      }
      terms = next;
    }
    return terms[0]!;
  });
  const value = (await total.data())[0]!;
  total.dispose();
  return value;
}

/**
 * `sum(g^2)`. tfjs-webgpu reduces to one value with a single workgroup, which walks a whole embedding gradient
 * alone (9% of an mpt-125m step's GPU time on an H200): there, each row's squares are summed by one workgroup of
 * one dispatch (squaring and summing fused), then the row sums.
 */
function sumOfSquares(g: tf.Tensor, rowsFirst: boolean): tf.Tensor {
  if (rowsFirst && g.dtype === 'float32' && g.size > 0) {
    const rows = rowSumsOfSquares(g);
    // A vector (a norm's weight) is one row: its sum is already the total.
    return rows.size === 1 ? tf.reshape(rows, []) : tf.sum(rows);
  }
  return tf.sum(tf.square(g));
}

/**
 * torch.nn.utils.clip_grad_norm_ semantics: scale every gradient by `max / (norm + 1e-6)` when that is below 1.
 * Returns new tensors (the caller disposes the old ones) or the same tensors when no clipping is needed.
 */
export function clipByGlobalNorm(
  grads: readonly tf.Tensor[],
  totalNorm: number,
  maxNorm: number,
): tf.Tensor[] {
  return unscaleAndClip(grads, 1, totalNorm, maxNorm);
}

/**
 * Divides loss-scaled gradients by `scale` and clips them to `maxNorm` (torch semantics, on the unscaled
 * `totalNorm`) in one multiply each. Returns the same tensors when neither changes them.
 */
export function unscaleAndClip(
  grads: readonly tf.Tensor[],
  scale: number,
  totalNorm: number,
  maxNorm: number | undefined,
): tf.Tensor[] {
  const coef = gradientCoefficient(scale, totalNorm, maxNorm);
  if (coef === 1) return [...grads];
  return grads.map((g) => tf.tidy(() => tf.mul(g, coef)));
}

/**
 * The one factor `unscaleAndClip` multiplies every gradient by: `1 / scale`, times torch's clip factor
 * `maxNorm / (totalNorm + 1e-6)` when that is below 1. An optimizer with `scalesGradients` takes it as is.
 */
export function gradientCoefficient(scale: number, totalNorm: number, maxNorm: number | undefined): number {
  const clip = maxNorm === undefined ? 1 : Math.min(1, maxNorm / (totalNorm + 1e-6));
  return clip / scale;
}
