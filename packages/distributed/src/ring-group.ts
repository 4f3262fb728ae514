// The process group proper: one link to each ring neighbour, a queue that runs collectives one at a time, a
// per-call timeout, header checks that catch mismatched calls, and failure propagation around the ring so that
// every rank fails fast with the same reason.
import {
  CollectiveMismatchError,
  CollectiveTimeoutError,
  PeerFailureError,
  type ProcessGroupError,
  seconds,
} from './errors.js';
import { type Frame, FrameKind, type Link } from './frame.js';
import type { CollectiveOptions, ProcessGroup, ReduceOp } from './process-group.js';
import {
  chunkRange,
  type RingContext,
  ringAllGather,
  ringAllReduce,
  ringBroadcast,
  ringReduceScatter,
} from './ring-algorithms.js';
import { copySegment, giveSegment } from './segment-pool.js';
import type { SharedArena } from './shared-arena.js';
import { verifySameValue } from './verify-same.js';

export interface RingGroupOptions {
  rank: number;
  worldSize: number;
  backend: 'threads' | 'tcp';
  /** Link to rank + 1 (data goes out here); null when worldSize is 1. */
  next: Link | null;
  /** Link to rank - 1 (data comes in here). */
  prev: Link | null;
  timeoutMs: number;
  /** Elements per pipelined segment (default 256Ki = 1 MiB). */
  segmentElements?: number;
  /** Called when the group links close (destroy). */
  onDestroy?: () => void | Promise<void>;
  /** Shared memory of worker-thread ranks (see shared-arena.ts). */
  arena?: SharedArena;
}

/** What every rank announces for a collective; ranks compare their neighbour's with their own. */
interface OpHeader {
  op: string;
  n: number;
  root?: number;
  reduce?: string;
}

/** Why the group failed, as passed around the ring in abort frames. */
interface FailureInfo {
  kind: 'timeout' | 'peer' | 'mismatch';
  reason: string;
  /** The rank at fault (dead, hung, or mismatched). */
  culprit: number;
}

interface RunningOp {
  seq: number;
  header: OpHeader;
  label: string;
  started: number;
  /** When rank - 1's header for this op arrived (null: not yet). */
  prevJoinedAt: number | null;
  fail(info: FailureInfo): void;
}

export const DEFAULT_SEGMENT = 1 << 18;

export class RingProcessGroup implements ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: 'threads' | 'tcp';
  readonly timeoutMs: number;
  readonly arena?: SharedArena;
  private readonly next: Link | null;
  private readonly prev: Link | null;
  private readonly segment: number;
  private readonly onDestroy: (() => void | Promise<void>) | undefined;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: FailureInfo | null = null;
  private destroyed = false;
  private current: RunningOp | null = null;
  private readonly inbox = new Map<string, Frame>();
  /** Received payloads that are views of a link's memory, and how to hand each back. */
  private readonly releasers = new WeakMap<Float32Array, () => void>();
  private readonly waiters = new Map<string, (f: Frame) => void>();
  private readonly headers = new Map<number, { header: OpHeader; at: number }>();
  /** Peers that shut down on purpose, with the last collective they completed. */
  private readonly departed = new Map<number, number>();

  constructor(opts: RingGroupOptions) {
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.backend = opts.backend;
    this.timeoutMs = opts.timeoutMs;
    this.next = opts.next;
    this.prev = opts.prev;
    this.segment = opts.segmentElements ?? DEFAULT_SEGMENT;
    this.onDestroy = opts.onDestroy;
    if (opts.arena) this.arena = opts.arena;
    this.prev?.attach({
      onFrame: (f) => this.onPrevFrame(f),
      onClose: (why) => this.onLinkClosed(this.prev!.peer, why),
    });
    this.next?.attach({
      onFrame: (f) => this.onControlFrame(f, this.next!),
      onClose: (why) => this.onLinkClosed(this.next!.peer, why),
    });
  }

  allReduce(buf: Float32Array, op: ReduceOp = 'sum', options?: CollectiveOptions): Promise<Float32Array> {
    const bad = checkReduceOp(op, ['sum', 'avg', 'max'], 'allReduce');
    if (bad) return bad;
    return this.run({ op: 'allReduce', n: buf.length, reduce: op }, options, async (ctx) => {
      await ringAllReduce(ctx, buf, op);
      return buf;
    });
  }

  allGather(input: Float32Array, output?: Float32Array, options?: CollectiveOptions): Promise<Float32Array> {
    const m = input.length;
    const out = output ?? new Float32Array(m * this.worldSize);
    if (out.length !== m * this.worldSize) {
      return Promise.reject(
        new RangeError(
          `allGather: output has ${out.length} elements, expected worldSize (${this.worldSize}) x input (${m}) = ${m * this.worldSize}`,
        ),
      );
    }
    out.set(input, this.rank * m);
    return this.run({ op: 'allGather', n: m }, options, async (ctx) => {
      await ringAllGather(ctx, out, (i) => [i * m, (i + 1) * m]);
      return out;
    });
  }

  reduceScatter(
    input: Float32Array,
    op: 'sum' | 'avg' = 'sum',
    output?: Float32Array,
    options?: CollectiveOptions,
  ): Promise<Float32Array> {
    const bad = checkReduceOp(op, ['sum', 'avg'], 'reduceScatter');
    if (bad) return bad;
    const w = this.worldSize;
    if (input.length % w !== 0) {
      return Promise.reject(
        new RangeError(
          `reduceScatter: input has ${input.length} elements, not a multiple of worldSize ${w} (pad it to ${Math.ceil(input.length / w) * w})`,
        ),
      );
    }
    const m = input.length / w;
    const out = output ?? new Float32Array(m);
    if (out.length !== m) {
      return Promise.reject(
        new RangeError(`reduceScatter: output has ${out.length} elements, expected ${m}`),
      );
    }
    return this.run({ op: 'reduceScatter', n: input.length, reduce: op }, options, async (ctx) => {
      const chunk = (i: number): [number, number] => [i * m, (i + 1) * m];
      await ringReduceScatter(ctx, input, chunk, op, {
        out,
        base: this.rank * m,
        scale: op === 'avg' ? 1 / w : 1,
      });
      return out;
    });
  }

  broadcast(buf: Float32Array, root = 0, options?: CollectiveOptions): Promise<Float32Array> {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(
        new RangeError(`broadcast: root ${root} is not a rank of this group (0..${this.worldSize - 1})`),
      );
    }
    return this.run({ op: 'broadcast', n: buf.length, root }, options, async (ctx) => {
      await ringBroadcast(ctx, buf, root);
      return buf;
    });
  }

  async barrier(options?: CollectiveOptions): Promise<void> {
    await this.run({ op: 'barrier', n: 1 }, options, (ctx) => ringAllReduce(ctx, new Float32Array(1), 'sum'));
  }

  verifySame(value: unknown, label = 'value', options?: CollectiveOptions): Promise<void> {
    return verifySameValue(this, value, label, options);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.queue;
    for (const link of [this.next, this.prev]) {
      if (!link) continue;
      try {
        link.send({ kind: FrameKind.bye, seq: this.seq, step: 0, seg: 0 });
      } catch {
        // The peer is already gone; nothing to tell it.
      }
      link.close();
    }
    await this.onDestroy?.();
  }

  /** Queues a collective; it starts once the ones before it have finished. */
  private run<T>(
    header: OpHeader,
    options: CollectiveOptions | undefined,
    body: (ctx: RingContext) => Promise<T>,
  ) {
    if (this.destroyed) {
      return Promise.reject(
        new PeerFailureError(`${header.op}: this rank's process group was destroyed`, header.op, this.rank),
      );
    }
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const result = this.queue.then(() => this.execute(header, timeoutMs, body));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async execute<T>(
    header: OpHeader,
    timeoutMs: number,
    body: (ctx: RingContext) => Promise<T>,
  ): Promise<T> {
    const seq = ++this.seq;
    const label = `${header.op} #${seq} (${header.n} elements)`;
    if (this.failure) throw this.errorFor(this.failure, label, header.op, 0, true);
    const ctx = this.context(seq);
    if (this.worldSize === 1) return body(ctx);
    const started = performance.now();
    let graceTimer: NodeJS.Timeout | undefined;
    let mainTimer: NodeJS.Timeout | undefined;
    const failed = new Promise<never>((_, reject) => {
      const op: RunningOp = {
        seq,
        header,
        label,
        started,
        prevJoinedAt: null,
        fail: (info) => reject(this.errorFor(info, label, header.op, performance.now() - started, false)),
      };
      this.current = op;
      mainTimer = setTimeout(() => {
        const prev = this.prev!.peer;
        if (op.prevJoinedAt === null) {
          this.fail({
            kind: 'timeout',
            culprit: prev,
            reason: `rank ${prev} did not join ${header.op} #${seq} within ${seconds(timeoutMs)} (hung, crashed without closing its connection, or not calling this collective); detected by rank ${this.rank}`,
          });
          return;
        }
        // Our neighbour joined but is stuck behind someone further up the ring. Its own timeout runs out about
        // `timeoutMs` after it joined; wait for that (plus a margin) so the rank that sees the culprit directly
        // can report it before we blame the neighbour.
        const margin = Math.min(2000, Math.max(200, timeoutMs / 10));
        const prevDeadline = op.prevJoinedAt + timeoutMs - performance.now();
        graceTimer = setTimeout(
          () =>
            this.fail({
              kind: 'timeout',
              culprit: prev,
              reason: `timed out after ${seconds(timeoutMs)} waiting on rank ${prev}, which joined ${header.op} #${seq} but stalled; detected by rank ${this.rank}`,
            }),
          Math.max(0, prevDeadline) + margin,
        );
      }, timeoutMs);
    });
    for (const [peer, left] of this.departed) if (seq > left) this.failDeparted(peer);
    const early = this.headers.get(seq);
    if (early) this.checkHeader(seq, early.header, early.at);
    this.next!.send({ kind: FrameKind.header, seq, step: 0, seg: 0, meta: JSON.stringify(header) });
    try {
      return await Promise.race([body(ctx), failed]);
    } finally {
      clearTimeout(mainTimer);
      clearTimeout(graceTimer);
      this.current = null;
      this.headers.delete(seq);
      failed.catch(() => undefined);
    }
  }

  private context(seq: number): RingContext {
    return {
      rank: this.rank,
      worldSize: this.worldSize,
      segment: this.segment,
      send: (step, seg, payload) => {
        const release = this.takeReleaser(payload);
        if (!release) this.next!.send({ kind: FrameKind.data, seq, step, seg, payload });
        else {
          this.sendCopy({ kind: FrameKind.data, seq, step, seg }, payload);
          release();
        }
      },
      sendCopy: (step, seg, data) => this.sendCopy({ kind: FrameKind.data, seq, step, seg }, data),
      release: (payload) => {
        const release = this.takeReleaser(payload);
        if (release) release();
        else giveSegment(payload);
      },
      recv: (step, seg) => {
        const key = `${seq}:${step}:${seg}`;
        const ready = this.inbox.get(key);
        if (ready) {
          this.inbox.delete(key);
          return Promise.resolve(ready.payload!);
        }
        return new Promise((resolve) => this.waiters.set(key, (f) => resolve(f.payload!)));
      },
    };
  }

  private sendCopy(frame: Frame, data: Float32Array): void {
    const next = this.next!;
    if (next.sendCopy) next.sendCopy(frame, data);
    else next.send({ ...frame, payload: copySegment(data, 0, data.length) });
  }

  private takeReleaser(payload: Float32Array): (() => void) | undefined {
    const release = this.releasers.get(payload);
    if (release) this.releasers.delete(payload);
    return release;
  }

  private onPrevFrame(f: Frame): void {
    if (f.kind === FrameKind.data) {
      if (f.release && f.payload) this.releasers.set(f.payload, f.release);
      const key = `${f.seq}:${f.step}:${f.seg}`;
      const waiter = this.waiters.get(key);
      if (waiter) {
        this.waiters.delete(key);
        waiter(f);
      } else this.inbox.set(key, f);
    } else if (f.kind === FrameKind.header) {
      const header = JSON.parse(f.meta!) as OpHeader;
      if (this.current?.seq === f.seq) this.checkHeader(f.seq, header, performance.now());
      else this.headers.set(f.seq, { header, at: performance.now() });
    } else this.onControlFrame(f, this.prev!);
  }

  private onControlFrame(f: Frame, from: Link): void {
    if (f.kind === FrameKind.abort) {
      const info = JSON.parse(f.meta!) as FailureInfo;
      this.fail(info, from);
    } else if (f.kind === FrameKind.bye) {
      // A peer that finished collective N and left has already sent all it owed for N; only later calls need it.
      this.departed.set(from.peer, f.seq);
      if (this.current && this.current.seq > f.seq) this.failDeparted(from.peer);
    }
  }

  private failDeparted(peer: number): void {
    this.fail({ kind: 'peer', culprit: peer, reason: `rank ${peer} has shut down its process group` });
  }

  private checkHeader(seq: number, theirs: OpHeader, at: number): void {
    const op = this.current!;
    op.prevJoinedAt = at;
    const mine = op.header;
    const prev = this.prev!.peer;
    let what: string | null = null;
    if (theirs.op !== mine.op)
      what = `rank ${prev} called ${theirs.op} while rank ${this.rank} called ${mine.op}`;
    else if (theirs.n !== mine.n)
      what = `rank ${prev} passed ${theirs.n} elements, rank ${this.rank} passed ${mine.n} elements`;
    else if (theirs.root !== mine.root)
      what = `rank ${prev} used root ${theirs.root}, rank ${this.rank} used root ${mine.root}`;
    else if (theirs.reduce !== mine.reduce)
      what = `rank ${prev} reduces with ${theirs.reduce}, rank ${this.rank} with ${mine.reduce}`;
    if (what)
      this.fail({ kind: 'mismatch', culprit: prev, reason: `mismatched collective #${seq}: ${what}` });
  }

  private onLinkClosed(peer: number, why: string): void {
    if (this.destroyed) return;
    const left = this.departed.get(peer);
    if (left === undefined) this.fail({ kind: 'peer', culprit: peer, reason: `rank ${peer} ${why}` });
    else if (this.current && this.current.seq > left) this.failDeparted(peer);
  }

  /** Records the first failure, fails the running op, and passes the reason on to both neighbours once. */
  private fail(info: FailureInfo, from?: Link): void {
    if (this.failure) return;
    this.failure = info;
    this.current?.fail(info);
    const meta = JSON.stringify(info);
    for (const link of [this.next, this.prev]) {
      // A dead peer cannot hear it; a hung or mismatched one can, and should fail too.
      if (!link || link === from || (info.kind === 'peer' && link.peer === info.culprit)) continue;
      try {
        link.send({ kind: FrameKind.abort, seq: this.seq, step: 0, seg: 0, meta });
      } catch {
        // That neighbour is gone too; the other direction still carries the news.
      }
    }
  }

  failureError(): Error | null {
    if (this.failure) return this.errorFor(this.failure, 'process group', 'group', 0, true);
    if (this.destroyed)
      return new PeerFailureError(`rank ${this.rank}'s process group was destroyed`, 'group', this.rank);
    return null;
  }

  private errorFor(
    info: FailureInfo,
    label: string,
    op: string,
    elapsedMs: number,
    earlier: boolean,
  ): ProcessGroupError {
    const msg = earlier
      ? `${label} on rank ${this.rank} cannot run: the process group failed earlier: ${info.reason}`
      : `${label} on rank ${this.rank} failed after ${seconds(elapsedMs)}: ${info.reason}`;
    if (info.kind === 'timeout') return new CollectiveTimeoutError(msg, op, info.culprit, elapsedMs);
    if (info.kind === 'mismatch') return new CollectiveMismatchError(msg, op, info.culprit);
    return new PeerFailureError(msg, op, info.culprit);
  }
}

function checkReduceOp(op: string, allowed: string[], name: string): Promise<never> | null {
  if (allowed.includes(op)) return null;
  return Promise.reject(new RangeError(`${name}: unknown reduce op '${op}' (use ${allowed.join(', ')})`));
}

export { chunkRange };
