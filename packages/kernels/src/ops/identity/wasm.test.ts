import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { patchWasmIdentity, selectBackend } from '../../index.js';

describe('wasm Identity shares the data it clones', () => {
  it('a clone reads the same values without a copy, and outlives the original', async () => {
    expect(patchWasmIdentity()).toBe(true);
    await selectBackend('wasm', { log: false });
    const bytesBefore = tf.memory().numBytes;
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const buffersBefore = tf.memory().numDataBuffers;
    const b = tf.clone(a);
    // One buffer for both: the clone adds a reference, not a copy.
    expect(tf.memory().numDataBuffers).toBe(buffersBefore);
    expect(b.shape).toEqual([2, 3]);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    b.dispose();
    expect(tf.memory().numBytes).toBe(bytesBefore);
  });

  it('leaves gradients (whose tape clones saved tensors) and int32 and bool tensors right', async () => {
    await selectBackend('wasm', { log: false });
    const x = tf.tensor1d([0.5, -1, 2]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.exp(t), t)))(x);
    const want = [0.5, -1, 2].map((v) => Math.exp(v) * (1 + v));
    const got = Array.from(g.dataSync());
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
    const ints = tf.clone(tf.tensor1d([1, 2, 3], 'int32'));
    const bools = tf.clone(tf.tensor1d([true, false], 'bool'));
    expect(Array.from(ints.dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(bools.dataSync())).toEqual([1, 0]);
    tf.dispose([x, g, ints, bools]);
  });
});
