import { KVCache, type MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import type { Engine, EngineSequence, ModelInfo } from './types.js';

/** The running batch: one left-padded cache shared by its members, row i belonging to members[i]. */
interface Batch {
  members: MptSequence[];
  cache: KVCache;
}

class MptSequence implements EngineSequence {
  /** Its own cache, while it is not part of a running batch. */
  cache: KVCache | undefined;
  /** The batch holding its keys and values, if any. */
  batch: Batch | undefined;
  released = false;

  constructor(
    cache: KVCache,
    public length: number,
  ) {
    this.cache = cache;
  }
}

async function readRows(logits: tf.Tensor2D): Promise<Float32Array[]> {
  const [b, v] = logits.shape;
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return Array.from({ length: b }, (_, i) => data.subarray(i * v, (i + 1) * v));
}

function sameMembers(batch: Batch | undefined, seqs: readonly MptSequence[]): batch is Batch {
  return !!batch && batch.members.length === seqs.length && batch.members.every((m, i) => m === seqs[i]);
}

/**
 * The Engine over an MPTModel. Each sequence has its own KV cache until it decodes alongside others: then the
 * caches are joined into one left-padded batch cache (ALiBi depends only on relative positions and the key mask
 * hides the padding) that stays in place for as long as the batch keeps the same members, so a steady batch
 * decodes with no copying beyond the model's own. When members change, the batch is split back into
 * per-sequence caches (padding dropped) and the new batch is joined from those.
 */
export class MptEngine implements Engine {
  readonly info: ModelInfo;
  private batch: Batch | undefined;

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
      return { sequence: new MptSequence(cache, promptIds.length), logits: logits! };
    } catch (err) {
      cache.dispose();
      throw err;
    }
  }

  async prefillMany(
    prompts: readonly (readonly number[])[],
  ): Promise<{ sequence: EngineSequence; logits: Float32Array }[]> {
    if (prompts.length === 0) return [];
    if (prompts.length === 1 || !this.model.config.alibi) {
      // Learned position embeddings would shift under left padding: prefill such models one prompt at a time.
      const out: { sequence: EngineSequence; logits: Float32Array }[] = [];
      try {
        for (const ids of prompts) out.push(await this.prefill(ids));
      } catch (err) {
        for (const { sequence } of out) this.release(sequence);
        throw err;
      }
      return out;
    }
    // One left-padded pass for all of them (the key mask hides the padding), then each row gets its own cache.
    const longest = Math.max(...prompts.map((p) => p.length));
    const padded = prompts.map((p) => [...new Array<number>(longest - p.length).fill(0), ...p]);
    const uneven = prompts.some((p) => p.length !== longest);
    const mask = uneven
      ? tf.tensor2d(
          prompts.flatMap((p) => [
            ...new Array<number>(longest - p.length).fill(0),
            ...new Array<number>(p.length).fill(1),
          ]),
          [prompts.length, longest],
        )
      : undefined;
    const cache = this.model.newCache();
    try {
      const rows = await readRows(this.model.prefill(padded, cache, mask));
      const out: { sequence: EngineSequence; logits: Float32Array }[] = [];
      try {
        prompts.forEach((p, row) => {
          out.push({
            sequence: new MptSequence(this.rowCache(cache, row, p.length), p.length),
            logits: rows[row]!,
          });
        });
      } catch (err) {
        for (const { sequence } of out) this.release(sequence);
        throw err;
      }
      return out;
    } finally {
      mask?.dispose();
      cache.dispose();
    }
  }

  async decode(sequences: readonly EngineSequence[], tokens: readonly number[]): Promise<Float32Array[]> {
    if (sequences.length !== tokens.length) throw new RangeError('decode needs one token per sequence');
    const seqs = sequences.map((s) => s as MptSequence);
    for (const s of seqs) if (s.released) throw new Error('cannot decode a released sequence');
    if (!this.model.config.alibi && seqs.length > 1) {
      // Learned position embeddings would shift under left padding: decode such models one sequence at a time.
      const rows: Float32Array[] = [];
      for (let i = 0; i < seqs.length; i++) rows.push(...(await this.decode([seqs[i]!], [tokens[i]!])));
      return rows;
    }
    if (!sameMembers(this.batch, seqs)) this.regroup(seqs);
    // After regrouping, several sequences share the batch cache and a lone one decodes on its own.
    const cache = this.batch?.cache ?? seqs[0]?.cache;
    if (!cache) throw new Error('decode needs at least one sequence');
    const rows = await readRows(this.model.decodeStep([...tokens], cache));
    for (const s of seqs) s.length++;
    return rows;
  }

  release(sequence: EngineSequence): void {
    const seq = sequence as MptSequence;
    if (seq.released) return;
    seq.released = true;
    seq.cache?.dispose();
    seq.cache = undefined;
    const batch = seq.batch;
    if (batch?.members.every((m) => m.released)) this.dropBatch();
  }

  dispose(): void {
    this.dropBatch();
    this.model.dispose();
  }

  /** Makes `seqs` the running batch: a single sequence decodes on its own cache, several share one. */
  private regroup(seqs: readonly MptSequence[]): void {
    this.splitBatch();
    if (seqs.length === 1) return;
    const cache = KVCache.concatBatch(seqs.map((s) => s.cache!));
    const batch: Batch = { members: [...seqs], cache };
    for (const s of seqs) {
      s.cache!.dispose();
      s.cache = undefined;
      s.batch = batch;
    }
    this.batch = batch;
  }

  /** Gives every live member of the running batch its own cache again (without the padding). */
  private splitBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    batch.members.forEach((seq, row) => {
      seq.batch = undefined;
      if (seq.released) return;
      seq.cache = this.rowCache(batch.cache, row, seq.length);
    });
    this.dropBatch();
  }

  /** A cache of its own for row `row` of a left-padded batch cache: its last `length` positions. */
  private rowCache(cache: KVCache, row: number, length: number): KVCache {
    const own = this.model.newCache();
    const pad = cache.length - length;
    for (let layer = 0; layer < own.numLayers; layer++) {
      const { k, v } = cache.layer(layer)!;
      const [, h, , d] = k.shape;
      const [kRow, vRow] = tf.tidy(() => [
        tf.slice(k, [row, 0, pad, 0], [1, h, length, d]) as tf.Tensor4D,
        tf.slice(v, [row, 0, pad, 0], [1, h, length, d]) as tf.Tensor4D,
      ]);
      own.append(layer, kRow!, vRow!);
      tf.dispose([kRow!, vRow!]);
    }
    return own;
  }

  private dropBatch(): void {
    if (!this.batch) return;
    for (const m of this.batch.members) if (m.batch === this.batch) m.batch = undefined;
    this.batch.cache.dispose();
    this.batch = undefined;
  }
}
