/**
 * The MPT model: parameters as tfjs Variables in llm-foundry naming, a full forward pass, the loss, and
 * incremental decoding with a KV cache. The math lives in `units.ts`; this class only holds weights and wires
 * the units together.
 */
import type { Int8Weight, LinearLayout } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { MPTConfig } from './config.js';
import { KVCache } from './inference/kv-cache.js';
import { wasmHeapDecodeEnabled, wasmHeapDecodeStep } from './inference/wasm-decode-step.js';
import { disposeRecordedDecoder } from './inference/webgpu-decode/generate-recorded.js';
import { initStateDict } from './init.js';
import { type OffloadOptions, type OffloadPlan, planOffload } from './offload.js';
import {
  blockParams,
  embeddingParams,
  headParams,
  type Int8Lookup,
  isBlockLinearWeight,
  type ParameterLookup,
} from './parameters.js';
import { QuantizationError, type QuantizeMode, quantizeModelWeights } from './quantize.js';
import { expectedParameterShapes } from './state-dict.js';
import type { HostTensor, StateDict } from './unit-chain/host-tensor.js';
import { type ChainUnit, type ParamMap, paramLookup } from './unit-chain/unit.js';
import {
  type AttentionContext,
  attentionSlopes,
  blockForward,
  embedForward,
  headForward,
  headLoss,
} from './units.js';

export class StateDictError extends Error {
  override name = 'StateDictError';
}

/** A unit of the MPT chain; the head also computes its loss. */
export interface MPTUnit extends ChainUnit<AttentionContext> {
  /** The head only: the mean cross-entropy of its logits against `targets`, fused where a backend allows. */
  loss?(params: ParamMap, input: tf.Tensor, ctx: AttentionContext, targets: tf.Tensor): tf.Scalar;
}

/** Token ids as nested arrays (`[B][T]`) or an int32 tensor `[B, T]`. */
export type TokenBatch = number[][] | tf.Tensor;

export interface ModelOptions {
  /**
   * Storage of the block matrices: `outIn` (default) keeps torch's `[out, in]`, which training and FSDP expect;
   * `inOut` stores them transposed, ~1.7x faster decode on wasm (for serving). The tied embedding stays `[V, d]`.
   */
  linearLayout?: LinearLayout;
  /**
   * Keep the weights of the blocks that do not fit `maxResidentBytes` in host memory and upload each right
   * before it runs (for backends with a bounded heap, e.g. wasm's 4 GiB). Results are bit-identical.
   */
  offload?: OffloadOptions;
  /**
   * `int8`: weight-only int8 block matrices and output head, for inference on wasm or webgpu (~4x fewer weight
   * bytes per decode step); `w8a8`: the same, and prefill's activations quantized to int8 too where the webgpu
   * device has int8 subgroup matrices. The model can then not be trained or saved; offload cannot be combined
   * with it.
   */
  quantize?: QuantizeMode;
}

/** What weight offload holds and has done (`model.weightOffload`). */
export interface WeightOffloadState extends OffloadPlan {
  /** Streamed-block uploads so far, and their bytes. */
  uploads: number;
  uploadedBytes: number;
  /** Largest `tf.memory().numBytes` seen with a streamed block uploaded. */
  peakTensorBytes: number;
}

const BLOCK_INDEX = /^transformer\.blocks\.(\d+)\./;

/** Transposes a row-major `[rows, cols]` matrix on the host. */
function transposeHost(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c]!;
  }
  return out;
}

export class MPTModel {
  readonly params: Map<string, tf.Variable>;
  private disposed = false;
  readonly slopes: Float32Array | null;
  /** The offload plan and counters, or null when every weight is a tensor. */
  readonly weightOffload: WeightOffloadState | null;
  /** Streamed blocks' weights in host memory, already in `linearLayout`. */
  private readonly hostParams: Map<string, HostTensor>;
  /** Int8 weights by parameter name (empty unless quantized); those matrices have no float32 Variable. */
  private readonly int8Params: Map<string, Int8Weight>;
  private readonly int8: Int8Lookup | undefined;

  private constructor(
    readonly config: MPTConfig,
    params: Map<string, tf.Variable>,
    readonly linearLayout: LinearLayout,
    hostParams: Map<string, HostTensor> = new Map(),
    plan: OffloadPlan | null = null,
    int8Params: Map<string, Int8Weight> = new Map(),
  ) {
    this.params = params;
    this.hostParams = hostParams;
    this.int8Params = int8Params;
    this.int8 = int8Params.size > 0 ? (name) => int8Params.get(name) : undefined;
    this.slopes = attentionSlopes(config);
    this.weightOffload = plan && { ...plan, uploads: 0, uploadedBytes: 0, peakTensorBytes: 0 };
  }

  /**
   * Builds the model from a state dict in llm-foundry names. Every expected tensor must be present with its
   * exact shape; extra tensors are rejected too, so a wrong config cannot load silently.
   */
  static fromStateDict(config: MPTConfig, stateDict: StateDict, options: ModelOptions = {}): MPTModel {
    const linearLayout = options.linearLayout ?? 'outIn';
    const expected = expectedParameterShapes(config);
    const problems: string[] = [];
    for (const [name, shape] of expected) {
      const t = stateDict.get(name);
      if (!t) problems.push(`missing tensor "${name}" (expected shape [${shape.join(', ')}])`);
      else if (t.shape.join() !== shape.join()) {
        problems.push(`tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      } else if (t.data.length !== shape.reduce((a, b) => a * b, 1)) {
        problems.push(`tensor "${name}" holds ${t.data.length} values for shape [${shape.join(', ')}]`);
      }
    }
    for (const name of stateDict.keys()) {
      if (!expected.has(name)) problems.push(`unexpected tensor "${name}" for this config`);
    }
    if (problems.length > 0)
      throw new StateDictError(`state dict does not fit the config:\n  ${problems.join('\n  ')}`);
    if (options.quantize && options.offload) {
      throw new QuantizationError(
        'int8 quantization and weight offload cannot be combined: int8 weights are a quarter of the float32 ' +
          'size (a 1.3B model fits the 4 GiB wasm heap); drop the offload option',
      );
    }
    const int8Params = options.quantize
      ? quantizeModelWeights(config, stateDict, options.quantize)
      : new Map<string, Int8Weight>();
    const plan = options.offload ? planOffload(config, options.offload) : null;
    const params = new Map<string, tf.Variable>();
    const hostParams = new Map<string, HostTensor>();
    for (const [name, shape] of expected) {
      if (int8Params.has(name)) continue;
      const host = stateDict.get(name)!.data;
      const transposed = linearLayout === 'inOut' && isBlockLinearWeight(name);
      const layoutShape = transposed ? [shape[1]!, shape[0]!] : shape;
      const data = transposed ? transposeHost(host, shape[0]!, shape[1]!) : host;
      const block = BLOCK_INDEX.exec(name);
      // A streamed block's weights never become tensors here: the heap may not hold them all.
      if (plan && block && Number(block[1]) >= plan.residentBlocks) {
        hostParams.set(name, { shape: layoutShape, data });
        continue;
      }
      // tf.variable copies its initial value: free the staging tensor so weights are held once.
      const staging = tf.tensor(data, layoutShape, 'float32');
      params.set(name, tf.variable(staging, true));
      staging.dispose();
    }
    return new MPTModel(config, params, linearLayout, hostParams, plan, int8Params);
  }

  /** The int8 weight of a quantized parameter (the head under `INT8_HEAD`), or undefined when it has none. */
  int8Weight(name: string): Int8Weight | undefined {
    return this.int8Params.get(name);
  }

  /** The weight quantization this model runs with, or null for float32. */
  get quantization(): QuantizeMode | null {
    const first = this.int8Params.values().next().value;
    if (!first) return null;
    return first.activations === 'int8' ? 'w8a8' : 'int8';
  }

  /** Throws for a quantized model: what needs float32 parameters (training, gradients, saving) cannot use it. */
  assertNotQuantized(what: string): void {
    if (this.quantization) {
      throw new QuantizationError(
        `${what} needs float32 weights, but this model is ${this.quantization}-quantized for inference: ` +
          'load it without quantize',
      );
    }
  }

  /** A randomly initialized model (llm-foundry's default kaiming_normal_ init; see `init.ts`). */
  static init(config: MPTConfig, seed: number, options: ModelOptions = {}): MPTModel {
    return MPTModel.fromStateDict(config, initStateDict(config, seed), options);
  }

  /** Parameter by llm-foundry name; throws on an unknown name. */
  readonly get: ParameterLookup = (name) => {
    const p = this.params.get(name);
    if (p) return p;
    if (this.hostParams.has(name)) {
      throw new StateDictError(
        `parameter "${name}" is offloaded to host memory: its block's weights are uploaded only while the ` +
          'model runs it (forward, prefill, decodeStep)',
      );
    }
    if (this.int8Params.has(name)) {
      throw new QuantizationError(`parameter "${name}" is int8-quantized: it has no float32 tensor`);
    }
    throw new StateDictError(`the model has no parameter "${name}"`);
  };

  get numParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    for (const h of this.hostParams.values()) n += h.data.length;
    for (const [name, q] of this.int8Params) if (isBlockLinearWeight(name)) n += q.n * q.k;
    return n;
  }

  /**
   * The unit chain: `embed`, `block.0` ... `block.{n-1}`, `head`. The head reads `transformer.wte.weight` too
   * (tied weights): a driver that computes gradients unit by unit must add both contributions. Block units
   * expect their matrices in this model's `linearLayout` (torch `[out, in]` by default).
   */
  units(): MPTUnit[] {
    const c = this.config;
    const shapes = [...expectedParameterShapes(c).keys()];
    const names = (prefix: string) => shapes.filter((n) => n.startsWith(prefix));
    const units: MPTUnit[] = [
      {
        name: 'embed',
        paramNames: c.learnedPosEmb
          ? ['transformer.wte.weight', 'transformer.wpe.weight']
          : ['transformer.wte.weight'],
        inputIsDifferentiable: false,
        forward: (params, ids, ctx) =>
          embedForward(c, embeddingParams(c, paramLookup(params, 'embed')), ids, ctx.pastLength),
      },
    ];
    for (let i = 0; i < c.nLayers; i++) {
      const name = `block.${i}`;
      units.push({
        name,
        paramNames: names(`transformer.blocks.${i}.`),
        inputIsDifferentiable: true,
        forward: (params, x, ctx) =>
          blockForward(
            c,
            i,
            blockParams(c, paramLookup(params, name), i, this.linearLayout, this.int8),
            x,
            ctx,
          ),
      });
    }
    units.push({
      name: 'head',
      paramNames: [...names('transformer.norm_f.'), 'transformer.wte.weight'],
      inputIsDifferentiable: true,
      forward: (params, x) => headForward(c, headParams(c, paramLookup(params, 'head'), this.int8), x),
      loss: (params, x, _ctx, targets) =>
        headLoss(c, headParams(c, paramLookup(params, 'head'), this.int8), x, targets),
    });
    return units;
  }

  /** Logits `[B, T, vocab]` for token ids `[B, T]` (no cache). `attentionMask` `[B, T]` marks left padding with 0. */
  forward(ids: TokenBatch, attentionMask?: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() =>
      this.run(this.toIds(ids), { slopes: this.slopes, pastLength: 0, keyMask: attentionMask ?? null }),
    );
  }

  /** Mean next-token cross-entropy of `forward(ids)` against `targets` (`-100` entries ignored). */
  loss(ids: TokenBatch, targets: TokenBatch): tf.Scalar {
    this.assertNotQuantized('the loss (training)');
    this.assertNotDisposed();
    return tf.tidy(() => {
      const ctx: AttentionContext = { slopes: this.slopes, pastLength: 0, keyMask: null };
      const units = this.units();
      let x = this.toIds(ids);
      for (const unit of units.slice(0, -1)) x = this.runUnit(unit, x, ctx);
      // The head's loss: on wasm the vocab projection and the cross-entropy run as one fused op.
      const head = units[units.length - 1] as Required<MPTUnit>;
      return head.loss(this.params, x, ctx, this.toIds(targets, true));
    });
  }

  /** An empty KV cache for this model (one per sequence or per batch of sequences decoded together). */
  newCache(): KVCache {
    // On webgpu and wasm the cache is preallocated and written in place (see `KVCacheOptions.preallocate`).
    return new KVCache(this.config.nLayers, { preallocate: { maxLength: this.config.maxSeqLen } });
  }

  /**
   * Runs `ids [B, T]` through the model, appending their keys and values to `cache`, and returns the logits of
   * every new position `[B, T, vocab]`. Used for the prompt (prefill) and for each decode step (T = 1).
   * `attentionMask [B, T]` (1 real, 0 left padding) is needed only for batches of prompts of different lengths.
   */
  forwardWithCache(ids: TokenBatch, cache: KVCache, attentionMask?: tf.Tensor2D): tf.Tensor3D {
    return this.runWithCache(ids, cache, attentionMask, false);
  }

  /** Prefill: the prompt's logits at its last position `[B, vocab]`, with the cache filled. */
  prefill(ids: TokenBatch, cache: KVCache, attentionMask?: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => lastPosition(this.runWithCache(ids, cache, attentionMask, true)));
  }

  /** One decode step: next-token logits `[B, vocab]` for one new token per sequence. */
  decodeStep(tokens: number[] | tf.Tensor1D, cache: KVCache): tf.Tensor2D {
    this.assertNotDisposed();
    // On wasm, a step our heap kernels fit runs without tfjs ops (see wasm-decode-step.ts).
    if (tf.getBackend() === 'wasm' && wasmHeapDecodeEnabled()) {
      const ids = Array.isArray(tokens) ? tokens : tokens.dataSync();
      const logits = wasmHeapDecodeStep(this, ids, cache);
      if (logits) return logits;
    }
    return tf.tidy(() => {
      const ids = Array.isArray(tokens)
        ? tf.tensor2d(tokens, [tokens.length, 1], 'int32')
        : tf.reshape(tokens, [-1, 1]);
      return lastPosition(this.runWithCache(ids, cache, undefined, true));
    });
  }

  /** The parameters as a host state dict (llm-foundry names, torch shapes whatever the layout), e.g. to save. */
  async toStateDict(): Promise<StateDict> {
    this.assertNotQuantized('saving a state dict');
    const out: StateDict = new Map();
    for (const name of expectedParameterShapes(this.config).keys()) {
      const p = this.params.get(name);
      const host = this.hostParams.get(name);
      if (!p && !host) continue;
      const shape = p ? [...p.shape] : host!.shape;
      const data = p ? ((await p.data()) as Float32Array) : host!.data.slice();
      if (this.linearLayout === 'inOut' && isBlockLinearWeight(name)) {
        const [rows, cols] = shape as [number, number];
        out.set(name, { shape: [cols, rows], data: transposeHost(data, rows, cols) });
      } else out.set(name, { shape, data });
    }
    return out;
  }

  dispose(): void {
    this.disposed = true;
    void disposeRecordedDecoder(this);
    for (const p of this.params.values()) p.dispose();
    this.params.clear();
    this.hostParams.clear();
    for (const q of this.int8Params.values()) tf.dispose([q.packed, q.scales]);
    this.int8Params.clear();
  }

  private run(ids: tf.Tensor, ctx: AttentionContext, headOnLastPosition = false): tf.Tensor3D {
    this.assertNotDisposed();
    const units = this.units();
    let x: tf.Tensor = ids;
    for (const unit of units.slice(0, -1)) x = this.runUnit(unit, x, ctx);
    // Generation needs only the last position's logits: skip the vocab projection for the others.
    if (headOnLastPosition) {
      const [b, t, d] = x.shape as [number, number, number];
      x = tf.slice(x, [0, t - 1, 0], [b, 1, d]);
    }
    return units[units.length - 1]!.forward(this.params, x, ctx) as tf.Tensor3D;
  }

  /** A disposed model fails with one clear error rather than the first unit's missing parameter. */
  private assertNotDisposed(): void {
    if (this.disposed)
      throw new StateDictError('the model was disposed: it has no parameter tensors left to run');
  }

  /** Runs one unit; a streamed block gets its weights uploaded for the call and freed right after. */
  private runUnit(unit: MPTUnit, x: tf.Tensor, ctx: AttentionContext): tf.Tensor {
    const host = unit.paramNames.filter((n) => this.hostParams.has(n));
    if (host.length === 0) return unit.forward(this.params, x, ctx);
    const uploaded = new Map<string, tf.Tensor>();
    try {
      for (const name of host) {
        const h = this.hostParams.get(name)!;
        uploaded.set(name, tf.tensor(h.data, h.shape, 'float32'));
      }
      const stats = this.weightOffload!;
      stats.uploads++;
      for (const name of host) stats.uploadedBytes += 4 * this.hostParams.get(name)!.data.length;
      stats.peakTensorBytes = Math.max(stats.peakTensorBytes, tf.memory().numBytes);
      // The unit's own parameters: the uploaded ones and the resident rest (`get` names any that is missing).
      const params = new Map(unit.paramNames.map((n) => [n, uploaded.get(n) ?? this.get(n)] as const));
      return unit.forward(params, x, ctx);
    } finally {
      tf.dispose([...uploaded.values()]);
    }
  }

  private runWithCache(
    ids: TokenBatch,
    cache: KVCache,
    attentionMask: tf.Tensor2D | undefined,
    lastOnly: boolean,
  ): tf.Tensor3D {
    return tf.tidy(() => {
      const x = this.toIds(ids);
      const pastLength = cache.length;
      if (pastLength + x.shape[1]! > this.config.maxSeqLen) {
        throw new RangeError(
          `sequence length ${pastLength + x.shape[1]!} exceeds max_seq_len ${this.config.maxSeqLen}`,
        );
      }
      const [b, t] = x.shape as [number, number];
      if (cache.batchSize !== undefined && cache.batchSize !== b) {
        throw new RangeError(`the cache holds a batch of ${cache.batchSize} sequences, got ${b}`);
      }
      // A preallocated cache settles its capacity (the width of its keys and key mask) for the whole step.
      cache.reserve(t);
      // The key mask is kept only once some position is padding; until then attention needs none.
      if (attentionMask || cache.keyMask) cache.appendMask(attentionMask ?? tf.ones([b, t]), pastLength);
      const ctx: AttentionContext = {
        slopes: this.slopes,
        pastLength,
        keyMask: cache.attentionKeyMask(b),
        cache,
      };
      // On webgpu (preallocated cache), upload the slopes once per step rather than once per block.
      if (cache.inPlace && this.slopes && tf.getBackend() === 'webgpu')
        ctx.slopesTensor = tf.tensor1d(this.slopes);
      return this.run(x, ctx, lastOnly);
    });
  }

  private toIds(ids: TokenBatch, allowIgnore = false): tf.Tensor {
    if (!Array.isArray(ids)) {
      if (ids.rank !== 2) throw new RangeError(`token ids must be [batch, time], got [${ids.shape}]`);
      return ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32');
    }
    const b = ids.length;
    const t = ids[0]?.length ?? 0;
    if (b === 0 || t === 0) throw new RangeError('token ids must be a non-empty [batch][time] array');
    const flat = new Int32Array(b * t);
    ids.forEach((row, i) => {
      if (row.length !== t) throw new RangeError(`row ${i} has ${row.length} tokens, row 0 has ${t}`);
      row.forEach((id, j) => {
        const ok =
          Number.isInteger(id) && ((id >= 0 && id < this.config.vocabSize) || (allowIgnore && id === -100));
        if (!ok)
          throw new RangeError(
            `token id ${id} at [${i}, ${j}] is outside the vocabulary [0, ${this.config.vocabSize})`,
          );
        flat[i * t + j] = id;
      });
    });
    return tf.tensor2d(flat, [b, t], 'int32');
  }
}

function lastPosition(logits: tf.Tensor3D): tf.Tensor2D {
  const [b, t, v] = logits.shape;
  return tf.reshape(tf.slice(logits, [0, t - 1, 0], [b, 1, v]), [b, v]);
}
