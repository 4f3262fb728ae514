/**
 * The forward pass of a recorded decode step, shared by the one-sequence step and the batched one: the
 * embedding, per layer the QKV product, attention into the KV cache, the output projection and the MLP, then the
 * tied head. Each kernel reads the model's own weight buffers; with `batchRows` every kernel covers that many
 * rows and the caches hold `slots` sequences.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { MPTModel } from '../../model.js';
import { INT8_HEAD } from '../../parameters.js';
import type { KVCache } from '../kv-cache.js';
import {
  BufferUsage,
  flushTfjs,
  type GpuBuffer,
  RecordedDecodeError,
  tensorBuffer,
  type WebGpuBackendInternals,
  webGpuBackend,
} from './gpu.js';
import { bindingKinds, type Dispatch, type Recording, record } from './recording.js';
import {
  attentionShader,
  embedShader,
  type GemvShape,
  gemvReadsVec4,
  gemvShader,
  gemvWorkgroups,
  packHalvesShader,
  type StepWeightFormat,
  THREADS,
  type WeightFormat,
  weightBytes,
} from './shaders.js';

export const STORAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

export interface ForwardSpec {
  /** The `Step` uniform (one sequence) or the `Batch` uniform (`batchRows` set). */
  uniform: GpuBuffer;
  /** The input token (one sequence; a batch takes its tokens from the uniform). */
  token?: GpuBuffer;
  /** Rows of the batched step; undefined for one sequence. */
  batchRows?: number;
  /** Sequences the KV cache holds (1 for the one-sequence step). */
  slots: number;
  /**
   * How the matrix-vector products read the block matrices and the tied head (default f32: the model's own
   * buffers, which for an int8-quantized model are its int8 rows). `f16` packs half copies of float32 weights
   * once, into buffers the recording owns (`pack`).
   */
  weights?: WeightFormat;
}

/** What a recorded step reads of the weights per token, and what its packed copies hold. */
export interface WeightStats {
  /** `int8` for an int8-quantized model (its own int8 rows and scales are bound). */
  format: StepWeightFormat;
  /**
   * Bytes of weights one step of one row reads: the block matrices and the head in `format`, the float32 vectors
   * (LayerNorm, biases, QK-LayerNorm) and an embedding (and position) row. A batched step reads the matrices and
   * vectors once for all its rows, and one more embedding row per further row.
   */
  bytesPerStep: number;
  /** Of those, the matrices' bytes (block matrices and the tied head). */
  matrixBytesPerStep: number;
  /** Device bytes of packed copies held besides the model's weights (0 for f32 and int8). */
  packedBytes: number;
}

export interface RecordedForward {
  dispatches: Dispatch[];
  /** Per layer: keys and values `[slots, H, max_seq_len, Dh]`. */
  kCache: GpuBuffer[];
  vCache: GpuBuffer[];
  /** The head's output, `[rows, vocab]`. */
  logits: GpuBuffer;
  /** The model tensors whose buffers are bound (the step is unusable once any is disposed). */
  weights: tf.Tensor[];
  /** Dispatches that fill the packed weight copies: run once, before the first step. */
  pack: Dispatch[];
  weightStats: WeightStats;
}

/** Head size `d_model / n_heads`, or a clear error when the attention kernel cannot run it. */
export function headSize(model: MPTModel): number {
  const c = model.config;
  const dh = c.dModel / c.nHeads;
  if (!Number.isInteger(dh) || dh > THREADS) {
    throw new RecordedDecodeError(`head size ${dh} is not supported (at most ${THREADS})`);
  }
  return dh;
}

/** `format` when it names a weight format, else a clear error (it may come from a command line or a config). */
export function checkWeightFormat(format: unknown): WeightFormat {
  if (format === 'f32' || format === 'f16') return format;
  throw new RangeError(`weights must be "f32" or "f16", got ${JSON.stringify(format)}`);
}

/** Throws unless `model` can be recorded: every weight on the device, and not disposed. */
export function checkRecordableModel(model: MPTModel): void {
  if (model.weightOffload) {
    throw new RecordedDecodeError(
      'the recorded decode step needs every weight on the device: load without offload',
    );
  }
  if (model.params.size === 0) throw new RecordedDecodeError('the model is disposed');
}

/**
 * Builds a recorded decoder with `build` in a validation error scope: a validation error disposes what was built
 * and throws, naming `what` was being built.
 */
export async function buildRecorded<T extends { dispose(): void }>(
  backend: WebGpuBackendInternals,
  what: string,
  build: () => T,
): Promise<T> {
  const device = backend.device;
  device.pushErrorScope('validation');
  let built: T;
  try {
    built = build();
  } catch (e) {
    await device.popErrorScope();
    throw e;
  }
  const error = await device.popErrorScope();
  if (error) {
    built.dispose();
    throw new RecordedDecodeError(`building ${what} failed: ${error.message}`);
  }
  return built;
}

/**
 * Throws unless a decoder is still usable: not disposed (`name` says which decoder), its model's `weights`
 * alive, and the webgpu backend still active.
 */
export function checkDecoderUsable(name: string, disposed: boolean, weights: readonly tf.Tensor[]): void {
  if (disposed) throw new RecordedDecodeError(`the ${name} is disposed`);
  if (weights.some((w) => w.isDisposed)) {
    throw new RecordedDecodeError(
      'the model behind the recorded decoder was disposed or its weights replaced',
    );
  }
  webGpuBackend();
}

/** Submits the dispatches that fill a recording's packed weights (after what tfjs has queued, so they see it). */
export function runPack(backend: WebGpuBackendInternals, pack: readonly Dispatch[]): void {
  if (pack.length === 0) return;
  flushTfjs(backend);
  const encoder = backend.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass, pack);
  pass.end();
  backend.device.queue.submit([encoder.finish()]);
}

export function recordForward(
  rec: Recording,
  model: MPTModel,
  backend: WebGpuBackendInternals,
  spec: ForwardSpec,
): RecordedForward {
  const c = model.config;
  const d = c.dModel;
  const hidden = Math.round(c.expansionRatio * d);
  const rows = spec.batchRows ?? 1;
  const batched = spec.batchRows !== undefined;
  const batchRows = spec.batchRows;
  const dh = headSize(model);
  const dispatches: Dispatch[] = [];
  const weights: tf.Tensor[] = [];
  // An int8-quantized model has no float32 matrices: its own int8 weights are bound.
  const format: StepWeightFormat = model.quantization ? 'int8' : (spec.weights ?? 'f32');
  if (model.quantization && spec.weights === 'f16') {
    throw new RecordedDecodeError(
      `this model is ${model.quantization}-quantized: its recorded step reads its int8 weights (f16 copies are ` +
        'made of float32 weights only)',
    );
  }
  const pack: Dispatch[] = [];
  const stats: WeightStats = { format, bytesPerStep: 0, matrixBytesPerStep: 0, packedBytes: 0 };
  // Packed copies by source buffer, so a buffer bound twice would be packed once.
  const packed = new Map<GpuBuffer, GpuBuffer>();
  const matrix = (w: GpuBuffer, elements: number, label: string): GpuBuffer => {
    stats.matrixBytesPerStep += weightBytes(elements, format === 'f16' ? 'f16' : 'f32');
    if (format !== 'f16') return w;
    let copy = packed.get(w);
    if (!copy) {
      // A multiple of 8 bytes, so a vec4 of halves (a vec2<u32>) never straddles the end.
      copy = rec.buffer(8 * Math.ceil(elements / 4), STORAGE, `${label}.f16`);
      stats.packedBytes += copy.size;
      const { code, workgroups } = packHalvesShader(elements);
      const entries: [number, GpuBuffer][] = [
        [0, w],
        [1, copy],
      ];
      rec.dispatch(pack, rec.kernel('pack.f16', code, bindingKinds(entries, -1, [1])), entries, workgroups);
      packed.set(w, copy);
    }
    return copy;
  };
  const x = rec.buffer(4 * rows * d, STORAGE, 'x');
  const qkv = rec.buffer(12 * rows * d, STORAGE, 'qkv');
  const attended = rec.buffer(4 * rows * d, STORAGE, 'attended');
  const ffn = rec.buffer(4 * rows * hidden, STORAGE, 'ffn');
  const logits = rec.buffer(4 * rows * c.vocabSize, STORAGE, 'logits');
  const scores = rec.buffer(4 * rows * c.nHeads * c.maxSeqLen, STORAGE, 'scores');
  const weight = (name: string): GpuBuffer => {
    const t = model.get(name);
    weights.push(t);
    return tensorBuffer(backend, t);
  };
  /** A float32 vector read whole every step. */
  const vector = (name: string): GpuBuffer => {
    stats.bytesPerStep += 4 * model.get(name).size;
    return weight(name);
  };

  // The embedding.
  const embedBindings: [number, GpuBuffer][] = [
    [0, spec.uniform],
    [1, weight('transformer.wte.weight')],
  ];
  if (!batched) {
    if (!spec.token) throw new RecordedDecodeError('the one-sequence step needs its token buffer');
    embedBindings.push([2, spec.token]);
  }
  embedBindings.push([3, x]);
  if (c.learnedPosEmb) embedBindings.push([4, weight('transformer.wpe.weight')]);
  const embedCode = embedShader({
    dModel: d,
    learnedPosEmb: c.learnedPosEmb,
    ...(batchRows !== undefined ? { batchRows } : {}),
  });
  rec.dispatch(
    dispatches,
    rec.kernel('embed', embedCode, bindingKinds(embedBindings, 0, [3])),
    embedBindings,
    Math.ceil((rows * d) / THREADS),
  );

  /** An int8 model's matrix: its packed rows and scales, in `[out, in]` layout whatever the model's. */
  const int8Matrix = (
    name: string,
    shape: GemvShape,
  ): { w: GpuBuffer; scales: GpuBuffer; rowBytes: number } => {
    const q = model.int8Weight(name);
    if (!q || q.n !== shape.n || q.k !== shape.k) {
      throw new RecordedDecodeError(`the int8 model has no [${shape.n}, ${shape.k}] int8 weight "${name}"`);
    }
    weights.push(q.packed, q.scales);
    stats.matrixBytesPerStep += q.n * q.rowBytes + 4 * q.n;
    return {
      w: tensorBuffer(backend, q.packed, 'int32'),
      scales: tensorBuffer(backend, q.scales),
      rowBytes: q.rowBytes,
    };
  };
  const gemv = (
    label: string,
    given: GemvShape,
    name: string,
    input: GpuBuffer,
    output: GpuBuffer,
    extra: { bias?: string; ln?: string },
  ) => {
    const q =
      format === 'int8' ? int8Matrix(name === 'transformer.wte.weight' ? INT8_HEAD : name, given) : null;
    const shape: GemvShape = q ? { ...given, layout: 'outIn', weights: 'int8', rowBytes: q.rowBytes } : given;
    const entries: [number, GpuBuffer][] = [
      [gemvReadsVec4(shape) ? 6 : 0, q ? q.w : matrix(weight(name), shape.n * shape.k, label)],
      [1, input],
      [2, output],
    ];
    if (q) entries.push([8, q.scales]);
    if (shape.bias && extra.bias) entries.push([3, vector(extra.bias)]);
    if (shape.layerNorm && extra.ln) entries.push([4, vector(`${extra.ln}.weight`)]);
    if (shape.layerNorm?.bias && extra.ln) entries.push([5, vector(`${extra.ln}.bias`)]);
    if (batched) entries.push([7, spec.uniform]);
    const full: GemvShape = {
      ...shape,
      ...(batchRows !== undefined ? { batchRows } : {}),
      ...(format === 'f16' ? { weights: format } : {}),
    };
    const k = rec.kernel(label, gemvShader(full), bindingKinds(entries, batched ? 7 : -1, [2]));
    rec.dispatch(dispatches, k, entries, gemvWorkgroups(shape.n, shape.layout, shape.k));
  };
  const layout = model.linearLayout;
  const withBias = !c.noBias;
  const ln = { eps: c.layerNormEps, bias: withBias };
  const slopes = model.slopes;
  let slopeBuffer: GpuBuffer | null = null;
  if (slopes) {
    slopeBuffer = rec.buffer(4 * slopes.length, STORAGE, 'slopes');
    rec.device.queue.writeBuffer(slopeBuffer, 0, slopes);
  }
  const kCache: GpuBuffer[] = [];
  const vCache: GpuBuffer[] = [];
  const plain = { layerNorm: null, clip: null, scale: null } as const;
  for (let l = 0; l < c.nLayers; l++) {
    const p = `transformer.blocks.${l}`;
    const kc = rec.buffer(4 * spec.slots * c.maxSeqLen * d, STORAGE, `k.${l}`);
    const vc = rec.buffer(4 * spec.slots * c.maxSeqLen * d, STORAGE, `v.${l}`);
    kCache.push(kc);
    vCache.push(vc);
    const lin = (name: string) => ({ w: `${p}.${name}.weight`, bias: `${p}.${name}.bias` });
    const wqkv = lin('attn.Wqkv');
    gemv(
      'qkv',
      {
        k: d,
        n: 3 * d,
        layout,
        layerNorm: ln,
        bias: withBias,
        epilogue: 'store',
        clip: c.clipQkv,
        scale: null,
      },
      wqkv.w,
      x,
      qkv,
      { bias: wqkv.bias, ln: `${p}.norm_1` },
    );
    const attnEntries: [number, GpuBuffer][] = [
      [0, spec.uniform],
      [1, qkv],
      [2, kc],
      [3, vc],
      [4, scores],
      [5, attended],
    ];
    if (slopeBuffer) attnEntries.push([6, slopeBuffer]);
    if (c.qkLn) {
      attnEntries.push([7, vector(`${p}.attn.q_ln.weight`)], [8, vector(`${p}.attn.k_ln.weight`)]);
      if (withBias) attnEntries.push([9, vector(`${p}.attn.q_ln.bias`)], [10, vector(`${p}.attn.k_ln.bias`)]);
    }
    const attention = rec.kernel(
      'attention',
      attentionShader({
        dModel: d,
        nHeads: c.nHeads,
        maxSeqLen: c.maxSeqLen,
        scale: c.softmaxScale ?? 1 / Math.sqrt(dh),
        alibi: slopeBuffer !== null,
        qkLn: c.qkLn ? ln : null,
        ...(batchRows !== undefined ? { batchRows } : {}),
      }),
      bindingKinds(attnEntries, 0, [2, 3, 4, 5]),
    );
    rec.dispatch(dispatches, attention, attnEntries, rows * c.nHeads);
    const out = lin('attn.out_proj');
    gemv(
      'out_proj',
      { k: d, n: d, layout, bias: withBias, epilogue: 'residual', ...plain },
      out.w,
      attended,
      x,
      {
        bias: out.bias,
      },
    );
    const up = lin('ffn.up_proj');
    gemv(
      'up_proj',
      { k: d, n: hidden, layout, layerNorm: ln, bias: withBias, epilogue: 'gelu', clip: null, scale: null },
      up.w,
      x,
      ffn,
      { bias: up.bias, ln: `${p}.norm_2` },
    );
    const down = lin('ffn.down_proj');
    gemv(
      'down_proj',
      { k: hidden, n: d, layout, bias: withBias, epilogue: 'residual', ...plain },
      down.w,
      ffn,
      x,
      { bias: down.bias },
    );
  }
  // The tied head: the embedding is `[vocab, d]` whatever the block layout.
  gemv(
    'lm_head',
    {
      k: d,
      n: c.vocabSize,
      layout: 'outIn',
      layerNorm: ln,
      bias: false,
      epilogue: 'store',
      clip: null,
      scale: c.logitScale,
    },
    'transformer.wte.weight',
    x,
    logits,
    { ln: 'transformer.norm_f' },
  );
  // Each row decoded reads one embedding row (and one position row): counted here for one row.
  stats.bytesPerStep += stats.matrixBytesPerStep + 4 * d * (c.learnedPosEmb ? 2 : 1);
  return { dispatches, kCache, vCache, logits, weights, pack, weightStats: stats };
}

/**
 * Encodes the copy of one prompt's keys and values from a tfjs prefill cache (`[B, H, capacity, Dh]` per layer)
 * into slot `slot` of recorded caches (`[slots, H, max_seq_len, Dh]`): `length` positions of batch row `row`,
 * starting at position `start` (past its left padding).
 */
export function copyPrefillRows(
  encoder: { copyBufferToBuffer(a: GpuBuffer, ao: number, b: GpuBuffer, bo: number, size: number): void },
  backend: WebGpuBackendInternals,
  model: MPTModel,
  cache: KVCache,
  target: Pick<RecordedForward, 'kCache' | 'vCache'>,
  at: { row: number; start: number; length: number; slot: number },
): void {
  const c = model.config;
  const rowBytes = (4 * c.dModel) / c.nHeads;
  for (let l = 0; l < c.nLayers; l++) {
    const entry = cache.layer(l);
    if (!entry) throw new RecordedDecodeError(`the prefill cache has no layer ${l}`);
    const capacity = entry.k.shape[2];
    const k = tensorBuffer(backend, entry.k);
    const v = tensorBuffer(backend, entry.v);
    for (let h = 0; h < c.nHeads; h++) {
      const from = ((at.row * c.nHeads + h) * capacity + at.start) * rowBytes;
      const to = (at.slot * c.nHeads + h) * c.maxSeqLen * rowBytes;
      encoder.copyBufferToBuffer(k, from, target.kCache[l]!, to, at.length * rowBytes);
      encoder.copyBufferToBuffer(v, from, target.vCache[l]!, to, at.length * rowBytes);
    }
  }
}
