import { selectBackend } from '@mptjs/kernels';
import { maxAbsDiff, randomTensor, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { alibiAttention, attentionReference, resolveAttentionImpl } from '../index.js';
import { alibiSlopes } from '../slopes.js';

const [B, H, T, DH] = [2, 3, 17, 8];

interface ErrorScopes {
  pushErrorScope(filter: 'validation'): void;
  popErrorScope(): Promise<unknown>;
}

function gpuDevice(): ErrorScopes {
  return (tf.backend() as unknown as { device: ErrorScopes }).device;
}

describe('alibiAttention dispatch', () => {
  it('uses the fused kernel only on webgpu and never for attn_impl torch', () => {
    expect(resolveAttentionImpl('auto', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('flash', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('triton', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('torch', 'webgpu')).toBe('plain');
    expect(resolveAttentionImpl('flash', 'wasm')).toBe('plain');
    expect(resolveAttentionImpl('auto', 'cpu')).toBe('plain');
  });
});

describe.runIf(webgpuExpected)('fused flash attention on the real webgpu backend', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  async function compare(
    shapes: { tq: number; tk: number; dh?: number; heads?: number },
    options: Parameters<typeof alibiAttention>[3],
    seed: number,
  ): Promise<number> {
    const dh = shapes.dh ?? DH;
    const h = shapes.heads ?? H;
    const q = randomTensor([B, h, shapes.tq, dh], seed, 2);
    const k = randomTensor([B, h, shapes.tk, dh], seed + 1, 2);
    const v = randomTensor([B, h, shapes.tk, dh], seed + 2);
    const ref = attentionReference(q, k, v, options);
    const want = await ref.data();
    const device = gpuDevice();
    device.pushErrorScope('validation');
    const fused = alibiAttention(q, k, v, { ...options, impl: 'flash' });
    const got = await fused.data();
    // A shader that fails to compile does not throw in tfjs; Dawn reports it to the error scope.
    expect(await device.popErrorScope()).toBeNull();
    expect(Array.from(got as Float32Array).reduce((a, x) => a + Math.abs(x), 0)).toBeGreaterThan(0);
    tf.dispose([q, k, v, fused, ref]);
    return maxAbsDiff(got, want);
  }

  it('matches the reference for causal ALiBi self-attention (B=2, H=3, T=17, Dh=8)', async () => {
    expect(await compare({ tq: T, tk: T }, { slopes: alibiSlopes(H, 8, 'mpt') }, 1)).toBeLessThan(1e-5);
  });

  it('matches the reference for a decode step (Tq=1 at offset 16) and a chunk with an offset', async () => {
    const slopes = alibiSlopes(H, 8, 'mosaic_gpt');
    expect(await compare({ tq: 1, tk: T }, { slopes }, 4)).toBeLessThan(1e-5);
    expect(await compare({ tq: 5, tk: T }, { slopes, queryOffset: 12 }, 7)).toBeLessThan(1e-5);
  });

  it('matches the reference across several key tiles (Tk=150, Dh=32) and without ALiBi or causality', async () => {
    expect(await compare({ tq: 70, tk: 150, dh: 32, heads: 2 }, { slopes: alibiSlopes(2) }, 10)).toBeLessThan(
      1e-5,
    );
    expect(await compare({ tq: T, tk: T }, { slopes: null, causal: false, scale: 0.3 }, 13)).toBeLessThan(
      1e-5,
    );
  });

  it('matches the reference at head dim 128 (several lanes per row), for a block and a decode step', async () => {
    const slopes = alibiSlopes(1, 8, 'mpt');
    expect(await compare({ tq: 40, tk: 40, dh: 128, heads: 1 }, { slopes }, 17)).toBeLessThan(1e-5);
    expect(await compare({ tq: 1, tk: 40, dh: 128, heads: 1 }, { slopes }, 18)).toBeLessThan(1e-5);
  });

  it('honours a key padding mask', async () => {
    const keyMask = tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (i < 3 ? 0 : 1)),
      [B, T],
    );
    expect(await compare({ tq: 1, tk: T }, { slopes: alibiSlopes(H), keyMask }, 16)).toBeLessThan(1e-5);
    keyMask.dispose();
  });

  it('is differentiable: gradients through the fused op equal autodiff of the reference', async () => {
    const q = randomTensor([B, H, T, DH], 20);
    const k = randomTensor([B, H, T, DH], 21);
    const v = randomTensor([B, H, T, DH], 22);
    const dy = randomTensor([B, H, T, DH], 23);
    const slopes = alibiSlopes(H);
    const gradsOf = (impl: 'flash' | 'torch') =>
      tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(alibiAttention(a, b, c, { slopes, impl }), dy)),
      )([q, k, v]);
    const fused = gradsOf('flash');
    const plain = gradsOf('torch');
    for (let i = 0; i < 3; i++)
      expect(maxAbsDiff(await fused[i]!.data(), await plain[i]!.data())).toBeLessThan(1e-5);
    tf.dispose([q, k, v, dy, ...fused, ...plain]);
  });
});
