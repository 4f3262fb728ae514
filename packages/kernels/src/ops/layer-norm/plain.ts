import * as tf from '@tensorflow/tfjs-core';

/**
 * LayerNorm over the last axis from plain tfjs ops (biased variance, `eps` inside the rsqrt, as torch); autodiff
 * gives its gradient. The reference for the fused kernels and their path off webgpu.
 */
export function layerNormPlain(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | undefined, eps: number) {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    const scaled = tf.mul(normalized, weight);
    return bias ? tf.add(scaled, bias) : scaled;
  });
}
