/**
 * Causal ALiBi attention of one query position over the KV cache on tfjs-wasm (`decode-attention.wat`), for
 * decode steps: one kernel per layer in place of the plain-ops path's six (two batch matmuls, the second of
 * which copies the keys transposed, scale, a bias built on the host, add, softmax), or about a dozen with a key
 * mask (a left-padded batch). Inference only (no gradient); everything else takes the plain-ops path.
 */

import {
  addressOf,
  backendMemory,
  kernelsFor,
  registerWasmKernels,
  type WasmBackendLike,
  wasmModuleRuns,
} from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { WASM_KERNELS } from '../wasm-kernels.generated.js';

/**
 * `q [B, H, 1, Dh]`, `k`, `v [B, H, Tk, Dh]`, optionally `mask [B, Tk]` (float32, 0 hides a key) ->
 * `[B, H, 1, Dh]`; attrs `scale`, `last`, `slopes`.
 */
export const DECODE_ATTENTION_KERNEL = 'DecodeAttentionSimd';

/** `decode_attention`'s arguments: byte addresses, then sizes; `slopes` 0 for no ALiBi. */
export interface DecodeAttentionExports {
  decode_attention(
    q: number,
    k: number,
    v: number,
    slopes: number,
    out: number,
    scratch: number,
    rows: number,
    heads: number,
    tk: number,
    dh: number,
    scale: number,
    last: number,
    mask: number,
  ): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

interface DecodeAttentionAttrs {
  scale: number;
  /** The query's position: keys 0..last are visible. */
  last: number;
  /** One ALiBi slope per head, or null for none. */
  slopes: Float32Array | null;
}

function decodeAttentionWasm(args: KernelArgs): tf.TensorInfo {
  const { q, k, v, mask } = args.inputs as Record<'q' | 'k' | 'v', tf.TensorInfo> & { mask?: tf.TensorInfo };
  const { scale, last, slopes } = args.attrs as unknown as DecodeAttentionAttrs;
  const backend = args.backend as WasmBackendLike;
  const [b, h, tq, dh] = q.shape as [number, number, number, number];
  const tk = k.shape[2]!;
  const fits =
    q.shape.length === 4 &&
    tq === 1 &&
    [q, k, v].every((t) => t.dtype === 'float32' && t.shape.length === 4) &&
    k.shape.join() === v.shape.join() &&
    k.shape[0] === b &&
    k.shape[1] === h &&
    k.shape[3] === dh &&
    (slopes === null || slopes.length === h) &&
    (!mask || (mask.dtype === 'float32' && mask.shape.join() === `${b},${tk}`));
  if (!fits) {
    throw new RangeError(
      `decodeAttention: expects float32 q [B, H, 1, Dh], k and v [B, H, Tk, Dh] and ${h} slopes (and a float32 mask [B, Tk] if any), got q [${q.shape}], k [${k.shape}], v [${v.shape}]${mask ? `, mask ${mask.dtype} [${mask.shape}]` : ''}`,
    );
  }
  const kernels = kernelsFor<DecodeAttentionExports>(backend, 'decode-attention', WASM_KERNELS);
  const memory = backendMemory(backend);
  if (!kernels || !memory)
    throw new Error('decodeAttention needs WebAssembly SIMD and a reachable wasm memory');
  const out = backend.makeOutput([b, h, 1, dh], 'float32');
  // Scratch: tk scores, then the slopes.
  const scratch = backend.makeOutput([tk + h], 'float32');
  try {
    // Addresses after the allocations: allocating may grow the memory.
    const scratchAt = addressOf(backend, scratch.dataId);
    if (slopes) new Float32Array(memory.buffer, scratchAt + 4 * tk, h).set(slopes);
    kernels.decode_attention(
      addressOf(backend, q.dataId),
      addressOf(backend, k.dataId),
      addressOf(backend, v.dataId),
      slopes ? scratchAt + 4 * tk : 0,
      addressOf(backend, out.dataId),
      scratchAt,
      b * h,
      h,
      tk,
      dh,
      scale,
      last,
      mask ? addressOf(backend, mask.dataId) : 0,
    );
  } finally {
    backend.disposeData(scratch.dataId);
  }
  return out as tf.TensorInfo;
}

/**
 * The kernel bound to `backend`'s memory, for a caller that chains heap kernels without tfjs ops (a decode
 * step): `q [rows, Dh]` and its `rows` (= batch x heads) queries' keys and values `[rows, tk, Dh]`, `scratch`
 * of `tk` floats, `out [rows, Dh]`, `mask [rows / heads, tk]` or 0. Null where it cannot run (not wasm, no
 * SIMD, our kernels switched off).
 */
export function decodeAttentionHeapKernel(
  backend: WasmBackendLike,
): DecodeAttentionExports['decode_attention'] | null {
  if (!wasmModuleRuns('decode-attention', WASM_KERNELS)) return null;
  return (
    kernelsFor<DecodeAttentionExports>(backend, 'decode-attention', WASM_KERNELS)?.decode_attention ?? null
  );
}

/** Registers the wasm kernel (idempotent). */
export function registerDecodeAttentionKernel(): void {
  registerWasmKernels({ [DECODE_ATTENTION_KERNEL]: decodeAttentionWasm });
}

/**
 * Whether `decodeAttention` can run for this query: wasm with our kernels on, one float32 query position and
 * nothing taped (no gradient). The caller checks that attention is causal.
 */
export function decodeAttentionApplies(q: tf.Tensor): boolean {
  if (q.rank !== 4 || q.shape[2] !== 1 || q.dtype !== 'float32') return false;
  if (tf.engine().state.gradientDepth !== 0) return false;
  return wasmModuleRuns('decode-attention', WASM_KERNELS);
}

/**
 * Causal attention of `q [B, H, 1, Dh]` at position `last` over `k`, `v [B, H, Tk, Dh]` (keys past `last`
 * unseen, and keys whose `mask [B, Tk]` value is 0), with ALiBi `slopes` (one per head) or none. Needs
 * `decodeAttentionApplies`.
 */
export function decodeAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: DecodeAttentionAttrs & { mask?: tf.Tensor },
): tf.Tensor4D {
  registerDecodeAttentionKernel();
  const { mask, ...attrs } = options;
  return tf.tidy(() => {
    const inputs: tf.NamedTensorMap = { q, k, v };
    if (mask) inputs['mask'] = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
    return tf
      .engine()
      .runKernel(DECODE_ATTENTION_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  });
}
