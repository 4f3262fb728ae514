import * as tf from '@tensorflow/tfjs-core';

/** `logits [..., V]` as rows of V, after checking `targets` has the leading axes. */
export function flattenLogits(logits: tf.Tensor, targets: tf.Tensor): { vocab: number; rows: number } {
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
  const { vocab } = flattenLogits(logits, targets);
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
