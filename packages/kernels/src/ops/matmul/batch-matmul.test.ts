import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { maxAbsDiff, randomTensor } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend, setWasmSimdMatMul } from '../../index.js';
import type { WasmBackendLike } from '../../wasm/load.js';
import { matMulShape, matmulKernels, simdHandles } from './batch-matmul.js';

type Case = [number[], number[], boolean, boolean];

/** matMul of each case on cpu and on wasm (our kernel), same inputs. */
async function compare(cases: Case[]): Promise<number[]> {
  const results: Record<string, Float32Array[]> = { cpu: [], wasm: [] };
  for (const backend of ['cpu', 'wasm'] as const) {
    await selectBackend(backend, { log: false });
    const tensors = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    cases.forEach(([sa, sb, ta, tb], i) => {
      const out = tf.tidy(() => tf.matMul(randomTensor(sa, 3 * i + 1), randomTensor(sb, 3 * i + 2), ta, tb));
      results[backend]!.push(out.dataSync() as Float32Array);
      out.dispose();
    });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(dataIds);
  }
  const wasm = results['wasm'] ?? [];
  return (results['cpu'] ?? []).map((want, i) => maxAbsDiff(wasm[i] ?? [], want));
}

describe('SIMD batched matmul on wasm', () => {
  it('loads on this runtime (node has wasm SIMD), so the tests below exercise it', async () => {
    await selectBackend('wasm', { log: false });
    const kernels = matmulKernels(tf.backend() as unknown as WasmBackendLike);
    expect(kernels).not.toBeNull();
    expect(typeof kernels?.matmul).toBe('function');
  });

  it('equals the cpu matMul on odd sizes (M, N, K not multiples of 4 or 8) and every transpose', async () => {
    const cases: Case[] = [];
    const sizes: [number, number, number][] = [
      [1, 1, 1],
      [3, 5, 7],
      [4, 8, 1],
      [9, 19, 6],
      [13, 11, 17],
      [8, 12, 33],
      [5, 4, 3],
    ];
    for (const [m, n, k] of sizes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          cases.push([ta ? [3, k, m] : [3, m, k], tb ? [3, n, k] : [3, k, n], ta, tb]);
        }
      }
    }
    for (const diff of await compare(cases)) expect(diff).toBeLessThan(1e-5);
  });

  it('equals the cpu matMul on attention shapes [B, H, T, Dh] and broadcast batch dims', async () => {
    const cases: Case[] = [
      [[2, 4, 64, 32], [2, 4, 32, 64], false, false], // q k^T with k transposed explicitly
      [[2, 4, 64, 32], [2, 4, 64, 32], false, true], // q k^T
      [[2, 4, 64, 64], [2, 4, 64, 32], true, false], // P^T dO
      [[2, 3, 6, 5], [3, 5, 4], false, false], // b broadcast over the leading dim
      [[4, 6, 5], [5, 7], false, false], // one weight for every batch entry
      [[6, 5], [4, 5, 7], false, false], // a broadcast
      [[1, 5, 6], [4, 7, 5], true, true],
      [[2, 3, 5, 6], [3, 7, 5], true, true], // b repeats along the leading dim
    ];
    for (const diff of await compare(cases)) expect(diff).toBeLessThan(1e-4);
  });

  it('gives the same gradients as cpu through a batched product', async () => {
    const grads: Record<string, Float32Array[]> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend, { log: false });
      const a = randomTensor([2, 3, 7, 5], 11);
      const b = randomTensor([2, 3, 9, 5], 12);
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true)));
      const g = tf.grads(f)([a, b]);
      grads[backend] = g.map((t) => t.dataSync() as Float32Array);
      tf.dispose([a, b, ...g]);
    }
    const wasm = grads['wasm'] ?? [];
    (grads['cpu'] ?? []).forEach((want, i) => {
      expect(maxAbsDiff(wasm[i] ?? [], want)).toBeLessThan(1e-4);
    });
  });

  it('matches tfjs-wasm own kernel when switched off, and takes only shapes it computes exactly', async () => {
    await selectBackend('wasm', { log: false });
    const a = randomTensor([5, 9, 13], 21);
    const b = randomTensor([5, 13, 6], 22);
    const ours = tf.matMul(a, b).dataSync();
    setWasmSimdMatMul('off');
    const theirs = tf.matMul(a, b).dataSync();
    setWasmSimdMatMul('batched');
    tf.dispose([a, b]);
    expect(maxAbsDiff(ours, theirs)).toBeLessThan(1e-5);
    // [2,1] x [1,3] batch dims broadcast both ways: not a single stride per operand, left to tfjs.
    expect(simdHandles(matMulShape([2, 1, 4, 5], [1, 3, 5, 6], false, false))).toBe(false);
    expect(simdHandles(matMulShape([2, 3, 4, 5], [3, 5, 6], false, false))).toBe(true);
    expect(simdHandles(matMulShape([2, 3, 4, 5], [2, 1, 5, 6], false, false))).toBe(false);
    expect(simdHandles(matMulShape([2, 3, 4, 5], [1, 1, 5, 6], false, false))).toBe(true);
    expect(simdHandles(matMulShape([2, 3, 4, 0], [2, 3, 0, 6], false, false))).toBe(false);
    expect(() => matMulShape([2, 4, 5], [2, 6, 7], false, false)).toThrow(/inner sizes differ/);
  });

  it('ships the bytes a fresh assembly of the .wat sources gives', () => {
    // The workspace's wat build tool (tools/build), run on this package with --check.
    const packageDir = fileURLToPath(new URL('../../../', import.meta.url));
    const script = fileURLToPath(
      new URL('../../../../../tools/build/build-wasm-kernels.mjs', import.meta.url),
    );
    const out = execFileSync(process.execPath, [script, packageDir, '--check'], { encoding: 'utf8' });
    expect(out).toContain('up to date');
  });
});
