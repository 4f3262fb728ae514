import * as tf from '@tensorflow/tfjs-core';
import { type AttentionImpl, attentionImplEntry } from './attention-impls.js';
import {
  type AttentionOptions,
  attentionReference,
  type ResolvedAttentionOptions,
  resolveAttentionDims,
  resolveAttentionOptions,
} from './attention-reference.js';
import type { AttentionLayout } from './flash/blocked-program.js';
import {
  type FlashAttentionAttrs,
  runFlashAttentionGradKernel,
  runFlashAttentionKernel,
  runFlashAttentionWithLse,
} from './flash/register-flash-attention.js';
import { mergeHeads, splitHeads } from './heads.js';
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
      if (o.causal) {
        const mask = o.keyMask ? { mask: o.keyMask } : {};
        return decodeAttention(q, k, v, { scale: o.scale, last: o.queryOffset, slopes: o.slopes, ...mask });
      }
    }
    return attentionReference(q, k, v, options);
  }
  const o = resolveAttentionOptions(q, k, v, options);
  return fusedAttention(q, k, v, o, 'heads', options.slopesTensor);
}

export interface AlibiAttentionRowsOptions extends AlibiAttentionOptions {
  /** Heads the `d = nHeads * Dh` columns of q, k and v hold. */
  nHeads: number;
}

/**
 * `alibiAttention` on rows as a QKV projection gives them: q `[B, Tq, d]`, k and v `[B, Tk, d]`, each row the
 * `nHeads` heads side by side, returning `[B, Tq, d]` the same way. On the fused (webgpu) path the kernels read
 * and write this layout directly and the gradients come back in it, so no head transposes run; elsewhere (the
 * plain ops, a custom implementation, the wasm decode kernel) it is `mergeHeads(alibiAttention(splitHeads(...)))`.
 * Options are `alibiAttention`'s.
 */
export function alibiAttentionRows(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: AlibiAttentionRowsOptions,
): tf.Tensor3D {
  const { nHeads } = options;
  if (!Number.isInteger(nHeads) || nHeads < 1) {
    throw new RangeError(`nHeads must be a positive integer, got ${nHeads}`);
  }
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) {
    throw new RangeError(
      `alibiAttentionRows expects q, k, v as [batch, time, heads*headDim], got [${q.shape}], [${k.shape}], [${v.shape}]`,
    );
  }
  const [b, tq, d] = q.shape as [number, number, number];
  const tk = k.shape[1]!;
  const same = (t: tf.Tensor) => t.shape[0] === b && t.shape[2] === d;
  if (!same(k) || !same(v) || v.shape[1] !== tk) {
    throw new RangeError(
      `q [${q.shape}], k [${k.shape}] and v [${v.shape}] disagree on batch, keys or width`,
    );
  }
  if (d % nHeads !== 0) throw new RangeError(`width ${d} does not split into ${nHeads} heads`);
  const dh = d / nHeads;
  if (resolveAttentionImpl(options.impl) !== 'fused') {
    return tf.tidy(() =>
      mergeHeads(
        alibiAttention(splitHeads(q, nHeads), splitHeads(k, nHeads), splitHeads(v, nHeads), options),
      ),
    );
  }
  const o = resolveAttentionDims(b, nHeads, tq, tk, dh, options);
  // [B, T, d] and [B, T, H, Dh] hold the same order: the reshapes move no data.
  const rows = (x: tf.Tensor, t: number) => tf.reshape(x, [b, t, nHeads, dh]);
  return tf.tidy(() => {
    const out = fusedAttention(rows(q, tq), rows(k, tk), rows(v, tk), o, 'rows', options.slopesTensor);
    return tf.reshape(out, [b, tq, d]) as tf.Tensor3D;
  });
}

/**
 * The fused kernels on q, k, v in `layout` (`[B, H, T, Dh]` or `[B, T, H, Dh]`): under a gradient tape the
 * training forward with its `customGrad` backward, else the plain forward. O comes back in `layout`.
 */
function fusedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  o: ResolvedAttentionOptions,
  layout: AttentionLayout,
  slopesTensor: tf.Tensor | undefined,
): tf.Tensor4D {
  const inputs = (qIn: tf.Tensor, kIn: tf.Tensor) => kernelInputs(qIn, kIn, o, layout, slopesTensor);
  // Outside tf.grads/variableGrads nothing is taped, so inference skips the log-sum-exps and the O copy.
  if (tf.engine().state.gradientDepth === 0) {
    return tf.tidy(() => runFlashAttentionKernel(q, k, v, ...inputs(q, k)));
  }
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qIn, kIn, vIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const { o: out, forward } = runFlashAttentionWithLse(qIn, kIn, vIn, ...inputs(qIn, kIn));
    save([qIn, kIn, vIn, forward]);
    return {
      value: out,
      gradFunc: (dy, saved) =>
        tf.tidy(() => {
          const [qs, ks, vs, fs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
          return runFlashAttentionGradKernel(qs, ks, vs, fs, dy as tf.Tensor, ...inputs(qs, ks));
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
  layout: AttentionLayout,
  slopesTensor?: tf.Tensor,
): [tf.Tensor, tf.Tensor, FlashAttentionAttrs] {
  const rows = layout === 'rows';
  const b = q.shape[0]!;
  const h = q.shape[rows ? 2 : 1]!;
  const tk = k.shape[rows ? 1 : 2]!;
  if (slopesTensor && (slopesTensor.size !== h || slopesTensor.dtype !== 'float32')) {
    throw new RangeError(
      `slopesTensor must hold ${h} float32 slopes, got [${slopesTensor.shape}] ${slopesTensor.dtype}`,
    );
  }
  const slopes = slopesTensor ?? (o.slopes ? tf.tensor1d(o.slopes) : tf.zeros([h]));
  const keyMask = o.keyMask ? tf.cast(o.keyMask, 'float32') : tf.ones([b, tk]);
  const attrs: FlashAttentionAttrs = { scale: o.scale, queryOffset: o.queryOffset, causal: o.causal };
  if (rows) attrs.layout = 'rows';
  return [slopes, keyMask, attrs];
}
