import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { copySlice, patchWasmSlice, selectBackend } from '../../index.js';

// The plain (host) slice, element by element, as the reference.
function reference(src: Float32Array, shape: number[], begin: number[], size: number[]): Float32Array {
  const out = new Float32Array(size.reduce((a, b) => a * b, 1));
  const strides = shape.map((_, a) => shape.slice(a + 1).reduce((x, y) => x * y, 1));
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    let from = 0;
    for (let a = shape.length - 1; a >= 0; a--) {
      from += (begin[a]! + (rest % size[a]!)) * strides[a]!;
      rest = Math.floor(rest / size[a]!);
    }
    out[i] = src[from]!;
  }
  return out;
}

describe('copySlice', () => {
  const cases: [number[], number[], number[]][] = [
    [
      [5, 7],
      [1, 2],
      [3, 4],
    ],
    [
      [4, 6, 9],
      [0, 0, 3],
      [4, 6, 3],
    ], // QKV-style split of the last axis
    [
      [4, 6, 40],
      [1, 2, 0],
      [2, 3, 40],
    ], // whole inner axis: runs merge
    [
      [3, 4, 5, 6],
      [1, 0, 2, 1],
      [2, 4, 3, 5],
    ],
    [[8], [3], [4]],
    [
      [2, 3],
      [0, 0],
      [2, 3],
    ],
    [
      [6, 2, 32],
      [2, 1, 0],
      [3, 1, 32],
    ],
  ];
  it.each(cases)('shape %j begin %j size %j matches an element-wise slice', (shape, begin, size) => {
    const src = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i * 0.5 - 3);
    const dst = new Float32Array(size.reduce((a, b) => a * b, 1));
    copySlice(src, shape, dst, begin, size);
    expect(Array.from(dst)).toEqual(Array.from(reference(src, shape, begin, size)));
  });
});

describe('in-heap Slice and SplitV on the wasm backend', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: false });
    expect(patchWasmSlice()).toBe(true);
  });

  it('slices and splits like tfjs, without reading the input to the host', () => {
    const x = tf.tensor3d(
      Float32Array.from({ length: 4 * 6 * 12 }, (_, i) => Math.sin(i)),
      [4, 6, 12],
    );
    const want = reference(x.dataSync() as Float32Array, [4, 6, 12], [1, 2, 3], [2, 3, 5]);
    const backend = tf.backend() as unknown as { readSync: unknown };
    const readSync = backend.readSync;
    let reads = 0;
    backend.readSync = (...args: unknown[]) => {
      reads++;
      return (readSync as (...a: unknown[]) => unknown).apply(backend, args);
    };
    try {
      const s = tf.slice(x, [1, 2, 3], [2, 3, 5]);
      const parts = tf.split(x, [4, 4, 4], -1);
      const ints = tf.slice(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), [0, 1], [2, 2]);
      expect(reads).toBe(0);
      expect(Array.from(s.dataSync())).toEqual(Array.from(want));
      const all = x.arraySync() as number[][][];
      parts.forEach((p, k) => {
        expect(p.shape).toEqual([4, 6, 4]);
        expect(p.arraySync()).toEqual(all.map((r) => r.map((c) => c.slice(4 * k, 4 * k + 4))));
      });
      expect(ints.dtype).toBe('int32');
      expect(ints.arraySync()).toEqual([
        [2, 3],
        [5, 6],
      ]);
      tf.dispose([s, ...parts, ints]);
    } finally {
      backend.readSync = readSync;
      x.dispose();
    }
  });

  it('gives Mean and Sum gradients equal to the product with ones', () => {
    const x = tf.tensor3d(
      Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i - 7),
      [2, 3, 4],
    );
    const dy = tf.tensor2d([1, -2, 3, 0.5, 4, -1], [2, 3]);
    const gMean = tf.grad((t: tf.Tensor) => tf.mean(t, -1))(x, dy);
    const gSum = tf.grad((t: tf.Tensor) => tf.sum(t, [0, 2]))(x, tf.tensor1d([2, -1, 0.25]));
    const dyv = dy.arraySync() as number[][];
    expect(gMean.arraySync()).toEqual(dyv.map((r) => r.map((v) => [v / 4, v / 4, v / 4, v / 4])));
    expect(gSum.arraySync()).toEqual([0, 1].map(() => [2, -1, 0.25].map((v) => [v, v, v, v])));
    tf.dispose([x, dy, gMean, gSum]);
  });
});
