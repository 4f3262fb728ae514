import { selectBackend } from '@mptjs/kernels';
import { maxAbsDiff, randomTensor } from '@mptjs/test-fixtures';
import type * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AlibiAttentionOptions,
  alibiAttention,
  alibiSlopes,
  attentionImplEntry,
  attentionImplNames,
  attentionImplNotice,
  attentionReference,
  registerAttentionImpl,
  resolveAttentionImpl,
} from './index.js';

describe('the attention implementation registry', () => {
  it("registers llm-foundry's names, in order", () => {
    expect(attentionImplNames().slice(0, 3)).toEqual(['torch', 'flash', 'triton']);
    expect(attentionImplNames()).not.toContain('auto');
  });

  it('runs a name registered for the fused path like flash, notice included', () => {
    registerAttentionImpl('xformers', { path: 'fused', noticeOnFallback: true });
    expect(attentionImplNames()).toContain('xformers');
    expect(resolveAttentionImpl('xformers', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('xformers', 'wasm')).toBe('plain');
    expect(attentionImplNotice('xformers', 'wasm')).toBe(
      '[mptjs] attn_impl=xformers: the wasm backend has no fused attention kernel; using plain-ops attention',
    );
    expect(attentionImplNotice('xformers', 'webgpu')).toBeUndefined();
  });

  it('runs a name registered for the plain path like torch, quietly', () => {
    registerAttentionImpl('eager', { path: 'plain' });
    expect(resolveAttentionImpl('eager', 'webgpu')).toBe('plain');
    expect(attentionImplNotice('eager', 'cpu')).toBeUndefined();
  });

  it("lists the registered names in an unknown name's error", () => {
    registerAttentionImpl('sdpa', { path: 'fused' });
    const message =
      'unknown attention implementation "flex": registered are "torch", "flash", "triton", "xformers", "eager", "sdpa" (or "auto")';
    expect(() => resolveAttentionImpl('flex', 'webgpu')).toThrow(message);
    expect(() => attentionImplNotice('flex', 'wasm')).toThrow(message);
    expect(() => attentionImplEntry('flex')).toThrow(message);
  });

  it('refuses a name twice, "auto", an empty name and an entry without a path, naming the problem', () => {
    expect(() => registerAttentionImpl('flash', { path: 'plain' })).toThrow(
      'attention implementation "flash" is already registered',
    );
    expect(() => registerAttentionImpl('auto', { path: 'plain' })).toThrow(
      'attention implementation "auto" is reserved',
    );
    expect(() => registerAttentionImpl('', { path: 'plain' })).toThrow(
      'an attention implementation\'s name must be a non-empty string, got ""',
    );
    expect(() =>
      registerAttentionImpl('cuda', { path: 'gpu' } as unknown as Parameters<
        typeof registerAttentionImpl
      >[1]),
    ).toThrow('attention implementation "cuda": path must be "plain", "fused" or a function, got "gpu"');
    expect(attentionImplNames()).not.toContain('cuda');
  });
});

describe('a registered attention function', () => {
  beforeAll(async () => {
    await selectBackend('cpu', { log: false });
  });

  it('runs in place of the built-in paths, with the caller options', () => {
    const calls: AlibiAttentionOptions[] = [];
    // A user's own attention: here the reference with every score halved, so its output differs from both paths.
    const halfScale = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AlibiAttentionOptions) => {
      calls.push(options);
      return attentionReference(q, k, v, { ...options, scale: (options.scale ?? 0.5) / 2 });
    };
    registerAttentionImpl('half-scale', { path: halfScale });
    expect(resolveAttentionImpl('half-scale', 'webgpu')).toBe('custom');
    expect(resolveAttentionImpl('half-scale', 'cpu')).toBe('custom');
    expect(attentionImplNotice('half-scale', 'cpu')).toBeUndefined();

    const [B, H, T, DH] = [1, 2, 5, 4];
    const q = randomTensor([B, H, T, DH], 11);
    const k = randomTensor([B, H, T, DH], 12);
    const v = randomTensor([B, H, T, DH], 13);
    const slopes = alibiSlopes(H, 8, 'mpt');
    const out = alibiAttention(q, k, v, { slopes, scale: 0.5, impl: 'half-scale' });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ scale: 0.5, impl: 'half-scale' });
    const data = (t: tf.Tensor) => t.dataSync() as Float32Array;
    expect(maxAbsDiff(data(out), data(attentionReference(q, k, v, { slopes, scale: 0.25 })))).toBe(0);
    expect(maxAbsDiff(data(out), data(attentionReference(q, k, v, { slopes, scale: 0.5 })))).toBeGreaterThan(
      1e-3,
    );
  });
});
