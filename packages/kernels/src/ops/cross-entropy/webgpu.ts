import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsAvailable, runFusedKernel } from '../../webgpu/fused-kernels.js';
import { crossEntropyPlain, flattenLogits } from './plain.js';

/** Largest logits tensor the kernels index with i32. */
const MAX_FUSED_ELEMENTS = 2 ** 31 - 1;

/**
 * Mean cross-entropy of `logits [..., V]` against integer `targets [...]`, skipping `ignoreIndex`; 0 (with a
 * zero gradient) when every target is ignored. On webgpu with float32 logits the forward pass is one fused
 * kernel (per-row online max and sum of exponentials; no softmax is written) that saves each row's logsumexp,
 * and the gradient `(softmax - onehot) / count` is one fused elementwise kernel; elsewhere it is
 * `crossEntropyPlain`.
 */
export function fusedCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, ignoreIndex = -100): tf.Scalar {
  const { vocab, rows } = flattenLogits(logits, targets);
  if (
    !fusedKernelsAvailable() ||
    logits.dtype !== 'float32' ||
    rows === 0 ||
    logits.size > MAX_FUSED_ELEMENTS
  ) {
    return crossEntropyPlain(logits, targets, ignoreIndex);
  }
  const attrs = { ignoreIndex };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const logits2 = tf.reshape(input, [rows, vocab]);
    const flatTargets = tf.cast(tf.reshape(targets, [rows]), 'int32');
    // [rows, 2]: logsumexp and loss term per row.
    const stats = runFusedKernel('MptCrossEntropyForward', { logits: logits2, targets: flatTargets }, attrs);
    const count = tf.maximum(tf.sum(tf.cast(tf.notEqual(flatTargets, ignoreIndex), 'float32')), 1);
    save([logits2, flatTargets, stats, count]);
    const terms = tf.slice(stats, [0, 1], [rows, 1]);
    return {
      value: tf.div(tf.sum(terms), count) as tf.Scalar,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [l, t, st, n] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const scale = tf.reshape(tf.div(dy as tf.Tensor, n), [1]);
        const grad = runFusedKernel(
          'MptCrossEntropyGrad',
          { logits: l, targets: t, stats: st, scale },
          attrs,
        );
        return [tf.reshape(grad, input.shape)];
      },
    };
  });
  return op(logits) as tf.Scalar;
}
