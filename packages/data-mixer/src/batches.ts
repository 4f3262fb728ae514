// Batches for one rank. Global batch k holds global samples [k*B*W, (k+1)*B*W) for per-rank batch size B and
// world size W; rank r takes the contiguous slice [r*B, (r+1)*B) of it. Every rank walks the whole global
// stream (skipped samples are packed but not copied), so the global stream is the same at any world size and
// every rank holds the same state after each batch.
import type { Mixer, MixerState } from './mixer.js';

export interface BatchOptions {
  /** Samples per batch on this rank. */
  batchSize: number;
  rank?: number;
  worldSize?: number;
  /** Batches prepared ahead on a worker thread; 0 runs tokenisation and packing on the calling thread. */
  prefetch?: number;
  /** Stop after this many batches (default: never). */
  limit?: number;
}

export interface MixerBatch {
  /** [batchSize, seqLen] token ids, row-major. */
  tokens: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Index (into the config's stream order) of the stream each sample came from. */
  streams: Uint16Array;
  /** Global index of this rank's first sample in the batch. */
  firstSample: number;
  /** The mixer's state after this batch: resuming from it yields the next batch. */
  state: MixerState;
  /** Bad records skipped so far per stream (`on_bad_record: skip`), as `Mixer.skippedRecords()`. */
  skipped: Record<string, number>;
}

export function checkBatchOptions(opts: BatchOptions): Required<Omit<BatchOptions, 'limit' | 'prefetch'>> {
  const { batchSize, rank = 0, worldSize = 1 } = opts;
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(worldSize) || worldSize <= 0)
    throw new Error(`worldSize must be a positive integer, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new Error(`rank ${rank} is not in [0, ${worldSize})`);
  return { batchSize, rank, worldSize };
}

export async function* mixerBatches(mixer: Mixer, opts: BatchOptions): AsyncGenerator<MixerBatch> {
  const { batchSize, rank, worldSize } = checkBatchOptions(opts);
  const seqLen = mixer.config.maxSeqLen;
  const globalBatch = batchSize * worldSize;
  if (mixer.position % globalBatch !== 0) {
    throw new Error(
      `mixer state is at sample ${mixer.position}, not at a boundary of the global batch (${globalBatch})`,
    );
  }
  for (let k = 0; opts.limit === undefined || k < opts.limit; k++) {
    const tokens = new Int32Array(batchSize * seqLen);
    const streams = new Uint16Array(batchSize);
    const start = mixer.position;
    for (let j = 0; j < globalBatch; j++) {
      const local = j - rank * batchSize;
      const mine = local >= 0 && local < batchSize;
      const stream = await mixer.next(mine ? tokens : null, mine ? local * seqLen : 0);
      if (mine) streams[local] = stream;
    }
    yield {
      tokens,
      batchSize,
      seqLen,
      streams,
      firstSample: start + rank * batchSize,
      state: mixer.state(),
      skipped: mixer.skippedRecords(),
    };
  }
}
