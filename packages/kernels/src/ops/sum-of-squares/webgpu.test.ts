// Row sums of squares on the real webgpu backend (Dawn) against float64 sums on the host: a vector, a matrix with
// rows longer than a workgroup, and more rows than one dispatch dimension holds.
import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { normal, on, withShaderChecks } from '../../testing/webgpu.js';
import { rowSumsOfSquares } from './webgpu.js';

function hostRowSums(data: Float32Array, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < data.length / width; r++) {
    let s = 0;
    for (let c = 0; c < width; c++) s += data[r * width + c]! ** 2;
    out.push(s);
  }
  return out;
}

describe('rowSumsOfSquares', () => {
  if (!webgpuExpected) {
    it.skip('skipped: no WebGPU adapter expected (set VK_ICD_FILENAMES for SwiftShader)', () => {});
  }

  it.runIf(webgpuExpected)('sums squares along the last axis to the float64 value', async () => {
    await on('webgpu', async () => {
      for (const [shape, seed] of [
        [[5], 1],
        [[3, 130], 2],
        [[70000, 2], 3],
        [[2, 3, 33], 4],
      ] as [number[], number][]) {
        const data = normal(
          shape.reduce((a, b) => a * b, 1),
          seed,
        );
        const x = tf.tensor(data, shape);
        const before = tf.memory().numTensors;
        const sums = await withShaderChecks(async () => {
          const t = rowSumsOfSquares(x);
          const values = Array.from(await t.data());
          t.dispose();
          return values;
        });
        expect(tf.memory().numTensors).toBe(before);
        const want = hostRowSums(data, shape.at(-1)!);
        expect(sums.length).toBe(want.length);
        for (let i = 0; i < want.length; i++)
          expect(Math.abs(sums[i]! - want[i]!)).toBeLessThan(1e-5 * (1 + want[i]!));
        x.dispose();
      }
    });
  });

  it('needs webgpu and a float32 tensor', async () => {
    await on('cpu', async () => {
      const x = tf.zeros([2]);
      expect(() => rowSumsOfSquares(x)).toThrow('rowSumsOfSquares needs the webgpu backend');
      x.dispose();
    });
  });
});
