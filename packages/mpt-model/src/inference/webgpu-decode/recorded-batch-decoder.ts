/**
 * A decode step for many sequences, recorded once per model like `RecordedDecoder`'s: a fixed number of cache
 * slots (`[slots, H, max_seq_len, Dh]` per layer), and one step decodes one token for any subset of the live
 * sequences. Each weight is read once per step for all its rows; each row attends over its own slot up to its
 * own length, so sequences join (prefill into a free slot) and leave (release) between steps without copying
 * anyone's cache.
 *
 * One recording serves every batch size: the kernels are compiled for `slots` rows and read the live row
 * count, and each row's slot, position and token, from a small uniform written per step; rows past the count
 * return at once. Recording per batch size would compile and bind every pipeline again for each size seen (up to
 * `slots` times), for a saving of a few idle workgroups per dispatch.
 *
 * A step costs one uniform write, one compute pass of `dispatchesPerStep` dispatches (one more when a row
 * samples) and one submit; it reads back each row's token chosen on the device (4 bytes: the arg-max, or a seeded
 * draw from a row's `choice`, written with the rows' choices to a small storage buffer per step) and the logits
 * of only the rows that ask for them.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { MPTModel } from '../../model.js';
import {
  buildRecorded,
  checkDecoderUsable,
  checkRecordableModel,
  checkWeightFormat,
  copyPrefillRows,
  type RecordedForward,
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
  type WebGpuBackendInternals,
  webGpuBackend,
} from './gpu.js';
import { isGreedyChoice, type TokenChoice, validateChoice } from './recorded-decoder.js';
import { bindingKinds, type Dispatch, Recording, record } from './recording.js';
import {
  argmaxShaders,
  batchUniformBytes,
  CHOICE_BYTES,
  sampleShader,
  type WeightFormat,
} from './shaders.js';

/** Slots when the caller names none: the batch a server decodes together by default. */
export const DEFAULT_SLOTS = 16;
/** Most slots: each kernel keeps a per-row partial sum in registers. */
export const MAX_RECORDED_SLOTS = 64;

export interface RecordedBatchDecoderOptions {
  /**
   * Sequences held at once (default 16, at most 64), lowered to what one storage buffer may hold (a layer's keys
   * are `slots * max_seq_len * d_model` floats); `slots` tells the number taken.
   */
  slots?: number;
  /** `f32` (default) or `f16`: see `RecordedDecoderOptions.weights`. */
  weights?: WeightFormat;
}

/** One live sequence of a `RecordedBatchDecoder`: its cache slot and the positions it holds. */
export class RecordedSequence {
  /** Positions in the slot's cache: the prompt and every token decoded since. */
  length: number;
  released = false;

  /** @internal */
  constructor(
    readonly owner: RecordedBatchDecoder,
    readonly slot: number,
    length: number,
  ) {
    this.length = length;
  }
}

/** One row of a step: decode `token` at the end of `sequence`. */
export interface BatchRow {
  sequence: RecordedSequence;
  token: number;
  /** Read the row's logits back (default true); otherwise only its token comes back. */
  logits?: boolean;
  /** How the device chooses the row's next token (default: the arg-max). */
  choice?: TokenChoice;
  /**
   * The draw number of a sampled `choice`: the host sampler's `SeededRandom(seed)` after `counter` draws draws
   * the same token (default 0).
   */
  counter?: number;
}

export interface BatchRowOutput {
  /**
   * The row's next token, chosen on the device: the arg-max over the vocabulary (lowest id on ties), or the draw
   * of its sampled `choice`.
   */
  token: number;
  /** The row's next-token logits `[vocab]`, when it asked for them. */
  logits?: Float32Array;
}

/** A prompt's sequence and its next-token logits. */
export interface PrefilledRecordedSequence {
  sequence: RecordedSequence;
  logits: Float32Array;
}

const READBACK = BufferUsage.MAP_READ | BufferUsage.COPY_DST;

export class RecordedBatchDecoder {
  /** Cache slots: most sequences held at once, and most rows of a step. */
  readonly slots: number;
  /** Dispatches of one step, whatever its row count. */
  readonly dispatchesPerStep: number;
  /**
   * Host time spent writing the uniform, encoding and submitting steps (not waiting for them), rows decoded, and
   * rows whose logits were read back.
   */
  readonly hostStats = { steps: 0, rows: 0, logitRows: 0, encodeSubmitMs: 0 };
  /** Weight bytes a step reads (matrices once for all rows), and the device bytes of packed copies. */
  readonly weightStats: WeightStats;
  private readonly device: GpuDevice;
  private readonly rec: Recording;
  private readonly uniform: GpuBuffer;
  private readonly result: GpuBuffer;
  private readonly forward: RecordedForward;
  private readonly dispatches: Dispatch[];
  /** The step's dispatches and then the sampling kernel, for steps where a row samples. */
  private readonly sampleDispatches: Dispatch[];
  private readonly choices: GpuBuffer;
  private readonly live: (RecordedSequence | undefined)[];
  /** Slots a prefill in progress will fill: not free to another prefill meanwhile. */
  private readonly reserved = new Set<number>();
  private readonly freeResultStaging: GpuBuffer[] = [];
  private readonly freeLogitStaging: GpuBuffer[] = [];
  private disposed = false;

  private constructor(
    private readonly model: MPTModel,
    private readonly backend: WebGpuBackendInternals,
    slots: number,
    weights: WeightFormat,
  ) {
    this.slots = slots;
    this.live = new Array<RecordedSequence | undefined>(slots).fill(undefined);
    this.device = backend.device;
    this.rec = new Recording(this.device);
    const rec = this.rec;
    const vocab = model.config.vocabSize;
    this.uniform = rec.buffer(batchUniformBytes(slots), BufferUsage.UNIFORM | BufferUsage.COPY_DST, 'batch');
    this.result = rec.buffer(4 * slots, STORAGE, 'result');
    this.forward = recordForward(rec, model, backend, {
      uniform: this.uniform,
      batchRows: slots,
      slots,
      weights,
    });
    runPack(backend, this.forward.pack);
    this.weightStats = this.forward.weightStats;
    this.dispatches = [...this.forward.dispatches];
    const argmax = argmaxShaders(vocab, slots);
    const partValue = rec.buffer(4 * slots * argmax.workgroups, STORAGE, 'argmax.values');
    const partIndex = rec.buffer(4 * slots * argmax.workgroups, STORAGE, 'argmax.indices');
    const chunkEntries: [number, GpuBuffer][] = [
      [0, this.forward.logits],
      [1, partValue],
      [2, partIndex],
      [4, this.uniform],
    ];
    const chunks = rec.kernel('argmax.chunks', argmax.chunks, bindingKinds(chunkEntries, 4, [1, 2]));
    rec.dispatch(this.dispatches, chunks, chunkEntries, argmax.workgroups, slots);
    const finalEntries: [number, GpuBuffer][] = [
      [0, partValue],
      [1, partIndex],
      [3, this.result],
      [4, this.uniform],
    ];
    const final = rec.kernel('argmax.final', argmax.final, bindingKinds(finalEntries, 4, [3]));
    rec.dispatch(this.dispatches, final, finalEntries, slots);
    this.dispatchesPerStep = this.dispatches.length;
    // Sampled rows overwrite their arg-max in `result`; greedy rows are left to it.
    this.choices = rec.buffer(CHOICE_BYTES * slots, STORAGE, 'choices');
    this.sampleDispatches = [...this.dispatches];
    const sampleEntries: [number, GpuBuffer][] = [
      [0, this.choices],
      [1, this.forward.logits],
      [3, this.result],
      [4, this.uniform],
    ];
    const sample = rec.kernel('sample', sampleShader(vocab, slots), bindingKinds(sampleEntries, 4, [3]));
    rec.dispatch(this.sampleDispatches, sample, sampleEntries, slots);
  }

  /**
   * Builds the batched step of `model`, a float32 or int8-quantized model resident on the webgpu backend that
   * must outlive the decoder and keep its weights (their GPU buffers are bound; only f16 copies are its own).
   */
  static async create(
    model: MPTModel,
    options: RecordedBatchDecoderOptions = {},
  ): Promise<RecordedBatchDecoder> {
    const weights = options.weights === undefined ? 'f32' : checkWeightFormat(options.weights);
    const backend = webGpuBackend();
    const requested = options.slots ?? DEFAULT_SLOTS;
    if (!Number.isInteger(requested) || requested < 1 || requested > MAX_RECORDED_SLOTS) {
      throw new RangeError(`slots must be an integer in [1, ${MAX_RECORDED_SLOTS}], got ${requested}`);
    }
    checkRecordableModel(model);
    const c = model.config;
    const device = backend.device;
    const limit = Math.min(
      device.limits['maxStorageBufferBindingSize'] ?? 134217728,
      device.limits['maxBufferSize'] ?? 268435456,
    );
    // The largest per-slot share of one buffer: a layer's keys, or a row of logits.
    const perSlot = 4 * Math.max(c.maxSeqLen * c.dModel, c.vocabSize, c.nHeads * c.maxSeqLen);
    const fits = Math.floor(limit / perSlot);
    if (fits < 1) {
      throw new RecordedDecodeError(
        `one sequence's keys of a layer (${perSlot} bytes) exceed the device's buffer limit of ${limit} bytes`,
      );
    }
    return buildRecorded(
      backend,
      'the batched recorded decode step',
      () => new RecordedBatchDecoder(model, backend, Math.min(requested, fits), weights),
    );
  }

  /** Sequences holding a slot now. */
  get liveCount(): number {
    return this.live.filter((s) => s !== undefined).length;
  }

  /** Starts a sequence in a free slot: the prompt through the tfjs path, its keys and values copied in. */
  async prefill(prompt: readonly number[]): Promise<PrefilledRecordedSequence> {
    const [out] = await this.prefillMany([prompt]);
    return out!;
  }

  /**
   * Starts several sequences, each in a free slot: the same sequences and logits as `prefill` on each, in order.
   * Prompts of the same length share one tfjs pass; prompts of different lengths run apart, since a left-padded
   * pass needs the tfjs cache's key mask, which reads the mask back synchronously (unsupported on webgpu under
   * Node). Throws when any prompt is bad or too few slots are free; no slot is taken then.
   */
  async prefillMany(prompts: readonly (readonly number[])[]): Promise<PrefilledRecordedSequence[]> {
    this.checkUsable();
    const c = this.model.config;
    prompts.forEach((p, i) => {
      const which = prompts.length > 1 ? `prompt ${i}` : 'the prompt';
      if (p.length === 0) throw new RangeError(`${which} must hold at least one token`);
      if (p.length > c.maxSeqLen) {
        throw new RangeError(`${which} holds ${p.length} tokens, more than max_seq_len ${c.maxSeqLen}`);
      }
      for (const id of p) this.checkToken(id);
    });
    const free = this.live.flatMap((s, slot) => (s || this.reserved.has(slot) ? [] : [slot]));
    if (prompts.length > free.length) {
      throw new RecordedDecodeError(
        `${prompts.length} new sequences need free slots but ${free.length} of ${this.slots} are free: ` +
          'release a finished sequence first',
      );
    }
    if (prompts.length === 0) return [];
    const taken = free.slice(0, prompts.length);
    for (const slot of taken) this.reserved.add(slot);
    try {
      return await this.prefillInto(prompts, taken);
    } finally {
      for (const slot of taken) this.reserved.delete(slot);
    }
  }

  private async prefillInto(
    prompts: readonly (readonly number[])[],
    free: readonly number[],
  ): Promise<PrefilledRecordedSequence[]> {
    const byLength = new Map<number, number[]>();
    prompts.forEach((p, i) => {
      byLength.set(p.length, [...(byLength.get(p.length) ?? []), i]);
    });
    const groups = [...byLength.values()];
    const logits: Float32Array[] = new Array(prompts.length);
    for (const group of groups) {
      const rows = await this.prefillGroup(
        group.map((i) => prompts[i]!),
        group.map((i) => free[i]!),
      );
      group.forEach((i, j) => {
        logits[i] = rows[j]!;
      });
    }
    return prompts.map((p, i) => {
      const sequence = new RecordedSequence(this, free[i]!, p.length);
      this.live[free[i]!] = sequence;
      return { sequence, logits: logits[i]! };
    });
  }

  /** One tfjs pass over same-length `prompts`, their keys and values copied into `slots`. */
  private async prefillGroup(
    prompts: readonly (readonly number[])[],
    slots: number[],
  ): Promise<Float32Array[]> {
    const cache = this.model.newCache();
    let logits: tf.Tensor2D | null = null;
    try {
      logits = this.model.prefill(
        prompts.map((p) => [...p]),
        cache,
      );
      const encoder = this.device.createCommandEncoder();
      prompts.forEach((p, row) => {
        copyPrefillRows(encoder, this.backend, this.model, cache, this.forward, {
          row,
          start: 0,
          length: p.length,
          slot: slots[row]!,
        });
      });
      flushTfjs(this.backend);
      this.device.queue.submit([encoder.finish()]);
      const data = (await logits.data()) as Float32Array;
      const v = this.model.config.vocabSize;
      return prompts.map((_, row) => data.slice(row * v, (row + 1) * v));
    } finally {
      logits?.dispose();
      cache.dispose();
    }
  }

  /**
   * Decodes one token for each row's sequence (each sequence at most once, in any order) and returns, per row,
   * the next token chosen on the device from its logits (the arg-max, or its `choice`'s draw) and, when asked, the
   * logits. The work is submitted and the lengths advanced before this returns.
   */
  step(rows: readonly BatchRow[]): Promise<BatchRowOutput[]> {
    this.checkUsable();
    if (rows.length === 0) throw new RangeError('a step needs at least one row');
    if (rows.length > this.slots) {
      throw new RangeError(`a step decodes at most ${this.slots} rows (the slots), got ${rows.length}`);
    }
    const maxSeqLen = this.model.config.maxSeqLen;
    const seen = new Set<RecordedSequence>();
    for (const [r, { sequence, token, choice, counter = 0 }] of rows.entries()) {
      this.checkLive(sequence);
      try {
        if (choice) validateChoice(choice);
        if (!(Number.isInteger(counter) && counter >= 0 && counter <= 0xffffffff)) {
          throw new RangeError(`counter must be an integer in [0, 2^32), got ${counter}`);
        }
      } catch (e) {
        throw new RangeError(`row ${r}: ${(e as Error).message}`);
      }
      if (seen.has(sequence)) {
        throw new RangeError(`the sequence in slot ${sequence.slot} appears twice in one step`);
      }
      seen.add(sequence);
      if (sequence.length >= maxSeqLen) {
        throw new RangeError(
          `the sequence in slot ${sequence.slot} already holds max_seq_len ${maxSeqLen} positions`,
        );
      }
      this.checkToken(token);
    }
    const t0 = performance.now();
    const header = new Uint32Array(4 * (this.slots + 1));
    header[0] = rows.length;
    rows.forEach(({ sequence, token }, r) => {
      header.set([sequence.slot, sequence.length, token], 4 * (r + 1));
    });
    this.device.queue.writeBuffer(this.uniform, 0, header);
    const sampling = this.writeChoices(rows);
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    record(pass, sampling ? this.sampleDispatches : this.dispatches);
    pass.end();
    const resultStaging =
      this.freeResultStaging.pop() ?? this.device.createBuffer({ size: this.result.size, usage: READBACK });
    encoder.copyBufferToBuffer(this.result, 0, resultStaging, 0, this.result.size);
    const rowBytes = 4 * this.model.config.vocabSize;
    const wanted = rows.flatMap((row, r) => (row.logits === false ? [] : [r]));
    let logitStaging: GpuBuffer | null = null;
    if (wanted.length > 0) {
      logitStaging =
        this.freeLogitStaging.pop() ??
        this.device.createBuffer({ size: this.slots * rowBytes, usage: READBACK });
      // Rows asking for logits are packed at the start of the staging buffer, in row order.
      wanted.forEach((r, j) => {
        encoder.copyBufferToBuffer(this.forward.logits, r * rowBytes, logitStaging!, j * rowBytes, rowBytes);
      });
    }
    this.device.queue.submit([encoder.finish()]);
    for (const { sequence } of rows) sequence.length++;
    this.hostStats.steps++;
    this.hostStats.rows += rows.length;
    this.hostStats.logitRows += wanted.length;
    this.hostStats.encodeSubmitMs += performance.now() - t0;
    return this.readStep(rows.length, wanted, resultStaging, logitStaging);
  }

  /** Writes the rows' sampled choices to the choice buffer; false when every row takes the arg-max. */
  private writeChoices(rows: readonly BatchRow[]): boolean {
    if (rows.every((row) => !row.choice || isGreedyChoice(row.choice))) return false;
    const data = new ArrayBuffer(CHOICE_BYTES * rows.length);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    rows.forEach(({ choice, counter = 0 }, r) => {
      if (!choice || isGreedyChoice(choice)) return;
      const at = (CHOICE_BYTES / 4) * r;
      u.set([1, counter, (choice.seed ?? 0) >>> 0, choice.topK ?? 0], at);
      f.set([choice.temperature, choice.topP ?? 1], at + 4);
    });
    this.device.queue.writeBuffer(this.choices, 0, u);
    return true;
  }

  private async readStep(
    count: number,
    wanted: readonly number[],
    resultStaging: GpuBuffer,
    logitStaging: GpuBuffer | null,
  ): Promise<BatchRowOutput[]> {
    await resultStaging.mapAsync(MAP_MODE_READ);
    const ids = new Uint32Array(resultStaging.getMappedRange().slice(0, 4 * count));
    resultStaging.unmap();
    this.recycle(this.freeResultStaging, resultStaging);
    const out: BatchRowOutput[] = Array.from(ids, (token) => ({ token }));
    if (!logitStaging) return out;
    const v = this.model.config.vocabSize;
    await logitStaging.mapAsync(MAP_MODE_READ);
    const all = new Float32Array(logitStaging.getMappedRange().slice(0, 4 * v * wanted.length));
    logitStaging.unmap();
    this.recycle(this.freeLogitStaging, logitStaging);
    wanted.forEach((r, j) => {
      out[r]!.logits = all.subarray(j * v, (j + 1) * v);
    });
    return out;
  }

  /** Frees a sequence's slot for the next prefill. Safe to call twice. */
  release(sequence: RecordedSequence): void {
    if (sequence.owner !== this) throw new RecordedDecodeError('the sequence belongs to another decoder');
    if (sequence.released) return;
    sequence.released = true;
    if (this.live[sequence.slot] === sequence) this.live[sequence.slot] = undefined;
  }

  /** Frees the decoder's own buffers (the model's weights stay); every sequence ends with it. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.live) if (s) s.released = true;
    this.live.fill(undefined);
    this.rec.destroy();
    for (const b of [...this.freeResultStaging, ...this.freeLogitStaging]) b.destroy();
    this.freeResultStaging.length = 0;
    this.freeLogitStaging.length = 0;
  }

  private recycle(pool: GpuBuffer[], buffer: GpuBuffer): void {
    if (this.disposed) buffer.destroy();
    else pool.push(buffer);
  }

  private checkLive(sequence: RecordedSequence): void {
    if (sequence.owner !== this) throw new RecordedDecodeError('the sequence belongs to another decoder');
    if (sequence.released || this.live[sequence.slot] !== sequence) {
      throw new RecordedDecodeError(
        `the sequence that held slot ${sequence.slot} was released: start a new one with prefill`,
      );
    }
  }

  private checkToken(id: number): void {
    const vocab = this.model.config.vocabSize;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new RangeError(`token id ${id} is outside the vocabulary [0, ${vocab})`);
    }
  }

  private checkUsable(): void {
    checkDecoderUsable('batched recorded decoder', this.disposed, this.forward.weights);
  }
}
