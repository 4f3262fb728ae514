// The KV cache with attention: incremental decoding through it matches the full pass, and a joined batch of
// caches attends per row as each cache alone.
import { alibiAttention, alibiSlopes, attentionReference } from '@mptjs/alibi-attention';
import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../random.js';
import { KVCache } from './kv-cache.js';

const [B, H, T, DH] = [2, 3, 7, 4];

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const random = new SeededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => random.next() * 2 - 1),
    shape,
  );
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.each(['cpu', 'wasm'] as const)('attention through a KV cache on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend, { log: false });
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
