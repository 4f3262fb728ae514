// Bandwidth-optimal ring collectives (as in Gloo and NCCL): each rank sends only to `rank + 1` and receives only
// from `rank - 1`; a buffer is cut into `worldSize` chunks, and each chunk into segments so that consecutive ring
// steps overlap (a rank forwards segment k while segment k + 1 is still arriving). Every element crosses each link
// (worldSize - 1) / worldSize times per phase, which is the lower bound.
import type { ReduceOp } from './process-group.js';

/** What a ring algorithm needs from the group for one collective. */
export interface RingContext {
  readonly rank: number;
  readonly worldSize: number;
  /** Elements per segment. */
  readonly segment: number;
  /** Sends to rank + 1; takes ownership of `payload` (a buffer from `recv`, or one the caller allocated). */
  send(step: number, seg: number, payload: Float32Array): void;
  /** Sends a copy of `data` (typically a view of the caller's buffer) to rank + 1; the caller keeps `data`. */
  sendCopy(step: number, seg: number, data: Float32Array): void;
  /** Resolves with what rank - 1 sent for this step and segment; the caller owns it until `send` or `release`. */
  recv(step: number, seg: number): Promise<Float32Array>;
  /** Hands back a buffer from `recv` that is no longer needed (it may be a slot of shared memory, reused). */
  release(payload: Float32Array): void;
}

export const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** Element range of chunk `i` when `n` elements are split as evenly as possible into `parts`. */
export function chunkRange(n: number, parts: number, i: number): [number, number] {
  return [Math.floor((i * n) / parts), Math.floor(((i + 1) * n) / parts)];
}

function segmentCount(length: number, segment: number): number {
  return Math.ceil(length / segment);
}

/** acc[i] = acc[i] (op) src[offset + i]; the loop is per op so the hot path has no branch. */
function accumulate(acc: Float32Array, src: Float32Array, offset: number, op: ReduceOp): void {
  reduceInto(acc, 0, acc, src, offset, op, 1);
}

/**
 * out[outOffset + i] = (acc[i] (op) src[srcOffset + i]) * scale: the last ring step reduces straight into the
 * caller's output, one pass instead of reduce, scale and copy. `out` may be `src` (in place).
 */
function reduceInto(
  out: Float32Array,
  outOffset: number,
  acc: Float32Array,
  src: Float32Array,
  srcOffset: number,
  op: ReduceOp,
  scale: number,
): void {
  const n = acc.length;
  if (op === 'max') {
    for (let i = 0; i < n; i++) {
      const a = acc[i]!;
      const v = src[srcOffset + i]!;
      out[outOffset + i] = v > a || Number.isNaN(v) ? v : a;
    }
  } else if (scale === 1) {
    for (let i = 0; i < n; i++) out[outOffset + i] = acc[i]! + src[srcOffset + i]!;
  } else {
    for (let i = 0; i < n; i++) out[outOffset + i] = (acc[i]! + src[srcOffset + i]!) * scale;
  }
}

/** Where a reduce-scatter leaves chunk `rank`: element `a` of the input lands at `out[a - base]`, times `scale`. */
export interface ReduceTarget {
  out: Float32Array;
  base: number;
  scale: number;
}

/**
 * Reduce-scatter phase over `chunks(i)` ranges of `input`: after it, chunk `rank` of the reduction is in
 * `target`. Uses steps `stepBase .. stepBase + worldSize - 2`. `input` is only read, unless it is `target.out`.
 */
export async function ringReduceScatter(
  ctx: RingContext,
  input: Float32Array,
  chunk: (i: number) => [number, number],
  op: ReduceOp,
  target: ReduceTarget,
  stepBase = 0,
): Promise<void> {
  const { rank, worldSize: w, segment } = ctx;
  const { out, base, scale } = target;
  if (w === 1) {
    const [a, b] = chunk(0);
    if (out === input && scale === 1) return;
    for (let i = a; i < b; i++) out[i - base] = input[i]! * scale;
    return;
  }
  const [s0, e0] = chunk(mod(rank - 1, w));
  for (let k = 0, a = s0; a < e0; k++, a += segment)
    ctx.sendCopy(stepBase, k, input.subarray(a, Math.min(a + segment, e0)));
  for (let s = 0; s < w - 1; s++) {
    const [start, end] = chunk(mod(rank - s - 2, w));
    const segs = segmentCount(end - start, segment);
    for (let k = 0; k < segs; k++) {
      const a = start + k * segment;
      const acc = await ctx.recv(stepBase + s, k);
      if (s < w - 2) {
        accumulate(acc, input, a, op);
        ctx.send(stepBase + s + 1, k, acc);
      } else {
        reduceInto(out, a - base, acc, input, a, op, scale);
        ctx.release(acc);
      }
    }
  }
}

/**
 * All-gather phase in place: chunk `rank` of `buf` is valid on entry; on exit every chunk is. Uses steps
 * `stepBase .. stepBase + worldSize - 2`.
 */
export async function ringAllGather(
  ctx: RingContext,
  buf: Float32Array,
  chunk: (i: number) => [number, number],
  stepBase = 0,
): Promise<void> {
  const { rank, worldSize: w, segment } = ctx;
  if (w === 1) return;
  const [s0, e0] = chunk(rank);
  for (let k = 0, a = s0; a < e0; k++, a += segment)
    ctx.sendCopy(stepBase, k, buf.subarray(a, Math.min(a + segment, e0)));
  for (let s = 0; s < w - 1; s++) {
    const [start, end] = chunk(mod(rank - s - 1, w));
    const segs = segmentCount(end - start, segment);
    for (let k = 0; k < segs; k++) {
      const got = await ctx.recv(stepBase + s, k);
      buf.set(got, start + k * segment);
      if (s < w - 2) ctx.send(stepBase + s + 1, k, got);
      else ctx.release(got);
    }
  }
}

/** Pipelined ring broadcast from `root`: each rank forwards segments to the next until the ring closes. */
export async function ringBroadcast(ctx: RingContext, buf: Float32Array, root: number): Promise<void> {
  const { rank, worldSize: w, segment } = ctx;
  if (w === 1) return;
  const pos = mod(rank - root, w);
  const segs = segmentCount(buf.length, segment);
  for (let k = 0; k < segs; k++) {
    const a = k * segment;
    if (pos === 0) {
      ctx.sendCopy(0, k, buf.subarray(a, Math.min(a + segment, buf.length)));
      continue;
    }
    const got = await ctx.recv(0, k);
    buf.set(got, a);
    if (pos < w - 1) ctx.send(0, k, got);
    else ctx.release(got);
  }
}

/** All-reduce = reduce-scatter then all-gather, each chunk reduced by one rank. */
export async function ringAllReduce(ctx: RingContext, buf: Float32Array, op: ReduceOp): Promise<void> {
  const w = ctx.worldSize;
  const chunk = (i: number) => chunkRange(buf.length, w, i);
  await ringReduceScatter(ctx, buf, chunk, op, { out: buf, base: 0, scale: op === 'avg' ? 1 / w : 1 }, 0);
  await ringAllGather(ctx, buf, chunk, w - 1);
}
