/**
 * Batch join and split for serving many sequences with one model: each sequence has its own KV cache until it
 * decodes alongside others; then the caches are joined into one left-padded batch cache (ALiBi depends only on
 * relative positions and the key mask hides the padding) that stays in place for as long as the batch keeps the
 * same members, so a steady batch decodes with no copying beyond the model's own. When members change, the batch
 * is split back into per-sequence caches (padding dropped) and the new batch is joined from those.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MPTModel } from '../model.js';
import { KVCache } from './kv-cache.js';

/** The running batch: one left-padded cache shared by its members, row i belonging to members[i]. */
interface Batch {
  members: BatchedSequence[];
  cache: KVCache;
}

/** One sequence's keys and values inside a `BatchedDecoder`; opaque to callers but for its length. */
export class BatchedSequence {
  /** Its own cache, while it is not part of a running batch. */
  cache: KVCache | undefined;
  /** The batch holding its keys and values, if any. */
  batch: Batch | undefined;
  released = false;

  /** `length`: tokens the cache holds. */
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

function sameMembers(batch: Batch | undefined, seqs: readonly BatchedSequence[]): batch is Batch {
  return !!batch && batch.members.length === seqs.length && batch.members.every((m, i) => m === seqs[i]);
}

/** A prompt's sequence and its next-token logits `[V]`. */
export interface PrefilledSequence {
  sequence: BatchedSequence;
  logits: Float32Array;
}

/**
 * Prefill and batched single-token decode steps over many sequences of one model, joining and splitting their
 * KV caches as the set decoding together changes. Models without ALiBi (learned positions would shift under
 * left padding) prefill and decode one sequence at a time.
 */
export class BatchedDecoder {
  private batch: Batch | undefined;

  constructor(readonly model: MPTModel) {}

  /** Runs a prompt through the model, keeping its KV cache. */
  async prefill(promptIds: readonly number[]): Promise<PrefilledSequence> {
    const cache = this.model.newCache();
    try {
      const [logits] = await readRows(this.model.prefill([[...promptIds]], cache));
      return { sequence: new BatchedSequence(cache, promptIds.length), logits: logits! };
    } catch (err) {
      cache.dispose();
      throw err;
    }
  }

  /**
   * Several prompts in one left-padded pass: the same sequences and logits as `prefill` on each, in order. Throws
   * when any prompt is bad; no sequence is kept then.
   */
  async prefillMany(prompts: readonly (readonly number[])[]): Promise<PrefilledSequence[]> {
    if (prompts.length === 0) return [];
    if (prompts.length === 1 || !this.model.config.alibi) {
      // Learned position embeddings would shift under left padding: prefill such models one prompt at a time.
      const out: PrefilledSequence[] = [];
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
      const out: PrefilledSequence[] = [];
      try {
        prompts.forEach((p, row) => {
          out.push({
            sequence: new BatchedSequence(this.rowCache(cache, row, p.length), p.length),
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

  /** One decode step: appends `tokens[i]` to `sequences[i]`, returns each one's next-token logits `[V]`. */
  async decode(seqs: readonly BatchedSequence[], tokens: readonly number[]): Promise<Float32Array[]> {
    if (seqs.length !== tokens.length) throw new RangeError('decode needs one token per sequence');
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

  /** Frees a sequence's cache. Safe to call twice. */
  release(seq: BatchedSequence): void {
    if (seq.released) return;
    seq.released = true;
    seq.cache?.dispose();
    seq.cache = undefined;
    const batch = seq.batch;
    if (batch?.members.every((m) => m.released)) this.dropBatch();
  }

  /** Frees the running batch's cache (the sequences' own caches are freed by `release`). */
  dispose(): void {
    this.dropBatch();
  }

  /** Makes `seqs` the running batch: a single sequence decodes on its own cache, several share one. */
  private regroup(seqs: readonly BatchedSequence[]): void {
    this.splitBatch();
    if (seqs.length === 1) return;
    // Written in place from here on (webgpu and wasm), as a sequence's own cache is: no copy of the whole
    // batch cache per step.
    const cache = KVCache.concatBatch(
      seqs.map((s) => s.cache!),
      { preallocate: { maxLength: this.model.config.maxSeqLen } },
    );
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
