/**
 * A shared `WebAssembly.Memory` with a first-fit allocator, for kernels that several threads run on at once
 * (tfjs-wasm's own heap is not shared in its Node build, so worker threads cannot read it). The first
 * `reserved` bytes are left to the owner (a control block); allocations are 64-byte aligned (a cache line, and
 * every SIMD load stays aligned). Growing a shared memory never moves it, so views made before a grow stay valid.
 */

const PAGE = 65536;
/** wasm32's largest memory, in pages (4 GiB). */
export const MAX_PAGES = 65536;
const ALIGN = 64;

interface Span {
  start: number;
  end: number;
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

export class SharedHeap {
  readonly memory: WebAssembly.Memory;
  /** Free spans below `top`, sorted by start and never adjacent (merged on release). */
  private readonly free: Span[] = [];
  private top: number;

  constructor(reserved: number) {
    if (!Number.isInteger(reserved) || reserved < 0) {
      throw new RangeError(`SharedHeap: reserved bytes must be a non-negative integer, got ${reserved}`);
    }
    this.top = alignUp(reserved);
    this.memory = new WebAssembly.Memory({
      initial: Math.max(1, Math.ceil(this.top / PAGE)),
      maximum: MAX_PAGES,
      shared: true,
    });
  }

  /** Bytes in use or free below the high-water mark (what the memory must hold). */
  get used(): number {
    return this.top;
  }

  /** Address of `bytes` (rounded up to 64) fresh bytes; grows the memory when no free span fits. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes <= 0) {
      throw new RangeError(`SharedHeap.alloc: expected a positive integer byte count, got ${bytes}`);
    }
    const size = alignUp(bytes);
    for (let i = 0; i < this.free.length; i++) {
      const span = this.free[i]!;
      if (span.end - span.start < size) continue;
      const at = span.start;
      span.start += size;
      if (span.start === span.end) this.free.splice(i, 1);
      return at;
    }
    const at = this.top;
    const end = at + size;
    if (end > MAX_PAGES * PAGE) {
      throw new RangeError(
        `SharedHeap: ${size} more bytes would pass the 4 GiB wasm32 limit (${at} bytes already in use)`,
      );
    }
    const pages = this.memory.buffer.byteLength / PAGE;
    const need = Math.ceil(end / PAGE);
    if (need > pages) this.memory.grow(need - pages);
    this.top = end;
    return at;
  }

  /** Returns `[at, at + bytes)` (as passed to and returned by `alloc`) to the free list. */
  release(at: number, bytes: number): void {
    const size = alignUp(bytes);
    const span = { start: at, end: at + size };
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < span.start) i++;
    const before = this.free[i - 1];
    const after = this.free[i];
    if ((before && before.end > span.start) || (after && span.end > after.start) || span.end > this.top) {
      throw new Error(`SharedHeap.release: [${at}, ${at + size}) is not an allocated span`);
    }
    if (before && before.end === span.start) {
      before.end = span.end;
      if (after && before.end === after.start) {
        before.end = after.end;
        this.free.splice(i, 1);
      }
    } else if (after && span.end === after.start) after.start = span.start;
    else this.free.splice(i, 0, span);
    // A free span at the top lowers the high-water mark (the memory itself cannot shrink).
    const last = this.free[this.free.length - 1];
    if (last && last.end === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }
}
