import * as tf from '@tensorflow/tfjs-core';
import { geluErfSimd, geluKernelsAvailable } from './wasm.js';

/**
 * The exact GELU `0.5 x (1 + erf(x / sqrt 2))` (torch's default, not the tanh approximation). On wasm one SIMD
 * kernel each way (`geluErfSimd`); elsewhere tfjs ops.
 */
export function geluErf(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && x.size > 0 && geluKernelsAvailable()) return geluErfSimd(x);
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}
