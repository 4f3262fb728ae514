import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsAvailable, runFusedKernel } from '../../webgpu/fused-kernels.js';

/** Largest logits tensor the kernels index with i32. */
const MAX_FUSED_ELEMENTS = 2 ** 31 - 1;

function flatten(logits: tf.Tensor, targets: tf.Tensor): { vocab: number; rows: number } {
  const vocab = logits.shape[logits.rank - 1]!;
  if (logits.rank < 1 || targets.shape.join() !== logits.shape.slice(0, -1).join()) {
    throw new RangeError(
      `targets [${targets.shape}] must match logits [${logits.shape}] without the vocab axis`,
    );
  }
  return { vocab, rows: vocab === 0 ? 0 : logits.size / vocab };
}

/**
 * Mean cross-entropy from plain tfjs ops: log-softmax, a one-hot pick (its gradient runs on every backend), the
 * mean over targets != `ignoreIndex` (a sum of zero when every target is ignored). A negative target other than
 * `ignoreIndex` picks class 0 and one >= V picks nothing. The reference for the fused kernels and their path
 * off webgpu.
 */
export function crossEntropyPlain(logits: tf.Tensor, targets: tf.Tensor, ignoreIndex = -100): tf.Scalar {
  const { vocab } = flatten(logits, targets);
  return tf.tidy(() => {
    const flatTargets = tf.cast(tf.reshape(targets, [-1]), 'int32');
    const keep = tf.cast(tf.notEqual(flatTargets, ignoreIndex), 'float32');
    const logProbs = tf.logSoftmax(tf.reshape(logits, [-1, vocab]));
    const picked = tf.sum(
      tf.mul(logProbs, tf.oneHot(tf.maximum(flatTargets, tf.scalar(0, 'int32')), vocab)),
      -1,
    );
    const count = tf.maximum(tf.sum(keep), 1);
    return tf.div(tf.neg(tf.sum(tf.mul(picked, keep))), count) as tf.Scalar;
  });
}

/**
 * Mean cross-entropy of `logits [..., V]` against integer `targets [...]`, skipping `ignoreIndex`; 0 (with a
 * zero gradient) when every target is ignored. On webgpu with float32 logits the forward pass is one fused
 * kernel (per-row online max and sum of exponentials; no softmax is written) that saves each row's logsumexp,
 * and the gradient `(softmax - onehot) / count` is one fused elementwise kernel; elsewhere it is
 * `crossEntropyPlain`.
 */
export function fusedCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, ignoreIndex = -100): tf.Scalar {
  const { vocab, rows } = flatten(logits, targets);
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
