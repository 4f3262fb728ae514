// Memory every rank of a worker-thread group sees: one growable SharedArrayBuffer made by whoever builds the
// ring, handed to each rank with its ring ports. Ranks reserve regions in the same order (FSDP reserves when it
// is built, which every rank does collectively), so each rank's local bump pointer gives the same offsets
// everywhere without a message. Regions are never freed: the arena lives as long as its group.

// Growable SharedArrayBuffers are ES2024; Node 20 has them, the ES2022 typings this package builds against do not.
export interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  readonly maxByteLength: number;
  grow(newByteLength: number): void;
}
type GrowableConstructor = new (
  length: number,
  options: { maxByteLength: number },
) => GrowableSharedArrayBuffer;

/** The largest growable SharedArrayBuffer Node 20 makes. */
export const ARENA_MAX_BYTES = 2 ** 32;
/** Regions start on cache-line boundaries, so two ranks' counters or slots never share a line. */
const ALIGN = 64;

/** A growable SharedArrayBuffer for a group's arena, or null where the runtime cannot grow shared memory. */
export function createArenaBuffer(maxBytes = ARENA_MAX_BYTES): GrowableSharedArrayBuffer | null {
  try {
    const buffer = new (SharedArrayBuffer as unknown as GrowableConstructor)(0, { maxByteLength: maxBytes });
    return typeof buffer.grow === 'function' ? buffer : null;
  } catch {
    return null;
  }
}

export class SharedArena {
  private used = 0;

  readonly buffer: GrowableSharedArrayBuffer;

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer as GrowableSharedArrayBuffer;
  }

  /**
   * Reserves `bytes` and returns their offset, growing the buffer as needed; null when the arena has no room
   * (the caller falls back to messages). Every rank must make the same reservations in the same order.
   */
  reserve(bytes: number): number | null {
    const offset = Math.ceil(this.used / ALIGN) * ALIGN;
    const end = offset + bytes;
    if (end > this.buffer.maxByteLength) return null;
    if (this.buffer.byteLength < end) {
      try {
        this.buffer.grow(end);
      } catch (err) {
        // Another rank grew it past `end` first (shrinking is an error); anything else is real.
        if (this.buffer.byteLength < end) throw err;
      }
    }
    this.used = end;
    return offset;
  }
}
