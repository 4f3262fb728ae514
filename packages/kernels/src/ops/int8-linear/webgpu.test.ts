import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  activationRowBytes,
  dequantizeInt8,
  hoistEnableDirectives,
  type Int8Weight,
  int8Linear,
  int8MatrixPlan,
  pickInt8Config,
  QuantizeRowsProgram,
  quantizeInt8,
  selectBackend,
  settleInt8MatrixPlan,
  uploadInt8,
  webGpuCapabilities,
} from '../../index.js';

// What Dawn reports on an NVIDIA H200 (Vulkan): int8 only, as the adapter offers no shader-f16.
const H200_CONFIGS = [
  { componentType: 'u8', resultComponentType: 'u32', M: 16, N: 16, K: 32 },
  { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 },
  { componentType: 'u8', resultComponentType: 'u32', M: 16, N: 8, K: 32 },
  { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 8, K: 32 },
];

function random(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** `x [m, k] @ W^T` in float64 for a row-major `[n, k]` weight. */
function matmulT(x: Float32Array, w: Float32Array, m: number, n: number, k: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += x[r * k + c]! * w[j * k + c]!;
      out[r * n + j] = s;
    }
  }
  return out;
}

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  return worst / scale;
}

describe('webgpu device setup', () => {
  it('moves enable directives to the top of generated WGSL, once each', () => {
    const code =
      'struct U { a : f32 };\n  enable f16;\nfn f() {}\nenable chromium_experimental_subgroup_matrix;\n enable f16;\n';
    const out = hoistEnableDirectives(code);
    expect(out.startsWith('enable f16;\nenable chromium_experimental_subgroup_matrix;\nstruct U')).toBe(true);
    expect(out.match(/enable /g)).toHaveLength(2);
    expect(hoistEnableDirectives('fn f() {}')).toBe('fn f() {}');
    const diag = hoistEnableDirectives(
      'var<private> a : i32;\n  diagnostic(off, chromium.subgroup_matrix_uniformity);\n  enable f16;\n',
    );
    expect(diag.split('\n').slice(0, 3)).toEqual([
      'enable f16;',
      'diagnostic(off, chromium.subgroup_matrix_uniformity);',
      'var<private> a : i32;',
    ]);
  });

  it('picks the largest signed int8 subgroup-matrix shape and nothing else', () => {
    expect(pickInt8Config(H200_CONFIGS)).toEqual(H200_CONFIGS[1]);
    expect(pickInt8Config(H200_CONFIGS.filter((c) => c.componentType === 'u8'))).toBeNull();
    expect(
      pickInt8Config([{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }]),
    ).toBeNull();
    expect(pickInt8Config([])).toBeNull();
  });
});

describe.runIf(webgpuExpected)('int8 weights on the real webgpu backend', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  function upload(
    n: number,
    k: number,
    seed: number,
    activations?: 'int8',
  ): { w: Int8Weight; wide: Float32Array } {
    const q = quantizeInt8(random(n * k, seed, 0.5), [n, k]);
    const w = uploadInt8(q);
    if (activations) w.activations = activations;
    return { w, wide: dequantizeInt8(q) };
  }

  // Rows 1..16 take the int8 row program; 40 rows widen the weight for the float matmul.
  for (const [m, n, k] of [
    [1, 37, 64],
    [3, 37, 70],
    [16, 9, 131],
    [40, 33, 48],
  ] as const) {
    it(`x [${m}, ${k}] times an int8 [${n}, ${k}] weight matches the float product of its dequantized weight`, async () => {
      const { w, wide } = upload(n, k, 7 + m);
      const x = random(m * k, 11 + k);
      const y = int8Linear(tf.tensor2d(x, [m, k]), w);
      expect(y.shape).toEqual([m, n]);
      expect(maxRelErr(await y.data(), matmulT(x, wide, m, n, k))).toBeLessThan(1e-5);
      y.dispose();
    });
  }

  it('keeps leading dimensions: [2, 3, k] -> [2, 3, n]', async () => {
    const { w, wide } = upload(20, 24, 3);
    const x = random(2 * 3 * 24, 5);
    const y = int8Linear(tf.tensor3d(x, [2, 3, 24]), w);
    expect(y.shape).toEqual([2, 3, 20]);
    expect(maxRelErr(await y.data(), matmulT(x, wide, 6, 20, 24))).toBeLessThan(1e-5);
  });

  it('quantizes activation rows to int8 with a max|x| / 127 scale, padded with zeros', async () => {
    const [m, k] = [5, 70];
    const rowBytes = activationRowBytes(k, 32);
    expect(rowBytes).toBe(96);
    const x = random(m * k, 21, 3);
    x[k + 3] = 0;
    const backend = tf.backend() as unknown as {
      runWebGPUProgram(p: unknown, i: tf.TensorInfo[], d: string, u: unknown[]): tf.TensorInfo;
    };
    const input = tf.tensor2d(x, [m, k]);
    const info = backend.runWebGPUProgram(new QuantizeRowsProgram(m, rowBytes), [input], 'int32', [
      { type: 'int32', data: [rowBytes / 4] },
    ]);
    const out = tf.engine().makeTensorFromTensorInfo(info);
    const words = new Int32Array(await out.data());
    const bytes = new Int8Array(words.buffer, 0, m * rowBytes);
    const scales = new Float32Array(words.buffer, m * rowBytes, m);
    for (let r = 0; r < m; r++) {
      const row = x.subarray(r * k, (r + 1) * k);
      const peak = Math.max(...Array.from(row, Math.abs));
      expect(scales[r]).toBeCloseTo(peak / 127, 6);
      for (let c = 0; c < rowBytes; c++) {
        const want = c < k ? Math.round(row[c]! * (127 / peak)) : 0;
        // A value halfway between two steps may round either way in float32.
        expect(Math.abs(bytes[r * rowBytes + c]! - want)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('settles the int8 subgroup-matrix plan: used only where the device has i8 matrices and they check out', async () => {
    const caps = webGpuCapabilities();
    expect(caps).not.toBeNull();
    const { plan, reason, tried } = await settleInt8MatrixPlan();
    if (!pickInt8Config(caps!.subgroupMatrixConfigs)) {
      console.log(
        `[int8] no int8 subgroup matrices on this adapter (${reason}); the W8A8 kernel is not exercised here`,
      );
      expect(plan).toBeNull();
      expect(int8MatrixPlan()).toBeNull();
      return;
    }
    expect(plan, reason).not.toBeNull();
    expect(int8MatrixPlan()).toEqual(plan);
    expect(tried.length).toBeGreaterThan(0);
  });

  it('int8 activations (W8A8) match the product of the per-row quantized x, or fall back to float x', async () => {
    const [m, n, k] = [150, 90, 200];
    const { w, wide } = upload(n, k, 31, 'int8');
    const x = random(m * k, 41);
    const y = await int8Linear(tf.tensor2d(x, [m, k]), w).data();
    if (!int8MatrixPlan()) {
      expect(maxRelErr(y, matmulT(x, wide, m, n, k))).toBeLessThan(1e-5);
      return;
    }
    // The reference quantizes x rows exactly as the kernel does.
    const xq = new Float32Array(m * k);
    for (let r = 0; r < m; r++) {
      const row = x.subarray(r * k, (r + 1) * k);
      const scale = Math.fround(Math.max(...Array.from(row, Math.abs)) / 127);
      for (let c = 0; c < k; c++)
        xq[r * k + c] = Math.max(-127, Math.min(127, Math.round(row[c]! / scale))) * scale;
    }
    expect(maxRelErr(y, matmulT(xq, wide, m, n, k))).toBeLessThan(1e-3);
    expect(maxRelErr(y, matmulT(x, wide, m, n, k))).toBeLessThan(3e-2);
  });
});
