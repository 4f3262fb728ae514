// The linear layer `x W^T (+ b)` as one op that picks its kernel: int8, the wasm matrix-vector kernel, or tfjs's
// matmul in the layout each backend multiplies fastest.
import * as tf from '@tensorflow/tfjs-core';
import { type Int8Weight, int8Linear } from '../int8-linear/wasm.js';
import { GEMV_ROWS_MAX, gemvKernelsAvailable, gemvSimd } from './gemv.js';

/**
 * How a linear weight is stored: `outIn` is torch's `[out, in]` (checkpoints, training, FSDP); `inOut` is
 * `[in, out]`, which tfjs-wasm multiplies ~1.7x faster for one-token decode steps.
 */
export type LinearLayout = 'outIn' | 'inOut';

/** A linear layer's parameters: `weight` is `[out, in]` (torch) unless `layout` is `inOut`. */
export interface LinearParams {
  weight: tf.Tensor;
  bias?: tf.Tensor;
  layout?: LinearLayout;
  /** Weight-only int8 copy (wasm inference): when set it is multiplied instead of `weight`. */
  int8?: Int8Weight;
}

/** `x @ W^T (+ b)` for `x` of any rank `[..., in]`. */
export function linear(x: tf.Tensor, p: LinearParams): tf.Tensor {
  return tf.tidy(() => {
    const inFeatures = x.shape[x.rank - 1]!;
    if (p.int8) {
      const y = int8Linear(x, p.int8);
      return p.bias ? tf.add(y, p.bias) : y;
    }
    const inOut = p.layout === 'inOut';
    const outFeatures = p.weight.shape[inOut ? 1 : 0]!;
    const flat = tf.reshape(x, [-1, inFeatures]);
    let y: tf.Tensor;
    if (inOut) y = tf.matMul(flat, p.weight);
    // A decode step's few rows: our matrix-vector kernel streams each weight row once (XNNPACK's GEMM reaches a
    // fraction of the memory bandwidth there).
    else if (flat.shape[0]! <= GEMV_ROWS_MAX && gemvKernelsAvailable()) {
      y = gemvSimd(flat as tf.Tensor2D, p.weight as tf.Tensor2D);
    }
    // tfjs-wasm multiplies 4-10x slower when the right operand is transposed: there, compute (W x^T)^T with the
    // weight untransposed and move the (smaller) activations instead.
    else if (tf.getBackend() === 'wasm') y = tf.transpose(tf.matMul(p.weight, tf.transpose(flat)));
    else y = tf.matMul(flat, p.weight, false, true);
    if (p.bias) y = tf.add(y, p.bias);
    return tf.reshape(y, [...x.shape.slice(0, -1), outFeatures]);
  });
}
