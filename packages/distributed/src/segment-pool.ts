// Reuses segment buffers within a thread. Ring collectives move fixed-size segments, and fresh large
// ArrayBuffers cost a zero-fill and page faults each time; a rank gets back about as many buffers from its
// neighbour as it sends away, so a small pool per length removes most allocations.
const MAX_PER_LENGTH = 32;
const pool = new Map<number, Float32Array[]>();

/** A buffer of `length` floats with unspecified contents: the caller overwrites all of it. */
export function takeSegment(length: number): Float32Array {
  return pool.get(length)?.pop() ?? new Float32Array(length);
}

/** Returns a buffer nobody else references any more. */
export function giveSegment(a: Float32Array): void {
  if (a.length === 0 || a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength) return;
  if (a.buffer instanceof SharedArrayBuffer) return;
  let list = pool.get(a.length);
  if (!list) {
    list = [];
    pool.set(a.length, list);
  }
  if (list.length < MAX_PER_LENGTH) list.push(a);
}

/** A copy of `src[start, end)` in a pooled buffer. */
export function copySegment(src: Float32Array, start: number, end: number): Float32Array {
  const out = takeSegment(end - start);
  out.set(src.subarray(start, end));
  return out;
}
