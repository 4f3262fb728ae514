import { selectBackend } from '@mptjs/kernels';
import { maxAbsDiff, randomTensor, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionBackward, attentionReference } from './index.js';
import { alibiSlopes } from './slopes.js';
import { naiveAttention } from './testing/naive-attention.js';

const [B, H, T, DH] = [2, 3, 7, 4];

describe.each(['cpu', 'wasm'] as const)('plain-ops attention on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend, { log: false });
  });

  it('matches a loop implementation with ALiBi, causal mask and key padding', () => {
    const q = randomTensor([B, H, T, DH], 1);
    const k = randomTensor([B, H, T, DH], 2);
    const v = randomTensor([B, H, T, DH], 3);
    const slopes = alibiSlopes(H, 8, 'mpt');
    const keyMask = tf.tensor2d([
      [0, 0, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1, 1],
    ]);
    const dims: [number, number, number, number, number] = [B, H, T, T, DH];
    const qd = q.dataSync() as Float32Array;
    const kd = k.dataSync() as Float32Array;
    const vd = v.dataSync() as Float32Array;
    for (const causal of [true, false]) {
      const out = attentionReference(q, k, v, { slopes, causal, keyMask, scale: 0.7 });
      const want = naiveAttention(qd, kd, vd, dims, {
        slopes,
        scale: 0.7,
        causal,
        queryOffset: 0,
        keyMask: keyMask.dataSync() as Float32Array,
      });
      const got = out.dataSync();
      // Rows whose keys are all padding are "don't care"; compare the rest.
      for (let bi = 0; bi < B; bi++)
        for (let hi = 0; hi < H; hi++)
          for (let i = 0; i < T; i++) {
            if (causal && bi === 0 && i < 2) continue;
            const off = ((bi * H + hi) * T + i) * DH;
            expect(maxAbsDiff(got.slice(off, off + DH), want.slice(off, off + DH))).toBeLessThan(1e-5);
          }
      out.dispose();
    }
    tf.dispose([q, k, v, keyMask]);
  });

  it('has an analytic backward equal to tfjs autodiff of the reference', () => {
    const q = randomTensor([B, H, T, DH], 7);
    const k = randomTensor([B, H, T, DH], 8);
    const v = randomTensor([B, H, T, DH], 9);
    const dy = randomTensor([B, H, T, DH], 10);
    const slopes = alibiSlopes(H);
    const auto = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(attentionReference(a, b, c, { slopes }), dy)),
    )([q, k, v]);
    const analytic = attentionBackward(q, k, v, dy, { slopes });
    for (let i = 0; i < 3; i++) {
      expect(maxAbsDiff(analytic[i]!.dataSync(), auto[i]!.dataSync())).toBeLessThan(1e-5);
    }
    tf.dispose([q, k, v, dy, ...auto, ...analytic]);
  });

  it('rejects mismatched shapes and options with precise messages', () => {
    const q = tf.zeros([1, 2, 3, 4]);
    const k = tf.zeros([1, 2, 5, 4]);
    expect(() => attentionReference(q, tf.zeros([1, 2, 5, 8]), k)).toThrow(
      /disagree on batch, heads, keys or headDim/,
    );
    expect(() => attentionReference(q, k, k, { slopes: new Float32Array(3) })).toThrow(
      'got 3 ALiBi slopes for 2 heads',
    );
    expect(() => attentionReference(q, k, k, { keyMask: tf.ones([1, 4]) })).toThrow(
      'keyMask must be [1, 5], got [1,4]',
    );
    expect(() => attentionReference(tf.zeros([2, 3]), k, k)).toThrow(
      /expects q, k, v as \[batch, heads, time, headDim\]/,
    );
  });
});

describe('plain-ops attention on webgpu', () => {
  if (!webgpuExpected) {
    it.skip('skipped: no WebGPU adapter expected (set VK_ICD_FILENAMES for SwiftShader)', () => {});
  }

  // A left-padded row whose query sees only padding: tfjs-webgpu's softmax made it NaN, which the values of the
  // padding positions then carried into every later layer of a batched prefill.
  it.runIf(webgpuExpected)('gives a fully masked query row the same finite output as cpu', async () => {
    const run = async (backend: 'cpu' | 'webgpu') => {
      await selectBackend(backend, { log: false });
      const [q, k, v] = [1, 2, 3].map((seed) => randomTensor([2, 3, 4, 8], seed));
      const keyMask = tf.tensor2d([0, 0, 1, 1, 1, 1, 1, 1], [2, 4]);
      const out = attentionReference(q!, k!, v!, { slopes: alibiSlopes(3, 8), causal: true, keyMask });
      const data = Array.from(await out.data());
      tf.dispose([q!, k!, v!, keyMask, out]);
      return data;
    };
    const want = await run('cpu');
    const got = await run('webgpu');
    await selectBackend('cpu', { log: false });
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
  });
});
