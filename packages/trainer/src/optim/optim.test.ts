import { selectBackend } from '@mptjs/kernels';
import { seededRandom, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  clipByGlobalNorm,
  DecoupledAdamW,
  DecoupledLionW,
  gradSumOfSquares,
  type Optimizer,
} from './index.js';

// Scalar float64 transcriptions of Composer's update rules, one element at a time, to hold the tensor code to.
function adamwReference(
  p: number[],
  grads: number[][],
  lrs: number[],
  o: { lr0: number; b1: number; b2: number; eps: number; wd: number },
) {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const x = [...p];
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k]!;
    for (let i = 0; i < x.length; i++) {
      if (o.wd !== 0) x[i]! *= 1 - (lr / o.lr0) * o.wd;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! * g[i]!;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      x[i]! -= (lr / (1 - o.b1 ** t)) * (m[i]! / denom);
    }
  });
  return x;
}

function lionReference(
  p: number[],
  grads: number[][],
  lrs: number[],
  o: { lr0: number; b1: number; b2: number; wd: number },
) {
  const m = p.map(() => 0);
  const x = [...p];
  grads.forEach((g, k) => {
    const lr = lrs[k]!;
    for (let i = 0; i < x.length; i++) {
      if (o.wd !== 0) x[i]! *= 1 - (lr / o.lr0) * o.wd;
      x[i]! -= lr * Math.sign(o.b1 * m[i]! + (1 - o.b1) * g[i]!);
      m[i] = o.b2 * m[i]! + (1 - o.b2) * g[i]!;
    }
  });
  return x;
}

function rand(n: number, seed: number): number[] {
  const next = seededRandom(seed);
  return Array.from({ length: n }, () => next() * 2 - 1);
}

async function runSteps(opt: Optimizer, p0: number[], grads: number[][], lrs: number[]): Promise<number[]> {
  const param = tf.variable(tf.tensor2d(p0, [2, p0.length / 2]));
  for (let k = 0; k < grads.length; k++) {
    const g = tf.tensor2d(grads[k]!, [2, p0.length / 2]);
    opt.step([{ name: 'w', param, grad: g }], lrs[k]!);
    g.dispose();
  }
  const out = Array.from(await param.data());
  param.dispose();
  return out;
}

function expectClose(actual: number[], expected: number[], tol = 2e-6) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(tol);
}

// webgpu (SwiftShader without a GPU) runs AdamW's three-dispatch update, moments written in place; a loaded state
// starts from host data there.
const BACKENDS = ['cpu', 'wasm', ...(webgpuExpected ? (['webgpu'] as const) : [])] as const;

describe.each(BACKENDS)('optimizers on %s', (backend) => {
  const p0 = rand(8, 1);
  const grads = [rand(8, 2), rand(8, 3), rand(8, 4), rand(8, 5)];
  // A scheduled lr, so the decoupled decay factor lr/initial_lr varies.
  const lrs = [0.01, 0.02, 0.015, 0.005];

  it('DecoupledAdamW matches Composer update rule, including lr-scheduled decay', async () => {
    await selectBackend(backend, { log: false });
    const o = { lr0: 0.02, b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 };
    const opt = new DecoupledAdamW({ lr: o.lr0, betas: [o.b1, o.b2], eps: o.eps, weightDecay: o.wd });
    expectClose(await runSteps(opt, p0, grads, lrs), adamwReference(p0, grads, lrs, o));
    // With decay on, the result differs from decay off: the decay term is really applied.
    const noDecay = adamwReference(p0, grads, lrs, { ...o, wd: 0 });
    expect(Math.abs(adamwReference(p0, grads, lrs, o)[0]! - noDecay[0]!)).toBeGreaterThan(1e-4);
    opt.dispose();
  });

  it('DecoupledLionW matches the LionW update rule', async () => {
    await selectBackend(backend, { log: false });
    const o = { lr0: 0.02, b1: 0.9, b2: 0.99, wd: 0.2 };
    const opt = new DecoupledLionW({ lr: o.lr0, betas: [o.b1, o.b2], weightDecay: o.wd });
    expectClose(await runSteps(opt, p0, grads, lrs), lionReference(p0, grads, lrs, o));
    opt.dispose();
  });

  it('state round-trips: 2 steps + save + load into a new optimizer + 2 steps equals 4 steps', async () => {
    await selectBackend(backend, { log: false });
    for (const make of [
      () => new DecoupledAdamW({ lr: 0.02, weightDecay: 0.1 }),
      () => new DecoupledLionW({ lr: 0.02, weightDecay: 0.1 }),
    ]) {
      const straight = make();
      const full = await runSteps(straight, p0, grads, lrs);
      const first = make();
      const mid = await runSteps(first, p0, grads.slice(0, 2), lrs.slice(0, 2));
      const saved = structuredClone(await first.state());
      const second = make();
      second.loadState(saved);
      const resumed = await runSteps(second, mid, grads.slice(2), lrs.slice(2));
      expect(resumed).toEqual(full);
      for (const o of [straight, first, second]) o.dispose();
    }
  });
});

describe('gradient clipping', () => {
  it('computes the global norm and scales like clip_grad_norm_', async () => {
    await selectBackend('cpu', { log: false });
    const a = tf.tensor1d([3, 0]);
    const b = tf.tensor2d([[0, 4]]);
    const ss = await gradSumOfSquares([a, b]);
    expect(ss).toBeCloseTo(25, 5);
    const clipped = clipByGlobalNorm([a, b], Math.sqrt(ss), 1);
    expect(Array.from(await clipped[0]!.data())[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    expect(Array.from(await clipped[1]!.data())[1]).toBeCloseTo(4 / (5 + 1e-6), 6);
    // Below the threshold nothing changes.
    expect(clipByGlobalNorm([a, b], 5, 10)).toEqual([a, b]);
    expect(() =>
      new DecoupledLionW({ lr: 1 }).loadState({ name: 'decoupled_adamw', step: 1, slots: {} }),
    ).toThrow('cannot load decoupled_adamw state into decoupled_lionw');
  });

  it('sums the squares of many gradients (grouped below the per-shader buffer limit)', async () => {
    await selectBackend('cpu', { log: false });
    const grads = Array.from({ length: 37 }, (_, i) => tf.fill([2, 3], i + 1));
    const expected = Array.from({ length: 37 }, (_, i) => 6 * (i + 1) ** 2).reduce((x, y) => x + y, 0);
    const before = tf.memory().numTensors;
    expect(await gradSumOfSquares(grads)).toBeCloseTo(expected, 0);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(grads);
  });
});
