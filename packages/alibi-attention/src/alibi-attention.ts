import * as tf from '@tensorflow/tfjs-core';
import {
  type AttentionOptions,
  attentionBackward,
  attentionReference,
  type ResolvedAttentionOptions,
  resolveAttentionOptions,
} from './attention-reference.js';
import { runFlashAttentionKernel } from './flash/register-flash-attention.js';

/** `torch` is the plain-ops path; `flash`/`triton` (llm-foundry's names) and `auto` use the fused kernel on WebGPU. */
export type AttentionImpl = 'torch' | 'flash' | 'triton' | 'auto';

export interface AlibiAttentionOptions extends AttentionOptions {
  impl?: AttentionImpl;
}

/** Which implementation `alibiAttention` runs for this impl on the active backend. */
export function resolveAttentionImpl(
  impl: AttentionImpl = 'auto',
  backend = tf.getBackend(),
): 'fused' | 'plain' {
  return backend === 'webgpu' && impl !== 'torch' ? 'fused' : 'plain';
}

/**
 * The one-line notice for an explicit request of the fused kernel (`flash`/`triton`, as model cards set
 * `attn_impl`) on a backend that has none, or undefined when the request is honoured as asked.
 */
export function attentionImplNotice(
  impl: AttentionImpl = 'auto',
  backend = tf.getBackend(),
): string | undefined {
  if ((impl === 'flash' || impl === 'triton') && resolveAttentionImpl(impl, backend) === 'plain') {
    return `[mptjs] attn_impl=${impl}: the ${backend} backend has no fused attention kernel; using plain-ops attention`;
  }
  return undefined;
}

const noticed = new Set<string>();

/**
 * Causal ALiBi attention over `[B, H, T, Dh]` tensors: the fused WebGPU kernel on the webgpu backend (unless
 * `impl: 'torch'`), the plain-ops reference elsewhere. Both are differentiable: the fused forward's gradient is
 * the plain-ops vector-Jacobian product.
 */
export function alibiAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: AlibiAttentionOptions = {},
): tf.Tensor4D {
  const notice = attentionImplNotice(options.impl);
  if (notice && !noticed.has(notice)) {
    noticed.add(notice);
    console.warn(notice);
  }
  if (resolveAttentionImpl(options.impl) === 'plain') return attentionReference(q, k, v, options);
  const o = resolveAttentionOptions(q, k, v, options);
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qIn, kIn, vIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([qIn, kIn, vIn]);
    return {
      value: fusedForward(qIn, kIn, vIn, o),
      gradFunc: (dy, saved) => attentionBackward(saved[0]!, saved[1]!, saved[2]!, dy as tf.Tensor, o),
    };
  }) as (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor4D;
  return fused(q, k, v);
}

function fusedForward(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, o: ResolvedAttentionOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h] = q.shape as [number, number];
    const tk = k.shape[2]!;
    const slopes = o.slopes ? tf.tensor1d(o.slopes) : tf.zeros([h]);
    const keyMask = o.keyMask ? tf.cast(o.keyMask, 'float32') : tf.ones([b, tk]);
    return runFlashAttentionKernel(q, k, v, slopes, keyMask, {
      scale: o.scale,
      queryOffset: o.queryOffset,
      causal: o.causal,
    });
  });
}
