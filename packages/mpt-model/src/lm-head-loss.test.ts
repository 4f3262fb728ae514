import { crossEntropyPlain, linear, selectBackend, setWasmSimdMatMul } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { lmHeadCrossEntropy, lmHeadCrossEntropyFused } from './lm-head-loss.js';
import { IGNORE_INDEX } from './units.js';

async function relError(actual: tf.Tensor, expected: tf.Tensor): Promise<number> {
  const a = await actual.data();
  const e = await expected.data();
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < e.length; i++) {
    diff += (a[i]! - e[i]!) ** 2;
    norm += e[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

describe('fused LM head + cross-entropy on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  // Targets of every kind: ordinary, ignored, past the vocabulary, negative (class 0), and a batch shape whose
  // position count is not a multiple of 4 (the kernels' scalar tail).
  it.each([
    [[2, 5], 37, 12],
    [[3, 11], 300, 16],
  ])('matches linear + log-softmax cross-entropy, loss and both gradients (h [%j, d], vocab %i, d %i)', async (lead, vocab, d) => {
    await selectBackend('wasm', { log: false });
    const h = tf.randomNormal([...lead, d], 0, 1, 'float32', 1);
    const wte = tf.randomNormal([vocab, d], 0, 0.5, 'float32', 2);
    const n = lead[0]! * lead[1]!;
    const ids = Int32Array.from({ length: n }, (_, i) =>
      i % 6 === 5 ? IGNORE_INDEX : i === 3 ? vocab + 2 : i === 4 ? -7 : (i * 17) % vocab,
    );
    const targets = tf.tensor(ids, lead, 'int32');
    expect(lmHeadCrossEntropyFused(h, wte)).toBe(true);
    const seed = tf.scalar(0.37);
    const fused = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) =>
      lmHeadCrossEntropy(a, b, targets, IGNORE_INDEX),
    );
    const plain = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) =>
      crossEntropyPlain(linear(a, { weight: b }), targets, IGNORE_INDEX),
    );
    const before = tf.memory().numTensors;
    const f = fused([h, wte], seed);
    expect(tf.memory().numTensors - before).toBe(3); // the value and two gradients, nothing left behind
    const p = plain([h, wte], seed);
    expect(await relError(f.value, p.value)).toBeLessThan(1e-6);
    expect(f.grads[0]!.shape).toEqual(h.shape);
    expect(f.grads[1]!.shape).toEqual(wte.shape);
    expect(await relError(f.grads[0]!, p.grads[0]!)).toBeLessThan(1e-5);
    expect(await relError(f.grads[1]!, p.grads[1]!)).toBeLessThan(1e-5);
    tf.dispose([h, wte, targets, seed, f.value, p.value, ...f.grads, ...p.grads]);
  });

  it('gives 0 and zero gradients when every target is ignored', async () => {
    await selectBackend('wasm', { log: false });
    const h = tf.randomNormal([1, 3, 8], 0, 1, 'float32', 3);
    const wte = tf.randomNormal([10, 8], 0, 1, 'float32', 4);
    const targets = tf.fill([1, 3], IGNORE_INDEX, 'int32');
    const r = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) =>
      lmHeadCrossEntropy(a, b, targets, IGNORE_INDEX),
    )([h, wte]);
    expect((await r.value.data())[0]).toBe(0);
    for (const g of r.grads) expect(Math.max(...(await tf.abs(g).data()))).toBe(0);
    expect(() => lmHeadCrossEntropy(h, wte, tf.zeros([3], 'int32'), IGNORE_INDEX)).toThrow(/disagree/);
    tf.dispose([h, wte, targets, r.value, ...r.grads]);
  });

  it('is not used off wasm or with our wasm kernels switched off', async () => {
    await selectBackend('wasm', { log: false });
    const h = tf.ones([2, 4]);
    const wte = tf.ones([5, 4]);
    setWasmSimdMatMul('off');
    expect(lmHeadCrossEntropyFused(h, wte)).toBe(false);
    setWasmSimdMatMul('batched');
    expect(lmHeadCrossEntropyFused(h, tf.ones([5, 4], 'int32'))).toBe(false);
    tf.dispose([h, wte]);
    await selectBackend('cpu', { log: false });
    expect(lmHeadCrossEntropyFused(tf.ones([2, 4]), tf.ones([5, 4]))).toBe(false);
  });
});
