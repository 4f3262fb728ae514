/**
 * The tied LM head and its cross-entropy as one op on wasm. The logits come out of `W h^T` as `[vocab, rows]`
 * (the large operand untransposed, XNNPACK's fast case) and stay in that layout: our column kernels take each
 * position's logsumexp and target logit from them, and the backward pass turns them into `dz` in one pass, then
 * `dW = dz h` and `dh = (W^T dz)^T`. No softmax, one-hot or transposed copy of the logits is ever written,
 * and the head's matmuls run on their fast layouts.
 */
import {
  crossEntropyColumnGrad,
  crossEntropyColumnKernelsAvailable,
  crossEntropyColumnStats,
} from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** Whether `lmHeadCrossEntropy` can run its fused path here (wasm with our kernels on, float32 operands). */
export function lmHeadCrossEntropyFused(h: tf.Tensor, wte: tf.Tensor): boolean {
  return (
    h.dtype === 'float32' &&
    wte.dtype === 'float32' &&
    wte.rank === 2 &&
    h.size > 0 &&
    wte.size > 0 &&
    crossEntropyColumnKernelsAvailable()
  );
}

/**
 * Mean cross-entropy of the logits `h wte^T` (`h [..., d]`, `wte [vocab, d]`) against `targets [...]`, over the
 * targets != `ignoreIndex` (0 when all are ignored). Targets are read as the plain path reads them: a negative
 * one other than `ignoreIndex` picks class 0, one >= vocab picks no class. Needs `lmHeadCrossEntropyFused`.
 */
export function lmHeadCrossEntropy(
  h: tf.Tensor,
  wte: tf.Tensor,
  targets: tf.Tensor,
  ignoreIndex: number,
): tf.Scalar {
  const d = h.shape[h.rank - 1]!;
  const vocab = wte.shape[0]!;
  if (wte.shape[1] !== d || targets.shape.join() !== h.shape.slice(0, -1).join()) {
    throw new RangeError(
      `lmHeadCrossEntropy: h [${h.shape}], wte [${wte.shape}] and targets [${targets.shape}] disagree`,
    );
  }
  const rows = h.size / d;
  return tf.tidy(() => {
    const t = tf.cast(tf.reshape(targets, [rows]), 'int32');
    const ignored = tf.equal(t, ignoreIndex);
    const keep = tf.cast(tf.logicalNot(ignored), 'float32');
    // Per position: the class whose logit the loss subtracts (-1: none) and its weight, 1 / count where a class
    // is picked and 0 elsewhere (the plain path's one-hot of a target >= vocab is all zeros: term and gradient 0,
    // but the position still counts).
    const none = tf.logicalOr(ignored, tf.greaterEqual(t, vocab));
    const pick = tf.where(none, tf.scalar(-1, 'int32'), tf.maximum(t, tf.scalar(0, 'int32'))) as tf.Tensor1D;
    const count = tf.maximum(tf.sum(keep), 1);
    const scale = tf.div(tf.cast(tf.logicalNot(none), 'float32'), count) as tf.Tensor1D;
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [hIn, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      const h2 = tf.reshape(hIn, [rows, d]);
      const z = tf.matMul(w, tf.transpose(h2)) as tf.Tensor2D;
      const stats = crossEntropyColumnStats(z, pick);
      const [max, sumExp, picked] = tf.unstack(stats) as [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
      const lse = tf.add(max, tf.log(sumExp)) as tf.Tensor1D;
      save([h2, w, z, lse, pick, scale]);
      return {
        value: tf.sum(tf.mul(tf.sub(lse, picked), scale)) as tf.Scalar,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [hs, ws, zs, lses, picks, scales] = saved as [
            tf.Tensor2D,
            tf.Tensor2D,
            tf.Tensor2D,
            tf.Tensor1D,
            tf.Tensor1D,
            tf.Tensor1D,
          ];
          const dz = crossEntropyColumnGrad(zs, lses, tf.mul(scales, dy as tf.Tensor) as tf.Tensor1D, picks);
          const dw = tf.matMul(dz, hs);
          const dh = tf.transpose(tf.matMul(ws, dz, true, false));
          return [tf.reshape(dh, hIn.shape), dw];
        },
      };
    });
    return op(h, wte) as tf.Scalar;
  });
}
