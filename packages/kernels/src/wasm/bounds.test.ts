import { seededRandom } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { kernelsFor, type MatmulExports, type WasmBackendLike } from './load.js';

/**
 * The kernels on a memory of their own, with every output between canary words: a write past an output (which
 * on tfjs's heap would corrupt a neighbouring tensor or the allocator) shows up as a changed canary.
 */
const CANARY = 0x7fc0dead;
const memory = new WebAssembly.Memory({ initial: 256 });
const fake = { wasm: { asm: { memory } } } as unknown as WasmBackendLike;
const kernels = kernelsFor<MatmulExports>(fake, 'matmul')!;
const words = new Int32Array(memory.buffer);

/** Fills [start, start + n) with random floats and the 64 words on each side with canaries; returns start bytes. */
function region(start: number, n: number, rand: () => number): number {
  const f = new Float32Array(memory.buffer);
  words.fill(CANARY, start - 64, start);
  for (let i = 0; i < n; i++) f[start + i] = rand();
  words.fill(CANARY, start + n, start + n + 64);
  return start * 4;
}

function canariesIntact(start: number, n: number): boolean {
  for (let i = 1; i <= 64; i++) {
    if (words[start - i] !== CANARY || words[start + n + i - 1] !== CANARY) return false;
  }
  return true;
}

describe('wasm kernels stay inside their output', () => {
  it('matmul, transpose and swap_blocks never write past the output on random odd shapes', () => {
    const rand = seededRandom(5);
    const size = () => 1 + Math.floor(rand() * 23);
    for (let trial = 0; trial < 300; trial++) {
      const [batch, m, n, k, block] = [size() % 4, size(), size(), size(), size()];
      const transA = trial % 2;
      const a = 1024;
      const b = a + batch * m * k + 256;
      const c = b + batch * k * n + 256;
      kernels.matmul(
        region(a, batch * m * k, rand),
        region(b, batch * k * n, rand),
        region(c, batch * m * n, rand),
        batch,
        m,
        n,
        k,
        transA,
        m * k * 4,
        k * n * 4,
      );
      expect(canariesIntact(c, batch * m * n)).toBe(true);
      const t = c + batch * m * n + 256;
      kernels.transpose(a * 4, region(t, batch * m * k, rand), batch, m, k);
      expect(canariesIntact(t, batch * m * k)).toBe(true);
      const s = t + batch * m * k * block + 256;
      kernels.swap_blocks(a * 4, region(s, batch * m * n * block, rand), batch, m, n, block);
      expect(canariesIntact(s, batch * m * n * block)).toBe(true);
    }
  });
});
