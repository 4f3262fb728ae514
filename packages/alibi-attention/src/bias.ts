import * as tf from '@tensorflow/tfjs-core';

/**
 * The ALiBi bias `[1, H, Tq, Tk]`: `slope_h * (j - i)`, where `i = queryOffset + row` is the query's absolute
 * position and `j` the key's. Only the plain-ops path builds this tensor; the fused kernel computes it in-kernel.
 */
export function alibiBias(
  slopes: Float32Array,
  queryLength: number,
  keyLength: number,
  queryOffset = 0,
): tf.Tensor4D {
  return tf.tidy(() => {
    const h = slopes.length;
    const distance = tf.reshape(relativePositions(queryLength, keyLength, queryOffset), [
      1,
      1,
      queryLength,
      keyLength,
    ]);
    return tf.mul(tf.tensor4d(slopes, [1, h, 1, 1]), distance) as tf.Tensor4D;
  });
}

/** `j - (queryOffset + i)` for every query row `i` and key column `j`, as float32 `[Tq, Tk]`. */
export function relativePositions(queryLength: number, keyLength: number, queryOffset = 0): tf.Tensor2D {
  const data = new Float32Array(queryLength * keyLength);
  for (let i = 0; i < queryLength; i++) {
    for (let j = 0; j < keyLength; j++) data[i * keyLength + j] = j - (queryOffset + i);
  }
  return tf.tensor2d(data, [queryLength, keyLength]);
}

/** The score given to masked-out keys: finite, so a fully masked row softmaxes to uniform instead of NaN. */
export const MASK_VALUE = -3.4028234663852886e38;

/**
 * The score a key mask's hidden keys get before the softmax: tfjs-webgpu's softmax turns a row of -FLT_MAX
 * (`MASK_VALUE`) into NaN (a left-padded row, all of whose keys are padding), and -1e30 still rounds every
 * `exp(score - max)` of a hidden key to 0, so the probabilities are the same elsewhere.
 */
export const MASKED_SCORE = -1e30;

/**
 * Which keys each query may attend to, as a bool tensor broadcastable to `[B, H, Tq, Tk]`: key `j` is visible
 * to query row `i` when `j <= queryOffset + i` (if `causal`) and `keyMask[b, j]` is non-zero (if given: 1 for
 * real tokens, 0 for padding). Returns null when nothing is masked.
 */
export function visibleKeys(
  queryLength: number,
  keyLength: number,
  {
    causal = true,
    queryOffset = 0,
    keyMask,
  }: { causal?: boolean; queryOffset?: number; keyMask?: tf.Tensor } = {},
): tf.Tensor4D | null {
  if (!causal && !keyMask) return null;
  return tf.tidy(() => {
    let visible: tf.Tensor | null = null;
    if (causal) {
      const data = new Uint8Array(queryLength * keyLength);
      for (let i = 0; i < queryLength; i++) {
        const last = Math.min(keyLength - 1, queryOffset + i);
        for (let j = 0; j <= last; j++) data[i * keyLength + j] = 1;
      }
      visible = tf.tensor4d(data, [1, 1, queryLength, keyLength], 'bool');
    }
    if (keyMask) {
      if (keyMask.rank !== 2 || keyMask.shape[1] !== keyLength) {
        throw new RangeError(`keyMask must be [batch, ${keyLength}], got [${keyMask.shape.join(', ')}]`);
      }
      const keys = tf.reshape(tf.notEqual(keyMask, 0), [keyMask.shape[0]!, 1, 1, keyLength]);
      visible = visible ? tf.logicalAnd(visible, keys) : keys;
    }
    return visible as tf.Tensor4D;
  });
}
