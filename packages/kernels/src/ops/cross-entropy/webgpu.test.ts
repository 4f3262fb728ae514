// The fused cross-entropy kernels on the real webgpu backend (Dawn) against the plain-ops loss on cpu,
// over the real 50432-token vocabulary: loss, d(logits), ignored targets, and no leaked tensors.

import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { normal, on, withShaderChecks } from '../../testing/webgpu.js';
import { crossEntropyPlain } from './plain.js';
import { fusedCrossEntropy } from './webgpu.js';

const VOCAB = 50432;

interface Case {
  shape: number[];
  targets: number[];
  vocab: number;
  seed: number;
}

type Loss = (logits: tf.Tensor, targets: tf.Tensor) => tf.Scalar;

async function run(loss: Loss, c: Case): Promise<{ loss: number; grad: Float32Array }> {
  const size = c.shape.reduce((a, b) => a * b, 1);
  // Logits spread like a trained model's (std 4) plus one dominant row, so the max shift matters.
  const data = normal(size, c.seed, 4);
  for (let i = 0; i < c.vocab; i += 97) data[i] = data[i]! + 30;
  const logits = tf.tensor(data, c.shape);
  const upstream = tf.scalar(1.5);
  // Targets made inside the function are disposed before the backward pass runs, as in a training step.
  const { value, grads } = tf.valueAndGrads((l: tf.Tensor) =>
    loss(l, tf.tensor(c.targets, c.shape.slice(0, -1), 'int32')),
  )([logits], upstream);
  const out = { loss: (await value.data())[0]!, grad: (await grads[0]!.data()) as Float32Array };
  tf.dispose([logits, upstream, value, ...grads]);
  return out;
}

const realVocab: Case = {
  shape: [6, VOCAB],
  targets: [17, -100, VOCAB - 1, 0, -100, 31337],
  vocab: VOCAB,
  seed: 3,
};
const allIgnored: Case = { shape: [2, 2, 300], targets: [-100, -100, -100, -100], vocab: 300, seed: 5 };
// Targets the reference also accepts: -7 picks class 0, 300 (>= V) picks nothing but is counted.
const oddTargets: Case = { shape: [4, 300], targets: [5, -7, 300, 299], vocab: 300, seed: 7 };
// A vocabulary that is no multiple of 4 (one logit per thread in the gradient pass).
const oddVocab: Case = { shape: [3, 301], targets: [300, 0, -100], vocab: 301, seed: 9 };

/**
 * `run`'s loss and gradient (upstream 1.5) in float64: mean of `lse - logit[t]` over kept rows, a negative target
 * picking class 0 and one >= V counted with no loss and no gradient, and `(softmax - onehot) * 1.5 / count`.
 */
function crossEntropyFloat64(c: Case): { loss: number; grad: Float32Array } {
  const size = c.shape.reduce((a, b) => a * b, 1);
  const data = normal(size, c.seed, 4);
  for (let i = 0; i < c.vocab; i += 97) data[i] = data[i]! + 30;
  const kept = c.targets.filter((t) => t !== -100).length;
  const count = Math.max(kept, 1);
  const grad = new Float32Array(size);
  let total = 0;
  c.targets.forEach((t, r) => {
    if (t === -100) return;
    const row = data.subarray(r * c.vocab, (r + 1) * c.vocab);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    const picked = Math.max(t, 0);
    if (picked >= c.vocab) return; // counted, but neither loss nor gradient
    total += lse - row[picked]!;
    for (let j = 0; j < c.vocab; j++) {
      const p = Math.exp(row[j]! - lse) - (j === picked ? 1 : 0);
      grad[r * c.vocab + j] = (p * 1.5) / count;
    }
  });
  return { loss: total / count, grad };
}

describe('fusedCrossEntropy off webgpu', () => {
  it('equals the loss and gradient computed in float64 on the host', async () => {
    for (const c of [oddTargets, oddVocab]) {
      const got = await on('cpu', () => run(fusedCrossEntropy, c));
      const want = crossEntropyFloat64(c);
      expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(want.loss));
      expect(relativeL2(got.grad, want.grad)).toBeLessThan(1e-5);
    }
  });

  it('is 0 with a zero gradient when every target is ignored, as the reference', async () => {
    const got = await on('cpu', () => run(crossEntropyPlain, allIgnored));
    expect(Math.abs(got.loss)).toBe(0);
    expect(got.grad.every((g) => g === 0)).toBe(true);
  });

  it('honours another ignore index and rejects mismatched targets', async () => {
    await on('cpu', async () => {
      const logits = tf.tensor2d([
        [1, 2, 3],
        [3, 1, 0],
      ]);
      const ignoreFirst = fusedCrossEntropy(logits, tf.tensor1d([-1, 2], 'int32'), -1);
      const onlySecond = fusedCrossEntropy(tf.slice(logits, [1, 0], [1, 3]), tf.tensor1d([2], 'int32'));
      expect((await ignoreFirst.data())[0]).toBeCloseTo((await onlySecond.data())[0]!, 6);
      expect(() => fusedCrossEntropy(logits, tf.tensor1d([1, 2, 0], 'int32'))).toThrow(
        'targets [3] must match logits [2,3] without the vocab axis',
      );
    });
  });
});

describe.runIf(webgpuExpected)('fusedCrossEntropy on the real webgpu backend', () => {
  const cases: [string, Case][] = [
    ['[6, 50432] with ignored targets', realVocab],
    ['[2, 2, 300] with every target ignored', allIgnored],
    ['[4, 300] with targets < 0 and >= V', oddTargets],
    ['[3, 301] (odd vocabulary)', oddVocab],
  ];
  for (const [name, c] of cases) {
    it(`matches the plain-ops loss on cpu for ${name}`, async () => {
      const want = await on('cpu', () => run(crossEntropyPlain, c));
      const got = await on('webgpu', () => withShaderChecks(() => run(fusedCrossEntropy, c)));
      expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(want.loss));
      if (want.grad.some((g) => g !== 0)) expect(relativeL2(got.grad, want.grad)).toBeLessThan(1e-5);
      else expect(got.grad.every((g) => g === 0)).toBe(true);
    });
  }

  it('runs the fused kernels and no softmax', async () => {
    await on('webgpu', async () => {
      const logits = tf.tensor2d(normal(2 * 64, 9), [2, 64]);
      const targets = tf.tensor1d([3, 60], 'int32');
      const profile = await tf.profile(() =>
        tf.grad((l: tf.Tensor) => fusedCrossEntropy(l, targets))(logits),
      );
      const kernels = new Set(profile.kernelNames);
      expect(kernels.has('MptCrossEntropyForward')).toBe(true);
      expect(kernels.has('MptCrossEntropyGrad')).toBe(true);
      for (const k of ['Softmax', 'LogSoftmax', 'Exp', 'OneHot']) expect(kernels.has(k), k).toBe(false);
      tf.dispose([logits, targets, profile.result as tf.Tensor]);
    });
  });

  it('leaks no tensors over repeated forward and backward passes', async () => {
    await on('webgpu', async () => {
      await run(fusedCrossEntropy, oddTargets);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await run(fusedCrossEntropy, i % 2 ? oddTargets : allIgnored);
      const loss = tf.tidy(() => fusedCrossEntropy(tf.ones([3, 10]), tf.tensor1d([1, -100, 2], 'int32')));
      await loss.data();
      loss.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
