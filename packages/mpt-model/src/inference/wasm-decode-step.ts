/**
 * A decode step on tfjs-wasm that chains our wasm kernels on the heap, with no tfjs op between the token ids and
 * the logits. Through tfjs ops a step of a small model costs about 25 ops a block (LayerNorms, the QKV split,
 * the cache write, attention, adds, GELU, reshapes and their scopes), each with microseconds of engine
 * bookkeeping: on a 512-wide model that was a third of the step beside the matrix-vector products that
 * stream the weights. Here each block is the same kernels called on byte addresses into buffers of the step:
 * LayerNorm, the QKV product (float32 `gemv` or int8, split over threads as `int8Linear` does), QK-LayerNorm,
 * the new keys and values copied into the preallocated KV cache, ALiBi decode attention, out-projection plus
 * residual, LayerNorm, up-projection and GELU, down-projection plus residual; then the final LayerNorm and the
 * tied head. The arithmetic is the tfjs-op path's, kernel for kernel, so logits are bit for bit the same.
 *
 * It runs when the step fits those kernels: the wasm backend with SIMD, one to four sequences, a preallocated
 * cache (a left-padded one too: attention reads its key mask), torch-layout weights resident on the heap,
 * nothing taped. Anything else takes the tfjs-op path.
 */
import { decodeAttentionHeapKernel } from '@mptjs/alibi-attention';
import {
  addressOf,
  backendMemory,
  GEMV_ROWS_MAX,
  int8LinearInto,
  type LinearParams,
  type NormParams,
  type WasmBackendLike,
  type WasmHeapKernels,
  wasmHeapKernels,
} from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { MPTConfig } from '../config.js';
import type { MPTModel } from '../model.js';
import { blockParams, embeddingParams, headParams } from '../parameters.js';
import type { KVCache } from './kv-cache.js';

let enabled = true;

/**
 * Turns the heap decode step on (the default) or off; off, wasm decode steps run as tfjs ops (for comparing the
 * two, as the tests and the decode benchmark do).
 */
export function setWasmHeapDecode(on: boolean): void {
  enabled = on;
}

/** Whether the heap decode step is on (`setWasmHeapDecode`). */
export function wasmHeapDecodeEnabled(): boolean {
  return enabled;
}

/** A step's buffers, allocated on the backend's heap for the step (no tfjs tensors: nothing to track or leak). */
interface Workspace {
  rows: number;
  x: DataRef;
  xn: DataRef;
  qkv: DataRef;
  attn: DataRef;
  proj: DataRef;
  up: DataRef;
  /** Attention scores of one query: up to the cache's capacity. */
  scores: DataRef;
  /** One ALiBi slope per head, or null without ALiBi. */
  slopes: DataRef | null;
}

type DataRef = { dataId: object };

function allocateWorkspace(
  backend: WasmBackendLike,
  model: MPTModel,
  rows: number,
  capacity: number,
): { ws: Workspace; free: () => void } {
  const c = model.config;
  const d = c.dModel;
  const ffn = Math.round(c.expansionRatio * d);
  const made: DataRef[] = [];
  const buffer = (size: number) => {
    const t = backend.makeOutput([size], 'float32');
    made.push(t);
    return t;
  };
  const free = () => {
    for (const t of made) backend.disposeData(t.dataId);
  };
  try {
    const ws: Workspace = {
      rows,
      x: buffer(rows * d),
      xn: buffer(rows * d),
      qkv: buffer(rows * 3 * d),
      attn: buffer(rows * d),
      proj: buffer(rows * d),
      up: buffer(rows * ffn),
      scores: buffer(capacity),
      slopes: model.slopes ? buffer(model.slopes.length) : null,
    };
    if (ws.slopes && model.slopes) {
      new Float32Array(backendMemory(backend)!.buffer, addressOf(backend, ws.slopes.dataId), c.nHeads).set(
        model.slopes,
      );
    }
    return { ws, free };
  } catch (err) {
    free();
    throw err;
  }
}

/** The model's kernels when a step of `rows` sequences over `cache` can run on the heap, else null. */
function applies(
  model: MPTModel,
  cache: KVCache,
  rows: number,
): { heap: WasmHeapKernels; attention: NonNullable<ReturnType<typeof decodeAttentionHeapKernel>> } | null {
  if (!enabled || tf.getBackend() !== 'wasm' || tf.engine().state.gradientDepth !== 0) return null;
  if (rows < 1 || rows > GEMV_ROWS_MAX || !cache.inPlace) return null;
  if (cache.batchSize !== undefined && cache.batchSize !== rows) return null;
  if (model.linearLayout !== 'outIn' || model.weightOffload !== null) return null;
  if (cache.length + 1 > model.config.maxSeqLen) return null; // the tfjs path names the error
  const backend = tf.backend() as unknown as WasmBackendLike;
  const heap = wasmHeapKernels(backend);
  const attention = decodeAttentionHeapKernel(backend);
  return heap && attention ? { heap, attention } : null;
}

/**
 * Next-token logits `[B, vocab]` for one new token per sequence through the heap kernels, or null when this step
 * does not fit them (see the module comment); the cache gains one position per layer.
 */
export function wasmHeapDecodeStep(
  model: MPTModel,
  tokens: ArrayLike<number>,
  cache: KVCache,
): tf.Tensor2D | null {
  const rows = tokens.length;
  const kernels = applies(model, cache, rows);
  if (!kernels) return null;
  const c = model.config;
  for (let i = 0; i < rows; i++) {
    const id = tokens[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
      throw new RangeError(`token id ${id} at [${i}, 0] is outside the vocabulary [0, ${c.vocabSize})`);
    }
  }
  const backend = tf.backend() as unknown as WasmBackendLike;
  cache.reserve(1);
  // A padded batch's key mask gains this step's (real) position before attention reads it.
  if (cache.keyMask) tf.tidy(() => cache.appendMask(tf.ones([rows, 1]), cache.length));
  const logits = backend.makeOutput([rows, c.vocabSize], 'float32');
  let workspace: ReturnType<typeof allocateWorkspace> | null = null;
  try {
    workspace = allocateWorkspace(backend, model, rows, cache.capacity);
    new HeapStep(model, backend, kernels.heap, kernels.attention, workspace.ws, cache).run(tokens, logits);
  } catch (err) {
    backend.disposeData(logits.dataId);
    throw err;
  } finally {
    workspace?.free();
  }
  return tf.engine().makeTensorFromTensorInfo(logits as tf.TensorInfo) as tf.Tensor2D;
}

type Attention = NonNullable<ReturnType<typeof decodeAttentionHeapKernel>>;

/** One step's walk through the layers; addresses are looked up per step (a variable's data may be replaced). */
class HeapStep {
  private readonly c: MPTConfig;
  private readonly rows: number;
  private readonly at: (t: DataRef) => number;

  constructor(
    private readonly model: MPTModel,
    private readonly backend: WasmBackendLike,
    private readonly heap: WasmHeapKernels,
    private readonly attention: Attention,
    private readonly ws: Workspace,
    private readonly cache: KVCache,
  ) {
    this.c = model.config;
    this.rows = ws.rows;
    this.at = (t) => addressOf(backend, t.dataId);
  }

  run(tokens: ArrayLike<number>, logits: DataRef): void {
    const { c, at } = this;
    const ws = this.ws;
    const d = c.dModel;
    const pos = this.cache.length;
    const embed = embeddingParams(c, this.model.get);
    for (let r = 0; r < this.rows; r++) {
      const row = at(ws.x) + 4 * r * d;
      this.heap.copy(row, at(embed.wte) + 4 * tokens[r]! * d, 4 * d);
      if (embed.wpe) this.heap.addInto(row, at(embed.wpe) + 4 * pos * d, d);
    }
    const int8 = (name: string) => this.model.int8Weight(name);
    for (let layer = 0; layer < c.nLayers; layer++) {
      this.block(layer, blockParams(c, this.model.get, layer, 'outIn', int8), pos);
    }
    const head = headParams(c, this.model.get, int8);
    this.norm(ws.x, head.normF, ws.xn);
    if (head.wteInt8) int8LinearInto(this.backend, ws.xn, head.wteInt8, logits, this.rows);
    else this.heap.gemv(at(ws.xn), at(head.wte), at(logits), this.rows, c.vocabSize, d);
    if (c.logitScale !== null) {
      // A float32 scale, as tfjs's multiply by a scalar tensor uses (the product then rounds the same).
      const scale = Math.fround(c.logitScale);
      const view = this.floats(logits, this.rows * c.vocabSize);
      for (let i = 0; i < view.length; i++) view[i] = view[i]! * scale;
    }
  }

  private block(layer: number, p: ReturnType<typeof blockParams>, pos: number): void {
    const { c, ws, heap, at, rows } = this;
    const d = c.dModel;
    const h = c.nHeads;
    const dh = d / h;
    const ffn = Math.round(c.expansionRatio * d);
    this.norm(ws.x, p.norm1, ws.xn);
    this.linear(ws.xn, p.wqkv, ws.qkv, 3 * d, d);
    if (c.clipQkv !== null) {
      const view = this.floats(ws.qkv, rows * 3 * d);
      const clip = Math.fround(c.clipQkv);
      for (let i = 0; i < view.length; i++) view[i] = Math.min(clip, Math.max(-clip, view[i]!));
    }
    const { k, v, pos: at0 } = this.cache.claimRows(layer, [rows, h, 1, dh]);
    const capacity = k.shape[2];
    // `[B, capacity]`, 0 for left padding and unfilled positions; null when nothing is padded.
    const mask = this.cache.keyMask;
    const scale = c.softmaxScale ?? 1 / Math.sqrt(dh);
    for (let r = 0; r < rows; r++) {
      // QK-LayerNorm runs over the whole d_model vector, in place in this row of [q | k | v].
      const q = at(ws.qkv) + 4 * r * 3 * d;
      if (p.qLn) this.normRow(q, p.qLn);
      if (p.kLn) this.normRow(q + 4 * d, p.kLn);
      // Keys and values into the cache `[B, H, capacity, Dh]`, one head's Dh floats at a time.
      const kRow = at(k) + 4 * r * h * capacity * dh;
      const vRow = at(v) + 4 * r * h * capacity * dh;
      for (let head = 0; head < h; head++) {
        const to = 4 * (head * capacity + at0) * dh;
        heap.copy(kRow + to, q + 4 * (d + head * dh), 4 * dh);
        heap.copy(vRow + to, q + 4 * (2 * d + head * dh), 4 * dh);
      }
      this.attention(
        q,
        kRow,
        vRow,
        ws.slopes ? at(ws.slopes) : 0,
        at(ws.attn) + 4 * r * d,
        at(ws.scores),
        h,
        h,
        capacity,
        dh,
        scale,
        pos,
        mask ? at(mask) + 4 * r * capacity : 0,
      );
    }
    this.linear(ws.attn, p.outProj, ws.proj, d, d);
    heap.addInto(at(ws.x), at(ws.proj), rows * d);
    this.norm(ws.x, p.norm2, ws.xn);
    this.linear(ws.xn, p.upProj, ws.up, ffn, d);
    heap.gelu(at(ws.up), at(ws.up), rows * ffn);
    this.linear(ws.up, p.downProj, ws.proj, d, ffn);
    heap.addInto(at(ws.x), at(ws.proj), rows * d);
  }

  /** `y [rows, n] = x [rows, k] . W^T (+ b)`. */
  private linear(x: DataRef, p: LinearParams, y: DataRef, n: number, k: number): void {
    const heap = this.heap;
    const at = this.at;
    const rows = this.rows;
    if (p.int8) int8LinearInto(this.backend, x, p.int8, y, rows);
    else heap.gemv(at(x), at(p.weight), at(y), rows, n, k);
    if (p.bias) for (let r = 0; r < rows; r++) heap.addInto(at(y) + 4 * r * n, at(p.bias), n);
  }

  /** LayerNorm of every row of `x [rows, d_model]` into `y`. */
  private norm(x: DataRef, p: NormParams, y: DataRef): void {
    const heap = this.heap;
    const at = this.at;
    const c = this.c;
    heap.layerNorm(at(x), at(p.weight), p.bias ? at(p.bias) : 0, at(y), this.rows, c.dModel, c.layerNormEps);
  }

  /** LayerNorm of one d_model-wide vector at byte address `row`, in place. */
  private normRow(row: number, p: NormParams): void {
    const heap = this.heap;
    const at = this.at;
    const c = this.c;
    heap.layerNorm(row, at(p.weight), p.bias ? at(p.bias) : 0, row, 1, c.dModel, c.layerNormEps);
  }

  /** A float view of a buffer's first `n` values (taken after every allocation: growth detaches views). */
  private floats(t: DataRef, n: number): Float32Array {
    return new Float32Array(backendMemory(this.backend)!.buffer, this.at(t), n);
  }
}
