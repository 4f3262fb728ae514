import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../index.js';
import type { WasmBackendLike } from '../../wasm/load.js';
import { setWasmThreads, WASM_THREADS_ENV, wasmThreads } from '../../wasm/threads.js';
import { INT8_THREAD_MIN_WEIGHTS, Int8ThreadPool } from './thread-pool.js';
import {
  disposeInt8ThreadPool,
  disposeInt8Weight,
  type Int8Weight,
  int8Linear,
  int8ThreadPool,
  quantizeInt8,
  uploadInt8,
} from './wasm.js';

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

function bits(t: tf.Tensor): Uint32Array {
  const data = t.dataSync() as Float32Array;
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** `int8Linear(x, w)` on `threads` threads, after the pool's workers have all started. */
async function linearOn(threads: number, x: tf.Tensor, w: Int8Weight): Promise<Uint32Array> {
  setWasmThreads(threads);
  await int8ThreadPool()?.whenReady();
  const y = int8Linear(x, w);
  const out = bits(y).slice();
  y.dispose();
  return out;
}

/** Runs the pool directly: the `[m, n]` output bits, the chunk count and how many chunks the caller ran. */
function poolProduct(
  pool: Int8ThreadPool,
  x: tf.Tensor,
  w: Int8Weight,
): { y: Uint32Array; chunks: number; byCaller: number } {
  const backend = tf.backend() as unknown as WasmBackendLike;
  const m = x.shape[0]!;
  const out = backend.makeOutput([m, w.n], 'float32');
  try {
    const split = pool.matvec(backend, x, w.packed, w.scales, out, { m, n: w.n, k: w.k, kp: w.rowBytes });
    const y = tf.engine().makeTensorFromTensorInfo(out as tf.TensorInfo);
    const data = bits(y).slice();
    y.dispose();
    return { y: data, ...split };
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  }
}

/**
 * Repeats the product on the pool until the workers ran part of it (they claim chunks only when scheduled in
 * time, so a loaded machine may need a few calls), checking every result against `expected`. Returns how many
 * calls had the workers' help.
 */
function productsWithWorkers(
  pool: Int8ThreadPool,
  x: tf.Tensor,
  w: Int8Weight,
  expected: Uint32Array,
): number {
  let helped = 0;
  const t0 = performance.now();
  for (let i = 0; i < 500 && helped < 3 && performance.now() - t0 < 3000; i++) {
    const { y, chunks, byCaller } = poolProduct(pool, x, w);
    expect(y).toEqual(expected);
    if (byCaller < chunks) helped++;
  }
  return helped;
}

describe('int8 matrix-vector product split over threads', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: false });
  });
  afterEach(() => {
    setWasmThreads('auto');
    disposeInt8ThreadPool();
  });

  it('gives the single-thread bits for uneven n, k off multiples of 16, m = 1 to 4 and 7, 2 and 3 threads', async () => {
    // n * rowBytes at or above the threshold, so the pool takes the product; n divides evenly by neither 2 nor 3.
    const shapes: [number, number][] = [
      [1027, 260],
      [4099, 100],
      [337, 1030],
    ];
    for (const [idx, [n, k]] of shapes.entries()) {
      expect(n * Math.ceil(k / 16) * 16).toBeGreaterThanOrEqual(INT8_THREAD_MIN_WEIGHTS);
      const w = uploadInt8(quantizeInt8(randomArray(n * k, 20 + idx, 0.05), [n, k]));
      for (const m of [1, 2, 3, 4, 7]) {
        const x = tf.tensor2d(randomArray(m * k, 100 * idx + m), [m, k]);
        const single = await linearOn(1, x, w);
        for (const threads of [2, 3]) {
          const split = await linearOn(threads, x, w);
          expect(split.length).toBe(m * n);
          let differing = 0;
          for (let i = 0; i < split.length; i++) if (split[i] !== single[i]) differing++;
          expect(differing, `[${m}, ${n}, ${k}] on ${threads} threads`).toBe(0);
          // And with the workers' share in it.
          const pool = int8ThreadPool()!;
          expect(pool.threads).toBe(threads);
          expect(productsWithWorkers(pool, x, w, single)).toBeGreaterThan(0);
        }
        x.dispose();
      }
      disposeInt8Weight(w);
    }
  });

  it('keeps one thread (no pool) at threads = 1 and below the size threshold', async () => {
    setWasmThreads(1);
    expect(wasmThreads()).toBe(1);
    expect(int8ThreadPool()).toBeNull();
    setWasmThreads(2);
    const pool = int8ThreadPool()!;
    await pool.whenReady();
    const before = pool.sharedBytes;
    const w = uploadInt8(quantizeInt8(randomArray(64 * 100, 3), [64, 100]));
    const y = int8Linear(tf.ones([1, 100]), w);
    expect(y.shape).toEqual([1, 64]);
    y.dispose();
    // A small weight is never copied into the shared memory.
    expect(pool.sharedBytes).toBe(before);
    disposeInt8Weight(w);
  });

  it('frees the shared copy of a disposed weight when the next weight needs room', async () => {
    const pool = new Int8ThreadPool({ threads: 2 });
    try {
      await pool.whenReady();
      const [n, k] = [2048, 256];
      const a = uploadInt8(quantizeInt8(randomArray(n * k, 7), [n, k]));
      const x = tf.ones([1, k]);
      // Two products: the pool alternates between two call regions.
      poolProduct(pool, x, a);
      poolProduct(pool, x, a);
      const withA = pool.sharedBytes;
      disposeInt8Weight(a);
      const b = uploadInt8(quantizeInt8(randomArray(n * k, 8), [n, k]));
      poolProduct(pool, x, b);
      poolProduct(pool, x, b);
      expect(pool.sharedBytes).toBe(withA);
      disposeInt8Weight(b);
      x.dispose();
    } finally {
      pool.dispose();
    }
  });

  it('reports a worker that exited between calls, and the next product starts a new pool', async () => {
    const [n, k] = [1024, 512];
    const w = uploadInt8(quantizeInt8(randomArray(n * k, 9), [n, k]));
    const x = tf.tensor2d(randomArray(k, 10), [1, k]);
    const single = await linearOn(1, x, w);
    setWasmThreads(2);
    const pool = int8ThreadPool()!;
    await pool.whenReady();
    await pool.workerThreads[0]!.terminate();
    expect(() => int8Linear(x, w)).toThrow(/int8 worker thread 1 exited \(code 1\)/);
    expect(pool.failure).toMatch(/exited/);
    // The broken pool was dropped: a fresh one gives the same bits.
    expect(int8ThreadPool()).not.toBe(pool);
    expect(await linearOn(2, x, w)).toEqual(single);
    tf.dispose(x);
    disposeInt8Weight(w);
  });

  it('finishes without a worker that dies during a run of calls, or names it after a timeout, never hangs', async () => {
    const pool = new Int8ThreadPool({ threads: 2, timeoutMs: 300 });
    const [n, k] = [1024, 512];
    const w = uploadInt8(quantizeInt8(randomArray(n * k, 11), [n, k]));
    const x = tf.tensor2d(randomArray(k, 12), [1, k]);
    try {
      const single = await linearOn(1, x, w);
      await pool.whenReady();
      expect(productsWithWorkers(pool, x, w, single)).toBeGreaterThan(0);
      // Stop the worker without yielding to the event loop, so its exit cannot be reported during the calls
      // below: each either leaves the dead worker's chunks to the caller (same bits) or, if the worker died
      // holding a chunk, gives up after the timeout with an error naming the product.
      const stopped = pool.workerThreads[0]!.terminate();
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) {
        const t1 = performance.now();
        try {
          expect(poolProduct(pool, x, w).y).toEqual(single);
        } catch (err) {
          expect(String(err)).toMatch(
            /int8 worker thread 1 did not finish its part of an earlier product within 300 ms \(it may have exited\)/,
          );
          break;
        } finally {
          expect(performance.now() - t1).toBeLessThan(3000);
        }
      }
      expect(performance.now() - t0).toBeLessThan(10_000);
      await stopped;
      // Once its exit is known, calls say so.
      expect(() => poolProduct(pool, x, w)).toThrow(
        /int8Linear: int8 worker thread 1 (exited|did not finish)/,
      );
    } finally {
      pool.dispose();
      tf.dispose(x);
      disposeInt8Weight(w);
    }
  });

  it('stays on one thread, with no error, where SharedArrayBuffer is missing (a browser not cross-origin isolated)', async () => {
    const [n, k] = [1024, 512];
    const w = uploadInt8(quantizeInt8(randomArray(n * k, 13), [n, k]));
    const x = tf.tensor2d(randomArray(k, 14), [1, k]);
    const single = await linearOn(1, x, w);
    disposeInt8ThreadPool();
    const saved = globalThis.SharedArrayBuffer;
    try {
      // @ts-expect-error: removed to stand for a runtime without it
      delete globalThis.SharedArrayBuffer;
      setWasmThreads(4);
      expect(wasmThreads()).toBe(1);
      expect(int8ThreadPool()).toBeNull();
      const y = int8Linear(x, w);
      expect(bits(y)).toEqual(single);
      y.dispose();
    } finally {
      globalThis.SharedArrayBuffer = saved;
      tf.dispose(x);
      disposeInt8Weight(w);
    }
  });

  it('rejects a bad thread count from the setter and the environment', () => {
    expect(() => setWasmThreads(0)).toThrow(/setWasmThreads must be an integer from 1 to 16, got 0/);
    expect(() => setWasmThreads(2.5)).toThrow(/got 2.5/);
    expect(() => new Int8ThreadPool({ threads: 1 })).toThrow(
      /threads must be an integer from 2 to 16, got 1/,
    );
    const saved = process.env[WASM_THREADS_ENV];
    try {
      process.env[WASM_THREADS_ENV] = 'two';
      expect(() => wasmThreads()).toThrow(/MPTJS_WASM_THREADS must be an integer from 1 to 16, got "two"/);
      process.env[WASM_THREADS_ENV] = '3';
      expect(wasmThreads()).toBe(3);
      setWasmThreads(1);
      expect(wasmThreads()).toBe(1);
    } finally {
      if (saved === undefined) delete process.env[WASM_THREADS_ENV];
      else process.env[WASM_THREADS_ENV] = saved;
    }
  });
});
