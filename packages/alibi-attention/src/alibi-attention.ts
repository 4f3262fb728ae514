import * as tf from '@tensorflow/tfjs-core';
import { type AttentionImpl, attentionImplEntry } from './attention-impls.js';
import {
  type AttentionOptions,
  attentionReference,
  type ResolvedAttentionOptions,
  resolveAttentionOptions,
} from './attention-reference.js';
import {
  type FlashAttentionAttrs,
  runFlashAttentionGradKernel,
  runFlashAttentionKernel,
  runFlashAttentionWithLse,
} from './flash/register-flash-attention.js';
import { decodeAttention, decodeAttentionApplies } from './wasm-kernels/decode-attention.js';

export interface AlibiAttentionOptions extends AttentionOptions {
  /** A registered implementation's name (`torch`, `flash`, `triton`, ...) or `auto` (the default). */
  impl?: AttentionImpl;
  /**
   * `slopes` already on the device (`[H]`, float32; zeros for no ALiBi), for the fused kernel: a caller running
   * many layers uploads them once instead of once per call. The plain path ignores it.
   */
  slopesTensor?: tf.Tensor;
}

/**
 * Which path `alibiAttention` runs for this impl on the active backend: `fused` (the WebGPU kernel), `plain` (the
 * plain ops) or `custom` (the function registered under that name). An unregistered name is an error.
 */
export function resolveAttentionImpl(
  impl: AttentionImpl = 'auto',
  backend = tf.getBackend(),
): 'fused' | 'plain' | 'custom' {
  const { path } = attentionImplEntry(impl);
  if (typeof path === 'function') return 'custom';
  return backend === 'webgpu' && path === 'fused' ? 'fused' : 'plain';
}

/**
 * The one-line notice for an explicit request of the fused kernel (`flash`/`triton`, as model cards set
 * `attn_impl`, or a name registered with `noticeOnFallback`) on a backend that has none, or undefined when the
 * request is honoured as asked.
 */
export function attentionImplNotice(
  impl: AttentionImpl = 'auto',
  backend = tf.getBackend(),
): string | undefined {
  if (attentionImplEntry(impl).noticeOnFallback && resolveAttentionImpl(impl, backend) === 'plain') {
    return `[mptjs] attn_impl=${impl}: the ${backend} backend has no fused attention kernel; using plain-ops attention`;
  }
  return undefined;
}

const noticed = new Set<string>();

/**
 * Causal ALiBi attention over `[B, H, T, Dh]` tensors: the fused WebGPU kernel on the webgpu backend (unless
 * `impl: 'torch'`), the plain-ops reference elsewhere, or the function registered under `impl`. Both built-in
 * paths are differentiable: under a gradient tape the fused forward also keeps each row's log-sum-exp and its
 * gradient is the fused backward kernel; the plain path is differentiated by tfjs autodiff.
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
  const { path } = attentionImplEntry(options.impl ?? 'auto');
  if (typeof path === 'function') return path(q, k, v, options);
  if (resolveAttentionImpl(options.impl) === 'plain') {
    // A decode step on wasm: one kernel over the cache instead of the plain ops.
    if (decodeAttentionApplies(q)) {
      const o = resolveAttentionOptions(q, k, v, options);
      if (o.causal && !o.keyMask) {
        return decodeAttention(q, k, v, { scale: o.scale, last: o.queryOffset, slopes: o.slopes });
      }
    }
    return attentionReference(q, k, v, options);
  }
  const o = resolveAttentionOptions(q, k, v, options);
  // Outside tf.grads/variableGrads nothing is taped, so inference skips the log-sum-exps and the O copy.
  if (tf.engine().state.gradientDepth === 0) {
    return tf.tidy(() => runFlashAttentionKernel(q, k, v, ...kernelInputs(q, k, o, options.slopesTensor)));
  }
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qIn, kIn, vIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const { o: out, forward } = runFlashAttentionWithLse(
      qIn,
      kIn,
      vIn,
      ...kernelInputs(qIn, kIn, o, options.slopesTensor),
    );
    save([qIn, kIn, vIn, forward]);
    return {
      value: out,
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const [qs, ks, vs, fs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
          return runFlashAttentionGradKernel(
            qs,
            ks,
            vs,
            fs,
            dy as tf.Tensor,
            ...kernelInputs(qs, ks, o, options.slopesTensor),
          );
        }),
    };
  }) as (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor4D;
  return fused(q, k, v);
}

/** The slopes (zeros for no ALiBi), float key mask (ones when absent) and attrs the fused kernels take. */
function kernelInputs(
  q: tf.Tensor,
  k: tf.Tensor,
  o: ResolvedAttentionOptions,
  slopesTensor?: tf.Tensor,
): [tf.Tensor, tf.Tensor, FlashAttentionAttrs] {
  const [b, h] = q.shape as [number, number];
  if (slopesTensor && (slopesTensor.size !== h || slopesTensor.dtype !== 'float32')) {
    throw new RangeError(
      `slopesTensor must hold ${h} float32 slopes, got [${slopesTensor.shape}] ${slopesTensor.dtype}`,
    );
  }
  const slopes = slopesTensor ?? (o.slopes ? tf.tensor1d(o.slopes) : tf.zeros([h]));
  const keyMask = o.keyMask ? tf.cast(o.keyMask, 'float32') : tf.ones([b, k.shape[2]!]);
  return [slopes, keyMask, { scale: o.scale, queryOffset: o.queryOffset, causal: o.causal }];
}
