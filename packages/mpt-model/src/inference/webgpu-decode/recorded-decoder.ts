/**
 * A decode step recorded once per model: its pipelines, buffers (the model's own weight buffers, a KV cache for
 * `max_seq_len` positions, scratch) and bind groups are built at creation, so a token costs one 32-byte
 * uniform write, one compute pass of `dispatchesPerToken` dispatches, one submit and a 4-byte read. The chosen
 * token stays on the device as the next step's input, so a step can be queued before the previous read returns.
 *
 * Prefill runs the model's tfjs path (its matmul kernels suit many rows) into a tfjs KV cache, whose rows are
 * then copied into the recorded cache; the token after the prompt is chosen on the device from its logits.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { MPTModel } from '../../model.js';
import {
  BufferUsage,
  flushTfjs,
  type GpuBindGroup,
  type GpuBindGroupLayout,
  type GpuBuffer,
  type GpuComputePass,
  type GpuDevice,
  type GpuPipeline,
  MAP_MODE_READ,
  RecordedDecodeError,
  SHADER_STAGE_COMPUTE,
  tensorBuffer,
  type WebGpuBackendInternals,
  webGpuBackend,
} from './gpu.js';
import {
  argmaxShaders,
  attentionShader,
  embedShader,
  type GemvShape,
  gemvReadsVec4,
  gemvShader,
  gemvWorkgroups,
  sampleShader,
  THREADS,
} from './shaders.js';

/** How the device chooses each token: the arg-max, or a seeded draw. */
export type TokenChoice =
  | { greedy: true }
  | { greedy?: false; temperature: number; topK?: number; topP?: number; seed?: number };

export interface StepOutput {
  token: number;
  /** The logits the token was chosen from, when the decoder was created with `debugLogits`. */
  logits?: Float32Array;
}

export interface RecordedDecoderOptions {
  /** Also copy each step's logits to the host (for tests; costs a vocabulary-sized read per token). */
  debugLogits?: boolean;
}

type BindingKind = 'uniform' | 'read' | 'storage';

interface Kernel {
  pipeline: GpuPipeline;
  layout: GpuBindGroupLayout;
}

interface Dispatch {
  pipeline: GpuPipeline;
  group: GpuBindGroup;
  workgroups: number;
}

const UNIFORM_BYTES = 32;

/** Whether `choice` is the arg-max. */
function isGreedyChoice(choice: TokenChoice): choice is { greedy: true } {
  return choice.greedy === true;
}

function validateChoice(choice: TokenChoice): void {
  if (isGreedyChoice(choice)) return;
  const { temperature, topK = 0, topP = 1, seed = 0 } = choice;
  if (!(temperature > 0 && Number.isFinite(temperature)))
    throw new RangeError(`temperature must be > 0 when sampling, got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0))
    throw new RangeError(`topK must be a non-negative integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff))
    throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
}

export class RecordedDecoder {
  /** Dispatches of one decode step, by how the token is chosen. */
  readonly dispatchesPerToken: { greedy: number; sample: number };
  /** Host time spent writing the uniform, encoding and submitting decode steps (not waiting for them). */
  readonly hostStats = { steps: 0, encodeSubmitMs: 0 };
  private readonly device: GpuDevice;
  private readonly owned: GpuBuffer[] = [];
  private readonly kCache: GpuBuffer[] = [];
  private readonly vCache: GpuBuffer[] = [];
  private readonly uniform: GpuBuffer;
  private readonly result: GpuBuffer;
  private readonly logits: GpuBuffer;
  private readonly forwardDispatches: Dispatch[] = [];
  private readonly greedyDispatches: Dispatch[] = [];
  private readonly sampleDispatches: Dispatch[] = [];
  private readonly freeStaging: GpuBuffer[] = [];
  private readonly freeLogitStaging: GpuBuffer[] = [];
  private readonly weights: tf.Tensor[] = [];
  private position = 0;
  private disposed = false;

  private constructor(
    private readonly model: MPTModel,
    private readonly backend: WebGpuBackendInternals,
    private readonly options: RecordedDecoderOptions,
  ) {
    this.device = backend.device;
    const c = model.config;
    const d = c.dModel;
    const hidden = Math.round(c.expansionRatio * d);
    const storage = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
    this.uniform = this.buffer(UNIFORM_BYTES, BufferUsage.UNIFORM | BufferUsage.COPY_DST, 'step');
    const token = this.buffer(16, storage, 'token');
    this.result = this.buffer(16, storage, 'result');
    const x = this.buffer(4 * d, storage, 'x');
    const qkv = this.buffer(12 * d, storage, 'qkv');
    const attended = this.buffer(4 * d, storage, 'attended');
    const ffn = this.buffer(4 * hidden, storage, 'ffn');
    this.logits = this.buffer(4 * c.vocabSize, storage, 'logits');
    const scores = this.buffer(4 * c.nHeads * c.maxSeqLen, storage, 'scores');

    const kernels = new Map<string, Kernel>();
    const kernel = (label: string, code: string, bindings: [number, BindingKind][]): Kernel => {
      const key = `${bindings.map((b) => b.join(':')).join()}\n${code}`;
      let k = kernels.get(key);
      if (!k) {
        const layout = this.device.createBindGroupLayout({
          label,
          entries: bindings.map(([binding, kind]) => ({
            binding,
            visibility: SHADER_STAGE_COMPUTE,
            buffer: { type: kind === 'read' ? 'read-only-storage' : kind },
          })),
        });
        const module = this.device.createShaderModule({ code, label });
        const pipeline = this.device.createComputePipeline({
          label,
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: 'main' },
        });
        k = { pipeline, layout };
        kernels.set(key, k);
      }
      return k;
    };
    const dispatch = (
      list: Dispatch[],
      k: Kernel,
      buffers: [number, GpuBuffer][],
      workgroups: number,
    ): void => {
      const group = this.device.createBindGroup({
        layout: k.layout,
        entries: buffers.map(([binding, buffer]) => ({
          binding,
          resource: { buffer, offset: 0, size: buffer.size },
        })),
      });
      list.push({ pipeline: k.pipeline, group, workgroups });
    };
    const weight = (name: string): GpuBuffer => {
      const t = model.get(name);
      this.weights.push(t);
      return tensorBuffer(backend, t);
    };
    const kinds = (entries: [number, GpuBuffer][], uniformAt = -1, writable: number[] = []) =>
      entries.map(
        ([b]) =>
          [b, b === uniformAt ? 'uniform' : writable.includes(b) ? 'storage' : 'read'] as [
            number,
            BindingKind,
          ],
      );

    // The embedding.
    const embedBindings: [number, GpuBuffer][] = [
      [0, this.uniform],
      [1, weight('transformer.wte.weight')],
      [2, token],
      [3, x],
    ];
    if (c.learnedPosEmb) embedBindings.push([4, weight('transformer.wpe.weight')]);
    const embed = kernel('embed', embedShader(c), kinds(embedBindings, 0, [3]));
    dispatch(this.forwardDispatches, embed, embedBindings, Math.ceil(d / THREADS));

    const eps = c.layerNormEps;
    const withBias = !c.noBias;
    const gemv = (
      label: string,
      shape: GemvShape,
      w: GpuBuffer,
      input: GpuBuffer,
      output: GpuBuffer,
      extra: { bias?: string; ln?: string },
    ) => {
      const entries: [number, GpuBuffer][] = [
        [gemvReadsVec4(shape) ? 6 : 0, w],
        [1, input],
        [2, output],
      ];
      if (shape.bias && extra.bias) entries.push([3, weight(extra.bias)]);
      if (shape.layerNorm && extra.ln) entries.push([4, weight(`${extra.ln}.weight`)]);
      if (shape.layerNorm?.bias && extra.ln) entries.push([5, weight(`${extra.ln}.bias`)]);
      const k = kernel(label, gemvShader(shape), kinds(entries, -1, [2]));
      dispatch(this.forwardDispatches, k, entries, gemvWorkgroups(shape.n, shape.layout, shape.k));
    };
    const layout = model.linearLayout;
    const ln = { eps, bias: withBias };
    const slopes = model.slopes;
    let slopeBuffer: GpuBuffer | null = null;
    if (slopes) {
      slopeBuffer = this.buffer(4 * slopes.length, storage, 'slopes');
      this.device.queue.writeBuffer(slopeBuffer, 0, slopes);
    }
    const dh = d / c.nHeads;
    if (!Number.isInteger(dh) || dh > THREADS) {
      throw new RecordedDecodeError(`head size ${dh} is not supported (at most ${THREADS})`);
    }
    for (let l = 0; l < c.nLayers; l++) {
      const p = `transformer.blocks.${l}`;
      const kc = this.buffer(4 * c.maxSeqLen * d, storage, `k.${l}`);
      const vc = this.buffer(4 * c.maxSeqLen * d, storage, `v.${l}`);
      this.kCache.push(kc);
      this.vCache.push(vc);
      const lin = (name: string) => ({ w: weight(`${p}.${name}.weight`), bias: `${p}.${name}.bias` });
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
        [0, this.uniform],
        [1, qkv],
        [2, kc],
        [3, vc],
        [4, scores],
        [5, attended],
      ];
      if (slopeBuffer) attnEntries.push([6, slopeBuffer]);
      if (c.qkLn) {
        attnEntries.push([7, weight(`${p}.attn.q_ln.weight`)], [8, weight(`${p}.attn.k_ln.weight`)]);
        if (withBias)
          attnEntries.push([9, weight(`${p}.attn.q_ln.bias`)], [10, weight(`${p}.attn.k_ln.bias`)]);
      }
      const attention = kernel(
        'attention',
        attentionShader({
          dModel: d,
          nHeads: c.nHeads,
          maxSeqLen: c.maxSeqLen,
          scale: c.softmaxScale ?? 1 / Math.sqrt(dh),
          alibi: slopeBuffer !== null,
          qkLn: c.qkLn ? ln : null,
        }),
        kinds(attnEntries, 0, [2, 3, 4, 5]),
      );
      dispatch(this.forwardDispatches, attention, attnEntries, c.nHeads);
      const out = lin('attn.out_proj');
      gemv(
        'out_proj',
        {
          k: d,
          n: d,
          layout,
          layerNorm: null,
          bias: withBias,
          epilogue: 'residual',
          clip: null,
          scale: null,
        },
        out.w,
        attended,
        x,
        { bias: out.bias },
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
        {
          k: hidden,
          n: d,
          layout,
          layerNorm: null,
          bias: withBias,
          epilogue: 'residual',
          clip: null,
          scale: null,
        },
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
      weight('transformer.wte.weight'),
      x,
      this.logits,
      { ln: 'transformer.norm_f' },
    );

    const argmax = argmaxShaders(c.vocabSize);
    const partValue = this.buffer(4 * argmax.workgroups, storage, 'argmax.values');
    const partIndex = this.buffer(4 * argmax.workgroups, storage, 'argmax.indices');
    const chunkEntries: [number, GpuBuffer][] = [
      [0, this.logits],
      [1, partValue],
      [2, partIndex],
    ];
    dispatch(
      this.greedyDispatches,
      kernel('argmax.chunks', argmax.chunks, kinds(chunkEntries, -1, [1, 2])),
      chunkEntries,
      argmax.workgroups,
    );
    const finalEntries: [number, GpuBuffer][] = [
      [0, partValue],
      [1, partIndex],
      [2, token],
      [3, this.result],
    ];
    dispatch(
      this.greedyDispatches,
      kernel('argmax.final', argmax.final, kinds(finalEntries, -1, [2, 3])),
      finalEntries,
      1,
    );
    const sampleEntries: [number, GpuBuffer][] = [
      [0, this.uniform],
      [1, this.logits],
      [2, token],
      [3, this.result],
    ];
    dispatch(
      this.sampleDispatches,
      kernel('sample', sampleShader(c.vocabSize), kinds(sampleEntries, 0, [2, 3])),
      sampleEntries,
      1,
    );
    const forward = this.forwardDispatches.length;
    this.dispatchesPerToken = {
      greedy: forward + this.greedyDispatches.length,
      sample: forward + this.sampleDispatches.length,
    };
  }

  /**
   * Builds the recorded step of `model`, which must be a float32 model resident on the webgpu backend. The model
   * must outlive the decoder and keep its weights (the decoder binds their GPU buffers, it does not copy them).
   */
  static async create(model: MPTModel, options: RecordedDecoderOptions = {}): Promise<RecordedDecoder> {
    const backend = webGpuBackend();
    if (model.quantization) {
      throw new RecordedDecodeError(
        `the recorded decode step runs float32 weights; this model is ${model.quantization}-quantized`,
      );
    }
    if (model.weightOffload) {
      throw new RecordedDecodeError(
        'the recorded decode step needs every weight on the device: load without offload',
      );
    }
    if (model.params.size === 0) throw new RecordedDecodeError('the model is disposed');
    const c = model.config;
    const storageLimit = backend.device.limits['maxComputeWorkgroupStorageSize'] ?? 16384;
    const needed = 4 * c.dModel + 4 * THREADS + 64;
    if (needed > storageLimit) {
      throw new RecordedDecodeError(
        `d_model ${c.dModel} needs ${needed} bytes of workgroup memory, the device allows ${storageLimit}`,
      );
    }
    const device = backend.device;
    device.pushErrorScope('validation');
    let decoder: RecordedDecoder;
    try {
      decoder = new RecordedDecoder(model, backend, options);
    } catch (e) {
      await device.popErrorScope();
      throw e;
    }
    const error = await device.popErrorScope();
    if (error) {
      decoder.dispose();
      throw new RecordedDecodeError(`building the recorded decode step failed: ${error.message}`);
    }
    return decoder;
  }

  /** Positions in the recorded KV cache: the prompt and every token decoded since. */
  get length(): number {
    return this.position;
  }

  /**
   * Starts a sequence: runs `prompt` through the tfjs path, copies its keys and values into the recorded cache
   * and chooses the token after it on the device. The previous sequence's cache is overwritten.
   */
  async prefill(prompt: readonly number[], choice: TokenChoice, counter = 0): Promise<StepOutput> {
    this.checkUsable();
    validateChoice(choice);
    const c = this.model.config;
    if (prompt.length === 0) throw new RangeError('the prompt must hold at least one token');
    if (prompt.length > c.maxSeqLen) {
      throw new RangeError(`the prompt holds ${prompt.length} tokens, more than max_seq_len ${c.maxSeqLen}`);
    }
    const cache = this.model.newCache();
    let logits: tf.Tensor2D | null = null;
    try {
      logits = this.model.prefill([[...prompt]], cache);
      const encoder = this.device.createCommandEncoder();
      const dh = c.dModel / c.nHeads;
      const rowBytes = 4 * dh;
      for (let l = 0; l < c.nLayers; l++) {
        const entry = cache.layer(l);
        if (!entry) throw new RecordedDecodeError(`the prefill cache has no layer ${l}`);
        const capacity = entry.k.shape[2];
        const k = tensorBuffer(this.backend, entry.k);
        const v = tensorBuffer(this.backend, entry.v);
        // tfjs's cache is [1, H, capacity, Dh]; the recorded one [H, max_seq_len, Dh].
        for (let h = 0; h < c.nHeads; h++) {
          const from = h * capacity * rowBytes;
          const to = h * c.maxSeqLen * rowBytes;
          encoder.copyBufferToBuffer(k, from, this.kCache[l]!, to, prompt.length * rowBytes);
          encoder.copyBufferToBuffer(v, from, this.vCache[l]!, to, prompt.length * rowBytes);
        }
      }
      encoder.copyBufferToBuffer(tensorBuffer(this.backend, logits), 0, this.logits, 0, 4 * c.vocabSize);
      flushTfjs(this.backend);
      this.position = prompt.length;
      return await this.submit(encoder, choice, counter, false);
    } finally {
      logits?.dispose();
      cache.dispose();
    }
  }

  /**
   * Decodes the last chosen token at the next position and chooses the one after it. The work is submitted
   * before this returns, so a caller may queue the next step before awaiting this one.
   */
  step(choice: TokenChoice, counter = 0): Promise<StepOutput> {
    this.checkUsable();
    validateChoice(choice);
    if (this.position === 0) throw new RecordedDecodeError('call prefill before step');
    if (this.position >= this.model.config.maxSeqLen) {
      throw new RangeError(`the sequence already holds max_seq_len ${this.model.config.maxSeqLen} positions`);
    }
    const promise = this.submit(this.device.createCommandEncoder(), choice, counter, true);
    this.position++;
    return promise;
  }

  /**
   * Chooses a token from given logits with the device's greedy or sampling kernels, as a step would (for tests
   * and tools). The cache and the position are left alone, but the next step decodes the token chosen here.
   */
  chooseFrom(logits: Float32Array, choice: TokenChoice, counter = 0): Promise<StepOutput> {
    this.checkUsable();
    validateChoice(choice);
    const vocab = this.model.config.vocabSize;
    if (logits.length !== vocab) {
      throw new RangeError(`expected ${vocab} logits (the vocabulary), got ${logits.length}`);
    }
    this.device.queue.writeBuffer(this.logits, 0, logits);
    return this.submit(this.device.createCommandEncoder(), choice, counter, false);
  }

  /** Frees the decoder's own buffers (the model's weights stay). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of [...this.owned, ...this.freeStaging, ...this.freeLogitStaging]) b.destroy();
    this.owned.length = 0;
  }

  private checkUsable(): void {
    if (this.disposed) throw new RecordedDecodeError('the recorded decoder is disposed');
    if (this.weights.some((w) => w.isDisposed)) {
      throw new RecordedDecodeError(
        'the model behind the recorded decoder was disposed or its weights replaced',
      );
    }
    webGpuBackend();
  }

  private buffer(size: number, usage: number, label: string): GpuBuffer {
    // WebGPU wants sizes in multiples of 4; uniform and small buffers get at least 16 bytes.
    const b = this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 4) * 4), usage, label });
    this.owned.push(b);
    return b;
  }

  private writeUniform(pos: number, choice: TokenChoice, counter: number): void {
    const data = new ArrayBuffer(UNIFORM_BYTES);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    u[0] = pos;
    u[1] = counter >>> 0;
    if (!isGreedyChoice(choice)) {
      u[2] = (choice.seed ?? 0) >>> 0;
      u[3] = choice.topK ?? 0;
      f[4] = choice.temperature;
      f[5] = choice.topP ?? 1;
    }
    this.device.queue.writeBuffer(this.uniform, 0, u);
  }

  private async submit(
    encoder: ReturnType<GpuDevice['createCommandEncoder']>,
    choice: TokenChoice,
    counter: number,
    forward: boolean,
  ): Promise<StepOutput> {
    const t0 = performance.now();
    // The uniform's `pos` is the position being decoded: the cache length before this step.
    this.writeUniform(this.position, choice, counter);
    const pass = encoder.beginComputePass();
    if (forward) record(pass, this.forwardDispatches);
    record(pass, isGreedyChoice(choice) ? this.greedyDispatches : this.sampleDispatches);
    pass.end();
    const staging = this.freeStaging.pop() ?? this.device.createBuffer({ size: 16, usage: READBACK });
    encoder.copyBufferToBuffer(this.result, 0, staging, 0, 16);
    const vocabBytes = 4 * this.model.config.vocabSize;
    let logitStaging: GpuBuffer | null = null;
    if (this.options.debugLogits) {
      logitStaging =
        this.freeLogitStaging.pop() ?? this.device.createBuffer({ size: vocabBytes, usage: READBACK });
      encoder.copyBufferToBuffer(this.logits, 0, logitStaging, 0, vocabBytes);
    }
    this.device.queue.submit([encoder.finish()]);
    if (forward) {
      this.hostStats.steps++;
      this.hostStats.encodeSubmitMs += performance.now() - t0;
    }
    await staging.mapAsync(MAP_MODE_READ);
    const token = new Uint32Array(staging.getMappedRange().slice(0, 4))[0]!;
    staging.unmap();
    if (this.disposed) staging.destroy();
    else this.freeStaging.push(staging);
    if (!logitStaging) return { token };
    await logitStaging.mapAsync(MAP_MODE_READ);
    const logits = new Float32Array(logitStaging.getMappedRange().slice(0));
    logitStaging.unmap();
    if (this.disposed) logitStaging.destroy();
    else this.freeLogitStaging.push(logitStaging);
    return { token, logits };
  }
}

const READBACK = BufferUsage.MAP_READ | BufferUsage.COPY_DST;

function record(pass: GpuComputePass, dispatches: readonly Dispatch[]): void {
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.group);
    pass.dispatchWorkgroups(d.workgroups);
  }
}
