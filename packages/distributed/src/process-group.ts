import type { SharedArena } from './shared-arena.js';

/** Reductions a collective can apply element-wise across ranks. */
export type ReduceOp = 'sum' | 'avg' | 'max';

export interface CollectiveOptions {
  /** Overrides the group's default timeout for this call. */
  timeoutMs?: number;
}

/**
 * A fixed set of ranks that run collectives on Float32Array buffers. Every rank must call the same collectives in
 * the same order with the same sizes (as with NCCL or Gloo); calls queue and run one after another, so a caller
 * may start one (e.g. a gradient reduce-scatter) and await it later. Any failure (timeout, dead peer, mismatch)
 * leaves the group unusable: later calls reject at once with the first error.
 */
export interface ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: 'threads' | 'tcp';
  /** Default per-collective timeout in milliseconds. */
  readonly timeoutMs: number;
  /** Memory all ranks share (worker-thread ranks over shared memory only), for exchanges without messages. */
  readonly arena?: SharedArena;
  /** The error every later collective will reject with, once the group has failed (a dead or hung peer). */
  failureError?(): Error | null;
  /** In place: every rank's `buf` becomes the element-wise reduction of all ranks' buffers. Returns `buf`. */
  allReduce(buf: Float32Array, op?: ReduceOp, options?: CollectiveOptions): Promise<Float32Array>;
  /** Concatenates every rank's `input` (all the same length) in rank order into `output` (worldSize x length). */
  allGather(input: Float32Array, output?: Float32Array, options?: CollectiveOptions): Promise<Float32Array>;
  /**
   * Reduces `input` (worldSize x shard length, the same on every rank) across ranks and leaves shard `rank` of the
   * result in `output`. `input` is not modified.
   */
  reduceScatter(
    input: Float32Array,
    op?: 'sum' | 'avg',
    output?: Float32Array,
    options?: CollectiveOptions,
  ): Promise<Float32Array>;
  /** In place: every rank's `buf` becomes rank `root`'s. Returns `buf`. */
  broadcast(buf: Float32Array, root?: number, options?: CollectiveOptions): Promise<Float32Array>;
  barrier(options?: CollectiveOptions): Promise<void>;
  /**
   * Rejects on every rank unless all ranks pass equal JSON-serialisable values (configs, shapes); the error names
   * the ranks that differ and the keys where they differ.
   */
  verifySame(value: unknown, label?: string, options?: CollectiveOptions): Promise<void>;
  /** Closes links (telling peers this rank left on purpose). Idempotent. */
  destroy(): Promise<void>;
}
