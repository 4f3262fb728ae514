/**
 * The model as a chain of pure units: `embed -> block 0 -> ... -> block n-1 -> head (-> loss)`. Each takes its
 * parameters and its input and returns its output, so a driver can run them one at a time, forward and backward
 * (activation checkpointing, FSDP), or all at once (`MPTModel.forward`).
 */
import {
  alibiAttention,
  alibiAttentionRows,
  alibiSlopes,
  mergeHeads,
  splitHeads,
} from '@mptjs/alibi-attention';
import { fusedCrossEntropy, layerNorm, linear, linearGelu } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { MPTConfig } from './config.js';
import type { KVCache } from './inference/kv-cache.js';
import { embeddingLookup, scaleGradient } from './layers.js';
import { lmHeadCrossEntropy, lmHeadCrossEntropyFused } from './lm-head-loss.js';
import type { BlockParams, EmbeddingParams, HeadParams } from './parameters.js';

/** Per-call attention context shared by every block. */
export interface AttentionContext {
  /** ALiBi slopes for the config (null when ALiBi is off). */
  slopes: Float32Array | null;
  /** The same slopes on the device, uploaded once for all blocks of a call (fused attention only). */
  slopesTensor?: tf.Tensor1D;
  /** Tokens already in the cache before this call (0 without a cache). */
  pastLength: number;
  /** `[B, past + T]`: 1 for real tokens, 0 for padding; null when nothing is padded. */
  keyMask: tf.Tensor | null;
  cache?: KVCache;
}

export function attentionSlopes(config: MPTConfig): Float32Array | null {
  return config.alibi ? alibiSlopes(config.nHeads, config.alibiBiasMax, config.modelType) : null;
}

/** `x = wte[ids]` (+ `wpe[positions]` without ALiBi): `[B, T] -> [B, T, d_model]`. */
export function embedForward(
  config: MPTConfig,
  p: EmbeddingParams,
  ids: tf.Tensor,
  pastLength = 0,
): tf.Tensor3D {
  return tf.tidy(() => {
    let x = embeddingLookup(p.wte, ids);
    if (p.wpe) {
      const t = ids.shape[1]!;
      if (pastLength + t > config.maxSeqLen) {
        throw new RangeError(`sequence length ${pastLength + t} exceeds max_seq_len ${config.maxSeqLen}`);
      }
      x = tf.add(x, tf.slice(p.wpe, [pastLength, 0], [t, config.dModel]));
    }
    return scaleGradient(x, config.embeddingFraction) as tf.Tensor3D;
  });
}

/** One transformer block: `x + attn(LN(x))`, then `+ ffn(LN(x))`. `[B, T, d] -> [B, T, d]`. */
export function blockForward(
  config: MPTConfig,
  layer: number,
  p: BlockParams,
  x: tf.Tensor,
  ctx: AttentionContext,
): tf.Tensor3D {
  return tf.tidy(() => {
    const d = config.dModel;
    const eps = config.layerNormEps;
    let qkv = linear(layerNorm(x, p.norm1, eps), p.wqkv);
    if (config.clipQkv !== null) qkv = tf.clipByValue(qkv, -config.clipQkv, config.clipQkv);
    let [q, k, v] = tf.split(qkv, [d, d, d], -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
    // QK-LayerNorm runs over the whole d_model vector, before the heads are split.
    if (p.qLn) q = layerNorm(q, p.qLn, eps);
    if (p.kLn) k = layerNorm(k, p.kLn, eps);
    const options = {
      slopes: ctx.slopes,
      slopesTensor: ctx.slopesTensor,
      scale: config.softmaxScale ?? 1 / Math.sqrt(d / config.nHeads),
      causal: true,
      queryOffset: ctx.pastLength,
      keyMask: ctx.keyMask ?? undefined,
      impl: config.attnImpl,
    };
    let attended: tf.Tensor;
    if (ctx.cache) {
      // With a cache, the keys and values attention sees are the cache's (on webgpu and wasm its preallocated
      // buffers, `[B, H, capacity, Dh]`, written in place; causal attention at `pastLength` never reaches their
      // unfilled positions).
      const { k: kh, v: vh } = ctx.cache.appendRows(layer, k, v, config.nHeads);
      attended = mergeHeads(alibiAttention(splitHeads(q, config.nHeads), kh, vh, options));
    } else {
      // Rows as the projection gives them: on webgpu the fused kernels read and write `[B, T, H, Dh]` and no head
      // transposes run, forward or backward; elsewhere this is the split/attend/merge of the cache path.
      attended = alibiAttentionRows(q, k, v, { ...options, nHeads: config.nHeads });
    }
    const h = tf.add(x, linear(attended, p.outProj));
    // up_proj and GELU in one fused matmul on webgpu (its epilogue applies the activation).
    const ffn = linear(linearGelu(layerNorm(h, p.norm2, eps), p.upProj), p.downProj);
    return tf.add(h, ffn) as tf.Tensor3D;
  });
}

/** Final LayerNorm and the tied head: `[B, T, d] -> logits [B, T, vocab]` (times `logit_scale` if set). */
export function headForward(config: MPTConfig, p: HeadParams, x: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const logits = linear(
      layerNorm(x, p.normF, config.layerNormEps),
      p.wteInt8 ? { weight: p.wte, int8: p.wteInt8 } : { weight: p.wte },
    );
    return (config.logitScale === null ? logits : tf.mul(logits, config.logitScale)) as tf.Tensor3D;
  });
}

/** Label value that `crossEntropyLoss` skips, as in Hugging Face and torch (`ignore_index=-100`). */
export const IGNORE_INDEX = -100;

/**
 * Mean cross-entropy of `logits [B, T, V]` against `targets [B, T]` over the positions whose target is not
 * `IGNORE_INDEX` (0 when every target is ignored). On webgpu one fused kernel per pass, never writing the softmax
 * over the vocabulary; elsewhere log-softmax and a one-hot product, whose gradient runs on every backend.
 */
export function crossEntropyLoss(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return fusedCrossEntropy(logits, targets, IGNORE_INDEX);
}

/**
 * `crossEntropyLoss(headForward(config, p, x), targets)`, on wasm as one fused op (`lmHeadCrossEntropy`) that
 * never writes the logits in `[B, T, vocab]` order; elsewhere, or with an int8 head or a `logit_scale`, the two
 * calls as they are.
 */
export function headLoss(config: MPTConfig, p: HeadParams, x: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (p.wteInt8 || config.logitScale !== null || !lmHeadCrossEntropyFused(x, p.wte)) {
      return crossEntropyLoss(headForward(config, p, x), targets);
    }
    const h = layerNorm(x, p.normF, config.layerNormEps);
    return lmHeadCrossEntropy(h, p.wte, targets, IGNORE_INDEX);
  });
}
