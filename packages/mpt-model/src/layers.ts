// The model's own building blocks as pure tfjs functions (LayerNorm, linear and GELU are @mptjs/kernels ops).
import * as tf from '@tensorflow/tfjs-core';

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
