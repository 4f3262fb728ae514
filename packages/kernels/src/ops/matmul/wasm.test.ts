import { maxAbsDiff, randomTensor } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { patchWasmTransposedMatMul, selectBackend, setWasmSimdMatMul } from '../../index.js';

describe('wasm matmul with transposed operands', () => {
  it('gives the cpu results for every transpose combination and batched shapes, without leaking', async () => {
    expect(patchWasmTransposedMatMul()).toBe(true);
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[7, 3], [7, 5], true, false], // wider b: computed as (b^T a)^T
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[2, 3, 6, 4], [2, 3, 5, 4], false, true],
      [[2, 3, 4, 6], [2, 3, 4, 5], true, false],
    ];
    const results: Record<string, Float32Array[]> = { cpu: [], wasm: [] };
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend, { log: false });
      const before = tf.memory().numTensors;
      cases.forEach(([sa, sb, ta, tb], i) => {
        const out = tf.tidy(() => tf.matMul(randomTensor(sa, 2 * i), randomTensor(sb, 2 * i + 1), ta, tb));
        results[backend]!.push(out.dataSync() as Float32Array);
        out.dispose();
      });
      expect(tf.memory().numTensors).toBe(before);
    }
    const wasm = results['wasm'] ?? [];
    (results['cpu'] ?? []).forEach((want, i) => {
      expect(maxAbsDiff(wasm[i] ?? [], want)).toBeLessThan(1e-5);
    });
  });

  it('computes a weight gradient x^T dy with a wider dy as (dy^T x)^T, to the bit', async () => {
    await selectBackend('wasm', { log: false });
    const x = randomTensor([96, 16], 3);
    const dy = randomTensor([96, 40], 4);
    const swapped = tf.tidy(() => tf.matMul(x, dy, true, false));
    // Our kernels off: x is transposed first and XNNPACK packs dy, as before.
    const previous = setWasmSimdMatMul('off');
    try {
      const direct = tf.tidy(() => tf.matMul(x, dy, true, false));
      expect(swapped.shape).toEqual([16, 40]);
      expect(Array.from(swapped.dataSync())).toEqual(Array.from(direct.dataSync()));
      tf.dispose([direct]);
    } finally {
      setWasmSimdMatMul(previous);
      tf.dispose([x, dy, swapped]);
    }
  });

  it('keeps gradients right on wasm (matmul gradients use transposed operands)', async () => {
    const grads: Record<string, Float32Array[]> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend, { log: false });
      const a = randomTensor([6, 4], 1);
      const b = randomTensor([5, 4], 2);
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true))))([
        a,
        b,
      ]);
      grads[backend] = g.map((t) => t.dataSync() as Float32Array);
      tf.dispose([a, b, ...g]);
    }
    const wasm = grads['wasm'] ?? [];
    (grads['cpu'] ?? []).forEach((want, i) => {
      expect(maxAbsDiff(wasm[i] ?? [], want)).toBeLessThan(1e-4);
    });
  });
});
