import * as tf from '@tensorflow/tfjs-core';

/** The exact GELU `0.5 x (1 + erf(x / sqrt 2))` from tfjs ops: the reference for the wasm and WebGPU kernels. */
export function geluErfPlain(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}
