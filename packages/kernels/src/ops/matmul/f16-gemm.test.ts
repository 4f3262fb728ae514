import { randomTensor, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SCALAR_TILE,
  dawnFeatureToggles,
  describeMismatch,
  F16GemmProgram,
  f16GemmActive,
  GEMM_LAYOUTS,
  layoutName,
  parseTile,
  referenceGemm,
  roundToF16,
  selectBackend,
  setF16Gemm,
  settleF16Gemm,
  tileName,
  tileProblem,
} from '../../index.js';

describe('f16 rounding and tiles (no GPU)', () => {
  it('rounds to the nearest f16 value, ties to even, overflowing to infinity', () => {
    expect(roundToF16(1)).toBe(1);
    expect(roundToF16(1 + 2 ** -11)).toBe(1); // a tie: to the even neighbour
    expect(roundToF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundToF16(65504)).toBe(65504);
    expect(roundToF16(70000)).toBe(Infinity);
    expect(roundToF16(-70000)).toBe(-Infinity);
    expect(roundToF16(2 ** -24)).toBe(2 ** -24);
    expect(roundToF16(2 ** -26)).toBe(0);
    expect(roundToF16(0.1)).toBeCloseTo(0.0999755859375, 12);
  });

  it('describes where a wrong product is wrong', () => {
    const want = Float64Array.from({ length: 12 }, (_, i) => i + 1); // 3 x 4
    expect(describeMismatch(want, want, 3, 4, 1e-6)).toBe('no wrong element');
    const zeroed = Float64Array.from(want);
    zeroed[5] = 0;
    expect(describeMismatch(zeroed, want, 3, 4, 1e-6)).toBe(
      '1 of 12 wrong, first at row 1 col 1: got 0.0000, want 6.0000 (all wrong ones are 0)',
    );
    const shifted = Float64Array.from(want, (v, i) => (i % 4 < 3 ? want[i + 1]! : v));
    expect(describeMismatch(shifted, want, 3, 4, 1e-6)).toMatch(
      /^9 of 12 wrong, first at row 0 col 0: .*equals want\[r\]\[c\+1\]/,
    );
  });

  it('parses and names tiles, and says why one does not fit', () => {
    const tile = parseTile('2x2x4x2x32s1p16');
    expect(tile).toEqual({ sgRows: 2, sgCols: 2, tm: 4, tn: 2, bk: 32, stages: 1, pad: 16 });
    expect(tileName(tile)).toBe('2x2x4x2x32s1p16');
    expect(parseTile('1x1x1x1x16')).toMatchObject({ stages: 2, pad: 8 });
    expect(() => parseTile('2x2x4')).toThrow(/sgRows x sgCols x tm x tn x bk/);
    const shape = { M: 16, N: 16, K: 16 };
    expect(tileProblem(tile, shape, 'matrix', 32, 49152, 1024)).toBeNull();
    expect(tileProblem({ ...tile, bk: 24 }, shape, 'matrix', 32, 49152, 1024)).toMatch(/not a multiple/);
    expect(tileProblem({ ...tile, tm: 8, tn: 8 }, shape, 'matrix', 32, 16384, 1024)).toMatch(
      /workgroup memory/,
    );
    expect(tileProblem({ ...tile, sgRows: 8, sgCols: 8 }, shape, 'matrix', 32, 49152, 1024)).toMatch(
      /threads/,
    );
  });

  it('declares the matrix engine tiles first, each a whole number of 16-byte blocks', () => {
    for (const layout of GEMM_LAYOUTS) {
      for (const tile of ['2x2x4x4x32s2p8', '2x2x2x2x32s1p0', '4x4x2x2x16s2p8']) {
        const problem = { batch: 1, m: 135, n: 137, k: 69, transposeA: false, transposeB: true };
        const code = new F16GemmProgram(
          problem,
          parseTile(tile),
          { M: 16, N: 8, K: 16 },
          'matrix',
          32,
          layout,
        ).getUserCode();
        const vars = [...code.matchAll(/var<workgroup> (\w+) : array<(f16|f32|i32), (\d+)>;/g)].map((m) => ({
          name: m[1],
          bytes: (m[2] === 'f16' ? 2 : 4) * Number(m[3]),
        }));
        expect(vars.map((v) => v.name)).toEqual(['aTile', 'bTile', 'scratch', 'edgeBlock']);
        for (const v of vars) expect(v.bytes % 16).toBe(0);
        expect(code.match(/var<workgroup>/g)).toHaveLength(4);
      }
    }
  });

  it('asks Dawn for f16 on NVIDIA unless MPTJS_WEBGPU_F16=0', () => {
    expect(dawnFeatureToggles({})).toEqual(['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia']);
    expect(dawnFeatureToggles({ MPTJS_WEBGPU_F16: '0' })).toEqual(['allow_unsafe_apis']);
  });
});

describe.runIf(webgpuExpected)(
  'f16 GEMM on webgpu (scalar engine: same tiles, f16 rounding emulated)',
  () => {
    let previous = '';
    beforeAll(async () => {
      previous = tf.getBackend();
      await selectBackend('webgpu', { log: false });
    }, 60_000);
    afterAll(async () => {
      setF16Gemm(false);
      if (previous) await tf.setBackend(previous);
    });

    it('passes its self-check and then serves tf.matMul in every transpose', async () => {
      const settled = await settleF16Gemm({ engine: 'scalar' });
      expect(settled.reason).toMatch(/^scalar engine, 16x16x16 f16, tile \S+, direct\/b-row$/);
      expect(GEMM_LAYOUTS).toHaveLength(16);
      expect(settled.plan).not.toBeNull();
      expect(setF16Gemm(true)).toBe(true);
      for (const [ta, tb] of [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ] as const) {
        const [m, n, k] = [70, 45, 93];
        const a = randomTensor(ta ? [k, m] : [m, k], 3);
        const b = randomTensor(tb ? [n, k] : [k, n], 4);
        const got = await tf.matMul(a, b, ta, tb).data();
        const want = referenceGemm((await a.data()) as Float32Array, (await b.data()) as Float32Array, {
          batch: 1,
          batchA: 1,
          batchB: 1,
          m,
          n,
          k,
          transposeA: ta,
          transposeB: tb,
        });
        const plain = tf.tidy(() => {
          setF16Gemm(false);
          const p = tf.matMul(a, b, ta, tb);
          setF16Gemm(true);
          return p;
        });
        const plainValues = await plain.data();
        let worst = 0;
        let f32Diff = 0;
        for (let i = 0; i < want.length; i++) {
          worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
          f32Diff = Math.max(f32Diff, Math.abs(plainValues[i]! - want[i]!));
        }
        expect(worst).toBeLessThan(1e-4);
        // The f16 rounding is real: float32 products differ from it by far more than summation order does.
        expect(f32Diff).toBeGreaterThan(1e-3);
        tf.dispose([a, b, plain]);
      }
    }, 120_000);

    it('broadcasts a batch of one, and keeps gradients flowing through BatchMatMul', async () => {
      setF16Gemm(true);
      const xb = randomTensor([3, 40, 72], 7);
      const wb = randomTensor([72, 66], 8);
      const got = tf.matMul(xb, wb);
      expect(got.shape).toEqual([3, 40, 66]);
      const want = referenceGemm((await xb.data()) as Float32Array, (await wb.data()) as Float32Array, {
        batch: 3,
        batchA: 3,
        batchB: 1,
        m: 40,
        n: 66,
        k: 72,
        transposeA: false,
        transposeB: false,
      });
      const values = await got.data();
      expect(Math.max(...want.map((w, i) => Math.abs(w - values[i]!)))).toBeLessThan(1e-4);

      const x = randomTensor([120, 72], 5);
      const w = randomTensor([72, 66], 6);
      const f = (xs: tf.Tensor, ws: tf.Tensor) => tf.sum(tf.square(tf.matMul(xs, ws)));
      const [dx, dw] = tf.grads(f)([x, w]);
      setF16Gemm(false);
      const [px, pw] = tf.grads(f)([x, w]);
      const rel = async (p: tf.Tensor, q: tf.Tensor) => {
        const [d, base] = [tf.norm(tf.sub(p, q)), tf.norm(q)];
        const r = (await d.data())[0]! / (await base.data())[0]!;
        tf.dispose([d, base]);
        return r;
      };
      expect(await rel(dx!, px!)).toBeLessThan(3e-3);
      expect(await rel(dw!, pw!)).toBeLessThan(3e-3);
      expect(await rel(dw!, pw!)).toBeGreaterThan(0);
      tf.dispose([xb, wb, got, x, w, dx!, dw!, px!, pw!]);
    }, 120_000);

    it('checks the column-major B layout and other tiles on the same problems', async () => {
      for (const [tile, layout] of [
        ['2x1x2x1x32s1p8', { store: 'staged', bMajor: 'col' }],
        ['1x2x1x2x16s2p0', { store: 'direct', bMajor: 'col', spelling: 'templated', f16Unit: 2 }],
      ] as const) {
        const settled = await settleF16Gemm({ engine: 'scalar', tile: parseTile(tile), layout });
        expect(settled.reason).toContain(`tile ${tile}, ${layoutName(layout)}`);
        expect(settled.plan?.layout).toEqual(layout);
      }
    }, 120_000);

    it('is off by default and leaves small products to float32', async () => {
      setF16Gemm(false);
      expect(f16GemmActive()).toBe(false);
      expect(DEFAULT_SCALAR_TILE.bk % 16).toBe(0);
    });
  },
);
