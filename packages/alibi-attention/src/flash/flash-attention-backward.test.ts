import { selectBackend } from '@mptjs/kernels';
import { maxAbsDiff, randomTensor, seededRandom, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AlibiAttentionOptions,
  alibiAttention,
  attentionProbabilities,
  resolveAttentionOptions,
  runFlashAttentionGradKernel,
  runFlashAttentionWithLse,
} from '../index.js';
import { alibiSlopes } from '../slopes.js';

interface ErrorScopes {
  pushErrorScope(filter: 'validation'): void;
  popErrorScope(): Promise<unknown>;
}

interface Shapes {
  b: number;
  h: number;
  tq: number;
  tk: number;
  dh: number;
}

function inputs({ b, h, tq, tk, dh }: Shapes, seed: number): tf.Tensor[] {
  return [
    randomTensor([b, h, tq, dh], seed, 2),
    randomTensor([b, h, tk, dh], seed + 1, 2),
    randomTensor([b, h, tk, dh], seed + 2),
    randomTensor([b, h, tq, dh], seed + 3),
  ];
}

/** dL/d(q, k, v) of `L = sum(attention(q, k, v) * w)`, by whichever implementation `impl` selects. */
function gradsOf(impl: 'flash' | 'torch', [q, k, v, w]: tf.Tensor[], options: AlibiAttentionOptions) {
  return tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(tf.mul(alibiAttention(a, b, c, { ...options, impl }), w!)),
  )([q!, k!, v!]);
}

/** Keys 0 and `tk - 1` are real in every row, so no query row is fully masked (the paths differ only there). */
function paddingMask(b: number, tk: number, seed: number): tf.Tensor2D {
  const rand = seededRandom(seed);
  const data = Array.from({ length: b * tk }, (_, i) =>
    i % tk === 0 || i % tk === tk - 1 || rand() > 0.3 ? 1 : 0,
  );
  return tf.tensor2d(data, [b, tk]);
}

describe('runFlashAttentionGradKernel argument checks', () => {
  it('rejects a saved forward output of the wrong size and a dy of the wrong shape', async () => {
    await selectBackend('cpu', { log: false });
    const q = tf.zeros([1, 2, 3, 4]);
    const slopes = tf.zeros([2]);
    const mask = tf.ones([1, 3]);
    const attrs = { scale: 0.5, queryOffset: 0, causal: true };
    expect(() => runFlashAttentionGradKernel(q, q, q, tf.zeros([24]), q, slopes, mask, attrs)).toThrow(
      /log-sum-exp per row/,
    );
    expect(() =>
      runFlashAttentionGradKernel(q, q, q, tf.zeros([30]), tf.zeros([1, 2, 4, 3]), slopes, mask, attrs),
    ).toThrow(/must have the shape of q/);
    tf.dispose([q, slopes, mask]);
  });
});

describe.runIf(webgpuExpected)('fused flash attention backward on the real webgpu backend', () => {
  let device: ErrorScopes;

  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
    device = (tf.backend() as unknown as { device: ErrorScopes }).device;
  });

  // A shader that fails to compile does not throw in tfjs; Dawn reports it to the error scope.
  beforeEach(() => device.pushErrorScope('validation'));
  afterEach(async () => expect(await device.popErrorScope()).toBeNull());

  /** The largest gradient error relative to the largest reference gradient entry, over dq, dk and dv. */
  async function relativeGradError(
    shapes: Shapes,
    options: AlibiAttentionOptions,
    seed: number,
  ): Promise<number> {
    const xs = inputs(shapes, seed);
    const fused = gradsOf('flash', xs, options);
    const plain = gradsOf('torch', xs, options);
    let worst = 0;
    for (let i = 0; i < 3; i++) {
      const want = await plain[i]!.data();
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(scale).toBeGreaterThan(0);
      worst = Math.max(worst, maxAbsDiff(await fused[i]!.data(), want) / scale);
    }
    tf.dispose([...xs, ...fused, ...plain]);
    return worst;
  }

  it('keeps each row log-sum-exp in the forward and the same O', async () => {
    const shapes = { b: 2, h: 2, tq: 13, tk: 13, dh: 8 };
    const [q, k, v] = inputs(shapes, 1);
    const options = { slopes: alibiSlopes(2), keyMask: paddingMask(2, 13, 2) };
    const o = resolveAttentionOptions(q!, k!, v!, options);
    const slopes = tf.tensor1d(o.slopes!);
    const attrs = { scale: o.scale, queryOffset: o.queryOffset, causal: o.causal };
    const { o: out, forward } = runFlashAttentionWithLse(q!, k!, v!, slopes, options.keyMask, attrs);
    const plain = alibiAttention(q!, k!, v!, { ...options, impl: 'torch' });
    expect(maxAbsDiff(await out.data(), await plain.data())).toBeLessThan(1e-5);
    // log P = S - lse, so lse = S - log P on any visible key; key 0 is visible to every query.
    const logP = tf.log(tf.slice(attentionProbabilities(q!, k!, o), [0, 0, 0, 0], [2, 2, 13, 1]));
    const s0 = tf.add(
      tf.mul(tf.sum(tf.mul(q!, tf.slice(k!, [0, 0, 0, 0], [2, 2, 1, 8])), -1, true), o.scale),
      tf.mul(
        tf.reshape(slopes, [1, 2, 1, 1]),
        tf.reshape(tf.range(-o.queryOffset, -o.queryOffset - 13, -1), [1, 1, 13, 1]),
      ),
    );
    const lse = tf.slice(forward, [q!.size], [q!.size / 8]);
    expect(maxAbsDiff(await lse.data(), await tf.sub(s0, logP).data())).toBeLessThan(1e-4);
    tf.dispose([q!, k!, v!, slopes, out, forward, plain, logP, s0, lse, options.keyMask]);
  });

  it('equals the plain-ops gradient for causal ALiBi self-attention over several blocks (T=70, Dh=16)', async () => {
    const options = { slopes: alibiSlopes(2, 8, 'mpt') };
    expect(await relativeGradError({ b: 1, h: 2, tq: 70, tk: 70, dh: 16 }, options, 10)).toBeLessThan(1e-4);
  });

  it('equals the plain-ops gradient without ALiBi or causality (T=37, Dh=32, scale 0.3)', async () => {
    const options = { slopes: null, causal: false, scale: 0.3 };
    expect(await relativeGradError({ b: 2, h: 1, tq: 37, tk: 37, dh: 32 }, options, 20)).toBeLessThan(1e-4);
  });

  it('equals the plain-ops gradient with a key padding mask across key tiles (T=29, Dh=64)', async () => {
    const keyMask = paddingMask(2, 29, 31);
    for (const causal of [true, false]) {
      const options = { slopes: alibiSlopes(2), keyMask, causal };
      expect(await relativeGradError({ b: 2, h: 2, tq: 29, tk: 29, dh: 64 }, options, 30)).toBeLessThan(1e-4);
    }
    keyMask.dispose();
  });

  it('equals the plain-ops gradient at head dim 128 with a key padding mask (T=21)', async () => {
    const keyMask = paddingMask(1, 21, 35);
    const options = { slopes: alibiSlopes(2), keyMask };
    expect(await relativeGradError({ b: 1, h: 2, tq: 21, tk: 21, dh: 128 }, options, 36)).toBeLessThan(1e-4);
    keyMask.dispose();
  });

  it('equals the plain-ops gradient for query chunks at an offset (Tq=5, Tk=19)', async () => {
    const shapes = { b: 1, h: 3, tq: 5, tk: 19, dh: 16 };
    const slopes = alibiSlopes(3, 8, 'mosaic_gpt');
    expect(await relativeGradError(shapes, { slopes }, 40)).toBeLessThan(1e-4);
    expect(await relativeGradError(shapes, { slopes, queryOffset: 3 }, 41)).toBeLessThan(1e-4);
  });

  it('agrees with central finite differences of the fused forward along random directions in q, k and v', async () => {
    const shapes = { b: 1, h: 2, tq: 6, tk: 6, dh: 4 };
    const xs = inputs(shapes, 50);
    const w = xs[3]!;
    const options = { slopes: alibiSlopes(2), keyMask: tf.tensor2d([[1, 0, 1, 1, 0, 1]]) };
    const grads = gradsOf('flash', xs, options);
    const eps = 1e-2;
    for (let input = 0; input < 3; input++) {
      const direction = randomTensor(xs[input]!.shape, 60 + input);
      // The loss is linear in v, so its central difference is exact up to rounding; q and k test the softmax.
      const loss = async (sign: number) => {
        const value = tf.tidy(() => {
          const [q, k, v] = xs.map((x, i) => (i === input ? tf.add(x, tf.mul(direction, sign * eps)) : x));
          return tf.sum(tf.mul(alibiAttention(q!, k!, v!, { ...options, impl: 'flash' }), w));
        });
        const [result] = await value.data();
        value.dispose();
        return result!;
      };
      const numeric = ((await loss(1)) - (await loss(-1))) / (2 * eps);
      const projected = tf.sum(tf.mul(grads[input]!, direction));
      const [projection] = await projected.data();
      expect(Math.abs(projection!)).toBeGreaterThan(0.1);
      // Measured within 4e-5 relative (float32 rounding of the loss over 2 * eps).
      expect(Math.abs(numeric - projection!)).toBeLessThan(5e-4 * Math.abs(projection!));
      tf.dispose([direction, projected]);
    }
    tf.dispose([...xs, ...grads, options.keyMask]);
  });

  it('leaks no tensors or GPU buffers across repeated gradients', async () => {
    const xs = inputs({ b: 1, h: 2, tq: 9, tk: 9, dh: 8 }, 70);
    const options = { slopes: alibiSlopes(2) };
    const counts: number[][] = [];
    for (let round = 0; round < 3; round++) {
      const grads = gradsOf('flash', xs, options);
      await Promise.all(grads.map((g) => g.data()));
      tf.dispose(grads);
      counts.push([tf.memory().numTensors, tf.engine().backend.numDataIds()]);
    }
    expect(counts[1]).toEqual(counts[0]);
    expect(counts[2]).toEqual(counts[0]);
    tf.dispose(xs);
  });
});
