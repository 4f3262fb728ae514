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
  buildRecorded,
  checkDecoderUsable,
  checkRecordableModel,
  checkWeightFormat,
  copyPrefillRows,
  recordForward,
  runPack,
  STORAGE,
  type WeightStats,
} from './forward-recording.js';
import {
  BufferUsage,
  flushTfjs,
  type GpuBuffer,
  type GpuDevice,
  MAP_MODE_READ,
  RecordedDecodeError,
  tensorBuffer,
  type WebGpuBackendInternals,
  webGpuBackend,
} from './gpu.js';
import { bindingKinds, type Dispatch, Recording, record } from './recording.js';
import { argmaxShaders, sampleShader, THREADS, type WeightFormat } from './shaders.js';

/**
 * How the device chooses each token: the arg-max, or a seeded draw. With the draw number `counter` a step takes,
 * a draw is the token the host sampler (`chooseToken`, `sampleToken`) draws from the same logits with
 * `SeededRandom(seed)` after `counter` draws.
 */
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
  /**
   * How the step reads the block matrices and the tied head: `f32` (default) binds the model's own buffers;
   * `f16` packs half copies of them once at creation (extra device memory of half their float32 size; the
   * float32 weights stay for prefill) and reads half the bytes per token, summing in f32.
   */
  weights?: WeightFormat;
}

const UNIFORM_BYTES = 32;

/** Whether `choice` is the arg-max. */
export function isGreedyChoice(choice: TokenChoice): choice is { greedy: true } {
  return choice.greedy === true;
}

/** Throws a RangeError naming the first parameter of `choice` out of range. */
export function validateChoice(choice: TokenChoice): void {
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
  /** Weight bytes a step reads, and the device bytes of packed copies (see `WeightStats`). */
  readonly weightStats: WeightStats;
  private readonly device: GpuDevice;
  private readonly rec: Recording;
  private readonly kCache: GpuBuffer[];
  private readonly vCache: GpuBuffer[];
  private readonly uniform: GpuBuffer;
  private readonly result: GpuBuffer;
  private readonly logits: GpuBuffer;
  private readonly forwardDispatches: Dispatch[];
  private readonly greedyDispatches: Dispatch[] = [];
  private readonly sampleDispatches: Dispatch[] = [];
  private readonly freeStaging: GpuBuffer[] = [];
  private readonly freeLogitStaging: GpuBuffer[] = [];
  private readonly weights: tf.Tensor[];
  private position = 0;
  private disposed = false;

  private constructor(
    private readonly model: MPTModel,
    private readonly backend: WebGpuBackendInternals,
    private readonly options: RecordedDecoderOptions,
  ) {
    this.device = backend.device;
    this.rec = new Recording(this.device);
    const c = model.config;
    const rec = this.rec;
    this.uniform = rec.buffer(UNIFORM_BYTES, BufferUsage.UNIFORM | BufferUsage.COPY_DST, 'step');
    const token = rec.buffer(16, STORAGE, 'token');
    this.result = rec.buffer(16, STORAGE, 'result');
    const forward = recordForward(rec, model, backend, {
      uniform: this.uniform,
      token,
      slots: 1,
      weights: options.weights ?? 'f32',
    });
    runPack(backend, forward.pack);
    this.weightStats = forward.weightStats;
    this.forwardDispatches = forward.dispatches;
    this.kCache = forward.kCache;
    this.vCache = forward.vCache;
    this.logits = forward.logits;
    this.weights = forward.weights;

    const argmax = argmaxShaders(c.vocabSize);
    const partValue = rec.buffer(4 * argmax.workgroups, STORAGE, 'argmax.values');
    const partIndex = rec.buffer(4 * argmax.workgroups, STORAGE, 'argmax.indices');
    const chunkEntries: [number, GpuBuffer][] = [
      [0, this.logits],
      [1, partValue],
      [2, partIndex],
    ];
    rec.dispatch(
      this.greedyDispatches,
      rec.kernel('argmax.chunks', argmax.chunks, bindingKinds(chunkEntries, -1, [1, 2])),
      chunkEntries,
      argmax.workgroups,
    );
    const finalEntries: [number, GpuBuffer][] = [
      [0, partValue],
      [1, partIndex],
      [2, token],
      [3, this.result],
    ];
    rec.dispatch(
      this.greedyDispatches,
      rec.kernel('argmax.final', argmax.final, bindingKinds(finalEntries, -1, [2, 3])),
      finalEntries,
      1,
    );
    const sampleEntries: [number, GpuBuffer][] = [
      [0, this.uniform],
      [1, this.logits],
      [2, token],
      [3, this.result],
    ];
    rec.dispatch(
      this.sampleDispatches,
      rec.kernel('sample', sampleShader(c.vocabSize), bindingKinds(sampleEntries, 0, [2, 3])),
      sampleEntries,
      1,
    );
    const forwardCount = this.forwardDispatches.length;
    this.dispatchesPerToken = {
      greedy: forwardCount + this.greedyDispatches.length,
      sample: forwardCount + this.sampleDispatches.length,
    };
  }

  /**
   * Builds the recorded step of `model`, a float32 or int8-quantized model resident on the webgpu backend (an int8
   * model's int8 rows and scales are bound; `weights` is then refused). The model must outlive the decoder and
   * keep its weights (the decoder binds their GPU buffers; only f16 copies are its own).
   */
  static async create(model: MPTModel, options: RecordedDecoderOptions = {}): Promise<RecordedDecoder> {
    if (options.weights !== undefined) checkWeightFormat(options.weights);
    const backend = webGpuBackend();
    checkRecordableModel(model);
    const c = model.config;
    const storageLimit = backend.device.limits['maxComputeWorkgroupStorageSize'] ?? 16384;
    const needed = 4 * c.dModel + 4 * THREADS + 64;
    if (needed > storageLimit) {
      throw new RecordedDecodeError(
        `d_model ${c.dModel} needs ${needed} bytes of workgroup memory, the device allows ${storageLimit}`,
      );
    }
    return buildRecorded(
      backend,
      'the recorded decode step',
      () => new RecordedDecoder(model, backend, options),
    );
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
      copyPrefillRows(
        encoder,
        this.backend,
        this.model,
        cache,
        { kCache: this.kCache, vCache: this.vCache },
        {
          row: 0,
          start: 0,
          length: prompt.length,
          slot: 0,
        },
      );
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
    this.rec.destroy();
    for (const b of [...this.freeStaging, ...this.freeLogitStaging]) b.destroy();
  }

  private checkUsable(): void {
    checkDecoderUsable('recorded decoder', this.disposed, this.weights);
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
