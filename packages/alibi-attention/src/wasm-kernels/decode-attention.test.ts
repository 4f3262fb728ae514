import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { selectBackend, setWasmSimdMatMul } from '@mptjs/kernels';
import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { attentionReference } from '../attention-reference.js';
import { alibiAttention, alibiSlopes } from '../index.js';
import { DECODE_ATTENTION_KERNEL, decodeAttention, decodeAttentionApplies } from './decode-attention.js';

function random(rand: () => number, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale),
    shape,
  );
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = await a.data();
  const y = await b.data();
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

describe('decode attention kernel on wasm', () => {
  afterEach(() => setWasmSimdMatMul('batched'));

  // Batch and heads, head sizes through the vector loop and the scalar tail, with and without ALiBi, the query
  // at the last key or earlier (later keys must stay unseen), large scores (the softmax's max shift).
  it('equals the plain-ops attention for one query position', async () => {
    await selectBackend('wasm', { log: false });
    const rand = seededRandom(21);
    for (const [b, h, tk, dh, last, alibi, size] of [
      [1, 4, 1, 16, 0, true, 1],
      [2, 3, 9, 7, 8, true, 1],
      [1, 8, 33, 64, 20, false, 1],
      [3, 2, 17, 13, 16, true, 6],
    ] as const) {
      const q = random(rand, [b, h, 1, dh], size);
      const k = random(rand, [b, h, tk, dh], size);
      const v = random(rand, [b, h, tk, dh]);
      const slopes = alibi ? alibiSlopes(h, 8) : null;
      const options = { slopes, scale: 1 / Math.sqrt(dh), causal: true, queryOffset: last };
      expect(decodeAttentionApplies(q)).toBe(true);
      const out = decodeAttention(q, k, v, { scale: options.scale, last, slopes });
      const ref = attentionReference(q, k, v, options);
      expect(out.shape).toEqual([b, h, 1, dh]);
      const label = `[${b}, ${h}, ${tk}, ${dh}] last ${last}`;
      expect(await maxAbsDiff(out, ref), label).toBeLessThan(2e-6);
      // alibiAttention takes the kernel for this call; the result is the same.
      const viaModel = alibiAttention(q, k, v, { ...options, impl: 'torch' });
      expect(await maxAbsDiff(viaModel, out), label).toBe(0);
    }
  });

  // Left padding as a joined serving batch has it, and an arbitrary pattern: hidden keys weigh exactly 0.
  it('equals the plain-ops attention with a key mask, through alibiAttention too', async () => {
    await selectBackend('wasm', { log: false });
    const rand = seededRandom(5);
    const [b, h, tk, dh, last] = [3, 4, 12, 8, 10];
    const q = random(rand, [b, h, 1, dh], 3);
    const k = random(rand, [b, h, tk, dh], 3);
    const v = random(rand, [b, h, tk, dh]);
    const slopes = alibiSlopes(h, 8);
    const padded = [0, 4, 9].flatMap((pad) => Array.from({ length: tk }, (_, j) => (j < pad ? 0 : 1)));
    const scattered = Array.from({ length: b * tk }, (_, i) => ((i * 7) % 3 === 0 ? 0 : 1));
    for (const [name, values] of [
      ['left padding', padded],
      ['scattered', scattered],
    ] as const) {
      const keyMask = tf.tensor2d(values, [b, tk]);
      const options = { slopes, scale: 1 / Math.sqrt(dh), causal: true, queryOffset: last, keyMask };
      const out = decodeAttention(q, k, v, { scale: options.scale, last, slopes, mask: keyMask });
      const ref = attentionReference(q, k, v, options);
      expect(await maxAbsDiff(out, ref), name).toBeLessThan(2e-6);
      const viaModel = alibiAttention(q, k, v, { ...options, impl: 'torch' });
      expect(await maxAbsDiff(viaModel, out), name).toBe(0);
      // An int32 mask is read as the float one.
      const asInt = decodeAttention(q, k, v, {
        scale: options.scale,
        last,
        slopes,
        mask: tf.cast(keyMask, 'int32'),
      });
      expect(await maxAbsDiff(asInt, out), name).toBe(0);
    }
    // Every visible key hidden: zeros, not NaN.
    const none = decodeAttention(q, k, v, { scale: 1, last, slopes, mask: tf.zeros([b, tk]) });
    expect(Array.from(await none.data()).every((x) => x === 0)).toBe(true);
    expect(() => decodeAttention(q, k, v, { scale: 1, last, slopes, mask: tf.ones([b, tk + 1]) })).toThrow(
      /a float32 mask \[B, Tk\] if any\), got .* mask float32 \[3,13\]/,
    );
  });

  it('stays off where it does not apply, and rejects operands that do not fit', async () => {
    await selectBackend('wasm', { log: false });
    const q = tf.zeros([1, 2, 1, 4]);
    expect(decodeAttentionApplies(tf.zeros([1, 2, 3, 4]))).toBe(false);
    // Taped for a gradient: the plain ops run.
    tf.grad((x: tf.Tensor) => {
      expect(decodeAttentionApplies(x)).toBe(false);
      return tf.sum(x);
    })(q);
    setWasmSimdMatMul('off');
    expect(decodeAttentionApplies(q)).toBe(false);
    setWasmSimdMatMul('batched');
    const k = tf.zeros([1, 2, 5, 4]);
    expect(() =>
      tf.engine().runKernel(DECODE_ATTENTION_KERNEL, { q, k, v: tf.zeros([1, 2, 5, 3]) }, {
        scale: 1,
        last: 4,
        slopes: null,
      } as never),
    ).toThrow(/expects float32 q \[B, H, 1, Dh\]/);
    expect(() => decodeAttention(q, k, k, { scale: 1, last: 4, slopes: new Float32Array(3) })).toThrow(
      /and 2 slopes/,
    );
  });

  it('ships the bytes a fresh assembly of the .wat source gives', () => {
    // The workspace's wat build tool (tools/build), run on this package with --check.
    const packageDir = fileURLToPath(new URL('../../', import.meta.url));
    const script = fileURLToPath(new URL('../../../../tools/build/build-wasm-kernels.mjs', import.meta.url));
    const out = execFileSync(process.execPath, [script, packageDir, '--check'], { encoding: 'utf8' });
    expect(out).toContain('up to date');
  });
});
