import { BatchedDecoder, type BatchedSequence, type MPTModel } from '@mptjs/mpt-model';
import type { Engine, EngineSequence, ModelInfo } from './types.js';

/** Logits `[B, T, V]` of the model's tfjs forward pass over same-length rows (an Engine's `logits`). */
export async function forwardLogits(
  model: MPTModel,
  ids: readonly (readonly number[])[],
): Promise<Float32Array> {
  const out = model.forward(ids.map((row) => [...row]));
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

/**
 * The Engine over an MPTModel: full-sequence logits, and prefill and batched decode through mpt-model's
 * `BatchedDecoder`, which joins the sequences decoding together into one batch cache and splits it when they
 * change.
 */
export class MptEngine implements Engine {
  readonly info: ModelInfo;
  private readonly decoder: BatchedDecoder;

  constructor(readonly model: MPTModel) {
    this.info = { vocabSize: model.config.vocabSize, maxSeqLen: model.config.maxSeqLen };
    this.decoder = new BatchedDecoder(model);
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

  decode(sequences: readonly EngineSequence[], tokens: readonly number[]): Promise<Float32Array[]> {
    // Every sequence this engine hands out is one of its decoder's.
    return this.decoder.decode(sequences as readonly BatchedSequence[], tokens);
  }

  release(sequence: EngineSequence): void {
    this.decoder.release(sequence as BatchedSequence);
  }

  dispose(): void {
    this.decoder.dispose();
    this.model.dispose();
  }
}
