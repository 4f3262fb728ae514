import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.js';

describe('BufferPool', () => {
  it('hands back returned buffers by length and holds only what was in use at once', () => {
    const pool = new BufferPool();
    const a = pool.take(8);
    const b = pool.take(8);
    const c = pool.take(5);
    expect(a).not.toBe(b);
    expect([...a]).toEqual(new Array(8).fill(0));
    a[3] = 7;
    pool.give(a);
    pool.give(c);
    expect(pool.retained).toBe(13);
    const again = pool.take(8);
    expect(again).toBe(a);
    expect(again[3]).toBe(7); // contents are kept: callers overwrite
    expect(pool.take(5)).toBe(c);
    expect(pool.take(5)).not.toBe(c);
    pool.give(b);
    pool.give(again);
    expect(pool.retained).toBe(16);
  });
});
