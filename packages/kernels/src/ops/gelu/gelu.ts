import type * as tf from '@tensorflow/tfjs-core';
import { geluErfPlain } from './plain.js';
import { geluErfSimd, geluKernelsAvailable } from './wasm.js';

/**
 * The exact GELU `0.5 x (1 + erf(x / sqrt 2))` (torch's default, not the tanh approximation). On wasm one SIMD
 * kernel each way (`geluErfSimd`); elsewhere tfjs ops.
 */
export function geluErf(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && x.size > 0 && geluKernelsAvailable()) return geluErfSimd(x);
  return geluErfPlain(x);
}
