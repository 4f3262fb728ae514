// The fused linear + GELU kernels on the real webgpu backend (Dawn) against the plain-ops composition on cpu:
// forward with and without a gradient tape, every gradient, both weight layouts, GELU and its derivative against
// float64 on the host, and no leaked tensors.
import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { normal, on, withShaderChecks } from '../../testing/webgpu.js';
import { dequantizeInt8, quantizeInt8, uploadInt8 } from '../int8-linear/wasm.js';
import type { LinearParams } from '../matmul/linear.js';
import { fusedLinearGelu, linearGelu, linearGeluPlain } from './webgpu.js';
import type { WeightLayout } from './webgpu-programs.js';

interface Case {
  x: number[];
  weight: [number, number];
  layout: WeightLayout;
  bias: boolean;
  seed: number;
}

interface Result {
  /** The forward value without a gradient tape (the single fused dispatch on webgpu). */
  inference: Float32Array;
  /** The forward value under a tape (pre-activation, then GELU). */
  y: Float32Array;
  grads: Float32Array[];
}

async function run(op: typeof fusedLinearGelu, c: Case): Promise<Result> {
  const size = c.x.reduce((a, b) => a * b, 1);
  const outFeatures = c.weight[c.layout === 'inOut' ? 1 : 0];
  const x = tf.tensor(normal(size, c.seed), c.x);
  // Weights scaled as a fan-in initialization so the pre-activations spread over GELU's curved range.
  const weight = tf.tensor(
    normal(c.weight[0] * c.weight[1], c.seed + 1, 1.5 / Math.sqrt(c.x.at(-1)!)),
    c.weight,
  );
  const bias = c.bias ? tf.tensor1d(normal(outFeatures, c.seed + 2, 0.5)) : undefined;
  const dy = tf.tensor(normal((size / c.x.at(-1)!) * outFeatures, c.seed + 3), [
    ...c.x.slice(0, -1),
    outFeatures,
  ]);
  const params = bias ? [x, weight, bias] : [x, weight];
  const f = (...args: tf.Tensor[]) => op(args[0]!, args[1]!, c.layout, args[2]);
  const inference = f(...params);
  const { value, grads } = tf.valueAndGrads(f)(params, dy);
  const out = {
    inference: (await inference.data()) as Float32Array,
    y: (await value.data()) as Float32Array,
    grads: (await Promise.all(grads.map((g) => g.data()))) as Float32Array[],
  };
  tf.dispose([x, weight, dy, inference, value, ...grads, ...(bias ? [bias] : [])]);
  return out;
}

const cases: Case[] = [
  { x: [3, 7, 16], weight: [64, 16], layout: 'outIn', bias: true, seed: 1 },
  { x: [3, 7, 16], weight: [64, 16], layout: 'outIn', bias: false, seed: 11 },
  { x: [33, 48], weight: [48, 100], layout: 'inOut', bias: true, seed: 21 },
  { x: [33, 48], weight: [48, 100], layout: 'inOut', bias: false, seed: 31 },
  // More than one tile each way, K no multiple of the staged slice depth.
  { x: [70, 37], weight: [130, 37], layout: 'outIn', bias: true, seed: 41 },
];

/** erfc in float64: erf's Taylor series below 2, a continued fraction above (relative error ~1e-13 or less). */
function erfc64(x: number): number {
  if (x < 0) return 2 - erfc64(-x);
  if (x < 2) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-18; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated from the tail.
  let f = x;
  for (let n = 200; n >= 1; n--) f = x + n / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

const normalCdf64 = (z: number) => 0.5 * erfc64(-z * Math.SQRT1_2);
const gelu64 = (z: number) => z * normalCdf64(z);
const geluGrad64 = (z: number) => normalCdf64(z) + (z * Math.exp(-0.5 * z * z)) / Math.sqrt(2 * Math.PI);

describe('the float64 reference', () => {
  it('has erfc right at known values', () => {
    expect(erfc64(0)).toBe(1);
    expect(erfc64(0.5)).toBeCloseTo(0.4795001221869535, 14);
    expect(erfc64(1.99) / 4.888586800383003e-3).toBeCloseTo(1, 12);
    expect(erfc64(2.9) / 4.109787809945886e-5).toBeCloseTo(1, 12);
    expect(erfc64(3.5) / 7.430983723414128e-7).toBeCloseTo(1, 12);
    expect(erfc64(7) / 4.183825607779414e-23).toBeCloseTo(1, 12);
    expect(erfc64(-1)).toBeCloseTo(1.842700792949715, 14);
  });
});

describe('fusedLinearGelu off webgpu', () => {
  it('is exactly the plain composition geluErf(linear(...))', async () => {
    for (const c of [cases[0]!, cases[3]!]) {
      const got = await on('cpu', () => run(fusedLinearGelu, c));
      const want = await on('cpu', () => run(linearGeluPlain, c));
      expect(got.inference).toEqual(want.inference);
      expect(got.y).toEqual(want.y);
      expect(got.grads).toEqual(want.grads);
    }
  });

  it('rejects a weight or bias that does not fit x', async () => {
    await on('cpu', async () => {
      const x = tf.zeros([2, 8]);
      expect(() => fusedLinearGelu(x, tf.ones([8, 4]), 'outIn')).toThrow(
        'linearGelu weight [8,4] (outIn) must be [out, 8] for x [2,8]',
      );
      expect(() => fusedLinearGelu(x, tf.ones([4, 8]), 'inOut')).toThrow(
        'linearGelu weight [4,8] (inOut) must be [8, out] for x [2,8]',
      );
      expect(() => fusedLinearGelu(x, tf.ones([8, 4]), 'inOut', tf.ones([8]))).toThrow(
        'linearGelu bias [8] must be [4] for weight [8,4] (inOut)',
      );
    });
  });
});

describe.runIf(webgpuExpected)('fusedLinearGelu on the real webgpu backend', () => {
  for (const c of cases) {
    it(`matches the plain ops on cpu for [${c.x}] x [${c.weight}] ${c.layout} ${c.bias ? 'with' : 'without'} bias`, async () => {
      const want = await on('cpu', () => run(linearGeluPlain, c));
      const got = await on('webgpu', () => withShaderChecks(() => run(fusedLinearGelu, c)));
      expect(relativeL2(got.inference, want.inference)).toBeLessThan(1e-5);
      expect(relativeL2(got.y, want.y)).toBeLessThan(1e-5);
      expect(got.grads).toHaveLength(c.bias ? 3 : 2);
      got.grads.forEach((g, i) => {
        expect(relativeL2(g, want.grads[i]!), `gradient ${i}`).toBeLessThan(1e-5);
      });
    });
  }

  it('computes GELU and its derivative over [-10, 10] as float64 does, negative tail included', async () => {
    // x [n, 1] times the weight [[1]] makes z = x exactly, and dx = gelu'(z) for dy = 1.
    const zs = Float32Array.from({ length: 2001 }, (_, i) => -10 + i / 100);
    const got = await on('webgpu', () =>
      withShaderChecks(async () => {
        const x = tf.tensor2d(zs, [zs.length, 1]);
        const w = tf.ones([1, 1]);
        const inference = fusedLinearGelu(x, w, 'outIn');
        const { value, grads } = tf.valueAndGrads((a: tf.Tensor) => fusedLinearGelu(a, w, 'outIn'))([x]);
        const out = await Promise.all([inference.data(), value.data(), grads[0]!.data()]);
        tf.dispose([x, w, inference, value, ...grads]);
        return out as Float32Array[];
      }),
    );
    const [inference, y, dz] = got as [Float32Array, Float32Array, Float32Array];
    for (let i = 0; i < zs.length; i++) {
      const z = zs[i]!;
      const want = gelu64(z);
      for (const [name, v] of [
        ['epilogue', inference[i]!],
        ['elementwise', y[i]!],
      ] as const) {
        expect(Math.abs(v - want), `${name} gelu(${z})`).toBeLessThanOrEqual(3e-7 * Math.max(1, Math.abs(z)));
        // The tail keeps its relative accuracy: 1 + erf(z / sqrt 2) in f32 would lose it below z = -3.
        if (z < 0)
          expect(Math.abs(v - want), `${name} gelu(${z})`).toBeLessThanOrEqual(1e-4 * Math.abs(want));
      }
      expect(Math.abs(dz[i]! - geluGrad64(z)), `gelu'(${z})`).toBeLessThanOrEqual(5e-7);
    }
  });

  it('runs the fused kernels, not the plain ops', async () => {
    await on('webgpu', async () => {
      const x = tf.ones([2, 8]);
      const w = tf.ones([4, 8]);
      const forward = await tf.profile(() => fusedLinearGelu(x, w, 'outIn'));
      expect(forward.kernelNames.filter((k) => k !== 'Reshape')).toEqual(['MptMatMulGelu']);
      const profile = await tf.profile(() => tf.grads((a: tf.Tensor) => fusedLinearGelu(a, w, 'outIn'))([x]));
      const kernels = new Set(profile.kernelNames);
      for (const k of ['MptMatMulGelu', 'MptGelu', 'MptGeluGrad']) expect(kernels.has(k), k).toBe(true);
      expect(kernels.has('Erf')).toBe(false);
      tf.dispose([x, w, forward.result as tf.Tensor, ...(profile.result as tf.Tensor[])]);
    });
  });

  it('linearGelu fuses plain float parameters and sends any other form through linear', async () => {
    await on('webgpu', async () => {
      const x = tf.tensor2d([[1, -2]]);
      const weight = tf.tensor2d([[0.5, 0.25]]);
      const kernels = async (p: LinearParams) => {
        const { kernelNames, result } = await tf.profile(() => linearGelu(x, p));
        (result as tf.Tensor).dispose();
        return kernelNames;
      };
      expect(await kernels({ weight, int8: undefined })).toContain('MptMatMulGelu');
      // Any other form goes through linear; outside a gradient tape its GELU is still one fused program.
      const other = await kernels({ weight, scale: x } as LinearParams);
      expect(other).not.toContain('MptMatMulGelu');
      expect(other).toContain('MptGelu');
      expect(other).not.toContain('Erf');
      tf.dispose([x, weight]);
    });
  });

  it('an int8 weight gets the fused GELU on its int8 product, equal to the plain composition', async () => {
    await on('webgpu', async () => {
      const [m, k, n] = [5, 24, 40];
      const q = quantizeInt8(normal(n * k, 3, 0.3), [n, k]);
      const int8 = uploadInt8(q);
      const weight = tf.tensor2d(dequantizeInt8(q), [n, k]);
      const x = tf.tensor2d(normal(m * k, 4), [m, k]);
      const got = await withShaderChecks(async () => {
        const y = linearGelu(x, { weight, int8 });
        const data = await y.data();
        y.dispose();
        return data;
      });
      const want = await linearGeluPlain(x, weight, 'outIn').data();
      expect(relativeL2(got, want)).toBeLessThan(1e-5);
      tf.dispose([x, weight, int8.packed, int8.scales]);
    });
  });

  it('leaks no tensors over repeated forward and backward passes', async () => {
    await on('webgpu', async () => {
      await run(fusedLinearGelu, cases[0]!);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await run(fusedLinearGelu, cases[i % 2]!);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
