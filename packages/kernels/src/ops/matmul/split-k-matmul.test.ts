import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend, setWasmSimdMatMul } from '../../index.js';
import { SPLIT_K_CHUNK, SPLIT_K_MIN } from './split-k-matmul.js';

function randomArray(n: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

/** A^T B in float64, for a [k, m] and b [k, n] row-major. */
function reference(a: Float32Array, b: Float32Array, k: number, m: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let r = 0; r < k; r++) {
    for (let i = 0; i < m; i++) {
      const x = a[r * m + i]!;
      for (let j = 0; j < n; j++) c[i * n + j] = c[i * n + j]! + x * b[r * n + j]!;
    }
  }
  return c;
}

describe('split-K A^T B on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  it('matches float64 for an inner size past the split threshold with a partial last chunk', async () => {
    await selectBackend('wasm', { log: false });
    const k = SPLIT_K_MIN + SPLIT_K_CHUNK + 37;
    const [m, n] = [13, 6];
    const av = randomArray(k * m, 1);
    const expected = reference(av, randomArray(k * n, 2), k, m, n);
    const a = tf.tensor2d(av, [k, m]);
    // Two products in a row with different B: tfjs-wasm caches packed weights by tensor id, so a reused chunk
    // buffer would show up as the second product repeating the first.
    for (const seed of [3, 2]) {
      const bv = randomArray(k * n, seed);
      const b = tf.tensor2d(bv, [k, n]);
      const c = tf.matMul(a, b, true, false);
      expect(c.shape).toEqual([m, n]);
      const want = seed === 2 ? expected : reference(av, bv, k, m, n);
      const got = await c.data();
      for (let i = 0; i < m * n; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(2e-3);
      tf.dispose([b, c]);
    }
    a.dispose();
  });

  it('gives the product of the unsplit path, with batch dims of 1 kept', async () => {
    await selectBackend('wasm', { log: false });
    const k = SPLIT_K_MIN * 2;
    const a = tf.tensor3d(randomArray(k * 8, 4), [1, k, 8]);
    const b = tf.tensor3d(randomArray(k * 9, 5), [1, k, 9]);
    const split = tf.matMul(a, b, true, false);
    setWasmSimdMatMul('off');
    const whole = tf.matMul(a, b, true, false);
    expect(split.shape).toEqual([1, 8, 9]);
    const x = await split.data();
    const y = await whole.data();
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(2e-3);
    tf.dispose([a, b, split, whole]);
  });
});
