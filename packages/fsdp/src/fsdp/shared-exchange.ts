// FSDP's gathers and gradient reductions for ranks that share memory (worker threads), without ring messages.
//
// Over a ring, a unit's all-gather completes only once every peer has reached the same unit and turned its event
// loop, so a rank slowed for a moment (the OS, a collection) stalls the others at each of a step's dozen
// gathers. Here each rank publishes its parameter shards into the group's arena once per step, and every gather
// reads them in place; gradients go to a per-rank slot and are summed once, at the end of the backward pass.
// Ranks then wait on each other only at the step's natural barriers, and a moment's delay can be made up later.
//
// Layout (all float32 or int32, cache-line aligned):
//   control   published[w], gradsDone[w], reduced[w]   (per-rank counters, Atomics)
//   params    two copies of every group's padded flat buffer, by version parity
//   grads     one padded flat buffer per rank and group
// Parameters are double-buffered: a rank writes version v+1 into the copy that held v-1, which every peer is done
// with once it has published v itself (it reads v-1 only before its own optimizer step). A rank writes a pass's
// gradients into its slot only after every peer has summed the previous pass from it.

import { CollectiveTimeoutError, type ProcessGroup, seconds, waitAsync } from '@mptjs/distributed';
import type * as tf from '@tensorflow/tfjs-core';
import type { FlatLayout } from './flat-layout.js';
import { readInto } from './host-io.js';

const PUBLISHED = 0;
const GRADS_DONE = 1;
const REDUCED = 2;
const COUNTERS = 3;
/** How often a wait looks at the group's own failure state (a peer's thread that died). */
const POLL_MS = 250;

export class SharedShardExchange {
  private readonly ctl: Int32Array;
  /** [parity][group] -> the group's padded flat parameters. */
  private readonly params: Map<string, Float32Array>[];
  /** [rank][group] -> that rank's full-size gradient for the group this pass. */
  private readonly grads: Map<string, Float32Array>[];
  private version = 0;
  private passes = 0;
  /** Whether this pass's gradient slot may be written (the peers have summed the last pass from it). */
  private slotFree = true;

  private constructor(
    private readonly pg: ProcessGroup,
    layouts: ReadonlyMap<string, FlatLayout>,
    buffer: SharedArrayBuffer,
    ctlOffset: number,
    dataOffset: number,
    /** Where the exchange starts in the arena, which every rank must agree on. */
    readonly offset: number,
  ) {
    const w = pg.worldSize;
    this.ctl = new Int32Array(buffer, ctlOffset, COUNTERS * w);
    let at = dataOffset;
    const take = (l: FlatLayout) => {
      const view = new Float32Array(buffer, at, l.paddedNumel);
      at += l.paddedNumel * 4;
      return view;
    };
    this.params = [0, 1].map(() => new Map([...layouts.values()].map((l) => [l.name, take(l)])));
    this.grads = Array.from(
      { length: w },
      () => new Map([...layouts.values()].map((l) => [l.name, take(l)])),
    );
  }

  /** The exchange over `pg`'s arena, or null when the group has none or it lacks room. Collective. */
  static create(pg: ProcessGroup, layouts: ReadonlyMap<string, FlatLayout>): SharedShardExchange | null {
    const arena = pg.arena;
    if (!arena || pg.worldSize < 2) return null;
    const floats = [...layouts.values()].reduce((n, l) => n + l.paddedNumel, 0);
    const ctlBytes = Math.ceil((COUNTERS * pg.worldSize * 4) / 64) * 64;
    const offset = arena.reserve(ctlBytes + (2 + pg.worldSize) * floats * 4);
    if (offset === null) return null;
    return new SharedShardExchange(pg, layouts, arena.buffer, offset, offset + ctlBytes, offset);
  }

  /** Publishes this rank's shards as the next version (after an optimizer step or a load). */
  async publish(
    shards: ReadonlyMap<string, tf.Variable>,
    layouts: ReadonlyMap<string, FlatLayout>,
  ): Promise<void> {
    // The copy about to be overwritten held version - 1: every peer is past it once it published `version`.
    await this.waitForPeers(PUBLISHED, this.version, 'publish its parameters');
    const next = this.version + 1;
    const copy = this.params[next % 2]!;
    // Every group's read is issued before any is awaited: on a GPU they then share one wait for the queue.
    const reads: (void | Promise<void>)[] = [];
    for (const [name, layout] of layouts) {
      const start = this.pg.rank * layout.shardNumel;
      reads.push(readInto(shards.get(name)!, copy.get(name)!.subarray(start, start + layout.shardNumel)));
    }
    await Promise.all(reads);
    this.version = next;
    this.signal(PUBLISHED, next);
  }

  /** A group's full parameters at the current version, once every rank has published it. Read, don't keep. */
  async parameters(group: string): Promise<Float32Array> {
    await this.waitForPeers(PUBLISHED, this.version, 'publish its parameters');
    return this.copy(this.version).get(group)!;
  }

  /** This rank's gradient slot for a group, for the pass under way. */
  async gradientSlot(group: string): Promise<Float32Array> {
    if (!this.slotFree) {
      await this.waitForPeers(REDUCED, this.passes, 'sum the previous gradients');
      this.slotFree = true;
    }
    return this.slots(this.pg.rank).get(group)!;
  }

  /**
   * Ends a backward pass: once every rank has written its gradients, calls `take` with each group's average over
   * ranks for this rank's shard (a view into scratch memory, valid during the call).
   */
  async finishPass(
    layouts: ReadonlyMap<string, FlatLayout>,
    take: (group: string, mean: Float32Array) => void,
  ): Promise<void> {
    const pass = this.passes + 1;
    this.signal(GRADS_DONE, pass);
    await this.waitForPeers(GRADS_DONE, pass, 'finish its backward pass');
    const w = this.pg.worldSize;
    for (const [name, layout] of layouts) {
      const start = this.pg.rank * layout.shardNumel;
      const end = start + layout.shardNumel;
      const mean = this.scratch(layout.shardNumel);
      mean.set(this.slots(0).get(name)!.subarray(start, end));
      for (let r = 1; r < w; r++) {
        const g = this.slots(r).get(name)!;
        for (let i = 0; i < mean.length; i++) mean[i]! += g[start + i]!;
      }
      for (let i = 0; i < mean.length; i++) mean[i]! /= w;
      take(name, mean);
    }
    this.passes = pass;
    this.slotFree = false;
    this.signal(REDUCED, pass);
  }

  /** The parameter copy that holds version `v`. */
  private copy(v: number): Map<string, Float32Array> {
    return this.params[v % 2] as Map<string, Float32Array>;
  }

  /** Rank `r`'s gradient slots. */
  private slots(r: number): Map<string, Float32Array> {
    return this.grads[r] as Map<string, Float32Array>;
  }

  private scratchBuffer = new Float32Array(0);
  private scratch(n: number): Float32Array {
    if (this.scratchBuffer.length < n) this.scratchBuffer = new Float32Array(n);
    return this.scratchBuffer.subarray(0, n);
  }

  private signal(counter: number, value: number): void {
    const index = counter * this.pg.worldSize + this.pg.rank;
    Atomics.store(this.ctl, index, value);
    Atomics.notify(this.ctl, index);
  }

  /** Waits until every other rank's `counter` reaches `value`, within the group's timeout. */
  private async waitForPeers(counter: number, value: number, what: string): Promise<void> {
    const started = performance.now();
    for (let r = 0; r < this.pg.worldSize; r++) {
      if (r === this.pg.rank) continue;
      const index = counter * this.pg.worldSize + r;
      for (;;) {
        const seen = Atomics.load(this.ctl, index);
        if (seen >= value) break;
        const failed = this.pg.failureError?.();
        if (failed) throw failed;
        const elapsed = performance.now() - started;
        if (elapsed >= this.pg.timeoutMs) {
          throw new CollectiveTimeoutError(
            `FSDP on rank ${this.pg.rank}: rank ${r} did not ${what} (${value}) within ${seconds(this.pg.timeoutMs)} ` +
              '(hung, or its thread died)',
            'fsdp',
            r,
            elapsed,
          );
        }
        const res = waitAsync(this.ctl, index, seen, Math.min(POLL_MS, this.pg.timeoutMs - elapsed));
        if (!res.async) continue;
        // A pending waitAsync does not keep the event loop alive: once a dead peer's port has closed, nothing
        // else might, and the thread would end quietly mid-step instead of reporting the failure.
        const keepAlive = setTimeout(() => undefined, POLL_MS + 100);
        try {
          await res.value;
        } finally {
          clearTimeout(keepAlive);
        }
      }
    }
  }
}
