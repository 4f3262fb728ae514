import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { alibiAttention, attentionBackward, attentionReference, KVCache } from './index.js';
import { alibiSlopes } from './slopes.js';
import { maxAbsDiff, naiveAttention, randomTensor } from './test-utils.js';

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

  it('gives the same output one query at a time through a KV cache (query offset)', () => {
    const q = randomTensor([B, H, T, DH], 4);
    const k = randomTensor([B, H, T, DH], 5);
    const v = randomTensor([B, H, T, DH], 6);
    const slopes = alibiSlopes(H, 8, 'mosaic_gpt');
    const full = attentionReference(q, k, v, { slopes });
    const cache = new KVCache(1);
    const before = tf.memory().numTensors;
    const steps: tf.Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const step = tf.tidy(() => {
        const at = (x: tf.Tensor) => tf.slice(x, [0, 0, t, 0], [B, H, 1, DH]) as tf.Tensor4D;
        const { k: kAll, v: vAll } = cache.append(0, at(k), at(v));
        return alibiAttention(at(q), kAll, vAll, { slopes, impl: 'torch' });
      });
      steps.push(step);
    }
    expect(cache.length).toBe(T);
    // The cache holds exactly one K and one V; old ones were freed.
    expect(tf.memory().numTensors - before).toBe(2 + steps.length);
    const incremental = tf.concat(steps, 2);
    expect(maxAbsDiff(incremental.dataSync(), full.dataSync())).toBeLessThan(1e-6);
    cache.dispose();
    tf.dispose([q, k, v, full, incremental, ...steps]);
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

describe('KVCache.concatBatch', () => {
  beforeAll(async () => {
    await selectBackend('cpu', { log: false });
  });

  it('left-pads shorter sequences and masks the padding so each row attends as if alone', () => {
    const slopes = alibiSlopes(H);
    const lengths = [5, 3];
    const seqs = lengths.map((len, s) => ({
      q: randomTensor([1, H, 1, DH], 20 + s),
      k: randomTensor([1, H, len, DH], 30 + s),
      v: randomTensor([1, H, len, DH], 40 + s),
    }));
    const caches = seqs.map((s) => {
      const c = new KVCache(1);
      c.append(0, s.k as tf.Tensor4D, s.v as tf.Tensor4D);
      return c;
    });
    const batch = KVCache.concatBatch(caches);
    expect(batch.length).toBe(5);
    expect(Array.from(batch.keyMask!.dataSync())).toEqual([1, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
    const entry = batch.layer(0)!;
    const together = attentionReference(
      tf.concat(
        seqs.map((s) => s.q),
        0,
      ),
      entry.k,
      entry.v,
      {
        slopes,
        keyMask: batch.keyMask!,
      },
    );
    seqs.forEach((s, i) => {
      const alone = attentionReference(s.q, s.k, s.v, { slopes });
      const row = tf.slice(together, [i, 0, 0, 0], [1, H, 1, DH]);
      expect(maxAbsDiff(row.dataSync(), alone.dataSync())).toBeLessThan(1e-6);
    });
    expect(() => KVCache.concatBatch([])).toThrow('concatBatch needs at least one cache');
    expect(() =>
      caches[0]!.append(
        0,
        tf.zeros([1, H + 1, 1, DH]) as tf.Tensor4D,
        tf.zeros([1, H + 1, 1, DH]) as tf.Tensor4D,
      ),
    ).toThrow(/cannot append keys \[1,4,1,4\] to a cache holding \[1,3,5,4\]/);
    for (const c of [...caches, batch]) c.dispose();
  });
});
