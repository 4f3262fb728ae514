import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsAvailable, runFusedKernel } from '../../webgpu/fused-kernels.js';
import { layerNormPlain } from './plain.js';

function checkShapes(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | undefined): void {
  const width = x.shape[x.rank - 1];
  for (const [name, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (p && (p.rank !== 1 || p.shape[0] !== width)) {
      throw new RangeError(`layerNorm ${name} [${p.shape}] must be [${width}] for x [${x.shape}]`);
    }
  }
}

/**
 * LayerNorm of `x [..., D]` with `weight [D]` and optional `bias [D]`. On webgpu with float32 inputs it runs the
 * fused kernels (two dispatches forward, at most three backward, mean and rstd saved per row) under a custom
 * gradient; elsewhere it is `layerNormPlain`.
 */
export function fusedLayerNorm(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  eps: number,
): tf.Tensor {
  checkShapes(x, weight, bias);
  const float = [x, weight, bias].every((t) => !t || t.dtype === 'float32');
  if (!fusedKernelsAvailable() || !float || x.rank === 0 || x.size === 0) {
    return layerNormPlain(x, weight, bias, eps);
  }
  const width = x.shape[x.rank - 1]!;
  const hasBias = bias !== undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const w = args[1] as tf.Tensor;
    const b = hasBias ? (args[2] as tf.Tensor) : undefined;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x2 = tf.reshape(input, [-1, width]);
    const stats = runFusedKernel('MptLayerNormStats', { x: x2 }, { eps });
    save([x2, w, stats]);
    const y = runFusedKernel('MptLayerNormApply', { x: x2, stats, weight: w, bias: b });
    return {
      value: tf.reshape(y, input.shape),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws, st] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dy2 = tf.reshape(dy as tf.Tensor, [-1, width]);
        const dx = tf.reshape(
          runFusedKernel('MptLayerNormGradInput', { x: xs, dy: dy2, stats: st, weight: ws }),
          input.shape,
        );
        const partials = runFusedKernel('MptLayerNormGradParams', { x: xs, dy: dy2, stats: st }, { hasBias });
        // [parts, width, blocks]: one block (few rows) needs no sum at all.
        const blocks = partials.shape[2]!;
        const sums = blocks === 1 ? tf.reshape(partials, partials.shape.slice(0, 2)) : tf.sum(partials, 2);
        if (!hasBias) return [dx, tf.reshape(sums, [width])];
        const [dw, db] = tf.split(sums, 2, 0) as [tf.Tensor, tf.Tensor];
        return [dx, tf.reshape(dw, [width]), tf.reshape(db, [width])];
      },
    };
  });
  return hasBias ? op(x, weight, bias) : op(x, weight);
}
