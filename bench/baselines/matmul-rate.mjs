// GFLOP/s of a plain `A [m, k] @ B [k, n]` on the active tfjs backend (tfjs-wasm's fastest form): the same-run
// matmul baselines the model benches divide by.
import * as tf from '@tensorflow/tfjs-core';
import { timeit } from '../lib.mjs';

export async function matmulGflops(m, k, n) {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const t = await timeit(
    async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    },
    { repeats: 3, warmup: 1 },
  );
  tf.dispose([a, b]);
  return (2 * m * k * n) / t.median_s / 1e9;
}
