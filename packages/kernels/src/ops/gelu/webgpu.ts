import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsAvailable, runFusedKernel } from '../../webgpu/fused-kernels.js';
import { f16GemmActive } from '../matmul/f16-gemm.js';
import { type LinearParams, linear } from '../matmul/linear.js';
import { geluErf } from './gelu.js';
import type { WeightLayout } from './webgpu-programs.js';

/** `gelu(x W^T + b)` from plain tfjs ops: the reference for the fused kernels and their path off webgpu. */
export function linearGeluPlain(
  x: tf.Tensor,
  weight: tf.Tensor,
  layout: WeightLayout,
  bias?: tf.Tensor,
): tf.Tensor {
  return geluErf(linear(x, { weight, bias, layout }));
}

function checkShapes(
  x: tf.Tensor,
  weight: tf.Tensor,
  layout: WeightLayout,
  bias: tf.Tensor | undefined,
): void {
  const inFeatures = x.shape[x.rank - 1];
  const [wIn, wOut] =
    layout === 'inOut' ? [weight.shape[0], weight.shape[1]] : [weight.shape[1], weight.shape[0]];
  const expected = layout === 'inOut' ? `[${inFeatures}, out]` : `[out, ${inFeatures}]`;
  if (x.rank < 1 || weight.rank !== 2 || wIn !== inFeatures) {
    throw new RangeError(
      `linearGelu weight [${weight.shape}] (${layout}) must be ${expected} for x [${x.shape}]`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== wOut)) {
    throw new RangeError(
      `linearGelu bias [${bias.shape}] must be [${wOut}] for weight [${weight.shape}] (${layout})`,
    );
  }
}

/** `x W^T + b` through tfjs's matMul, which runs on the f16 GEMM under mixed precision. */
function preActivation(
  x2: tf.Tensor,
  w: tf.Tensor,
  layout: WeightLayout,
  b: tf.Tensor | undefined,
): tf.Tensor {
  const z = tf.matMul(x2, w, false, layout === 'outIn');
  return b ? tf.add(z, b) : z;
}

/** Whether the engine records gradients for an op called now (the rule of its private `isTapeOn`). */
function recordingGradients(): boolean {
  const { gradientDepth, kernelDepth } = tf.engine().state;
  return gradientDepth > 0 && kernelDepth === 0;
}

/**
 * `gelu(x W^T + b)` with the exact GELU, for `x [..., K]` and `weight` `[N, K]` (`outIn`, torch) or `[K, N]`
 * (`inOut`), `bias [N]` optional. On webgpu with float32 inputs:
 * - without a gradient tape, one dispatch: the tiled matmul whose epilogue adds the bias and applies GELU, so
 *   the `[rows, N]` activation is written once and never re-read;
 * - under a tape, the matmul writes the pre-activation z (which the backward pass needs: GELU is not
 *   invertible), then one elementwise pass writes gelu(z). Writing y and z from one dispatch would need two
 *   outputs, which a tfjs kernel cannot have; packing both into one tensor costs a copy to split them, and
 *   recomputing z in the backward pass costs a second matmul, both dearer than this extra elementwise pass.
 *   Under mixed precision (`setF16Gemm(true)`) z comes from tfjs's matMul instead, which runs on the f16 GEMM.
 *   Backward: one elementwise pass `dz = dy * gelu'(z)`, then tfjs matMul and sum for dx, dW, db.
 * Elsewhere it is `linearGeluPlain`.
 */
export function fusedLinearGelu(
  x: tf.Tensor,
  weight: tf.Tensor,
  layout: WeightLayout,
  bias?: tf.Tensor,
): tf.Tensor {
  checkShapes(x, weight, layout, bias);
  const float = [x, weight, bias].every((t) => !t || t.dtype === 'float32');
  if (!fusedKernelsAvailable() || !float || x.size === 0 || weight.size === 0) {
    return linearGeluPlain(x, weight, layout, bias);
  }
  const inFeatures = x.shape[x.rank - 1]!;
  const outFeatures = weight.shape[layout === 'inOut' ? 1 : 0]!;
  const outShape = [...x.shape.slice(0, -1), outFeatures];
  if (!recordingGradients()) {
    return tf.tidy(() => {
      const y = runFusedKernel(
        'MptMatMulGelu',
        { x: tf.reshape(x, [-1, inFeatures]), weight, bias },
        { layout, output: 'gelu' },
      );
      return tf.reshape(y, outShape);
    });
  }
  const hasBias = bias !== undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const w = args[1] as tf.Tensor;
    const b = hasBias ? (args[2] as tf.Tensor) : undefined;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x2 = tf.reshape(input, [-1, inFeatures]);
    const z = f16GemmActive()
      ? preActivation(x2, w, layout, b)
      : runFusedKernel('MptMatMulGelu', { x: x2, weight: w, bias: b }, { layout, output: 'pre' });
    save([x2, w, z]);
    return {
      value: tf.reshape(runFusedKernel('MptGelu', { z }), outShape),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws, zs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dz = runFusedKernel('MptGeluGrad', { z: zs, dy: tf.reshape(dy as tf.Tensor, zs.shape) });
        const dx = tf.reshape(
          layout === 'inOut' ? tf.matMul(dz, ws, false, true) : tf.matMul(dz, ws),
          input.shape,
        );
        const dw = layout === 'inOut' ? tf.matMul(xs, dz, true, false) : tf.matMul(dz, xs, true, false);
        return hasBias ? [dx, dw, tf.sum(dz, 0)] : [dx, dw];
      },
    };
  });
  return hasBias ? op(x, weight, bias) : op(x, weight);
}

/**
 * `geluErf(linear(x, p))` through `fusedLinearGelu` when `p` is a plain float weight (and bias); any other
 * parameter form (another dtype, any further field such as an int8 copy of the weight) goes through `linear`.
 */
export function linearGelu(x: tf.Tensor, p: LinearParams): tf.Tensor {
  const known = new Set(['weight', 'bias', 'layout']);
  const plain = Object.entries(p).every(([k, v]) => known.has(k) || v === undefined);
  if (plain && p.weight.dtype === 'float32') return fusedLinearGelu(x, p.weight, p.layout ?? 'outIn', p.bias);
  // An int8 weight (inference: no gradient): on webgpu the GELU is one program instead of erf's five ops.
  if (!fusedKernelsAvailable() || recordingGradients()) return geluErf(linear(x, p));
  return tf.tidy(() => {
    const z = linear(x, p);
    return tf.reshape(runFusedKernel('MptGelu', { z }), z.shape);
  });
}
