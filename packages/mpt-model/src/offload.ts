/**
 * Weight offload for backends with a bounded heap (tfjs-wasm's wasm32 memory ends at 4 GiB): the blocks that do
 * not fit a byte budget keep their weights in host memory and are uploaded right before they run. This module
 * only plans (which blocks stay resident, what the automatic budget is); `MPTModel` does the streaming.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MPTConfig } from './config.js';
import { QuantizationError, type QuantizeMode, quantizedWeightBytes } from './quantize.js';
import { expectedParameterShapes } from './state-dict.js';

/** A wasm32 module's memory ends at 65,536 pages of 64 KiB. */
export const WASM_HEAP_LIMIT_BYTES = 4 * 2 ** 30;

export interface OffloadOptions {
  /**
   * The most bytes of weights held as tensors at once: the embedding (tied head), the resident blocks and the one
   * streamed block being run. Blocks are resident from the first one on while they fit.
   */
  maxResidentBytes: number;
}

export interface OffloadPlan {
  /** Blocks `0 .. residentBlocks-1` are tensors for the model's lifetime; the rest are streamed. */
  residentBlocks: number;
  streamedBlocks: number;
  /** Bytes of weights that stay tensors (embedding, norms, resident blocks). */
  residentBytes: number;
  /** Bytes of one block's weights (the streamed working set). */
  blockBytes: number;
  /** Bytes of all weights in fp32. */
  totalBytes: number;
}

const bytesOf = (shape: number[]) => 4 * shape.reduce((a, b) => a * b, 1);

/** fp32 bytes of the non-block weights (embedding, position embedding, final norm) and of one block. */
export function weightBytes(config: MPTConfig): { fixed: number; block: number; total: number } {
  let fixed = 0;
  let block = 0;
  for (const [name, shape] of expectedParameterShapes(config)) {
    if (name.startsWith('transformer.blocks.0.')) block += bytesOf(shape);
    else if (!name.startsWith('transformer.blocks.')) fixed += bytesOf(shape);
  }
  return { fixed, block, total: fixed + config.nLayers * block };
}

/** Which blocks stay resident under `maxResidentBytes`; throws when not even one streamed block fits. */
export function planOffload(config: MPTConfig, options: OffloadOptions): OffloadPlan {
  const { fixed, block, total } = weightBytes(config);
  const budget = options.maxResidentBytes;
  if (!(budget > 0)) throw new RangeError(`maxResidentBytes must be positive, got ${budget}`);
  const n = config.nLayers;
  let resident = n;
  if (budget < total) {
    if (budget < fixed + block) {
      throw new RangeError(
        `a weight budget of ${formatBytes(budget)} cannot hold the embedding (${formatBytes(fixed)}) plus one ` +
          `streamed block (${formatBytes(block)}); give at least ${formatBytes(fixed + block)}`,
      );
    }
    resident = Math.min(n - 1, Math.floor((budget - fixed - block) / block));
  }
  return {
    residentBlocks: resident,
    streamedBlocks: n - resident,
    residentBytes: fixed + resident * block,
    blockBytes: block,
    totalBytes: total,
  };
}

/**
 * Heap bytes to keep free of weights when the model runs `batch` sequences up to `max_seq_len`: the KV cache,
 * a prefill's attention scores (softmax input and output) and FFN activations, and slack for fragmentation.
 */
export function activationReserveBytes(config: MPTConfig, batch = 1): number {
  const t = config.maxSeqLen;
  const d = config.dModel;
  const kv = 4 * 2 * config.nLayers * t * d;
  const scores = 4 * 2 * config.nHeads * t * t;
  const ffn = 4 * 4 * t * Math.round(config.expansionRatio * d);
  return batch * (kv + scores + ffn) + 64 * 2 ** 20;
}

export type OffloadMode = 'auto' | 'on' | 'off';

export interface OffloadChoice {
  offload: OffloadOptions | undefined;
  /** A one-line notice when offload is on (what is resident, what streams), for the user. */
  notice: string | undefined;
}

/**
 * Decides whether to offload: `auto` offloads on wasm when the fp32 weights plus the activation reserve would
 * not fit the heap; `on` always offloads (budget: `maxResidentBytes`, else the heap minus the reserve); `off`
 * never does.
 */
export function chooseOffload(
  config: MPTConfig,
  options: {
    backend: string;
    mode: OffloadMode;
    maxResidentBytes?: number | undefined;
    heapBytes?: number;
    batch?: number;
    /** Quantized weights are never offloaded: `auto` checks that they fit, `on` or a budget is an error. */
    quantize?: QuantizeMode | undefined;
  },
): OffloadChoice {
  const heap = options.heapBytes ?? WASM_HEAP_LIMIT_BYTES;
  const room = heap - activationReserveBytes(config, options.batch);
  if (options.quantize) {
    if (options.mode === 'on' || options.maxResidentBytes !== undefined) {
      throw new QuantizationError(
        `${options.quantize} weights cannot be offloaded: drop the offload options`,
      );
    }
    const { int8 } = quantizedWeightBytes(config);
    if (options.mode === 'auto' && options.backend === 'wasm' && int8 > room) {
      throw new QuantizationError(
        `${options.quantize} weights (${formatBytes(int8)}) do not fit the ${formatBytes(heap)} wasm heap with ` +
          'room for activations, and quantized weights cannot be offloaded',
      );
    }
    return { offload: undefined, notice: undefined };
  }
  if (options.mode === 'off') return { offload: undefined, notice: undefined };
  const { total } = weightBytes(config);
  if (options.mode === 'auto' && options.maxResidentBytes === undefined) {
    if (options.backend !== 'wasm' || total <= room) return { offload: undefined, notice: undefined };
  }
  const maxResidentBytes = options.maxResidentBytes ?? room;
  const plan = planOffload(config, { maxResidentBytes });
  const why =
    options.mode === 'auto' && options.maxResidentBytes === undefined
      ? `fp32 weights (${formatBytes(total)}) do not fit the ${formatBytes(heap)} wasm heap with room for activations: `
      : '';
  const notice =
    `[mptjs] weight offload: ${why}budget ${formatBytes(maxResidentBytes)} of weights in the heap, ` +
    `embedding + ${plan.residentBlocks} of ${config.nLayers} blocks resident, ${plan.streamedBlocks} streamed ` +
    `from host memory each step`;
  return { offload: { maxResidentBytes }, notice };
}

/** Bytes as GiB with two decimals (or MiB below 1 GiB). */
export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The wasm backend's current linear-memory size in bytes (it never shrinks, so it is the peak); else null. */
export function backendHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8?.buffer.byteLength ?? null;
}
