import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { int8Linear, quantizeInt8, selectBackend, uploadInt8 } from '../../index.js';
import { dequantizeInt8, disposeInt8Weight, INT8_FLOAT_MATMUL_ROWS, type QuantizedInt8 } from './wasm.js';

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

/**
 * x . dequant(W)^T in float64; the sum of |terms| per output (the scale of its float rounding error); and the
 * most that rounding x to int16 can move an output below `INT8_FLOAT_MATMUL_ROWS` rows: half a step of the row's
 * scale (max|x| / 32767) times the sum of |w| over the weight row.
 */
function reference(
  x: Float32Array,
  q: QuantizedInt8,
  m: number,
): { y: Float64Array; mag: Float64Array; xRound: Float64Array } {
  const w = dequantizeInt8(q);
  const y = new Float64Array(m * q.n);
  const mag = new Float64Array(m * q.n);
  const xRound = new Float64Array(m * q.n);
  for (let i = 0; i < m; i++) {
    let xMax = 0;
    for (let c = 0; c < q.k; c++) xMax = Math.max(xMax, Math.abs(x[i * q.k + c]!));
    for (let j = 0; j < q.n; j++) {
      let s = 0;
      let a = 0;
      let wAbs = 0;
      for (let c = 0; c < q.k; c++) {
        const t = x[i * q.k + c]! * w[j * q.k + c]!;
        s += t;
        a += Math.abs(t);
        wAbs += Math.abs(w[j * q.k + c]!);
      }
      y[i * q.n + j] = s;
      mag[i * q.n + j] = a;
      xRound[i * q.n + j] = m < INT8_FLOAT_MATMUL_ROWS ? (xMax / 32767 / 2) * wAbs : 0;
    }
  }
  return { y, mag, xRound };
}

describe('int8 weight-only linear on wasm', () => {
  it('quantizes within half a step per row: |w - q * scale| <= scale / 2', () => {
    const [n, k] = [37, 301];
    // Rows of very different magnitudes, so each row's own scale matters.
    const w = randomArray(n * k, 5);
    for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) w[r * k + c]! *= 10 ** ((r % 7) - 3);
    const q = quantizeInt8(w, [n, k]);
    expect(q.rowBytes).toBe(304);
    const back = dequantizeInt8(q);
    for (let r = 0; r < n; r++) {
      const s = q.scales[r]!;
      let max = 0;
      for (let c = 0; c < k; c++) max = Math.max(max, Math.abs(w[r * k + c]!));
      expect(s * 127).toBeGreaterThanOrEqual(max);
      expect(s).toBeLessThanOrEqual(max / 127 + 3e-7 * s);
      for (let c = 0; c < k; c++) {
        expect(Math.abs(w[r * k + c]! - back[r * k + c]!)).toBeLessThanOrEqual(s / 2 + s * 1e-6);
        expect(Math.abs(q.packed[r * q.rowBytes + c]!)).toBeLessThanOrEqual(127);
      }
      for (let c = k; c < q.rowBytes; c++) expect(q.packed[r * q.rowBytes + c]).toBe(0);
    }
  });

  it('gives an all-zero row scale 0 and rejects NaN and a wrong size', () => {
    const q = quantizeInt8(new Float32Array(2 * 3).fill(0), [2, 3]);
    expect([...q.scales]).toEqual([0, 0]);
    expect(() => quantizeInt8(Float32Array.from([1, Number.NaN]), [1, 2])).toThrow(/weight \[0, 1\] is NaN/);
    expect(() => quantizeInt8(new Float32Array(5), [2, 3])).toThrow(/do not fill a \[2, 3\]/);
  });

  it('equals x . dequant(W)^T (float64) within float and int16 rounding, odd K and N, M = 1 to 33 (both paths)', async () => {
    await selectBackend('wasm', { log: false });
    const cases: [number, number, number][] = [
      [1, 1, 1],
      [1, 33, 17],
      [1, 64, 256],
      [7, 45, 131],
      [7, 3, 16],
      [4, 129, 100],
      [9, 250, 515],
      // From INT8_FLOAT_MATMUL_ROWS rows up: the weight widened to float32 by the kernel, then XNNPACK.
      [16, 45, 131],
      [33, 250, 515],
      [20, 3, 16],
    ];
    const tensors = tf.memory().numTensors;
    for (const [idx, [m, n, k]] of cases.entries()) {
      const q = quantizeInt8(randomArray(n * k, 10 + idx, 0.05), [n, k]);
      const x = randomArray(m * k, 50 + idx);
      const w = uploadInt8(q);
      const out = tf.tidy(() => int8Linear(tf.tensor(x, [m, k]), w));
      expect(out.shape).toEqual([m, n]);
      const got = out.dataSync();
      out.dispose();
      disposeInt8Weight(w);
      const { y, mag, xRound } = reference(x, q, m);
      for (let i = 0; i < m * n; i++) {
        expect(Math.abs(got[i]! - y[i]!), `case [${m}, ${n}, ${k}] output ${i}`).toBeLessThanOrEqual(
          1e-5 * mag[i]! + xRound[i]! + 1e-30,
        );
      }
    }
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('keeps leading dims of x and never writes past its output', async () => {
    await selectBackend('wasm', { log: false });
    const [n, k] = [5, 20];
    const q = quantizeInt8(randomArray(n * k, 3), [n, k]);
    const w = uploadInt8(q);
    const x = randomArray(2 * 3 * k, 4);
    const { y, mag, xRound } = reference(x, q, 6);
    const guard = tf.fill([64], 7);
    const out = int8Linear(tf.tensor(x, [2, 3, k]), w);
    expect(out.shape).toEqual([2, 3, n]);
    const got = out.dataSync();
    for (let i = 0; i < 6 * n; i++) {
      expect(Math.abs(got[i]! - y[i]!)).toBeLessThanOrEqual(1e-5 * mag[i]! + xRound[i]!);
    }
    expect([...guard.dataSync()].every((v) => v === 7)).toBe(true);
    tf.dispose([out, guard]);
    disposeInt8Weight(w);
  });

  // Every product at its largest (127 * 32767) over 8192 weights sums far past int32: the kernel must move its
  // integer sums to float32 in time. An all-zero row of x gives zeros, and rows of +-1 against weights of +-1
  // give +-k, for one row and for blocks of rows.
  it('sums long rows without int32 overflow and gives zeros for a zero row', async () => {
    await selectBackend('wasm', { log: false });
    const k = 8192;
    const weight = Float32Array.from({ length: 3 * k }, (_, i) =>
      i < k ? 1 : i < 2 * k ? -1 : i % 2 ? 1 : -1,
    );
    const w = uploadInt8(quantizeInt8(weight, [3, k]));
    for (const m of [1, 3, 6]) {
      const x = new Float32Array(m * k);
      for (let r = 1; r < m; r++) x.fill(r % 2 ? 1 : -1, r * k, (r + 1) * k);
      const out = int8Linear(tf.tensor(x, [m, k]), w);
      const got = [...out.dataSync()];
      out.dispose();
      const expected = [0, 0, 0];
      for (let r = 1; r < m; r++) expected.push(...(r % 2 ? [k, -k, 0] : [-k, k, 0]));
      // Exact up to the float rounding of the two scales; an int32 that wrapped would be off by thousands.
      expect(got.length).toBe(3 * m);
      for (const [i, v] of got.entries()) {
        expect(Math.abs(v - expected[i]!), `m ${m} output ${i}`).toBeLessThan(1e-2);
      }
    }
    disposeInt8Weight(w);
  });

  it('rejects a mismatched input and other backends with a clear error', async () => {
    await selectBackend('wasm', { log: false });
    const w = uploadInt8(quantizeInt8(randomArray(8, 1), [2, 4]));
    expect(() => int8Linear(tf.zeros([1, 5]), w)).toThrow(/has 5 features, the weight expects 4/);
    disposeInt8Weight(w);
    await selectBackend('cpu', { log: false });
    const wc = uploadInt8(quantizeInt8(randomArray(8, 1), [2, 4]));
    expect(() => int8Linear(tf.zeros([1, 4]), wc)).toThrow(
      /wasm and webgpu backends \(active backend: cpu\)/,
    );
    disposeInt8Weight(wc);
  });
});
