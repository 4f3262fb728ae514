import { describe, expect, it } from 'vitest';
import { backendMemory, kernelsFor, type MatmulExports, type WasmBackendLike } from './load.js';

const backendOn = (memory: WebAssembly.Memory) =>
  ({ wasm: { asm: { memory } } }) as unknown as WasmBackendLike;

/** [[1, 2], [3, 4]] x [[5, 6], [7, 8]] through the kernels bound to `memory`. */
function multiplyOn(memory: WebAssembly.Memory): number[] {
  const kernels = kernelsFor<MatmulExports>(backendOn(memory), 'matmul');
  expect(kernels).not.toBeNull();
  const f = new Float32Array(memory.buffer);
  f.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
  kernels!.matmul(0, 16, 32, 1, 2, 2, 2, 0, 0, 0);
  return Array.from(f.subarray(8, 12));
}

describe('loading the wasm kernels', () => {
  it('links to a plain memory and to a shared one (the threaded tfjs-wasm build)', () => {
    expect(multiplyOn(new WebAssembly.Memory({ initial: 1 }))).toEqual([19, 22, 43, 50]);
    expect(multiplyOn(new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true }))).toEqual([
      19, 22, 43, 50,
    ]);
  });

  it('binds once per memory object and sees the memory grow', () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const first = kernelsFor<MatmulExports>(backendOn(memory), 'matmul');
    expect(kernelsFor<MatmulExports>(backendOn(memory), 'matmul')).toBe(first);
    memory.grow(1);
    const f = new Float32Array(memory.buffer);
    const base = 65536; // in the page added after instantiation
    f.set([2, 3], base / 4);
    first!.matmul(base, base + 4, base + 8, 1, 1, 1, 1, 0, 0, 0);
    expect(new Float32Array(memory.buffer)[base / 4 + 2]).toBe(6);
  });

  it('returns null for a backend that does not expose its memory', () => {
    const backend = { wasm: {} } as unknown as WasmBackendLike;
    expect(backendMemory(backend)).toBeNull();
    expect(kernelsFor(backend, 'matmul')).toBeNull();
  });
});
