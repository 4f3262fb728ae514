import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend, setWasmSimdMatMul } from '../../index.js';
import { type AdamWStep, adamwKernelAvailable, adamwUpdateSimd } from './wasm.js';

/** The trainer's tfjs-op AdamW update, operation for operation. */
function adamwPlain(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: AdamWStep): tf.Tensor[] {
  const m1 = tf.add(tf.mul(m, s.beta1), tf.mul(g, 1 - s.beta1));
  const v1 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
  const denom = tf.add(tf.div(tf.sqrt(v1), s.sqrtBc2), s.eps);
  const decayed = s.decay === 1 ? p : tf.mul(p, s.decay);
  return [tf.sub(decayed, tf.mul(tf.div(m1, denom), s.stepSize)), m1, v1];
}

describe('AdamW update kernel on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  it.each([
    1, 0.99,
  ])('gives the same floats as the tfjs-op update over three steps (decay %d)', async (decay) => {
    await selectBackend('wasm', { log: false });
    expect(adamwKernelAvailable()).toBe(true);
    const rand = seededRandom(3);
    const n = 4 * 51 + 3; // the vector loop and the scalar tail
    const r = (scale: number) =>
      tf.tensor2d(
        Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale),
        [3, n / 3],
      );
    type State = [tf.Tensor, tf.Tensor, tf.Tensor];
    let [p, m, v]: State = [r(1), tf.zeros([3, n / 3]), tf.zeros([3, n / 3])];
    let [q, mq, vq]: State = [p, m, v];
    for (let t = 1; t <= 3; t++) {
      const g = r(10 ** -t);
      const s: AdamWStep = {
        beta1: 0.9,
        beta2: 0.95,
        sqrtBc2: Math.sqrt(1 - 0.95 ** t),
        eps: 1e-8,
        stepSize: 2e-4 / (1 - 0.9 ** t),
        decay,
      };
      [p, m, v] = adamwUpdateSimd(p, g, m, v, s);
      [q, mq, vq] = adamwPlain(q, g, mq, vq, s) as State;
      expect(p.shape).toEqual([3, n / 3]);
      for (const [a, b] of [
        [p, q],
        [m, mq],
        [v, vq],
      ]) {
        expect(Array.from(await a!.data())).toEqual(Array.from(await b!.data()));
      }
    }
  });

  it('is not offered with our wasm kernels off or off wasm', async () => {
    await selectBackend('wasm', { log: false });
    setWasmSimdMatMul('off');
    expect(adamwKernelAvailable()).toBe(false);
    setWasmSimdMatMul('batched');
    await selectBackend('cpu', { log: false });
    expect(adamwKernelAvailable()).toBe(false);
  });
});
