import { GEMM_LAYOUTS, selectBackend, setF16Gemm, settleF16Gemm } from '@mptjs/kernels';
import {
  randomTensor,
  relativeL2,
  seededRandom,
  webgpuExpected,
  withWebGpuPrograms,
} from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AlibiAttentionOptions,
  alibiAttention,
  alibiAttentionRows,
  mergeHeads,
  splitHeads,
} from '../index.js';
import { alibiSlopes } from '../slopes.js';
import { settleF16FlashAttention } from './f16-flash-attention.js';
import {
  F16FlashAttentionDkDvProgram,
  F16FlashAttentionDqProgram,
} from './f16-flash-attention-backward-program.js';
import { F16FlashAttentionProgram, type FlashEngineConfig } from './f16-flash-attention-program.js';
import {
  FlashAttentionDkDvProgram,
  FlashAttentionDqProgram,
  FlashAttentionRowStatsProgram,
} from './flash-attention-backward-program.js';
import { FlashAttentionProgram } from './flash-attention-program.js';

interface ErrorScopes {
  pushErrorScope(filter: 'validation'): void;
  popErrorScope(): Promise<unknown>;
}

interface Case {
  name: string;
  b: number;
  h: number;
  tq: number;
  tk: number;
  dh: number;
  options: AlibiAttentionOptions;
}

/** Keys 0 and `tk - 1` are real in every row, so no query row is fully masked. */
function paddingMask(b: number, tk: number, seed: number): tf.Tensor2D {
  const rand = seededRandom(seed);
  const data = Array.from({ length: b * tk }, (_, i) =>
    i % tk === 0 || i % tk === tk - 1 || rand() > 0.3 ? 1 : 0,
  );
  return tf.tensor2d(data, [b, tk]);
}

/** Rows `[B, T, H*Dh]` for q, k, v and the output weights of the loss `sum(O * w)`. */
function rowInputs({ b, h, tq, tk, dh }: Case, seed: number): tf.Tensor[] {
  return [
    randomTensor([b, tq, h * dh], seed, 2),
    randomTensor([b, tk, h * dh], seed + 1, 2),
    randomTensor([b, tk, h * dh], seed + 2),
    randomTensor([b, tq, h * dh], seed + 3),
  ];
}

/** O and dL/d(q, k, v) of `L = sum(O * w)` through `alibiAttentionRows`, all `[B, T, H*Dh]`. */
function rowsPath(c: Case, [q, k, v, w]: tf.Tensor[]): tf.Tensor[] {
  const options = { ...c.options, nHeads: c.h };
  const out = alibiAttentionRows(q!, k!, v!, options);
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) =>
    tf.sum(tf.mul(alibiAttentionRows(a, b, d, options), w!)),
  )([q!, k!, v!]);
  return [out, ...grads];
}

/** The same through `splitHeads -> alibiAttention -> mergeHeads`, as the model ran it before. */
function splitPath(c: Case, [q, k, v, w]: tf.Tensor[]): tf.Tensor[] {
  const attend = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) =>
    mergeHeads(alibiAttention(splitHeads(a, c.h), splitHeads(b, c.h), splitHeads(d, c.h), c.options));
  const out = attend(q!, k!, v!);
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(attend(a, b, d), w!)))([
    q!,
    k!,
    v!,
  ]);
  return [out, ...grads];
}

/** Relative L2 errors of O, dq, dk, dv of the rows path against the split path, and both paths' programs. */
async function compare(c: Case, seed: number) {
  const xs = rowInputs(c, seed);
  const rows = withWebGpuPrograms(() => rowsPath(c, xs));
  const split = withWebGpuPrograms(() => splitPath(c, xs));
  const errors: number[] = [];
  for (let i = 0; i < 4; i++) {
    expect(rows.value[i]!.shape).toEqual(split.value[i]!.shape);
    errors.push(relativeL2(await rows.value[i]!.data(), await split.value[i]!.data()));
  }
  tf.dispose([...xs, ...rows.value, ...split.value]);
  return { errors, rowsKeys: rows.keys, splitKeys: split.keys };
}

const transposes = (keys: string[]) => keys.filter((k) => /transpose/i.test(k)).length;

function cases(): Case[] {
  return [
    {
      name: 'causal ALiBi self-attention with a key mask, T=17 over blocks, Dh=8',
      b: 2,
      h: 3,
      tq: 17,
      tk: 17,
      dh: 8,
      options: { slopes: alibiSlopes(3), keyMask: paddingMask(2, 17, 5) },
    },
    {
      name: 'a chunk of 5 queries at offset 9 over 19 keys with a key mask, Dh=16',
      b: 2,
      h: 2,
      tq: 5,
      tk: 19,
      dh: 16,
      options: { slopes: alibiSlopes(2, 8, 'mosaic_gpt'), keyMask: paddingMask(2, 19, 6), queryOffset: 9 },
    },
    {
      name: 'non-causal without ALiBi over several key tiles, T=37, Dh=32',
      b: 1,
      h: 2,
      tq: 37,
      tk: 37,
      dh: 32,
      options: { slopes: null, causal: false, scale: 0.3 },
    },
  ];
}

describe('the rows layout of the fused programs (no GPU)', () => {
  const MATRIX: FlashEngineConfig = {
    engine: 'matrix',
    shape: { M: 16, N: 16, K: 16 },
    lanes: 32,
    layout: GEMM_LAYOUTS[0]!,
  };
  const tile = { subgroups: 1, keys: 16, pad: 8 };
  const [B, H, T, DH] = [2, 3, 17, 8];
  const heads = [B, H, T, DH];
  const rows = [B, T, H, DH];

  it('index rows as (b * T + t) * H + h, with the heads layout tiling and dispatch', () => {
    const pairs = [
      [new FlashAttentionProgram(heads, false), new FlashAttentionProgram(rows, false, undefined, 'rows')],
      [new FlashAttentionProgram(heads, true), new FlashAttentionProgram(rows, true, undefined, 'rows')],
      [new FlashAttentionDqProgram(heads), new FlashAttentionDqProgram(rows, undefined, 'rows')],
      [new FlashAttentionDkDvProgram(heads), new FlashAttentionDkDvProgram(rows, undefined, 'rows')],
      [new FlashAttentionRowStatsProgram(heads), new FlashAttentionRowStatsProgram(rows, 'rows')],
      [
        new F16FlashAttentionProgram(heads, true, MATRIX, tile),
        new F16FlashAttentionProgram(rows, true, MATRIX, tile, 'rows'),
      ],
      [
        new F16FlashAttentionProgram(heads, false, MATRIX, tile),
        new F16FlashAttentionProgram(rows, false, MATRIX, tile, 'rows'),
      ],
      [
        new F16FlashAttentionDqProgram(heads, MATRIX, tile),
        new F16FlashAttentionDqProgram(rows, MATRIX, tile, 'rows'),
      ],
      [
        new F16FlashAttentionDkDvProgram(heads, MATRIX, tile),
        new F16FlashAttentionDkDvProgram(rows, MATRIX, tile, 'rows'),
      ],
    ] as const;
    for (const [h, r] of pairs) {
      expect(r.shaderKey).toBe(`${h.shaderKey}_rows`);
      expect(r.dispatch).toEqual(h.dispatch);
      expect(r.workgroupSize).toEqual(h.workgroupSize);
      // O and dQ take q's shape in its layout; flat outputs (with log-sum-exps, dK then dV) keep their size.
      const flat = h.outputShape.length === 1;
      expect(r.outputShape).toEqual(flat ? h.outputShape : rows);
      const code = r.getUserCode();
      expect(code, r.shaderKey).toMatch(/heads = uniforms\.(q|dy)Shape\[2\]/);
      expect(code, r.shaderKey).toMatch(/\(\(b \* t[qk] \+ [^)]+\) \* heads \+ h\)/);
      expect(code, r.shaderKey).not.toMatch(/\(bh \* t[qk] \+ [^)]+\) \* (DH|\d+)/);
      expect(h.getUserCode(), h.shaderKey).not.toMatch(/\* heads \+ h\)/);
    }
  });
});

describe('alibiAttentionRows off webgpu', () => {
  beforeAll(async () => {
    await selectBackend('cpu', { log: false });
  });

  it('is splitHeads -> alibiAttention -> mergeHeads exactly, values and gradients', async () => {
    for (const [i, c] of cases().entries()) {
      const xs = rowInputs(c, 10 * i);
      const rows = rowsPath(c, xs);
      const split = splitPath(c, xs);
      for (let j = 0; j < 4; j++) {
        expect(Array.from(await rows[j]!.data())).toEqual(Array.from(await split[j]!.data()));
      }
      tf.dispose([...xs, ...rows, ...split, c.options.keyMask!].filter(Boolean));
    }
  });

  it('rejects bad shapes and head counts with what is wrong', () => {
    const x = tf.zeros([1, 4, 8]);
    expect(() => alibiAttentionRows(x, x, x, { nHeads: 3 })).toThrow('width 8 does not split into 3 heads');
    expect(() => alibiAttentionRows(x, x, x, { nHeads: 0 })).toThrow(
      'nHeads must be a positive integer, got 0',
    );
    expect(() => alibiAttentionRows(tf.zeros([4, 8]), x, x, { nHeads: 2 })).toThrow(
      'alibiAttentionRows expects q, k, v as [batch, time, heads*headDim], got [4,8], [1,4,8], [1,4,8]',
    );
    expect(() => alibiAttentionRows(x, tf.zeros([1, 4, 6]), x, { nHeads: 2 })).toThrow(
      'q [1,4,8], k [1,4,6] and v [1,4,8] disagree on batch, keys or width',
    );
    expect(() => alibiAttentionRows(x, x, tf.zeros([1, 5, 8]), { nHeads: 2 })).toThrow(/disagree/);
    expect(() => alibiAttentionRows(x, x, x, { nHeads: 2, slopes: alibiSlopes(4) })).toThrow(
      'got 4 ALiBi slopes for 2 heads',
    );
    x.dispose();
  });
});

describe.runIf(webgpuExpected)('alibiAttentionRows on the real webgpu backend', () => {
  let device: ErrorScopes;
  let previous = '';

  beforeAll(async () => {
    previous = tf.getBackend();
    await selectBackend('webgpu', { log: false });
    device = (tf.backend() as unknown as { device: ErrorScopes }).device;
  }, 60_000);
  afterAll(async () => {
    setF16Gemm(false);
    if (previous) await tf.setBackend(previous);
  });

  // A shader that fails to compile does not throw in tfjs; Dawn reports it to the error scope.
  beforeEach(() => device.pushErrorScope('validation'));
  afterEach(async () => expect(await device.popErrorScope()).toBeNull());

  it('matches the split layout in values and all three gradients, with no head transposes', async () => {
    for (const [i, c] of cases().entries()) {
      const { errors, rowsKeys, splitKeys } = await compare(c, 100 + 10 * i);
      for (const e of errors) expect(e, c.name).toBeLessThan(1e-5);
      expect(transposes(rowsKeys), c.name).toBe(0);
      // The split path transposes q, k, v and O in the forward, and the gradients back.
      expect(transposes(splitKeys), c.name).toBeGreaterThanOrEqual(8);
      expect(rowsKeys.filter((k) => k.includes('_rows')).length, c.name).toBeGreaterThanOrEqual(5);
      c.options.keyMask?.dispose();
    }
  });

  it('decodes one position (Tq=1) over a longer key sequence like the split layout', async () => {
    const c: Case = {
      name: 'decode',
      b: 2,
      h: 2,
      tq: 1,
      tk: 23,
      dh: 12,
      options: { slopes: alibiSlopes(2) },
    };
    const { errors } = await compare(c, 300);
    for (const e of errors) expect(e).toBeLessThan(1e-5);
  });

  it('leaks no tensors or GPU buffers across repeated gradients', async () => {
    const c = cases()[0]!;
    const xs = rowInputs(c, 400);
    const counts: number[][] = [];
    for (let round = 0; round < 3; round++) {
      const out = rowsPath(c, xs);
      await Promise.all(out.map((g) => g.data()));
      tf.dispose(out);
      counts.push([tf.memory().numTensors, tf.engine().backend.numDataIds()]);
    }
    expect(counts[1]).toEqual(counts[0]);
    expect(counts[2]).toEqual(counts[0]);
    tf.dispose([...xs, c.options.keyMask!]);
  });

  it('runs the f16 kernels (scalar engine) in the rows layout like their split layout', async () => {
    const gemm = await settleF16Gemm({ engine: 'scalar' });
    if (!gemm.plan) throw new Error(gemm.reason);
    const settled = await settleF16FlashAttention(gemm.plan);
    expect(settled.backward).toBe(true);
    expect(setF16Gemm(true)).toBe(true);
    try {
      for (const [i, c] of cases().entries()) {
        const { errors, rowsKeys } = await compare(c, 500 + 10 * i);
        for (const e of errors) expect(e, c.name).toBeLessThan(1e-5);
        expect(transposes(rowsKeys), c.name).toBe(0);
        // The f16 forward and both f16 backward programs ran in the rows layout.
        for (const name of ['mptF16FlashLse_', 'mptF16FlashDq_', 'mptF16FlashDkDv_']) {
          expect(
            rowsKeys.some((k) => k.startsWith(name) && k.endsWith('_rows')),
            `${c.name}: ${name}`,
          ).toBe(true);
        }
        c.options.keyMask?.dispose();
      }
    } finally {
      setF16Gemm(false);
    }
  }, 300_000);
});
