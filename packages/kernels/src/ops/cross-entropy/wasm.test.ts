import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend, setWasmSimdMatMul } from '../../index.js';
import {
  crossEntropyColumnGrad,
  crossEntropyColumnKernelsAvailable,
  crossEntropyColumnStats,
} from './wasm.js';

function randomArray(n: number, seed: number, scale: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

async function maxRelError(actual: tf.Tensor, expected: tf.Tensor): Promise<number> {
  const a = await actual.data();
  const e = await expected.data();
  let worst = 0;
  let norm = 0;
  for (let i = 0; i < e.length; i++) norm = Math.max(norm, Math.abs(e[i]!));
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i]! - e[i]!) / norm);
  return worst;
}

describe('column cross-entropy kernels on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  // Columns 4k+3 exercise the scalar tail; a large logit spread checks the max subtraction and exp's range.
  it.each([
    [7, 5, 1],
    [300, 13, 30],
    [1031, 64, 8],
  ])('match log-softmax and its gradient from tfjs ops (%i classes x %i positions, logits up to %i)', async (rows, cols, spread) => {
    await selectBackend('wasm', { log: false });
    expect(crossEntropyColumnKernelsAvailable()).toBe(true);
    const z = tf.tensor2d(randomArray(rows * cols, rows + cols, spread), [rows, cols]);
    // Every kind of target: in range, ignored (-1 here), past the last class.
    const picks = Int32Array.from({ length: cols }, (_, c) =>
      c % 5 === 4 ? -1 : c % 7 === 6 ? rows : (c * 31) % rows,
    );
    const pick = tf.tensor1d(picks, 'int32');
    const stats = crossEntropyColumnStats(z, pick);

    const zt = tf.transpose(z);
    const lse = tf.logSumExp(zt, 1);
    const sumExp = tf.sum(tf.exp(tf.sub(zt, tf.max(zt, 1, true))), 1);
    const inRange = picks.map((p) => (p >= 0 && p < rows ? 1 : 0));
    const onehot = tf.mul(
      tf.oneHot(
        tf.tensor1d(
          picks.map((p) => Math.max(0, p)),
          'int32',
        ),
        rows,
      ),
      tf.tensor2d(Float32Array.from(inRange), [cols, 1]),
    );
    const picked = tf.sum(tf.mul(zt, onehot), 1);
    const [mx, se, pk] = tf.unstack(stats) as [tf.Tensor, tf.Tensor, tf.Tensor];
    expect(await maxRelError(mx, tf.max(zt, 1))).toBe(0);
    expect(await maxRelError(se, sumExp)).toBeLessThan(1e-6);
    expect(await maxRelError(pk, picked)).toBe(0);

    const scale = tf.tensor1d(randomArray(cols, 9, 2));
    const lseFromStats = tf.add(mx, tf.log(se)) as tf.Tensor1D;
    expect(await maxRelError(lseFromStats, lse)).toBeLessThan(1e-6);
    const grad = crossEntropyColumnGrad(z, lseFromStats, scale, pick);
    const expected = tf.transpose(tf.mul(tf.sub(tf.softmax(zt), onehot), tf.reshape(scale, [cols, 1])));
    expect(grad.shape).toEqual([rows, cols]);
    expect(await maxRelError(grad, expected)).toBeLessThan(1e-6);
    tf.dispose([
      z,
      pick,
      stats,
      zt,
      lse,
      sumExp,
      onehot,
      picked,
      mx,
      se,
      pk,
      scale,
      lseFromStats,
      grad,
      expected,
    ]);
  });

  it('are not offered when our wasm kernels are switched off, or off wasm', async () => {
    await selectBackend('wasm', { log: false });
    setWasmSimdMatMul('off');
    expect(crossEntropyColumnKernelsAvailable()).toBe(false);
    setWasmSimdMatMul('batched');
    await selectBackend('cpu', { log: false });
    expect(crossEntropyColumnKernelsAvailable()).toBe(false);
  });
});
