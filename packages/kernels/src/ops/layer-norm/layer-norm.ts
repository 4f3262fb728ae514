// LayerNorm as one op that picks its kernel: wasm SIMD rows, fused WebGPU, or the plain tfjs ops.
import * as tf from '@tensorflow/tfjs-core';
import { GEMV_ROWS_MAX } from '../matmul/gemv.js';
import { layerNormRows, layerNormRowsAvailable } from './wasm.js';
import { fusedLayerNorm } from './webgpu.js';

/** A LayerNorm's affine parameters; `bias` is absent when the model has `no_bias`. */
export interface NormParams {
  weight: tf.Tensor;
  bias?: tf.Tensor;
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
