import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend, setWasmSimdMatMul } from '../../index.js';
import { GEMV_KERNEL, gemvKernelsAvailable, gemvSimd } from './gemv.js';

function randomMatrix(rand: () => number, rows: number, cols: number): tf.Tensor2D {
  return tf.tensor2d(
    Float32Array.from({ length: rows * cols }, () => rand() * 2 - 1),
    [rows, cols],
  );
}

/** Largest |a - b| relative to the largest |b| (1 when b is all zeros). */
async function relativeError(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = await a.data();
  const y = await b.data();
  expect(x.length).toBe(y.length);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return worst / (scale || 1);
}

describe('gemv kernel on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  // Sums run in another order than tfjs's: agreement to float32 rounding over k terms, far below any wrong sum.
  // Rows of x 1-6 (one-row path, blocks of four, a partial block); n with and without a multiple of 4 weight
  // rows; k through the 8-wide loop, the extra 4-wide step and the scalar tail.
  it('matches tfjs matMul(x, w, false, true) on random inputs', async () => {
    await selectBackend('wasm', { log: false });
    expect(gemvKernelsAvailable()).toBe(true);
    const rand = seededRandom(7);
    for (const m of [1, 2, 3, 4, 5, 6]) {
      for (const [n, k] of [
        [1, 1],
        [4, 8],
        [7, 13],
        [33, 64],
        [130, 1027],
      ] as const) {
        const x = randomMatrix(rand, m, k);
        const w = randomMatrix(rand, n, k);
        const y = gemvSimd(x, w);
        const ref = tf.matMul(x, w, false, true);
        expect(y.shape).toEqual([m, n]);
        expect(await relativeError(y, ref), `m ${m} n ${n} k ${k}`).toBeLessThan(1e-5);
        tf.dispose([x, w, y, ref]);
      }
    }
  });

  it('has the gradient of x w^T', async () => {
    await selectBackend('wasm', { log: false });
    const rand = seededRandom(3);
    const x = randomMatrix(rand, 3, 21);
    const w = randomMatrix(rand, 10, 21);
    const dy = randomMatrix(rand, 3, 10);
    const f = (a: tf.Tensor, b: tf.Tensor) => gemvSimd(a as tf.Tensor2D, b as tf.Tensor2D);
    const ref = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, false, true);
    const [dx, dw] = tf.grads(f)([x, w], dy);
    const [dxRef, dwRef] = tf.grads(ref)([x, w], dy);
    expect(await relativeError(dx!, dxRef!)).toBeLessThan(1e-6);
    expect(await relativeError(dw!, dwRef!)).toBeLessThan(1e-6);
  });

  it('rejects operands that do not fit', async () => {
    await selectBackend('wasm', { log: false });
    expect(gemvKernelsAvailable()).toBe(true);
    const x = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => gemvSimd(x, tf.zeros([3, 4]) as tf.Tensor2D)).toThrow(/\[2,5\] and w \[3,4\]/);
    expect(() => tf.engine().runKernel(GEMV_KERNEL, { x, w: tf.zeros([3, 4], 'int32') })).toThrow(
      /must be float32 matrices/,
    );
  });

  it('is off when our wasm kernels are switched off', async () => {
    await selectBackend('wasm', { log: false });
    setWasmSimdMatMul('off');
    expect(gemvKernelsAvailable()).toBe(false);
  });
});
