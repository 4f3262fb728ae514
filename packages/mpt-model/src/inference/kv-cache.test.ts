// The preallocated KV cache (webgpu and wasm: keys and values written in place into fixed-capacity buffers)
// against the concatenating one: same filled positions, doubling capacity, batch joins; on cpu the option changes
// nothing.

import { splitHeads } from '@mptjs/alibi-attention';
import { selectBackend } from '@mptjs/kernels';
import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { MPTModel } from '../model.js';
import { tinyConfig } from '../testing/tiny-config.js';
import { KVCache } from './kv-cache.js';

function rows(b: number, t: number, width: number, seed: number): tf.Tensor3D {
  const data = Float32Array.from({ length: b * t * width }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
  return tf.tensor3d(data, [b, t, width]);
}

afterEach(async () => {
  await selectBackend('cpu', { log: false });
});

/** In-place writes, doubling growth and equality with concatenation, on the current backend. */
async function checkInPlaceCache(): Promise<void> {
  const heads = 2;
  const width = 8;
  const cache = new KVCache(2, { preallocate: { maxLength: 100 } });
  expect(cache.inPlace).toBe(true);
  const ks: tf.Tensor3D[] = [];
  const vs: tf.Tensor3D[] = [];
  const steps = [5, 1, 1, 60, 1];
  let first: tf.Tensor | null = null;
  for (const [i, t] of steps.entries()) {
    const k = rows(2, t, width, 2 * i);
    const v = rows(2, t, width, 2 * i + 1);
    ks.push(k);
    vs.push(v);
    cache.reserve(t);
    for (let layer = 0; layer < 2; layer++) {
      const e = cache.appendRows(layer, k, v, heads);
      expect(e.k.shape).toEqual([2, heads, cache.capacity, width / heads]);
      if (i === 0 && layer === 0) first = e.k;
      // Steps within the capacity keep the same buffer.
      if (i > 0 && i < 3 && layer === 0) expect(e.k).toBe(first);
    }
    expect(cache.length).toBe(steps.slice(0, i + 1).reduce((a, b) => a + b, 0));
  }
  expect(cache.capacity).toBe(100);
  // webgpu's attention programs take a fixed-width mask (ones when nothing is padded); wasm's decode
  // attention runs fastest with none.
  const mask = cache.attentionKeyMask(2);
  if (tf.getBackend() === 'webgpu') expect(mask!.shape).toEqual([2, 100]);
  else expect(mask).toBeNull();
  expect(cache.keyMask).toBeNull();
  const want = tf.tidy(() => splitHeads(tf.concat(ks, 1), heads));
  const wantV = tf.tidy(() => splitHeads(tf.concat(vs, 1), heads));
  const filled = tf.tidy(() => tf.slice(cache.layer(1)!.k, [0, 0, 0, 0], [2, heads, 68, width / heads]));
  const filledV = tf.tidy(() => tf.slice(cache.layer(1)!.v, [0, 0, 0, 0], [2, heads, 68, width / heads]));
  expect(Array.from(await filled.data())).toEqual(Array.from(await want.data()));
  expect(Array.from(await filledV.data())).toEqual(Array.from(await wantV.data()));
  // Joining caches slices off the unfilled positions.
  const joined = KVCache.concatBatch([cache]);
  expect(joined.layer(0)!.k.shape).toEqual([2, heads, 68, width / heads]);
  expect(Array.from(await joined.layer(1)!.k.data())).toEqual(Array.from(await want.data()));
  expect(() => cache.reserve(33)).toThrow('the cache holds at most 100 positions');
  tf.dispose([want, wantV, filled, filledV, ...ks, ...vs]);
  joined.dispose();
  const before = tf.memory().numTensors;
  cache.dispose();
  expect(tf.memory().numTensors).toBeLessThan(before);
}

describe('KVCache with preallocate', () => {
  it('is the concatenating cache on cpu', async () => {
    await selectBackend('cpu', { log: false });
    const cache = new KVCache(1, { preallocate: { maxLength: 16 } });
    expect(cache.inPlace).toBe(false);
    const e = cache.appendRows(0, rows(1, 3, 8, 1), rows(1, 3, 8, 2), 2);
    expect(e.k.shape).toEqual([1, 2, 3, 4]);
    expect(cache.length).toBe(3);
    cache.dispose();
  });

  it('writes in place on wasm, grows by doubling and matches concatenation', async () => {
    await selectBackend('wasm', { log: false });
    await checkInPlaceCache();
  });

  it('on wasm decodes a model to the logits of full forward passes, across a capacity doubling', async () => {
    await selectBackend('wasm', { log: false });
    const model = MPTModel.init(tinyConfig({ maxSeqLen: 96 }), 4);
    const ids = Array.from({ length: 72 }, (_, i) => (i * 7 + 3) % model.config.vocabSize);
    const vocab = model.config.vocabSize;
    const full = model.forward([ids]);
    const want = (await full.data()) as Float32Array;
    full.dispose();
    const cache = model.newCache();
    expect(cache.inPlace).toBe(true);
    const prompt = 5;
    const first = model.prefill([ids.slice(0, prompt)], cache);
    let worst = relativeL2(await first.data(), want.subarray((prompt - 1) * vocab, prompt * vocab));
    first.dispose();
    for (let t = prompt; t < ids.length; t++) {
      const step = model.decodeStep([ids[t]!], cache);
      const got = (await step.data()) as Float32Array;
      step.dispose();
      worst = Math.max(worst, relativeL2(got, want.subarray(t * vocab, (t + 1) * vocab)));
    }
    // 72 positions: the cache grew from 64 to 96 on the way.
    expect(cache.capacity).toBe(96);
    expect(worst).toBeLessThan(1e-5);
    cache.dispose();
    model.dispose();
  });

  if (!webgpuExpected) {
    it.skip('skipped on webgpu: no WebGPU adapter expected (set VK_ICD_FILENAMES for SwiftShader)', () => {});
  }

  it.runIf(webgpuExpected)(
    'writes in place on webgpu, grows by doubling and matches concatenation',
    async () => {
      await selectBackend('webgpu', { log: false });
      await checkInPlaceCache();
    },
  );
});
