import * as tf from '@tensorflow/tfjs-core';

/** `[B, T, H*Dh] -> [B, H, T, Dh]` (einops `b s (h d) -> b h s d`). */
export function splitHeads(x: tf.Tensor, nHeads: number): tf.Tensor4D {
  const [b, t, d] = x.shape as [number, number, number];
  if (x.rank !== 3 || d % nHeads !== 0) {
    throw new RangeError(
      `splitHeads expects [batch, time, heads*headDim] with ${nHeads} heads, got [${x.shape.join(', ')}]`,
    );
  }
  // One position (a decode step): [B, 1, H, Dh] and [B, H, 1, Dh] hold the same order, a reshape suffices.
  if (t === 1) return tf.reshape(x, [b, nHeads, 1, d / nHeads]) as tf.Tensor4D;
  return tf.tidy(() => tf.transpose(tf.reshape(x, [b, t, nHeads, d / nHeads]), [0, 2, 1, 3]) as tf.Tensor4D);
}

/** `[B, H, T, Dh] -> [B, T, H*Dh]`. */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  if (x.rank !== 4)
    throw new RangeError(`mergeHeads expects [batch, heads, time, headDim], got [${x.shape.join(', ')}]`);
  const [b, h, t, dh] = x.shape as [number, number, number, number];
  if (t === 1) return tf.reshape(x, [b, 1, h * dh]) as tf.Tensor3D;
  return tf.tidy(() => tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, h * dh]) as tf.Tensor3D);
}
