import { KVCache } from '@mptjs/alibi-attention';
import type { MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import type { Engine, EngineSequence, ModelInfo } from './types.js';

class MptSequence implements EngineSequence {
  constructor(public cache: KVCache | undefined) {}

  get length(): number {
    return this.cache?.length ?? 0;
  }

  requireCache(): KVCache {
    if (!this.cache) throw new Error('this sequence was released');
    return this.cache;
  }
}

async function readRows(logits: tf.Tensor2D): Promise<Float32Array[]> {
  const [b, v] = logits.shape;
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return Array.from({ length: b }, (_, i) => data.subarray(i * v, (i + 1) * v));
}

/**
 * The Engine over an MPTModel: one KV cache per sequence. A decode step joins the running sequences' caches into
 * one left-padded batch (ALiBi depends only on relative positions, and the key mask hides the padding), runs one
 * batched `decodeStep`, and appends each row's new keys and values back to its own cache.
 */
export class MptEngine implements Engine {
  readonly info: ModelInfo;

  constructor(readonly model: MPTModel) {
    this.info = { vocabSize: model.config.vocabSize, maxSeqLen: model.config.maxSeqLen };
  }

  async logits(ids: readonly (readonly number[])[]): Promise<Float32Array> {
    const out = this.model.forward(ids.map((row) => [...row]));
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  }

  async prefill(promptIds: readonly number[]): Promise<{ sequence: EngineSequence; logits: Float32Array }> {
    const cache = this.model.newCache();
    try {
      const [logits] = await readRows(this.model.prefill([[...promptIds]], cache));
      return { sequence: new MptSequence(cache), logits: logits! };
    } catch (err) {
      cache.dispose();
      throw err;
    }
  }

  async decode(sequences: readonly EngineSequence[], tokens: readonly number[]): Promise<Float32Array[]> {
    if (sequences.length !== tokens.length) throw new RangeError('decode needs one token per sequence');
    const seqs = sequences.map((s) => s as MptSequence);
    if (seqs.length === 1) return readRows(this.model.decodeStep([...tokens], seqs[0]!.requireCache()));
    if (!this.model.config.alibi) {
      // Learned position embeddings would shift under left padding: decode such models one sequence at a time.
      const rows: Float32Array[] = [];
      for (let i = 0; i < seqs.length; i++) rows.push(...(await this.decode([seqs[i]!], [tokens[i]!])));
      return rows;
    }
    const batch = KVCache.concatBatch(seqs.map((s) => s.requireCache()));
    try {
      const logits = this.model.decodeStep([...tokens], batch);
      const last = batch.length - 1;
      for (let layer = 0; layer < batch.numLayers; layer++) {
        const { k, v } = batch.layer(layer)!;
        const [, h, , d] = k.shape;
        seqs.forEach((seq, b) => {
          const [kRow, vRow] = tf.tidy(() => [
            tf.slice(k, [b, 0, last, 0], [1, h, 1, d]) as tf.Tensor4D,
            tf.slice(v, [b, 0, last, 0], [1, h, 1, d]) as tf.Tensor4D,
          ]);
          seq.requireCache().append(layer, kRow!, vRow!);
          tf.dispose([kRow!, vRow!]);
        });
      }
      return await readRows(logits);
    } finally {
      batch.dispose();
    }
  }

  release(sequence: EngineSequence): void {
    const seq = sequence as MptSequence;
    seq.cache?.dispose();
    seq.cache = undefined;
  }

  dispose(): void {
    this.model.dispose();
  }
}
