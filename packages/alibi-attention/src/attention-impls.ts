/**
 * The attention implementations a model config may name (`attn_impl`), llm-foundry style: a name maps to the path
 * `alibiAttention` runs and to whether a fallback is worth a notice. `torch`, `flash` and `triton` are registered
 * here; a user can register another name for one of the built-in paths, or for their own attention function. The
 * config parser accepts exactly the registered names, so adding one is one `registerAttentionImpl` call.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { AlibiAttentionOptions } from './alibi-attention.js';

/** An attention implementation: `alibiAttention`'s signature, `[B, H, T, Dh]` in and out. */
export type AttentionFunction = (
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: AlibiAttentionOptions,
) => tf.Tensor4D;

/** A registered name (`torch`, `flash`, `triton` or one a user added). */
export type AttentionImplName = 'torch' | 'flash' | 'triton' | (string & {});

/**
 * What `impl` may say: a registered name, or `auto` (the default: the fused kernel where the backend has one,
 * plain ops elsewhere, without a notice). `auto` is not a name a config may give.
 */
export type AttentionImpl = AttentionImplName | 'auto';

export interface AttentionImplEntry {
  /**
   * `plain`: the plain-ops reference on every backend. `fused`: the fused kernel where the backend has one (webgpu),
   * the plain ops elsewhere. A function: runs instead of either, on every backend.
   */
  path: 'plain' | 'fused' | AttentionFunction;
  /** For `fused`: say once, on stderr, when the backend has no fused kernel and the plain ops run instead. */
  noticeOnFallback?: boolean;
}

/** The value of `impl` that means "no choice"; reserved, never registered. */
export const AUTO_ATTENTION_IMPL = 'auto';

const AUTO_ENTRY: AttentionImplEntry = { path: 'fused' };
const entries = new Map<string, AttentionImplEntry>();

/**
 * Registers `name` (e.g. `xformers` as another name for the fused path, or a name for your own function). A name
 * registered twice, `auto`, an empty name or an entry without a valid path is an error.
 */
export function registerAttentionImpl(name: string, entry: AttentionImplEntry): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(
      `an attention implementation's name must be a non-empty string, got ${JSON.stringify(name)}`,
    );
  }
  if (name === AUTO_ATTENTION_IMPL) {
    throw new RangeError(
      'attention implementation "auto" is reserved: it means the best path for the backend',
    );
  }
  if (entries.has(name)) throw new RangeError(`attention implementation "${name}" is already registered`);
  const path = entry?.path;
  if (path !== 'plain' && path !== 'fused' && typeof path !== 'function') {
    throw new TypeError(
      `attention implementation "${name}": path must be "plain", "fused" or a function, got ${JSON.stringify(path)}`,
    );
  }
  entries.set(name, { path, noticeOnFallback: entry.noticeOnFallback === true });
}

/** The registered names, in registration order (`torch`, `flash`, `triton`, then any added). */
export function attentionImplNames(): string[] {
  return [...entries.keys()];
}

/** The entry for `impl` (`auto` included); a name nobody registered is an error listing the registered ones. */
export function attentionImplEntry(impl: AttentionImpl): AttentionImplEntry {
  if (impl === AUTO_ATTENTION_IMPL) return AUTO_ENTRY;
  const entry = entries.get(impl);
  if (entry === undefined) {
    const names = attentionImplNames()
      .map((n) => `"${n}"`)
      .join(', ');
    throw new RangeError(
      `unknown attention implementation ${JSON.stringify(impl)}: registered are ${names} (or "auto")`,
    );
  }
  return entry;
}

// llm-foundry's names: `torch` is its plain PyTorch attention; `flash` and `triton` are its fused kernels, which
// here are the WebGPU flash-attention kernel. A model card that asks for a fused kernel is told when it gets none.
registerAttentionImpl('torch', { path: 'plain' });
registerAttentionImpl('flash', { path: 'fused', noticeOnFallback: true });
registerAttentionImpl('triton', { path: 'fused', noticeOnFallback: true });
