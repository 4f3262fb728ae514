import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend } from '../index.js';
import { layerNorm, layerNormWasmRows } from './layer-norm/layer-norm.js';
import { layerNormPlain } from './layer-norm/plain.js';
import { linear } from './matmul/linear.js';
import { setWasmSimdMatMul } from './matmul/wasm.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function random(rand: () => number, shape: number[], scale = 1, offset = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale + offset),
    shape,
  );
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = await a.data();
  const y = await b.data();
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

// The wasm decode path: a few rows of x go to our kernels (matrix-vector product, one-pass LayerNorm); the
// results must agree with the tfjs ops they replace, values and gradients.
describe('decode-step layers on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  it('layerNormWasmRows equals the tfjs-op LayerNorm and its gradient, with and without bias', async () => {
    await selectBackend('wasm', { log: false });
    const rand = seeded(5);
    // Widths through the vector loop and the scalar tail; an offset mean and a tiny-variance row.
    for (const [shape, eps] of [
      [[1, 1, 64], 1e-5],
      [[2, 1, 37], 1e-5],
      [[3, 1027], 1e-3],
    ] as const) {
      const width = shape[shape.length - 1]!;
      const x = random(rand, [...shape], 2, 3);
      const weight = random(rand, [width], 1, 1);
      const bias = random(rand, [width]);
      const dy = random(rand, [...shape]);
      for (const b of [undefined, bias]) {
        const p = { weight, bias: b };
        const y = layerNormWasmRows(x, p, eps);
        const ref = layerNormPlain(x, weight, b, eps);
        expect(y.shape).toEqual([...shape]);
        expect(await maxAbsDiff(y, ref), `shape [${shape}]`).toBeLessThan(2e-5);
        const args = b ? [x, weight, b] : [x, weight];
        const f = (...t: tf.Tensor[]) => layerNormWasmRows(t[0]!, { weight: t[1]!, bias: t[2] }, eps);
        const fRef = (...t: tf.Tensor[]) => layerNormPlain(t[0]!, t[1]!, t[2], eps);
        const grads = tf.grads(f)(args, dy);
        const gradsRef = tf.grads(fRef)(args, dy);
        for (let i = 0; i < args.length; i++) {
          expect(await maxAbsDiff(grads[i]!, gradsRef[i]!), `shape [${shape}] grad ${i}`).toBeLessThan(1e-4);
        }
      }
    }
    const bad = tf.zeros([1, 4]);
    expect(() => layerNormWasmRows(bad, { weight: tf.ones([5]) }, 1e-5)).toThrow(
      /weight must be float32 \[4\]/,
    );
  });

  it('layerNorm and linear take the kernels for few rows and tfjs ops for many, with the same results', async () => {
    await selectBackend('wasm', { log: false });
    const rand = seeded(9);
    const weight = random(rand, [48, 40]);
    const norm = { weight: random(rand, [40], 1, 1), bias: random(rand, [40]) };
    for (const rows of [1, 4, 5, 9]) {
      const x = random(rand, [rows, 1, 40]);
      const kernels = [layerNorm(x, norm, 1e-5), linear(x, { weight })];
      setWasmSimdMatMul('off');
      const plain = [layerNorm(x, norm, 1e-5), linear(x, { weight })];
      setWasmSimdMatMul('batched');
      expect(kernels[1]!.shape).toEqual([rows, 1, 48]);
      expect(await maxAbsDiff(kernels[0]!, plain[0]!), `rows ${rows}`).toBeLessThan(2e-5);
      expect(await maxAbsDiff(kernels[1]!, plain[1]!), `rows ${rows}`).toBeLessThan(1e-5);
    }
  });
});
