/**
 * The int8 weight kernels on tfjs-backend-webgpu, and the int8 subgroup-matrix plan of the active device: which
 * `i8 x i8 -> i32` subgroup-matrix shape to use, and whether it computes the right products there. The plan is
 * settled once per device by multiplying a small, unevenly shaped problem on the GPU and comparing it with the
 * exact integer product on the CPU; a device where that fails keeps the float path (and says why).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type SubgroupMatrixConfig, webGpuCapabilities } from '../../backend/webgpu-device.js';
import { compilerErrors } from '../../webgpu/compile-errors.js';
import type { WebGpuBackendLike } from '../../webgpu/program-like.js';
import {
  activationRowBytes,
  Int8DequantizeProgram,
  type Int8MatmulLayout,
  Int8RowsProgram,
  Int8SubgroupMatmulProgram,
  QuantizeRowsProgram,
} from './webgpu-programs.js';

export const INT8_MATMUL_W8A8_KERNEL = 'Int8MatmulW8A8';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Int8Attrs = { n: number; k: number; rowBytes: number };

/** How the int8 subgroup matmul runs on a device: the matrix shape, subgroup size and operand layout. */
export interface Int8MatrixPlan {
  config: SubgroupMatrixConfig;
  subgroupSize: number;
  layout: Int8MatmulLayout;
}

/** The outcome of settling a device's plan: the plan (or null), why, and how each layout fared. */
export interface Int8MatrixSettlement {
  plan: Int8MatrixPlan | null;
  reason: string;
  /** Every layout tried, in order of preference, with its error when it failed. */
  tried: { layout: Int8MatmulLayout; ok: boolean; error?: string }[];
}

/**
 * Layouts in order of preference: the templated spelling first (the legacy one compiles with deprecation warnings
 * where both exist), staged loads before direct ones (coalesced, and reused by the workgroup's 4 subgroups).
 */
export const INT8_MATMUL_LAYOUTS: readonly Int8MatmulLayout[] = [true, false].flatMap((templated) => [
  { staged: true, offsetUnit: 1 as const, templated },
  { staged: true, offsetUnit: 4 as const, templated },
  { staged: false, offsetUnit: 1 as const, templated },
  { staged: false, offsetUnit: 4 as const, templated },
]);

function rowsKernel(args: KernelArgs): tf.TensorInfo {
  const { x, packed, scales } = args.inputs as Record<'x' | 'packed' | 'scales', tf.TensorInfo>;
  const { n, k, rowBytes } = args.attrs as unknown as Int8Attrs;
  const program = new Int8RowsProgram(x.shape[0]!, n, k);
  return (args.backend as WebGpuBackendLike).runWebGPUProgram(program, [x, packed, scales], 'float32', [
    { type: 'int32', data: [rowBytes / 4] },
  ]);
}

function dequantizeKernel(args: KernelArgs): tf.TensorInfo {
  const { packed, scales } = args.inputs as Record<'packed' | 'scales', tf.TensorInfo>;
  const { n, k, rowBytes } = args.attrs as unknown as Int8Attrs;
  return (args.backend as WebGpuBackendLike).runWebGPUProgram(
    new Int8DequantizeProgram(n, k),
    [packed, scales],
    'float32',
    [{ type: 'int32', data: [rowBytes / 4] }],
  );
}

function w8a8Kernel(args: KernelArgs): tf.TensorInfo {
  const { x, packed, scales } = args.inputs as Record<'x' | 'packed' | 'scales', tf.TensorInfo>;
  const attrs = args.attrs as unknown as Int8Attrs & { plan: Int8MatrixPlan };
  return runW8A8(args.backend as WebGpuBackendLike, x, packed, scales, attrs, attrs.plan);
}

function runW8A8(
  backend: WebGpuBackendLike,
  x: tf.TensorInfo,
  packed: tf.TensorInfo,
  scales: tf.TensorInfo,
  attrs: Int8Attrs,
  plan: Int8MatrixPlan,
): tf.TensorInfo {
  const m = x.shape[0]!;
  const xRowBytes = activationRowBytes(attrs.k, plan.config.K);
  const xq = backend.runWebGPUProgram(new QuantizeRowsProgram(m, xRowBytes), [x], 'int32', [
    { type: 'int32', data: [xRowBytes / 4] },
  ]);
  const program = new Int8SubgroupMatmulProgram(m, attrs.n, plan.config, plan.subgroupSize, plan.layout);
  const out = backend.runWebGPUProgram(program, [xq, packed, scales], 'float32', [
    { type: 'int32', data: [xRowBytes] },
    { type: 'int32', data: [attrs.rowBytes] },
  ]);
  backend.disposeData(xq.dataId);
  return out;
}

/** Registers the webgpu int8 kernels once (idempotent). */
export function registerInt8WebGpuKernels(): void {
  if (tf.getKernel('Int8Linear', 'webgpu')) return;
  const kernels: [string, (args: KernelArgs) => tf.TensorInfo][] = [
    ['Int8Linear', rowsKernel],
    ['Int8Dequantize', dequantizeKernel],
    [INT8_MATMUL_W8A8_KERNEL, w8a8Kernel],
  ];
  for (const [kernelName, fn] of kernels) {
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: fn as unknown as tf.KernelFunc });
  }
}

/** The `i8 x i8 -> i32` config the kernel can use: `M`, `N` dividing 64 and `K` a multiple of 16. */
export function pickInt8Config(configs: readonly SubgroupMatrixConfig[]): SubgroupMatrixConfig | null {
  const usable = configs.filter(
    (c) =>
      c.componentType === 'i8' &&
      c.resultComponentType === 'i32' &&
      16 % c.M === 0 &&
      16 % c.N === 0 &&
      c.K % 16 === 0,
  );
  // The largest tiles do the most work per load.
  usable.sort((a, b) => b.M * b.N - a.M * a.N);
  return usable[0] ?? null;
}

const plans = new WeakMap<object, Int8MatrixSettlement>();

/** The active device's settled plan, or null (not settled, not webgpu, or the matrices can't be used). */
export function int8MatrixPlan(): Int8MatrixPlan | null {
  const device = (tf.backend() as unknown as WebGpuBackendLike).device;
  return (tf.getBackend() === 'webgpu' && device && plans.get(device)?.plan) || null;
}

/** Integer reference of the self-check: `sum_c xq[r, c] * wq[j, c]`. */
function exactProducts(xq: Int8Array, wq: Int8Array, m: number, n: number, k: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += xq[r * k + c]! * wq[j * k + c]!;
      out[r * n + j] = s;
    }
  }
  return out;
}

/**
 * Settles the int8 subgroup-matrix plan of the active webgpu device: the first layout of `INT8_MATMUL_LAYOUTS`
 * whose products are exact, or null with the reason. Sizes are uneven on purpose (rows and columns past a
 * block, `k` past a K step) so that padding and bounds are checked too.
 */
export async function settleInt8MatrixPlan(): Promise<Int8MatrixSettlement> {
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const device = backend.device;
  if (tf.getBackend() !== 'webgpu' || !device)
    return { plan: null, reason: 'not the webgpu backend', tried: [] };
  const known = plans.get(device);
  if (known) return known;
  const caps = webGpuCapabilities();
  const config = caps ? pickInt8Config(caps.subgroupMatrixConfigs) : null;
  let result: Int8MatrixSettlement;
  if (!caps || !config) {
    result = { plan: null, reason: 'the device offers no i8 subgroup matrices', tried: [] };
  } else if (caps.subgroupMinSize !== caps.subgroupMaxSize || caps.subgroupMaxSize <= 0) {
    result = {
      plan: null,
      reason: `subgroup size varies (${caps.subgroupMinSize}..${caps.subgroupMaxSize}): subgroups can't be mapped to threads`,
      tried: [],
    };
  } else {
    result = await checkLayouts(device, config, caps.subgroupMaxSize);
  }
  plans.set(device, result);
  return result;
}

interface ErrorScopes {
  pushErrorScope(filter: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/** Runs the self-check problem with one layout: null when exact, else what went wrong. */
async function checkLayout(
  gpu: ErrorScopes,
  problem: ReturnType<typeof checkProblem>,
  plan: Int8MatrixPlan,
): Promise<string | null> {
  const { m, n, k, rowBytes, xq, packedBytes, expected } = problem;
  gpu.pushErrorScope('validation');
  let values: Float32Array | Int32Array | Uint8Array;
  try {
    const got = tf.tidy(() => {
      const x = tf.tensor2d(Float32Array.from(xq), [m, k]);
      const packed = tf.tensor1d(new Int32Array(packedBytes.buffer), 'int32');
      const scales = tf.ones([n], 'float32');
      const attrs = { n, k, rowBytes, plan } as unknown as tf.NamedAttrMap;
      return tf.engine().runKernel(INT8_MATMUL_W8A8_KERNEL, { x, packed, scales }, attrs) as tf.Tensor;
    });
    values = await got.data();
    got.dispose();
  } catch (err) {
    await gpu.popErrorScope();
    return (err as Error).message;
  }
  const error = await gpu.popErrorScope();
  if (error) return compilerErrors(error.message);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    // Scales are 1 / 127 * 127 in float32: allow that rounding, nothing more.
    worst = Math.max(worst, Math.abs(values[i]! - expected[i]!) / (1 + Math.abs(expected[i]!)));
  }
  return worst <= 1e-5 ? null : `relative error ${worst.toExponential(2)}`;
}

function checkProblem(config: SubgroupMatrixConfig) {
  const m = 70;
  const n = 75;
  const k = 2 * config.K + 8;
  const rowBytes = Math.ceil(k / 16) * 16;
  const xq = new Int8Array(m * k);
  const wq = new Int8Array(n * k);
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return ((seed >>> 8) % 255) - 127;
  };
  for (let i = 0; i < xq.length; i++) xq[i] = next();
  for (let i = 0; i < wq.length; i++) wq[i] = next();
  // x rows hold integers with max |x| = 127 exactly, so quantizing them on the GPU gives them back.
  for (let r = 0; r < m; r++) xq[r * k] = 127;
  const packedBytes = new Int8Array(n * rowBytes);
  for (let j = 0; j < n; j++) packedBytes.set(wq.subarray(j * k, (j + 1) * k), j * rowBytes);
  return { m, n, k, rowBytes, xq, packedBytes, expected: exactProducts(xq, wq, m, n, k) };
}

async function checkLayouts(
  device: object,
  config: SubgroupMatrixConfig,
  subgroupSize: number,
): Promise<Int8MatrixSettlement> {
  registerInt8WebGpuKernels();
  const problem = checkProblem(config);
  const tried: Int8MatrixSettlement['tried'] = [];
  let plan: Int8MatrixPlan | null = null;
  for (const layout of INT8_MATMUL_LAYOUTS) {
    const candidate: Int8MatrixPlan = { config, subgroupSize, layout };
    const error = await checkLayout(device as ErrorScopes, problem, candidate);
    tried.push(error === null ? { layout, ok: true } : { layout, ok: false, error });
    if (error === null) {
      plan = candidate;
      break;
    }
  }
  const shape = `i8 ${config.M}x${config.N}x${config.K}`;
  if (plan) {
    const { staged, offsetUnit } = plan.layout;
    return {
      plan,
      reason:
        `${shape}, ${staged ? 'staged' : 'direct'} loads, offsets in ${offsetUnit}-byte units, ` +
        `${plan.layout.templated ? 'templated' : 'legacy'} majorness`,
      tried,
    };
  }
  const why = tried.map(
    (t) =>
      `${t.layout.templated ? 'templated' : 'legacy'}/${t.layout.staged ? 'staged' : 'direct'}/` +
      `${t.layout.offsetUnit}: ${t.error}`,
  );
  return {
    plan: null,
    reason: `the ${shape} int8 subgroup matmul failed its check (${why.join('; ')})`,
    tried,
  };
}
