import { describe, expect, it } from 'vitest';
import { SharedHeap } from './shared-heap.js';

describe('SharedHeap', () => {
  it('is a shared memory whose allocations are 64-byte aligned, past the reserved bytes, and disjoint', () => {
    const heap = new SharedHeap(100);
    expect(heap.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    const a = heap.alloc(10);
    const b = heap.alloc(65);
    const c = heap.alloc(200_000); // grows the memory past its first page
    expect(a).toBe(128);
    expect(b).toBe(192);
    expect(c).toBe(320);
    expect(heap.memory.buffer.byteLength).toBeGreaterThanOrEqual(c + 200_000);
    expect(heap.used).toBe(320 + 200_000);
  });

  it('reuses released spans first-fit, merges neighbours and lowers the top', () => {
    const heap = new SharedHeap(0);
    const [a, b, c, d] = [heap.alloc(64), heap.alloc(64), heap.alloc(64), heap.alloc(64)];
    heap.release(b, 64);
    heap.release(c, 64); // merged with b: one 128-byte span
    expect(heap.alloc(128)).toBe(b);
    heap.release(b, 128);
    expect(heap.alloc(64)).toBe(b); // the first fit, split
    heap.release(d, 64); // d is at the top and c is free beside it: the top comes down to c
    expect(heap.used).toBe(c);
    expect(heap.alloc(64)).toBe(c);
    expect(a).toBe(0);
  });

  it('rejects bad sizes, a double release and the 4 GiB limit clearly', () => {
    const heap = new SharedHeap(0);
    expect(() => new SharedHeap(-1)).toThrow(/reserved bytes must be a non-negative integer, got -1/);
    expect(() => heap.alloc(0)).toThrow(/expected a positive integer byte count, got 0/);
    expect(() => heap.alloc(1.5)).toThrow(/got 1.5/);
    const a = heap.alloc(64);
    heap.alloc(64);
    heap.release(a, 64);
    expect(() => heap.release(a, 64)).toThrow(/\[0, 64\) is not an allocated span/);
    expect(() => heap.alloc(2 ** 32)).toThrow(/would pass the 4 GiB wasm32 limit/);
  });
});
