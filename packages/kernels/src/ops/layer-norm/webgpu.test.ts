// The fused LayerNorm kernels on the real webgpu backend (Dawn) against the plain-ops composition on cpu:
// forward, every gradient, with and without bias, and no leaked tensors.

import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { normal, on, withShaderChecks } from '../../testing/webgpu.js';
import { layerNormPlain } from './plain.js';
import { fusedLayerNorm } from './webgpu.js';

interface Case {
  shape: number[];
  bias: boolean;
  eps: number;
  seed: number;
}

interface Result {
  y: Float32Array;
  grads: Float32Array[];
}

async function run(norm: typeof fusedLayerNorm, c: Case): Promise<Result> {
  const width = c.shape[c.shape.length - 1]!;
  const size = c.shape.reduce((a, b) => a * b, 1);
  // An offset and scale per row make the centering matter (a mean far from 0, variances far from 1).
  const xData = normal(size, c.seed, 3).map((v, i) => v + 5 * Math.sin(Math.floor(i / width)));
  const x = tf.tensor(xData, c.shape);
  const weight = tf.tensor1d(normal(width, c.seed + 1, 0.5).map((v) => v + 1));
  const bias = c.bias ? tf.tensor1d(normal(width, c.seed + 2)) : undefined;
  const dy = tf.tensor(normal(size, c.seed + 3), c.shape);
  const params = bias ? [x, weight, bias] : [x, weight];
  const f = (...args: tf.Tensor[]) => norm(args[0]!, args[1]!, args[2], c.eps);
  const y = f(...params);
  const grads = tf.grads(f)(params, dy);
  const out = {
    y: (await y.data()) as Float32Array,
    grads: (await Promise.all(grads.map((g) => g.data()))) as Float32Array[],
  };
  tf.dispose([x, weight, dy, y, ...grads, ...(bias ? [bias] : [])]);
  return out;
}

const cases: Case[] = [
  { shape: [3, 5, 64], bias: true, eps: 1e-5, seed: 1 },
  { shape: [3, 5, 64], bias: false, eps: 1e-5, seed: 11 },
  { shape: [2, 2048], bias: false, eps: 1e-5, seed: 21 },
  { shape: [2, 2048], bias: true, eps: 1e-5, seed: 31 },
  // A width that is no multiple of the workgroup, more rows than one parameter-gradient block, a large eps.
  { shape: [70, 37], bias: true, eps: 0.1, seed: 41 },
  // A row shorter than the smallest workgroup.
  { shape: [5, 24], bias: false, eps: 1e-5, seed: 51 },
];

/** The same inputs as `run`, normalized and differentiated by hand in float64 (torch's formulas). */
function layerNormFloat64(c: Case): Result {
  const width = c.shape[c.shape.length - 1]!;
  const size = c.shape.reduce((a, b) => a * b, 1);
  const x = normal(size, c.seed, 3).map((v, i) => v + 5 * Math.sin(Math.floor(i / width)));
  const w = normal(width, c.seed + 1, 0.5).map((v) => v + 1);
  const dy = normal(size, c.seed + 3);
  const y = new Float32Array(size);
  const dx = new Float32Array(size);
  const dw = new Float64Array(width);
  const db = new Float64Array(width);
  for (let r = 0; r < size / width; r++) {
    const o = r * width;
    let mean = 0;
    for (let i = 0; i < width; i++) mean += x[o + i]!;
    mean /= width;
    let variance = 0;
    for (let i = 0; i < width; i++) variance += (x[o + i]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(variance / width + c.eps);
    const xhat = Array.from({ length: width }, (_, i) => (x[o + i]! - mean) * rstd);
    let meanG = 0;
    let meanGx = 0;
    for (let i = 0; i < width; i++) {
      const g = dy[o + i]! * w[i]!;
      meanG += g / width;
      meanGx += (g * xhat[i]!) / width;
      dw[i]! += dy[o + i]! * xhat[i]!;
      db[i]! += dy[o + i]!;
    }
    for (let i = 0; i < width; i++) {
      y[o + i] = xhat[i]! * w[i]!; // the bias is added below
      dx[o + i] = rstd * (dy[o + i]! * w[i]! - meanG - xhat[i]! * meanGx);
    }
  }
  if (c.bias) {
    const b = normal(width, c.seed + 2);
    for (let i = 0; i < size; i++) y[i] = y[i]! + b[i % width]!;
  }
  const grads = [dx, Float32Array.from(dw)];
  if (c.bias) grads.push(Float32Array.from(db));
  return { y, grads };
}

describe('fusedLayerNorm off webgpu', () => {
  it('equals LayerNorm and its gradients computed in float64 on the host', async () => {
    for (const c of [cases[0]!, cases[5]!]) {
      const got = await on('cpu', () => run(fusedLayerNorm, c));
      const want = layerNormFloat64(c);
      expect(relativeL2(got.y, want.y)).toBeLessThan(1e-6);
      got.grads.forEach((g, i) => {
        expect(relativeL2(g, want.grads[i]!), `gradient ${i}`).toBeLessThan(1e-5);
      });
    }
  });

  it('rejects a weight or bias that does not match the last axis', async () => {
    await on('cpu', async () => {
      const x = tf.zeros([2, 8]);
      expect(() => fusedLayerNorm(x, tf.ones([4]), undefined, 1e-5)).toThrow(
        'layerNorm weight [4] must be [8] for x [2,8]',
      );
      expect(() => fusedLayerNorm(x, tf.ones([8]), tf.zeros([2, 8]), 1e-5)).toThrow(
        'layerNorm bias [2,8] must be [8] for x [2,8]',
      );
    });
  });
});

describe.runIf(webgpuExpected)('fusedLayerNorm on the real webgpu backend', () => {
  for (const c of cases) {
    it(`matches the plain ops on cpu for [${c.shape}] ${c.bias ? 'with' : 'without'} bias`, async () => {
      const want = await on('cpu', () => run(layerNormPlain, c));
      const got = await on('webgpu', () => withShaderChecks(() => run(fusedLayerNorm, c)));
      expect(relativeL2(got.y, want.y)).toBeLessThan(1e-5);
      expect(got.grads).toHaveLength(c.bias ? 3 : 2);
      got.grads.forEach((g, i) => {
        expect(relativeL2(g, want.grads[i]!), `gradient ${i}`).toBeLessThan(1e-5);
      });
    });
  }

  it('runs the fused kernels, not the plain ops', async () => {
    await on('webgpu', async () => {
      const x = tf.ones([2, 8]);
      const w = tf.ones([8]);
      const profile = await tf.profile(() =>
        tf.grads((a: tf.Tensor) => fusedLayerNorm(a, w, undefined, 1e-5))([x]),
      );
      const kernels = new Set(profile.kernelNames);
      for (const k of [
        'MptLayerNormStats',
        'MptLayerNormApply',
        'MptLayerNormGradInput',
        'MptLayerNormGradParams',
      ])
        expect(kernels.has(k), k).toBe(true);
      expect(kernels.has('Rsqrt')).toBe(false);
      tf.dispose([x, w, ...(profile.result as tf.Tensor[])]);
    });
  });

  it('leaks no tensors over repeated forward and backward passes', async () => {
    await on('webgpu', async () => {
      await run(fusedLayerNorm, cases[0]!);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await run(fusedLayerNorm, cases[i % 2]!);
      // Without a gradient tape nothing is saved for a backward pass.
      const y = tf.tidy(() => fusedLayerNorm(tf.ones([2, 8]), tf.ones([8]), undefined, 1e-5));
      await y.data();
      y.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
