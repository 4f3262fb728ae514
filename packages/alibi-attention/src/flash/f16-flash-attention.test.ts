import {
  GEMM_LAYOUTS,
  type GemmLayout,
  selectBackend,
  setF16Gemm,
  settleF16Companions,
  settleF16Gemm,
  type WebGpuBackendLike,
} from '@mptjs/kernels';
import { maxAbsDiff, randomTensor, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alibiAttention, attentionReference } from '../index.js';
import { alibiSlopes } from '../slopes.js';
import {
  F16_FLASH_ATTENTION_NAME,
  F16_FLASH_TOLERANCE,
  f16FlashAttentionBackwardPrograms,
  f16FlashAttentionConfig,
  f16FlashAttentionProgram,
  runF16FlashBackwardCase,
  runF16FlashCase,
  settleF16FlashAttention,
} from './f16-flash-attention.js';
import {
  F16FlashAttentionDkDvProgram,
  F16FlashAttentionDqProgram,
} from './f16-flash-attention-backward-program.js';
import {
  chooseFlashTile,
  F16FlashAttentionProgram,
  type FlashEngineConfig,
  flashTileProblem,
  flashWorkgroupBytes,
  paddedHeadDim,
} from './f16-flash-attention-program.js';
import {
  FLASH_CHECK_CASES,
  type FlashCase,
  flashCaseInputs,
  flashCaseOutputGrad,
  flashErrors,
  referenceFlashAttention,
  referenceFlashAttentionGrads,
  relativeMaxError,
} from './f16-flash-reference.js';

const MATRIX: FlashEngineConfig = {
  engine: 'matrix',
  shape: { M: 16, N: 16, K: 16 },
  lanes: 32,
  layout: GEMM_LAYOUTS[0]!,
};

describe('f16 flash attention tiles and WGSL (no GPU)', () => {
  it('pads the head dim to the matrices and says why a tile does not fit', () => {
    expect(paddedHeadDim(24, { M: 16, N: 16, K: 16 })).toBe(32);
    expect(paddedHeadDim(64, { M: 16, N: 8, K: 16 })).toBe(64);
    expect(paddedHeadDim(8, { M: 8, N: 8, K: 8 })).toBe(8);
    const tile = { subgroups: 2, keys: 32, pad: 8 };
    expect(flashTileProblem(MATRIX, tile, 128, 49152, 1024)).toBeNull();
    expect(flashTileProblem(MATRIX, { ...tile, keys: 24 }, 64, 49152, 1024)).toMatch(/not a multiple/);
    expect(flashTileProblem(MATRIX, { ...tile, pad: 4 }, 64, 49152, 1024)).toMatch(/pad must be/);
    expect(flashTileProblem(MATRIX, { ...tile, subgroups: 8 }, 64, 49152, 1024)).toMatch(/don't fit the 64/);
    expect(flashTileProblem(MATRIX, tile, 128, 16384, 1024)).toMatch(
      /bytes of workgroup memory at head dim 128/,
    );
    expect(flashTileProblem({ ...MATRIX, lanes: 8 }, tile, 64, 49152, 1024)).toMatch(/can't share 16 rows/);
    expect(flashTileProblem(MATRIX, { ...tile, subgroups: 4 }, 64, 49152, 64)).toMatch(/128 threads/);
    expect(flashTileProblem(MATRIX, tile, 0, 49152, 1024)).toMatch(/positive integer/);
    // The largest block that fits: 4 subgroups at head dim 64, 2 at 128 in 48 KiB, none at 256 in 16 KiB.
    expect(chooseFlashTile(MATRIX, 64, 49152, 1024)).toEqual({ tile: { subgroups: 4, keys: 32, pad: 8 } });
    expect(chooseFlashTile(MATRIX, 128, 49152, 1024)).toEqual({ tile: { subgroups: 2, keys: 32, pad: 8 } });
    expect(chooseFlashTile(MATRIX, 256, 16384, 1024)).toEqual({
      problem: expect.stringMatching(/^no f16 flash-attention forward tile fits \(.*head dim 256/),
    });
  });

  it('declares the matrix engine arrays first, each a whole number of 16-byte blocks, in both spellings', () => {
    const layouts: GemmLayout[] = [
      GEMM_LAYOUTS[0]!,
      GEMM_LAYOUTS.find((l) => l.spelling === 'templated' && l.f16Unit === 2)!,
    ];
    for (const layout of layouts) {
      for (const [dh, shape] of [
        [24, { M: 16, N: 16, K: 16 }],
        [128, { M: 16, N: 8, K: 16 }],
        [64, { M: 16, N: 8, K: 8 }],
      ] as const) {
        const config = { ...MATRIX, shape, layout };
        const fit = chooseFlashTile(config, dh, 49152, 1024);
        if (!('tile' in fit)) throw new Error(fit.problem);
        const program = new F16FlashAttentionProgram([2, 3, 70, dh], true, config, fit.tile);
        const code = program.getUserCode();
        const vars = [...code.matchAll(/var<workgroup> (\w+) : array<(f16|f32|i32), (\d+)>;/g)].map((m) => ({
          name: m[1],
          bytes: (m[2] === 'f16' ? 2 : 4) * Number(m[3]),
        }));
        expect(vars.map((v) => v.name)).toEqual([
          'kvTile',
          'sTile',
          'pTile',
          'oTile',
          'maskTile',
          'keyEndShared',
        ]);
        for (const v of vars) expect(v.bytes % 16).toBe(0);
        expect(vars.reduce((a, v) => a + v.bytes, 0)).toBe(flashWorkgroupBytes(config, fit.tile, dh));
        expect(code).toContain('enable chromium_experimental_subgroup_matrix;');
        // Q K^T loads K's tile column-major, P V loads V's row-major; strides are whole 16-byte rows.
        const loads = [
          ...code.matchAll(/subgroupMatrixLoad<([^>]+>)(?:, (\w+)_major)?>\(&(\w+), ([^;]*)\)/g),
        ];
        expect(loads.length).toBeGreaterThan(0);
        const strides = [...code.matchAll(/, (\d+)u\)/g)].map((m) => Number(m[1]));
        const unit = layout.f16Unit ?? 1;
        for (const s of strides) expect((s * unit * 2) % 16).toBe(0);
        expect(code).toMatch(
          layout.spelling === 'templated'
            ? /subgroup_matrix_right<f16, \d+, \d+>, col_major>\(&kvTile/
            : /&kvTile, [^;]*, true, \d+u\)/,
        );
        expect(program.dispatch).toEqual([Math.ceil(70 / (fit.tile.subgroups * 16)), 6, 1]);
        expect(program.outputShape).toEqual([2 * 3 * 70 * (dh + 1)]);
      }
    }
  });

  it('lays out the backward programs likewise, and fits their tiles to the device', () => {
    const config = { ...MATRIX, shape: { M: 16, N: 8, K: 16 } };
    for (const [kind, Program, names] of [
      [
        'dq',
        F16FlashAttentionDqProgram,
        ['kvTile', 'sTile', 'dpTile', 'pTile', 'oTile', 'maskTile', 'keyEndShared'],
      ],
      [
        'dkdv',
        F16FlashAttentionDkDvProgram,
        ['qdTile', 'sTile', 'dpTile', 'pTile', 'dsTile', 'dkTile', 'dvTile', 'statsTile', 'queryStartShared'],
      ],
    ] as const) {
      for (const dh of [20, 64, 128]) {
        const fit = chooseFlashTile(config, dh, 49152, 1024, kind);
        if (!('tile' in fit)) throw new Error(fit.problem);
        const code = new Program([2, 3, 45, dh], config, fit.tile).getUserCode();
        const vars = [...code.matchAll(/var<workgroup> (\w+) : array<(f16|f32|i32), (\d+)>;/g)].map((m) => ({
          name: m[1],
          bytes: (m[2] === 'f16' ? 2 : 4) * Number(m[3]),
        }));
        expect(vars.map((v) => v.name)).toEqual(names);
        for (const v of vars) expect(v.bytes % 16).toBe(0);
        expect(vars.reduce((a, v) => a + v.bytes, 0)).toBeLessThanOrEqual(
          flashWorkgroupBytes(config, fit.tile, dh, kind),
        );
        expect(code).toContain('subgroupMatrixMultiplyAccumulate(');
      }
    }
    // The backward holds two kinds of its block's rows in one staged tile: at most as many as a tile has.
    expect(flashTileProblem(MATRIX, { subgroups: 4, keys: 32, pad: 8 }, 64, 65536, 1024, 'dq')).toMatch(
      /64 rows of the block don't fit the 32 staged rows/,
    );
    expect(chooseFlashTile(MATRIX, 128, 49152, 1024, 'dkdv')).toEqual({
      tile: { subgroups: 1, keys: 32, pad: 8 },
    });
  });

  it('has a float64 reference that agrees with the plain attention on f16-representable inputs', async () => {
    await selectBackend('cpu', { log: false });
    const c: FlashCase = { ...FLASH_CHECK_CASES[1]!, dh: 8 };
    const inputs = flashCaseInputs(c, 5);
    // Inputs already on the f16 grid, so the reference's rounding is exact and only the algorithm differs.
    const round = (a: Float32Array) => Float32Array.from(a, (x) => Math.round(x * 64) / 64);
    const grid = { ...inputs, q: round(inputs.q), k: round(inputs.k), v: round(inputs.v) };
    const want = referenceFlashAttention(c, grid);
    const keyMask = tf.tensor2d(grid.keyMask, [c.b, c.tk]);
    const plain = attentionReference(
      tf.tensor4d(grid.q, [c.b, c.h, c.tq, c.dh]),
      tf.tensor4d(grid.k, [c.b, c.h, c.tk, c.dh]),
      tf.tensor4d(grid.v, [c.b, c.h, c.tk, c.dh]),
      { slopes: grid.slopes, queryOffset: c.queryOffset, scale: c.scale, keyMask },
    );
    expect(maxAbsDiff(await plain.data(), want.o)).toBeLessThan(1e-5);
    tf.dispose([keyMask, plain]);
  });
});

describe.runIf(webgpuExpected)('f16 flash attention on webgpu (scalar engine: f16 rounding emulated)', () => {
  let previous = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    await selectBackend('webgpu', { log: false });
  }, 60_000);
  afterAll(async () => {
    setF16Gemm(false);
    if (previous) await tf.setBackend(previous);
  });

  async function scalarPlan() {
    const gemm = await settleF16Gemm({ engine: 'scalar' });
    if (!gemm.plan) throw new Error(gemm.reason);
    return gemm.plan;
  }

  it('passes its self-check with the GEMM plan, and settles as the GEMM companion', async () => {
    const plan = await scalarPlan();
    const settled = await settleF16FlashAttention(plan);
    expect(settled.line).toBe(
      `${F16_FLASH_ATTENTION_NAME}: scalar engine, 16x16x16 f16, direct/b-row, forward and backward`,
    );
    expect(settled.backward).toBe(true);
    expect(settled.config).toMatchObject({ engine: 'scalar', lanes: 32 });
    expect(f16FlashAttentionConfig()).toBeNull(); // the GEMM is off
    expect(setF16Gemm(true)).toBe(true);
    expect(f16FlashAttentionConfig()).toEqual(settled.config);
    expect(await settleF16Companions()).toContain(settled.line);
    setF16Gemm(false);
    expect(await settleF16Companions()).toEqual([]);
  }, 300_000);

  it('matches float64 attention of f16-rounded inputs over uneven shapes, tile by tile', async () => {
    const plan = await scalarPlan();
    const config = { engine: plan.engine, shape: plan.shape, lanes: plan.lanes, layout: plan.layout };
    const limits = { bytes: 32768, invocations: 256 };
    const cases: FlashCase[] = [
      // Batches and heads, rows past one block and keys past two tiles, a key mask and an offset.
      {
        b: 2,
        h: 3,
        tq: 37,
        tk: 45,
        dh: 20,
        causal: true,
        alibi: true,
        queryOffset: 8,
        scale: 0.25,
        maskedKeys: 5,
        withLse: true,
      },
      {
        b: 1,
        h: 2,
        tq: 9,
        tk: 9,
        dh: 32,
        causal: false,
        alibi: true,
        queryOffset: 0,
        scale: 0.2,
        maskedKeys: 0,
        withLse: false,
      },
    ];
    for (const [i, c] of cases.entries()) {
      for (const tile of [
        { subgroups: 1, keys: 16, pad: 0 },
        { subgroups: 2, keys: 32, pad: 8 },
      ]) {
        expect(flashTileProblem(config, tile, c.dh, limits.bytes, limits.invocations)).toBeNull();
        const inputs = flashCaseInputs(c, 100 + i);
        const program = new F16FlashAttentionProgram([c.b, c.h, c.tq, c.dh], c.withLse, config, tile);
        const got = await runF16FlashCase(program, c, inputs);
        expect(got).toHaveLength(c.b * c.h * c.tq * (c.dh + (c.withLse ? 1 : 0)));
        const errors = flashErrors(c, got, referenceFlashAttention(c, inputs), inputs.v);
        // f32 sums of exact f16 products; the probabilities rounded to f16 (relative 2^-11) bound the error.
        expect(errors.o).toBeLessThan(1e-3);
        expect(errors.lse).toBeLessThan(1e-3);
      }
    }
  }, 300_000);

  it('computes gradients within f16 rounding of float64 gradients of f16-rounded inputs, tile by tile', async () => {
    const plan = await scalarPlan();
    const config = { engine: plan.engine, shape: plan.shape, lanes: plan.lanes, layout: plan.layout };
    const cases: FlashCase[] = [
      {
        b: 2,
        h: 2,
        tq: 37,
        tk: 37,
        dh: 20,
        causal: true,
        alibi: true,
        queryOffset: 0,
        scale: 0.25,
        maskedKeys: 5,
        withLse: true,
      },
      {
        b: 1,
        h: 1,
        tq: 7,
        tk: 41,
        dh: 32,
        causal: true,
        alibi: true,
        queryOffset: 34,
        scale: 0.2,
        maskedKeys: 0,
        withLse: true,
      },
      {
        b: 1,
        h: 2,
        tq: 18,
        tk: 11,
        dh: 16,
        causal: false,
        alibi: false,
        queryOffset: 0,
        scale: 0.3,
        maskedKeys: 2,
        withLse: true,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const inputs = flashCaseInputs(c, 200 + i);
      const dy = flashCaseOutputGrad(c, 300 + i);
      const want = referenceFlashAttentionGrads(c, inputs, dy);
      const forward = new F16FlashAttentionProgram([c.b, c.h, c.tq, c.dh], true, config, {
        subgroups: 2,
        keys: 32,
        pad: 8,
      });
      const got = await runF16FlashBackwardCase(config, forward, c, inputs, dy);
      if (!got) throw new Error('no backward tile fits');
      const errors = (['dq', 'dk', 'dv'] as const).map((n) => relativeMaxError(got[n], want[n]));
      // Measured 2e-4..4e-4: P and dS rounded to f16 (relative 2^-11) and the f16 forward's O in D.
      for (const e of errors) expect(e).toBeLessThan(2e-3);
    }
  }, 300_000);

  it('serves alibiAttention while the f16 GEMM is on, forward and gradients, and fp32 stays as it was', async () => {
    const plan = await scalarPlan();
    await settleF16FlashAttention(plan);
    const [B, H, T, DH] = [2, 2, 19, 16];
    const q = randomTensor([B, H, T, DH], 1, 2);
    const k = randomTensor([B, H, T, DH], 2, 2);
    const v = randomTensor([B, H, T, DH], 3);
    const dy = randomTensor([B, H, T, DH], 4);
    const slopes = alibiSlopes(H);
    const f32 = alibiAttention(q, k, v, { slopes, impl: 'flash' });
    setF16Gemm(true);
    const half = alibiAttention(q, k, v, { slopes, impl: 'flash' });
    const gradsOf = () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(alibiAttention(a, b, c, { slopes, impl: 'flash' }), dy)),
      )([q, k, v]);
    const halfGrads = gradsOf();
    setF16Gemm(false);
    const again = alibiAttention(q, k, v, { slopes, impl: 'flash' });
    const plainGrads = gradsOf();
    const ref = attentionReference(q, k, v, { slopes });
    const want = await ref.data();
    // fp32 is exactly as before: the same kernel, bit for bit.
    expect(Array.from(await again.data())).toEqual(Array.from(await f32.data()));
    expect(maxAbsDiff(await f32.data(), want)).toBeLessThan(1e-5);
    const halfDiff = maxAbsDiff(await half.data(), want);
    expect(halfDiff).toBeLessThan(2e-3);
    expect(halfDiff).toBeGreaterThan(1e-5);
    for (let i = 0; i < 3; i++) {
      expect(maxAbsDiff(await halfGrads[i]!.data(), await plainGrads[i]!.data())).toBeLessThan(2e-2);
    }
    tf.dispose([q, k, v, dy, f32, half, again, ref, ...halfGrads, ...plainGrads]);
  }, 300_000);

  it('falls back to f32 with a one-line notice when its self-check fails', async () => {
    const plan = await scalarPlan();
    // No f16 kernel matches float64 to 1e-9: the check fails for real and says where.
    const failed = await settleF16FlashAttention(plan, { tolerance: 1e-9 });
    expect(failed.config).toBeNull();
    expect(failed.line).toMatch(
      /^f16 flash attention \(scalar engine, 16x16x16 f16, direct\/b-row\) failed its self-check \(1x2x70x70 dh 24 causal alibi, tile \S+: error \S+ in O, \S+ in the log-sum-exps \(allowed 1e-9\)\); attention stays f32$/,
    );
    expect(failed.line).not.toContain('\n');
    expect(setF16Gemm(true)).toBe(true);
    expect(f16FlashAttentionConfig()).toBeNull();
    setF16Gemm(false);
    // A backward that fails alone leaves the forward in f16 and the backward in f32.
    const backwardFailed = await settleF16FlashAttention(plan, { backwardTolerance: 1e-9 });
    expect(backwardFailed.line).toMatch(
      /^f16 flash attention: scalar engine, 16x16x16 f16, direct\/b-row, forward; the backward failed its self-check \(.* of the largest d[qkv] \(allowed 1e-9\)\) and stays f32$/,
    );
    expect(setF16Gemm(true)).toBe(true);
    const backend = tf.backend() as unknown as WebGpuBackendLike;
    expect(f16FlashAttentionProgram(backend, [1, 2, 40, 16], true)).not.toBeNull();
    expect(f16FlashAttentionBackwardPrograms(backend, [1, 2, 40, 16], [1, 2, 40, 16])).toBeNull();
    setF16Gemm(false);
    const passed = await settleF16FlashAttention(plan, { tolerance: F16_FLASH_TOLERANCE });
    expect(passed.config).not.toBeNull();
    expect(passed.backward).toBe(true);
  }, 300_000);
});
