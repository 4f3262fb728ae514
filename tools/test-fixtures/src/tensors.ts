// Seeded tfjs tensors for kernel and attention tests.
import * as tf from '@tensorflow/tfjs-core';
import { randomFloats } from './random.js';

/** A tensor of uniform values in [-scale, scale) drawn from `seed`. */
export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(
    randomFloats(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
    shape,
  );
}
