import { randomTensor } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../index.js';
import { planTranspose } from './transpose.js';

describe('SIMD transpose on wasm', () => {
  it('reduces transformer permutations to our kernels and leaves the rest', () => {
    expect(planTranspose([8, 5], [1, 0])).toEqual({ kind: 'swap', batch: 1, rows: 8, cols: 5 });
    expect(planTranspose([2, 3, 8, 5], [0, 1, 3, 2])).toEqual({ kind: 'swap', batch: 6, rows: 8, cols: 5 });
    expect(planTranspose([2, 7, 3, 4], [0, 2, 1, 3])).toEqual({
      kind: 'blocks',
      batch: 2,
      rows: 7,
      cols: 3,
      block: 4,
    });
    expect(planTranspose([1, 7, 3, 4], [0, 2, 1, 3])).toEqual({
      kind: 'blocks',
      batch: 1,
      rows: 7,
      cols: 3,
      block: 4,
    });
    expect(planTranspose([2, 3, 4], [2, 1, 0])).toBeNull();
    expect(planTranspose([2, 3, 4, 5], [3, 1, 0, 2])).toBeNull();
  });

  it('copies exactly what the cpu transpose gives, odd sizes included, without leaking', async () => {
    const cases: [number[], number[]][] = [
      [
        [9, 13],
        [1, 0],
      ],
      [
        [4, 8],
        [1, 0],
      ],
      [
        [3, 7, 6],
        [0, 2, 1],
      ],
      [
        [2, 3, 5, 9],
        [0, 1, 3, 2],
      ],
      [
        [2, 7, 3, 6],
        [0, 2, 1, 3],
      ],
      [
        [2, 7, 3, 5],
        [0, 2, 1, 3],
      ],
      [
        [3, 2, 4],
        [1, 0, 2],
      ],
      [
        [1, 5, 1, 3],
        [0, 2, 1, 3],
      ],
      [
        [2, 3, 4],
        [2, 1, 0],
      ], // not ours: tfjs-wasm's kernel
    ];
    const results: Record<string, Float32Array[]> = { cpu: [], wasm: [] };
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend, { log: false });
      const dataIds = tf.backend().numDataIds();
      cases.forEach(([shape, perm], i) => {
        const x = randomTensor(shape, i + 1);
        const y = tf.transpose(x, perm);
        expect(y.shape).toEqual(perm.map((axis) => shape[axis]));
        results[backend]!.push(y.dataSync() as Float32Array);
        tf.dispose([x, y]);
      });
      expect(tf.backend().numDataIds()).toBe(dataIds);
    }
    const wasm = results['wasm'] ?? [];
    (results['cpu'] ?? []).forEach((want, i) => {
      expect(Array.from(wasm[i] ?? [])).toEqual(Array.from(want));
    });
  });
});
