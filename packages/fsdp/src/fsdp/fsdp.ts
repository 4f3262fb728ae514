// Fully sharded data parallelism over a chain of units. Each parameter group is one flat, padded Float32Array
// sharded evenly across ranks; a unit's groups are all-gathered just before it runs and freed after
// (FULL_SHARD), kept from forward to backward (SHARD_GRAD_OP), or never sharded (NO_SHARD, DDP-like). Gradients
// are reduce-scattered (averaged) per group as soon as the last unit reading it has run backward, while the
// driver goes on with the next unit; the optimizer sees only this rank's flat shards. On a GPU a group's
// gradients stay on the device until then and leave it in one read that nobody waits for (bucketed), and
// gathered parameters are uploaded as soon as their gather completes.

import type { ProcessGroup } from '@mptjs/distributed';
import type {
  HostTensor,
  ParameterHost,
  ParamMap,
  StateDict,
  UnitDescriptor,
  UnitPhase,
} from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { BufferPool } from './buffer-pool.js';
import { DeviceGradientBuckets } from './device-gradient-buckets.js';
import { defaultGroups, type FlatLayout, flatLayout, sliceShard } from './flat-layout.js';
import {
  backendCopiesHostArrays,
  backendIsGpu,
  readInto,
  tensorFromHost,
  withHostValues,
} from './host-io.js';
import { StepProfile, type StepRecord } from './profile.js';
import { SharedShardExchange } from './shared-exchange.js';

export type ShardingStrategy = 'FULL_SHARD' | 'SHARD_GRAD_OP' | 'NO_SHARD';
export const SHARDING_STRATEGIES: readonly ShardingStrategy[] = ['FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD'];

export interface FsdpOptions {
  /** The chain, in forward order (any `ChainUnit` will do: FSDP reads only names). */
  units: readonly UnitDescriptor[];
  /** Shape of every parameter the units read. */
  paramShapes: ReadonlyMap<string, readonly number[]>;
  /** Default FULL_SHARD. */
  strategy?: ShardingStrategy;
  /** Group name -> parameter names; default: each parameter in the group of the first unit that reads it. */
  groups?: ReadonlyMap<string, readonly string[]>;
  /** All-gather the next unit's groups while the current one computes (default true). */
  prefetch?: boolean;
  /**
   * Keep each group's gradients on the device until its last reader has run backward, then read the group back
   * in one asynchronous read that the backward pass does not wait for (default: on GPU backends, webgpu and
   * webgl). Off, each gradient is read as its unit hands it over, before the driver goes on (wasm and cpu, where
   * a read is a copy in memory).
   */
  bucketGradients?: boolean;
  /** Measure where each step's time goes (default: `MPTJS_FSDP_PROFILE=1`, which also prints it). */
  profile?: boolean;
  /** Called as gradients and parameters move between tensors, the host and the ring (see `TransferEvent`). */
  onTransfer?: (event: TransferEvent) => void;
}

/**
 * One movement of a group's data, in the order this rank issued them: `gather` (an all-gather or a read of the
 * shared arena starts), `upload` (the gathered parameters became tensors, on webgpu in GPU memory), `readback`
 * (a bucket's gradient read starts), `readback-done`, `reduce` (its reduce-scatter, or its write to the shared
 * arena, starts). `bytes` is what crosses between tensors and the host.
 */
export interface TransferEvent {
  kind: 'gather' | 'upload' | 'readback' | 'readback-done' | 'reduce';
  group: string;
  bytes: number;
}

interface Gathered {
  tensors: Promise<Map<string, tf.Tensor>>;
  users: number;
}

/** The unit-chain hooks and the parameter host of one rank's shards. */
export class FsdpParameters implements ParameterHost {
  readonly strategy: ShardingStrategy;
  readonly layouts: ReadonlyMap<string, FlatLayout>;
  private readonly units: readonly UnitDescriptor[];
  private readonly unitIndex = new Map<string, number>();
  /** Unit name -> the groups it reads. */
  private readonly unitGroups = new Map<string, string[]>();
  /** Group name -> how many units read it (backward contributions per pass). */
  private readonly readers = new Map<string, number>();
  private readonly shards = new Map<string, tf.Variable>();
  /** This rank's reduced gradient shard per group, kept from step to step; `shardsFilled`: those set this step. */
  private readonly gradShards = new Map<string, Float32Array>();
  private readonly shardsFilled = new Set<string>();
  /** Where a later microbatch's reduce-scatter lands before it is added to `gradShards`. */
  private readonly shardScratch = new Map<string, Float32Array>();
  /** Ring path: full-size gradient per group this pass, from `pool` and back to it once reduce-scattered. */
  private readonly gradFull = new Map<string, Float32Array>();
  /** Parameters of each group in `gradFull` that have a gradient this pass. */
  private readonly gradWritten = new Map<string, Set<string>>();
  /** Ring path: the full-size buffers gathers and gradients use, reused by length (see buffer-pool.ts). */
  private readonly pool = new BufferPool();
  private readonly remaining = new Map<string, number>();
  private readonly gathered = new Map<string, Gathered>();
  /** SHARD_GRAD_OP: groups a unit gathered in forward and keeps until its backward. */
  private readonly heldForBackward = new Map<string, string[]>();
  private pendingReductions: Promise<void>[] = [];
  /** Bucketed path: this pass's gradient reads still in flight (and, with the arena, their writes to it). */
  private pendingReadbacks: Promise<unknown>[] = [];
  /**
   * Bucketed ring path: reduce-scatters waiting for the next unit's prefetch to be issued first. A bucket's
   * reduction is launched only once its read arrives, and launches go out in order: issued before the prefetch,
   * it would hold the next unit's gather back until then.
   */
  private deferredReductions: (() => void)[] = [];
  /** Gradients on the device per group until their last reader is done (bucketed path), else null. */
  private readonly buckets: DeviceGradientBuckets | null;
  private readonly onTransfer: ((event: TransferEvent) => void) | undefined;
  private launchedThisPass = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly prefetch: boolean;
  private readonly profile: StepProfile;
  /** Worker-thread ranks: gathers and reductions through shared memory instead of the ring (shared-exchange.ts). */
  private readonly exchange: SharedShardExchange | null;
  /** The shards changed (load, or the optimizer step after takeGradients) and must be published before a gather. */
  private dirty = true;
  private publishing: Promise<void> = Promise.resolve();

  private constructor(
    readonly pg: ProcessGroup,
    opts: FsdpOptions,
  ) {
    this.strategy = opts.strategy ?? 'FULL_SHARD';
    if (!SHARDING_STRATEGIES.includes(this.strategy)) {
      throw new RangeError(
        `FSDP: unknown sharding strategy '${this.strategy}' (use ${SHARDING_STRATEGIES.join(', ')})`,
      );
    }
    this.prefetch = opts.prefetch ?? true;
    this.profile = StepProfile.fromEnv(pg.rank, opts.profile);
    this.buckets = (opts.bucketGradients ?? backendIsGpu()) ? new DeviceGradientBuckets() : null;
    this.onTransfer = opts.onTransfer;
    this.units = opts.units;
    const groups = opts.groups ?? defaultGroups(opts.units);
    const shardWorld = this.strategy === 'NO_SHARD' ? 1 : pg.worldSize;
    const layouts = new Map<string, FlatLayout>();
    const groupOf = new Map<string, string>();
    for (const [name, params] of groups) {
      layouts.set(name, flatLayout(name, params, opts.paramShapes, shardWorld));
      for (const p of params) {
        if (groupOf.has(p))
          throw new Error(`FSDP: parameter "${p}" is in groups "${groupOf.get(p)}" and "${name}"`);
        groupOf.set(p, name);
      }
    }
    this.layouts = layouts;
    opts.units.forEach((u, i) => {
      if (this.unitIndex.has(u.name)) throw new Error(`FSDP: two units are named "${u.name}"`);
      this.unitIndex.set(u.name, i);
      const gs: string[] = [];
      for (const p of u.paramNames) {
        const g = groupOf.get(p);
        if (!g) throw new Error(`FSDP: unit "${u.name}" reads parameter "${p}", which no group holds`);
        if (!gs.includes(g)) gs.push(g);
      }
      this.unitGroups.set(u.name, gs);
      for (const g of gs) this.readers.set(g, (this.readers.get(g) ?? 0) + 1);
    });
    for (const name of layouts.keys()) {
      if (!this.readers.has(name)) throw new Error(`FSDP: no unit reads group "${name}"`);
      this.remaining.set(name, this.readers.get(name)!);
    }
    // Every rank builds FSDP at the same point, so every rank reserves the same arena region.
    this.exchange = this.strategy === 'NO_SHARD' ? null : SharedShardExchange.create(pg, layouts);
  }

  /**
   * Collective: builds the sharded parameters on every rank and loads them from a full state dict, which either
   * every rank passes or only rank 0 passes (the others pass null and receive it by broadcast). Checks first that
   * every rank built the same layout and strategy.
   */
  static async create(
    pg: ProcessGroup,
    opts: FsdpOptions,
    stateDict: StateDict | null,
  ): Promise<FsdpParameters> {
    const fsdp = new FsdpParameters(pg, opts);
    await pg.verifySame(
      {
        strategy: fsdp.strategy,
        transport: fsdp.exchange ? `shared memory at ${fsdp.exchange.offset}` : 'ring',
        groups: [...fsdp.layouts.values()].map((l) => [l.name, l.entries.map((e) => [e.name, e.shape])]),
      },
      'FSDP layout',
    );
    for (const l of fsdp.layouts.values()) {
      fsdp.shards.set(
        l.name,
        tf.tidy(() => tf.variable(tf.zeros([l.shardNumel]), true)),
      );
    }
    await fsdp.loadFullStateDict(stateDict);
    return fsdp;
  }

  /** Which slice of the padded flat buffer this rank owns (the whole buffer under NO_SHARD). */
  private get shardRank(): number {
    return this.strategy === 'NO_SHARD' ? 0 : this.pg.rank;
  }

  // ---- unit hooks (the trainer's UnitHooks / ParameterHost) ----

  async beforeUnitForward(unit: UnitDescriptor, phase: UnitPhase): Promise<ParamMap> {
    const groups = this.groupsOf(unit);
    const held = phase === 'recompute' ? this.heldForBackward.get(unit.name) : undefined;
    if (held) this.heldForBackward.delete(unit.name);
    else for (const g of groups) this.acquire(g);
    if (this.prefetch) {
      const i = this.unitIndex.get(unit.name)!;
      const neighbour = this.units[phase === 'recompute' ? i - 1 : i + 1];
      if (neighbour) for (const g of this.groupsOf(neighbour)) this.warm(g);
    }
    this.launchDeferredReductions();
    const params = new Map<string, tf.Tensor>();
    for (const g of groups) {
      const tensors = await this.profile.time('gatherWait', () => this.gathered.get(g)!.tensors);
      for (const [name, t] of tensors) params.set(name, t);
    }
    return params;
  }

  afterUnitForward(unit: UnitDescriptor, phase: UnitPhase): void {
    const groups = this.groupsOf(unit);
    if (phase === 'forward' && this.strategy === 'SHARD_GRAD_OP') {
      this.heldForBackward.set(unit.name, groups);
      return;
    }
    for (const g of groups) this.release(g);
  }

  /** Adds the unit's gradients to its groups; a group whose last reader is done starts its reduce-scatter. */
  async afterUnitBackward(unit: UnitDescriptor, gradients: Map<string, tf.Tensor>): Promise<void> {
    const groups = this.groupsOf(unit);
    if (this.buckets) return this.bucketBackward(unit, groups, this.buckets, gradients);
    for (const [name, g] of gradients) {
      const group = groups.find((x) => this.layouts.get(x)!.entries.some((e) => e.name === name));
      if (!group) {
        g.dispose();
        throw new Error(
          `FSDP: unit "${unit.name}" returned a gradient for "${name}", which it does not read`,
        );
      }
      const layout = this.layouts.get(group)!;
      const entry = layout.entries.find((e) => e.name === name)!;
      const acc = await this.gradientBuffer(layout);
      let written = this.gradWritten.get(group);
      if (!written) {
        written = new Set();
        this.gradWritten.set(group, written);
      }
      const dst = acc.subarray(entry.offset, entry.offset + entry.numel);
      const first = !written.has(name);
      written.add(name);
      this.profile.readback(entry.numel * 4);
      this.onTransfer?.({ kind: 'readback', group, bytes: entry.numel * 4 });
      try {
        await this.profile.time('gradHost', async () =>
          withHostValues(g, (values) => {
            if (values.length !== entry.numel) {
              throw new Error(
                `FSDP: gradient of "${name}" has ${values.length} values, expected ${entry.numel}`,
              );
            }
            // The first contribution is a copy (memcpy); only a parameter read by two units (tied wte) adds.
            if (first) dst.set(values);
            else for (let i = 0; i < values.length; i++) dst[i]! += values[i]!;
          }),
        );
        this.onTransfer?.({ kind: 'readback-done', group, bytes: entry.numel * 4 });
      } finally {
        g.dispose();
      }
    }
    for (const group of groups) {
      const left = this.remaining.get(group)! - 1;
      this.remaining.set(group, left);
      if (left === 0) await this.groupDone(group);
    }
    // Backward has reached the start of the chain: the optimizer will want the shards now.
    if (this.launchedThisPass === this.layouts.size) await this.finishPass();
  }

  /**
   * The bucketed path: the unit's gradients join their groups' buckets on the device, and a group whose last
   * reader is done is read back without waiting (reduced once it arrives). Returns at once except at the end of
   * the pass, so the driver queues the next unit's backward behind the reads.
   */
  private async bucketBackward(
    unit: UnitDescriptor,
    groups: readonly string[],
    buckets: DeviceGradientBuckets,
    gradients: Map<string, tf.Tensor>,
  ): Promise<void> {
    const placed: [string, string, tf.Tensor][] = [];
    for (const [name, g] of gradients) {
      const group = groups.find((x) => this.layouts.get(x)!.entries.some((e) => e.name === name));
      const entry = group ? this.layouts.get(group)?.entries.find((e) => e.name === name) : undefined;
      const problem = !entry
        ? `FSDP: unit "${unit.name}" returned a gradient for "${name}", which it does not read`
        : g.size !== entry.numel
          ? `FSDP: gradient of "${name}" has ${g.size} values, expected ${entry.numel}`
          : null;
      if (problem) {
        for (const t of gradients.values()) t.dispose();
        throw new Error(problem);
      }
      placed.push([group!, name, g]);
    }
    for (const [group, name, g] of placed) buckets.add(group, name, g);
    for (const group of groups) {
      const left = this.remaining.get(group)! - 1;
      this.remaining.set(group, left);
      if (left === 0) this.readBucket(buckets, group);
    }
    if (this.launchedThisPass === this.layouts.size) await this.finishPass();
  }

  /** Issues a group's gradient read, then its reduce-scatter (ring) or its write to the arena when it arrives. */
  private readBucket(buckets: DeviceGradientBuckets, group: string): void {
    const layout = this.layouts.get(group)!;
    this.remaining.set(group, this.readers.get(group)!);
    this.launchedThisPass++;
    const bytes = layout.paddedNumel * 4;
    this.onTransfer?.({ kind: 'readback', group, bytes });
    const values = buckets.read(layout).then((v) => {
      this.onTransfer?.({ kind: 'readback-done', group, bytes });
      return v;
    });
    this.profile.readback(bytes, values);
    values.catch(() => undefined); // awaited at the end of the backward pass
    this.pendingReadbacks.push(values);
    if (this.exchange) {
      const exchange = this.exchange;
      const written = values.then(async (v) => {
        const slot = await exchange.gradientSlot(group);
        this.onTransfer?.({ kind: 'reduce', group, bytes: 0 });
        slot.set(v);
      });
      written.catch(() => undefined);
      this.pendingReadbacks.push(written);
    } else this.deferredReductions.push(() => this.launchReduction(layout, values, false));
  }

  private launchDeferredReductions(): void {
    const launches = this.deferredReductions;
    this.deferredReductions = [];
    for (const launch of launches) launch();
  }

  /** The end of a backward pass: every group's reduction is waited for (the optimizer wants the shards now). */
  private async finishPass(): Promise<void> {
    this.launchedThisPass = 0;
    this.launchDeferredReductions();
    const readbacks = this.pendingReadbacks;
    this.pendingReadbacks = [];
    if (readbacks.length > 0) await this.profile.time('readbackWait', () => Promise.all(readbacks));
    if (this.exchange) {
      const exchange = this.exchange;
      await this.profile.time('reduceWait', () =>
        exchange.finishPass(this.layouts, (group, mean) => this.addToShard(group, mean)),
      );
    } else {
      const pending = this.pendingReductions;
      this.pendingReductions = [];
      await this.profile.time('reduceWait', () => Promise.all(pending));
    }
  }

  /** Where a group's full gradient accumulates this pass: its shared slot, or this rank's own buffer. */
  private async gradientBuffer(layout: FlatLayout): Promise<Float32Array> {
    if (this.exchange) return this.exchange.gradientSlot(layout.name);
    let buf = this.gradFull.get(layout.name);
    if (!buf) {
      buf = this.pool.take(layout.paddedNumel);
      this.gradFull.set(layout.name, buf);
    }
    return buf;
  }

  /** Every unit reading `group` has run backward: zero what got no gradient, and start its reduction (ring). */
  private async groupDone(group: string): Promise<void> {
    const layout = this.layouts.get(group)!;
    this.remaining.set(group, this.readers.get(group)!);
    this.launchedThisPass++;
    const full = await this.gradientBuffer(layout);
    // Parameters without a gradient this pass contribute zeros (the buffer holds the last pass's values there).
    const written = this.gradWritten.get(group);
    for (const e of layout.entries) if (!written?.has(e.name)) full.fill(0, e.offset, e.offset + e.numel);
    full.fill(0, layout.numel); // padding: a reused buffer may hold another group's values there
    this.gradWritten.delete(group);
    if (!this.exchange) this.launchReduction(layout, full);
    else this.onTransfer?.({ kind: 'reduce', group, bytes: 0 });
  }

  /** Adds a reduced (averaged) shard gradient to this step's: the first pass sets it. */
  private addToShard(group: string, shard: Float32Array): void {
    const acc = this.shardBuffer(this.gradShards, this.layouts.get(group)!);
    if (!this.shardsFilled.has(group)) {
      acc.set(shard);
      this.shardsFilled.add(group);
    } else for (let i = 0; i < acc.length; i++) acc[i]! += shard[i]!;
  }

  /** This rank's accumulated flat gradient shards, by group name (ownership passes to the caller). */
  takeGradients(): Map<string, tf.Tensor> {
    if (this.pendingReductions.length > 0 || this.launchedThisPass > 0) {
      throw new Error('FSDP: takeGradients() called before every unit finished its backward pass');
    }
    const out = new Map<string, tf.Tensor>();
    const reuse = backendCopiesHostArrays();
    for (const [name, layout] of this.layouts) {
      const g = this.shardsFilled.has(name)
        ? this.gradShards.get(name)!
        : new Float32Array(layout.shardNumel);
      out.set(name, tensorFromHost(reuse ? g : g.slice(), [g.length]));
      this.profile.uploaded(g.length * 4);
    }
    this.shardsFilled.clear();
    // The optimizer updates the shards next: the next gather publishes them.
    this.dirty = true;
    this.profile.endStep();
    return out;
  }

  /** The latest step's profile (byte counts always; times when profiling is on), or null before the first. */
  get lastStepProfile(): StepRecord | null {
    return this.profile.last;
  }

  /** The flat shard Variables the optimizer updates, by group name. */
  optimizerParameters(): ReadonlyMap<string, tf.Variable> {
    return this.shards;
  }

  /** Collective: the sum of squared gradients over all ranks, given this rank's. */
  async globalSumOfSquares(local: number): Promise<number> {
    // Under NO_SHARD every rank holds the same full gradient already.
    if (this.strategy === 'NO_SHARD') return local;
    const buf = await this.issue(async () => () => this.pg.allReduce(new Float32Array([local]), 'sum'));
    return buf[0]!;
  }

  // ---- state dicts ----

  /**
   * Collective: sets the parameters from a full state dict held by every rank, or by rank 0 only (the others
   * pass null). Works for any world size, so a checkpoint written by N ranks loads into M.
   */
  async loadFullStateDict(stateDict: StateDict | null): Promise<void> {
    const problems = stateDict ? this.checkStateDict(stateDict) : [];
    const flags = await this.pg.allReduce(
      new Float32Array([
        stateDict ? 1 : 0,
        problems.length > 0 ? 1 : 0,
        this.pg.rank === 0 && stateDict ? 1 : 0,
      ]),
    );
    const [holders, invalid, rank0Holds] = [flags[0]!, flags[1]!, flags[2]!];
    if (invalid > 0) {
      throw new Error(
        problems.length > 0
          ? `FSDP: state dict does not fit the parameters:\n  ${problems.join('\n  ')}`
          : 'FSDP: another rank passed a state dict that does not fit the parameters (see its error)',
      );
    }
    if (holders === 0) throw new Error('FSDP: no rank passed a state dict to load');
    const everyRank = holders === this.pg.worldSize;
    if (!everyRank && rank0Holds === 0) {
      throw new Error('FSDP: when only some ranks pass a state dict, rank 0 must be one of them');
    }
    for (const layout of this.layouts.values()) {
      let full: Float32Array = new Float32Array(layout.paddedNumel);
      if (stateDict && (everyRank || this.pg.rank === 0)) {
        for (const e of layout.entries) full.set(stateDict.get(e.name)!.data, e.offset);
      }
      if (!everyRank) full = await this.pg.broadcast(full, 0);
      assignFlat(this.shards.get(layout.name)!, sliceShard(layout, full, this.shardRank));
    }
    this.dirty = true;
  }

  /**
   * Collective: the full parameters in their own names and shapes (all-gathered), on rank 0 only unless
   * `allRanks`; other ranks get null. This is what a consolidated `model.safetensors` is written from.
   */
  async fullStateDict(options: { allRanks?: boolean } = {}): Promise<StateDict | null> {
    const out: StateDict = new Map();
    const keep = options.allRanks || this.pg.rank === 0;
    for (const layout of this.layouts.values()) {
      const local = (await this.shards.get(layout.name)!.data()) as Float32Array;
      const full = this.strategy === 'NO_SHARD' ? local : await this.pg.allGather(local);
      // Ranks that return null hold one group at a time, never the whole model.
      if (!keep) continue;
      for (const e of layout.entries) {
        out.set(e.name, {
          shape: [...e.shape],
          data: full.slice(e.offset, e.offset + e.numel),
        } satisfies HostTensor);
      }
    }
    return keep ? out : null;
  }

  /** This rank's flat parameter shards (copies), by group name. */
  async localShards(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.shards) out.set(name, (await v.data()) as Float32Array);
    return out;
  }

  /** Replaces this rank's shards (as saved by `localShards` on the same rank and world size). */
  setLocalShards(shards: ReadonlyMap<string, Float32Array>): void {
    for (const [name, layout] of this.layouts) {
      const s = shards.get(name);
      if (!s) throw new Error(`FSDP: no shard for group "${name}"`);
      if (s.length !== layout.shardNumel) {
        throw new Error(`FSDP: shard of "${name}" has ${s.length} values, expected ${layout.shardNumel}`);
      }
      assignFlat(this.shards.get(name)!, s);
    }
    this.dirty = true;
  }

  /** Frees the Variables and any gathered parameters. */
  dispose(): void {
    this.buckets?.dispose();
    for (const v of this.shards.values()) v.dispose();
    for (const g of this.gathered.values()) void g.tensors.then(disposeAll, () => undefined);
    this.gathered.clear();
  }

  // ---- internals ----

  private groupsOf(unit: UnitDescriptor): string[] {
    const gs = this.unitGroups.get(unit.name);
    if (!gs) throw new Error(`FSDP: unknown unit "${unit.name}" (not in the chain FSDP was built for)`);
    return gs;
  }

  private checkStateDict(sd: StateDict): string[] {
    const problems: string[] = [];
    const known = new Set<string>();
    for (const layout of this.layouts.values()) {
      for (const e of layout.entries) {
        known.add(e.name);
        const t = sd.get(e.name);
        if (!t) problems.push(`missing tensor "${e.name}" (expected shape [${e.shape.join(', ')}])`);
        else if (t.shape.join() !== e.shape.join() || t.data.length !== e.numel) {
          problems.push(
            `tensor "${e.name}" has shape [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`,
          );
        }
      }
    }
    for (const name of sd.keys()) if (!known.has(name)) problems.push(`unexpected tensor "${name}"`);
    return problems;
  }

  /**
   * Issues collectives in call order. Preparing a collective may await (reading a shard off the backend), but
   * every rank must hand the process group the same calls in the same order, so launches go through one chain.
   */
  private issue<T>(prepare: () => Promise<() => Promise<T>>): Promise<T> {
    const launched = this.chain.then(async () => ({ op: (await prepare())() }));
    // The next launch waits for this one to be issued, not to complete.
    this.chain = launched.then(
      () => undefined,
      () => undefined,
    );
    return launched.then(({ op }) => op);
  }

  private gather(group: string): Promise<Map<string, tf.Tensor>> {
    const layout = this.layouts.get(group)!;
    this.onTransfer?.({ kind: 'gather', group, bytes: layout.shardNumel * 4 });
    if (this.exchange) return this.gatherShared(this.exchange, group);
    const shard = this.shards.get(group)!;
    const full =
      this.strategy === 'NO_SHARD'
        ? (shard.data() as Promise<Float32Array>)
        : this.issue(async () => {
            // This rank's shard goes straight to its place in the gathered buffer.
            const buf = this.gatherBuffer(layout);
            const local = buf.subarray(
              this.pg.rank * layout.shardNumel,
              (this.pg.rank + 1) * layout.shardNumel,
            );
            await readInto(shard, local);
            this.profile.read(local.length * 4);
            return () => this.pg.allGather(local, buf);
          });
    // The tensors are made as soon as the buffer is complete: on wasm they copy it and on webgpu they are
    // uploaded, so it is free again.
    return full.then((buf) => {
      const out = new Map<string, tf.Tensor>();
      for (const e of layout.entries)
        out.set(e.name, tensorFromHost(buf.subarray(e.offset, e.offset + e.numel), e.shape));
      this.uploadedGroup(layout);
      if (this.strategy !== 'NO_SHARD' && backendCopiesHostArrays()) this.pool.give(buf);
      return out;
    });
  }

  private uploadedGroup(layout: FlatLayout): void {
    this.profile.uploaded(layout.numel * 4);
    this.onTransfer?.({ kind: 'upload', group: layout.name, bytes: layout.numel * 4 });
  }

  /** A gather from the shared arena: publish this rank's shards first if they changed, then read in place. */
  private async gatherShared(exchange: SharedShardExchange, group: string): Promise<Map<string, tf.Tensor>> {
    if (this.dirty) {
      this.dirty = false;
      this.publishing = exchange.publish(this.shards, this.layouts);
      for (const l of this.layouts.values()) this.profile.read(l.shardNumel * 4);
    }
    await this.publishing;
    const full = await exchange.parameters(group);
    // Tensors copy the values now on wasm and webgpu uploads them now; cpu keeps the array it is given, so it
    // gets its own.
    const copy = !backendCopiesHostArrays();
    const layout = this.layouts.get(group)!;
    const out = new Map<string, tf.Tensor>();
    for (const e of layout.entries) {
      const values = full.subarray(e.offset, e.offset + e.numel);
      out.set(e.name, tensorFromHost(copy ? values.slice() : values, e.shape));
    }
    this.uploadedGroup(layout);
    return out;
  }

  /**
   * The buffer a group's all-gather writes: from the pool where tensors copy host arrays (it goes back once they
   * are made), else a new one the tensors keep.
   */
  private gatherBuffer(layout: FlatLayout): Float32Array {
    return backendCopiesHostArrays()
      ? this.pool.take(layout.paddedNumel)
      : new Float32Array(layout.paddedNumel);
  }

  private acquire(group: string): void {
    const g = this.gathered.get(group);
    if (g) g.users++;
    else this.gathered.set(group, { tensors: this.gather(group), users: 1 });
  }

  /** Starts gathering a group the next unit will need, unless it is already there. */
  private warm(group: string): void {
    if (this.gathered.has(group)) return;
    const tensors = this.gather(group);
    tensors.catch(() => undefined); // awaited when the unit runs
    this.gathered.set(group, { tensors, users: 0 });
  }

  private release(group: string): void {
    const g = this.gathered.get(group);
    if (!g) return;
    g.users--;
    if (g.users > 0) return;
    this.gathered.delete(group);
    void g.tensors.then(disposeAll, () => undefined);
  }

  /**
   * Starts a group's reduction over the ring once its full gradient is on the host (`full`, or what a bucketed
   * read delivers); `pooled` buffers go back to the pool after.
   */
  private launchReduction(
    layout: FlatLayout,
    full: Float32Array | Promise<Float32Array>,
    pooled = true,
  ): void {
    const group = layout.name;
    // The first microbatch of a step reduces into the shard itself, later ones into scratch, then add.
    const first = !this.shardsFilled.has(group);
    const target = this.shardBuffer(first ? this.gradShards : this.shardScratch, layout);
    let input: Float32Array | null = full instanceof Float32Array ? full : null;
    const reduced = this.issue<unknown>(async () => {
      // A bucketed read is awaited here, in the launch chain, so every rank still issues in the same order.
      input ??= await full;
      const values = input;
      this.onTransfer?.({ kind: 'reduce', group, bytes: 0 });
      return this.strategy === 'NO_SHARD'
        ? async () => target.set(await this.pg.allReduce(values, 'avg'))
        : () => this.pg.reduceScatter(values, 'avg', target);
    });
    this.gradFull.delete(group);
    const done = reduced.then(() => {
      if (pooled && input) this.pool.give(input);
      if (first) {
        this.shardsFilled.add(group);
        return;
      }
      const acc = this.gradShards.get(group)!;
      for (let i = 0; i < acc.length; i++) acc[i]! += target[i]!;
    });
    done.catch(() => undefined); // awaited at the end of the backward pass
    this.pendingReductions.push(done);
  }

  private shardBuffer(buffers: Map<string, Float32Array>, layout: FlatLayout): Float32Array {
    let buf = buffers.get(layout.name);
    if (!buf) {
      buf = new Float32Array(this.strategy === 'NO_SHARD' ? layout.paddedNumel : layout.shardNumel);
      buffers.set(layout.name, buf);
    }
    return buf;
  }
}

/** Variable.assign keeps the value's data but not the tensor object, which must still be disposed. */
function assignFlat(v: tf.Variable, values: Float32Array): void {
  const t = tf.tensor1d(values);
  v.assign(t);
  t.dispose();
}

function disposeAll(tensors: Map<string, tf.Tensor>): void {
  for (const t of tensors.values()) t.dispose();
}
