import { describe, expect, it } from 'vitest';
import { attentionImplNotice, resolveAttentionImpl } from './alibi-attention.js';

describe('attn_impl', () => {
  it('runs the fused kernel only on webgpu, and never for torch', () => {
    expect(resolveAttentionImpl('auto', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('flash', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('triton', 'webgpu')).toBe('fused');
    expect(resolveAttentionImpl('torch', 'webgpu')).toBe('plain');
    expect(resolveAttentionImpl('flash', 'wasm')).toBe('plain');
    expect(resolveAttentionImpl('auto', 'cpu')).toBe('plain');
  });

  it('gives a one-line notice when flash/triton is asked for where no fused kernel exists', () => {
    expect(attentionImplNotice('flash', 'wasm')).toBe(
      '[mptjs] attn_impl=flash: the wasm backend has no fused attention kernel; using plain-ops attention',
    );
    expect(attentionImplNotice('triton', 'cpu')).toContain('attn_impl=triton: the cpu backend');
    expect(attentionImplNotice('flash', 'webgpu')).toBeUndefined();
    expect(attentionImplNotice('torch', 'wasm')).toBeUndefined();
    expect(attentionImplNotice('auto', 'wasm')).toBeUndefined();
  });
});
