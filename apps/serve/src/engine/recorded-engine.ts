import {
  type BatchRow,
  type MPTModel,
  RecordedBatchDecoder,
  type RecordedSequence,
  type WeightFormat,
  type WeightStats,
} from '@mptjs/mpt-model';
import { forwardLogits } from './mpt-engine.js';
import type { DecodedRow, Engine, EngineSequence, ModelInfo, RowChoice } from './types.js';

/**
 * The Engine over mpt-model's batched recorded WebGPU decode step: each sequence holds a cache slot from prefill
 * to release, and a decode step is one recorded pass over the running rows, whatever joined or left since the
 * last one. Rows without logprobs or repetition penalty have their token chosen on the device (the arg-max, or a
 * seeded draw equal to the host sampler's) and read back only that (`decodeRows`). Full-sequence logits and
 * prefill run the model's tfjs path.
 */
export class RecordedEngine implements Engine {
  readonly info: ModelInfo;

  private constructor(
    readonly model: MPTModel,
    private readonly decoder: RecordedBatchDecoder,
  ) {
    this.info = { vocabSize: model.config.vocabSize, maxSeqLen: model.config.maxSeqLen };
  }

  /**
   * Builds the decoder for `slots` sequences at once (fewer when the device's buffers cannot hold them), reading
   * the block matrices and the head as `weights` (f16: packed half copies beside the model's float32 weights).
   */
  static async create(
    model: MPTModel,
    slots: number,
    weights: WeightFormat = 'f32',
  ): Promise<RecordedEngine> {
    return new RecordedEngine(model, await RecordedBatchDecoder.create(model, { slots, weights }));
  }

  /** The weight format of the decode step and the bytes of weights one step reads (for bandwidth figures). */
  get weightStats(): WeightStats {
    return this.decoder.weightStats;
  }

  /** Most sequences held at once: the scheduler's batch must not exceed it. */
  get slots(): number {
    return this.decoder.slots;
  }

  /** Dispatches per decode step and the host time spent recording them, for measurements. */
  get stepStats(): {
    dispatchesPerStep: number;
    steps: number;
    rows: number;
    logitRows: number;
    encodeSubmitMs: number;
  } {
    return { dispatchesPerStep: this.decoder.dispatchesPerStep, ...this.decoder.hostStats };
  }

  logits(ids: readonly (readonly number[])[]): Promise<Float32Array> {
    return forwardLogits(this.model, ids);
  }

  prefill(promptIds: readonly number[]): Promise<{ sequence: EngineSequence; logits: Float32Array }> {
    return this.decoder.prefill(promptIds);
  }

  prefillMany(
    prompts: readonly (readonly number[])[],
  ): Promise<{ sequence: EngineSequence; logits: Float32Array }[]> {
    return this.decoder.prefillMany(prompts);
  }

  async decode(sequences: readonly EngineSequence[], tokens: readonly number[]): Promise<Float32Array[]> {
    const rows = await this.decodeRows(
      sequences,
      tokens,
      sequences.map(() => undefined),
    );
    return rows.map((row) => (row as { logits: Float32Array }).logits);
  }

  async decodeRows(
    sequences: readonly EngineSequence[],
    tokens: readonly number[],
    choices: readonly (RowChoice | undefined)[],
  ): Promise<DecodedRow[]> {
    // Every sequence this engine hands out is one of its decoder's.
    const out = await this.decoder.step(
      sequences.map((sequence, i) => {
        const choice = choices[i];
        const row: BatchRow = { sequence: sequence as RecordedSequence, token: tokens[i]!, logits: !choice };
        if (choice && choice.greedy !== true) {
          const { temperature, topK = 0, topP = 1, seed, counter } = choice;
          row.choice = { temperature, topK, topP, seed };
          row.counter = counter;
        }
        return row;
      }),
    );
    return out.map((row) => (row.logits ? { logits: row.logits } : { token: row.token }));
  }

  release(sequence: EngineSequence): void {
    this.decoder.release(sequence as RecordedSequence);
  }

  dispose(): void {
    this.decoder.dispose();
    this.model.dispose();
  }
}
