import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend, setWasmSimdMatMul } from '../../index.js';
import { geluErfSimd, geluKernelsAvailable } from './wasm.js';

/** The exact GELU from tfjs ops, as the model writes it without our kernels. */
const geluPlain = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = await a.data();
  const y = await b.data();
  let worst = 0;
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

describe('GELU kernels on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  // 4 * 37 + 3 values: the vector loop and the scalar tail; values from -9 to 9 cover both tails of erf.
  it('match the tfjs-op GELU and its gradient', async () => {
    await selectBackend('wasm', { log: false });
    expect(geluKernelsAvailable()).toBe(true);
    const rand = seededRandom(11);
    const n = 4 * 37 + 3;
    const values = Float32Array.from({ length: n }, (_, i) =>
      i < 8 ? [-9, -3, -1e-3, 0, 1e-3, 0.5, 3, 9][i]! : (rand() * 2 - 1) * 6,
    );
    const x = tf.tensor2d(values, [1, n]);
    const dy = tf.tensor2d(
      Float32Array.from({ length: n }, () => rand() * 2 - 1),
      [1, n],
    );
    const y = geluErfSimd(x);
    const yRef = geluPlain(x);
    expect(y.shape).toEqual([1, n]);
    expect(await maxAbsDiff(y, yRef)).toBeLessThan(2e-6);
    const dx = tf.grad((t: tf.Tensor) => geluErfSimd(t))(x, dy);
    const dxRef = tf.grad((t: tf.Tensor) => geluPlain(t))(x, dy);
    expect(await maxAbsDiff(dx, dxRef)).toBeLessThan(2e-6);
    // A loose check against float64 too: the reference op shares the erf approximation.
    const exact = values.map((v) => v * 0.5 * (1 + erf64(v / Math.SQRT2)));
    const got = await y.data();
    for (let i = 0; i < n; i++)
      expect(Math.abs(got[i]! - exact[i]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(values[i]!)));
    tf.dispose([x, dy, y, yRef, dx, dxRef]);
  });

  it('are not offered with our wasm kernels off or off wasm', async () => {
    await selectBackend('wasm', { log: false });
    setWasmSimdMatMul('off');
    expect(geluKernelsAvailable()).toBe(false);
    setWasmSimdMatMul('batched');
    await selectBackend('cpu', { log: false });
    expect(geluKernelsAvailable()).toBe(false);
  });
});

/** erf in float64 by its Maclaurin series (|x| <= 3) or continued fraction tail, to ~1e-12. */
function erf64(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a <= 3) {
    let term = a;
    let sum = a;
    for (let k = 1; k < 100; k++) {
      term *= (-a * a) / k;
      sum += term / (2 * k + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = 0;
    for (let k = 60; k >= 1; k--) f = k / 2 / (a + f);
    r = 1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * (a + f));
  }
  return x < 0 ? -r : r;
}
