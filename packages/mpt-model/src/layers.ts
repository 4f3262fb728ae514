// The small building blocks of an MPT block, as pure tfjs functions.
import {
  GEMV_ROWS_MAX,
  geluErfSimd,
  geluKernelsAvailable,
  gemvKernelsAvailable,
  gemvSimd,
  type Int8Weight,
  int8Linear,
  layerNormRows,
  layerNormRowsAvailable,
} from '@mptjs/alibi-attention';
import * as tf from '@tensorflow/tfjs-core';
import { fusedLayerNorm } from './webgpu-kernels/layer-norm.js';

/** A LayerNorm's affine parameters; `bias` is absent when the model has `no_bias`. */
export interface NormParams {
  weight: tf.Tensor;
  bias?: tf.Tensor;
}

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

/**
 * LayerNorm over the last axis with biased variance, as torch computes it: fused kernels (forward and backward)
 * on webgpu; on wasm one SIMD kernel for a decode step's few rows (`layerNormWasmRows`); a few tfjs ops elsewhere.
 */
export function layerNorm(x: tf.Tensor, p: NormParams, eps: number): tf.Tensor {
  const rows = x.rank > 0 ? x.size / x.shape[x.rank - 1]! : 0;
  const float = [x, p.weight, p.bias].every((t) => !t || t.dtype === 'float32');
  if (float && rows > 0 && rows <= GEMV_ROWS_MAX && x.size > 0 && layerNormRowsAvailable()) {
    return layerNormWasmRows(x, p, eps);
  }
  return fusedLayerNorm(x, p.weight, p.bias, eps);
}

/**
 * LayerNorm on wasm's one-pass kernel, whose per-op dispatch is what a decode step's one-row norms cost as tfjs
 * ops. The gradient is the analytic one as tfjs ops: with `xhat = (x - mean) rstd` and `g = dy w`,
 * `dx = rstd (g - mean(g) - xhat mean(g xhat))`, `dw = sum(dy xhat)`, `db = sum(dy)` over rows.
 */
export function layerNormWasmRows(x: tf.Tensor, p: NormParams, eps: number): tf.Tensor {
  const width = x.shape[x.rank - 1]!;
  const hasBias = p.bias !== undefined;
  // Outside tf.grads/variableGrads nothing is taped: skip the custom-gradient scope (a decode step has dozens).
  if (tf.engine().state.gradientDepth === 0) {
    return tf.tidy(() =>
      tf.reshape(layerNormRows(tf.reshape(x, [-1, width]) as tf.Tensor2D, p.weight, p.bias, eps), x.shape),
    );
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const w = args[1] as tf.Tensor;
    const b = hasBias ? (args[2] as tf.Tensor) : undefined;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x2 = tf.reshape(input, [-1, width]) as tf.Tensor2D;
    save([x2, w]);
    return {
      value: tf.reshape(layerNormRows(x2, w, b, eps), input.shape),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor, tf.Tensor];
        const dy2 = tf.reshape(dy as tf.Tensor, [-1, width]);
        const { mean, variance } = tf.moments(xs, -1, true);
        const rstd = tf.rsqrt(tf.add(variance, eps));
        const xhat = tf.mul(tf.sub(xs, mean), rstd);
        const g = tf.mul(dy2, ws);
        const dx = tf.mul(
          rstd,
          tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))),
        );
        const dw = tf.sum(tf.mul(dy2, xhat), 0);
        const grads = [tf.reshape(dx, input.shape), dw];
        return hasBias ? [...grads, tf.sum(dy2, 0)] : grads;
      },
    };
  });
  return hasBias ? op(x, p.weight, p.bias!) : op(x, p.weight);
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

/**
 * The exact GELU `0.5 x (1 + erf(x / sqrt 2))` (torch's default, not the tanh approximation). On wasm one SIMD
 * kernel each way (`geluErfSimd`); elsewhere tfjs ops.
 */
export function geluErf(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && x.size > 0 && geluKernelsAvailable()) return geluErfSimd(x);
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/**
 * Embedding lookup `table[ids]`. Its gradient is a scatter-add into the table rows (`ScatterNd` sums duplicate
 * indices); tfjs's own gather gradient needs `UnsortedSegmentSum`, which the wasm backend lacks.
 */
export function embeddingLookup(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const flatIds = tf.cast(tf.reshape(ids, [-1]), 'int32');
    save([flatIds]);
    const rows = tf.gather(t, flatIds);
    return {
      value: tf.reshape(rows, [...ids.shape, t.shape[1]!]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor;
        const idx = saved[0]!;
        const updates = tf.reshape(g, [idx.shape[0]!, t.shape[1]!]);
        return [tf.scatterND(tf.reshape(idx, [-1, 1]), updates, t.shape)];
      },
    };
  });
  return lookup(table);
}

/** Leaves the forward value alone and multiplies the gradient by `factor` (MPT's `embedding_fraction`). */
export function scaleGradient(x: tf.Tensor, factor: number): tf.Tensor {
  if (factor === 1) return x;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    return {
      value: tf.clone(t),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [tf.mul(dy as tf.Tensor, factor)],
    };
  });
  return op(x);
}
