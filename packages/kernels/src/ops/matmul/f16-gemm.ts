/**
 * f16 GEMMs for mixed-precision training on WebGPU. `settleF16Gemm` decides, once per device, whether the GPU's
 * f16 matrix units compute the right products (a self-check of every transpose and edge case against float64
 * products of f16-rounded inputs, as the int8 path does), and `setF16Gemm(true)` then sends the float32
 * `BatchMatMul`s of the webgpu backend that are large enough through `F16GemmProgram`: forward `x W^T`, the
 * backward `dY W` and `dY^T X`, the tied LM head and its gradients, attention's batched products. Inputs stay
 * float32 tensors, outputs are float32; only the operands are rounded to f16 on their way into the multiply.
 */
import * as tf from '@tensorflow/tfjs-core';
import { webGpuCapabilities } from '../../backend/webgpu-device.js';
import { compilerErrors } from '../../webgpu/compile-errors.js';
import type { WebGpuBackendLike } from '../../webgpu/program-like.js';
import {
  F16GemmProgram,
  GEMM_LAYOUTS,
  type GemmEngine,
  type GemmLayout,
  type GemmProblem,
  type GemmTile,
  layoutName,
  type MatrixShape,
  parseTile,
  SCALAR_LANES,
  tileName,
  tileProblem,
} from './f16-gemm-program.js';

/** How the f16 GEMM runs on a device. */
export interface F16GemmPlan {
  engine: GemmEngine;
  shape: MatrixShape;
  /** Threads per subgroup (the scalar engine's logical groups have `SCALAR_LANES`). */
  lanes: number;
  tile: GemmTile;
  layout: GemmLayout;
}

export interface F16GemmSettlement {
  plan: F16GemmPlan | null;
  /** One line: what runs, or why nothing does. */
  reason: string;
}

export interface SettleOptions {
  /** `scalar` forces the scalar engine (f16 rounding emulated; for devices without f16 matrices). */
  engine?: GemmEngine;
  tile?: GemmTile;
  /** Only this layout (else each of `GEMM_LAYOUTS` in turn until one passes). */
  layout?: GemmLayout;
  /** Only this f16 matrix shape (else each the device offers, largest first, until one passes). */
  shape?: MatrixShape;
}

/** 2 x 2 subgroups of 4 x 4 matrices each (128 x 128 blocks at 16 x 16), K steps of 32, double-buffered. */
export const DEFAULT_MATRIX_TILE: GemmTile = {
  sgRows: 2,
  sgCols: 2,
  tm: 4,
  tn: 4,
  bk: 32,
  stages: 2,
  pad: 8,
};
/** The scalar engine's tile: small, since each lane keeps its part of the block in registers. */
export const DEFAULT_SCALAR_TILE: GemmTile = {
  sgRows: 2,
  sgCols: 2,
  tm: 1,
  tn: 1,
  bk: 16,
  stages: 2,
  pad: 0,
};
const SCALAR_SHAPE: MatrixShape = { M: 16, N: 16, K: 16 };
/** Products with fewer multiply-adds stay on tfjs's float32 kernel (decode-sized work gains nothing). */
export const F16_GEMM_MIN_WORK = 64 * 64 * 64;

export const F16_GEMM_ENV = 'MPTJS_WEBGPU_F16';
export const F16_GEMM_TILE_ENV = 'MPTJS_F16_GEMM_TILE';
export const F16_GEMM_ENGINE_ENV = 'MPTJS_F16_GEMM_ENGINE';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type KernelFunc = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

const settlements = new WeakMap<object, F16GemmSettlement>();
let enabled = false;
let original: KernelFunc | null = null;

function env(name: string): string | undefined {
  return typeof process === 'undefined' ? undefined : process.env[name];
}

function activeDevice(): (object & WebGpuBackendLike['device']) | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return ((tf.backend() as unknown as WebGpuBackendLike).device as object | undefined) ?? null;
}

/** The active device's plan when f16 GEMMs are switched on and settled, else null. */
export function f16GemmPlan(): F16GemmPlan | null {
  const device = activeDevice();
  return (enabled && device && settlements.get(device)?.plan) || null;
}

/** Whether float32 products on the active backend run through the f16 GEMM now. */
export function f16GemmActive(): boolean {
  return f16GemmPlan() !== null;
}

/** Switches f16 GEMMs on (where a settled plan exists) or off; returns whether they are active. */
export function setF16Gemm(on: boolean): boolean {
  enabled = on;
  if (on) installKernel();
  return f16GemmActive();
}

/**
 * A kernel of another package that runs in f16 while the f16 GEMM does (flash attention), settled with the
 * GEMM's plan by its own self-check.
 */
export interface F16Companion {
  name: string;
  /** Settles on the active device with the GEMM's plan; one line: what runs, or why it stays f32. */
  settle(plan: F16GemmPlan): Promise<string>;
}

const companions = new Map<string, F16Companion>();

/** Registers (or replaces, by name) a kernel that `settleF16Companions` settles. */
export function registerF16Companion(companion: F16Companion): void {
  companions.set(companion.name, companion);
}

/**
 * Settles every registered companion on the active device with the active GEMM plan (none while f16 GEMMs are
 * off): one line each, what runs or why it stays f32.
 */
export async function settleF16Companions(): Promise<string[]> {
  const plan = f16GemmPlan();
  if (!plan) return [];
  const lines: string[] = [];
  for (const companion of companions.values()) lines.push(await companion.settle(plan));
  return lines;
}

/** `[batch, rows, cols]` view of a rank >= 2 tensor's data, or null when its batch dims can't be flattened. */
function asRank3(t: tf.TensorInfo): tf.TensorInfo {
  const rows = t.shape[t.shape.length - 2]!;
  const cols = t.shape[t.shape.length - 1]!;
  const batch = t.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { dataId: t.dataId, shape: [batch, rows, cols], dtype: t.dtype };
}

/** The output batch dims when one side's batch is all ones or both are equal (what the program broadcasts). */
function batchDims(a: readonly number[], b: readonly number[]): number[] | null {
  const aBatch = a.slice(0, -2);
  const bBatch = b.slice(0, -2);
  const size = (d: number[]) => d.reduce((x, y) => x * y, 1);
  if (size(aBatch) === 1) return bBatch.length ? bBatch : aBatch;
  if (size(bBatch) === 1) return aBatch;
  const same = aBatch.length === bBatch.length && aBatch.every((d, i) => d === bBatch[i]);
  return same ? aBatch : null;
}

/** Runs the f16 GEMM, or returns null where it does not apply (the caller uses tfjs's kernel). */
export function runF16Gemm(
  backend: WebGpuBackendLike,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  plan: F16GemmPlan,
  minWork = F16_GEMM_MIN_WORK,
): tf.TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const outBatch = batchDims(a.shape, b.shape);
  if (!outBatch) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = a.shape[transposeA ? ra - 1 : ra - 2]!;
  const k = a.shape[transposeA ? ra - 2 : ra - 1]!;
  const n = b.shape[transposeB ? rb - 2 : rb - 1]!;
  const batch = outBatch.reduce((x, y) => x * y, 1);
  if (b.shape[transposeB ? rb - 1 : rb - 2] !== k || batch * m * n * k < minWork) return null;
  const problem: GemmProblem = { batch, m, n, k, transposeA, transposeB };
  const program = new F16GemmProgram(problem, plan.tile, plan.shape, plan.engine, plan.lanes, plan.layout);
  const out = backend.runWebGPUProgram(program, [asRank3(a), asRank3(b)], 'float32');
  return { dataId: out.dataId, shape: [...outBatch, m, n], dtype: 'float32' };
}

function installKernel(): void {
  if (original) return;
  const registered = tf.getKernel('BatchMatMul', 'webgpu');
  if (!registered) return;
  const fallback = registered.kernelFunc as unknown as KernelFunc;
  original = fallback;
  const kernelFunc = (args: KernelArgs) => {
    const plan = f16GemmPlan();
    if (plan) {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      const out = runF16Gemm(args.backend as WebGpuBackendLike, a, b, !!transposeA, !!transposeB, plan);
      if (out) return out;
    }
    return fallback(args);
  };
  tf.unregisterKernel('BatchMatMul', 'webgpu');
  tf.registerKernel({ ...registered, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/** Rounds to the nearest f16 value (ties to even; overflow to infinity), as the GPU converts. */
export function roundToF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 65520) return x > 0 ? Infinity : -Infinity;
  // The spacing of f16 values around x: 2^(e - 10) for normals, 2^-24 below 2^-14.
  const e = Math.max(Math.floor(Math.log2(ax)), -14);
  const q = 2 ** (e - 10);
  const scaled = x / q;
  let r = Math.round(scaled);
  if (Math.abs(scaled - Math.trunc(scaled)) === 0.5 && r % 2 !== 0) r -= Math.sign(scaled);
  return r * q;
}

interface CheckCase extends GemmProblem {
  batchA: number;
  batchB: number;
}

/** Uneven sizes on purpose (edges of blocks and K steps), every transpose, batches and broadcasts. */
function checkCases(tile: GemmTile, shape: MatrixShape): CheckCase[] {
  const blockM = tile.sgRows * tile.tm * shape.M;
  const blockN = tile.sgCols * tile.tn * shape.N;
  const m = blockM + 7;
  const n = blockN + 9;
  const k = 2 * tile.bk + 5;
  const cases: CheckCase[] = [];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      cases.push({ batch: 1, batchA: 1, batchB: 1, m, n, k, transposeA, transposeB });
    }
  }
  cases.push({
    batch: 2,
    batchA: 2,
    batchB: 1,
    m: blockM,
    n: blockN,
    k: tile.bk,
    transposeA: false,
    transposeB: true,
  });
  cases.push({
    batch: 3,
    batchA: 3,
    batchB: 3,
    m: 5,
    n: blockN * 2,
    k: 3 * tile.bk,
    transposeA: true,
    transposeB: false,
  });
  return cases;
}

function randomValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** float64 products of the f16-rounded operands: what a correct f16 GEMM gives up to f32 summation order. */
export function referenceGemm(
  a: Float32Array,
  b: Float32Array,
  c: Pick<CheckCase, 'batch' | 'batchA' | 'batchB' | 'm' | 'n' | 'k' | 'transposeA' | 'transposeB'>,
): Float64Array {
  const { batch, m, n, k, transposeA, transposeB } = c;
  const ra = a.map(roundToF16);
  const rb = b.map(roundToF16);
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = (c.batchA === 1 ? 0 : z) * m * k;
    const bo = (c.batchB === 1 ? 0 : z) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = ra[ao + (transposeA ? p * m + i : i * k + p)]!;
          const bv = rb[bo + (transposeB ? j * k + p : p * n + j)]!;
          s += av * bv;
        }
        out[(z * m + i) * n + j] = s;
      }
    }
  }
  return out;
}

interface ErrorScopes {
  pushErrorScope(filter: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/** Runs every check case with `plan`: null when all agree with the reference, else what went wrong. */
async function selfCheck(device: object, plan: F16GemmPlan): Promise<string | null> {
  const gpu = device as ErrorScopes;
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  for (const [index, c] of checkCases(plan.tile, plan.shape).entries()) {
    const aShape = [c.batchA, ...(c.transposeA ? [c.k, c.m] : [c.m, c.k])];
    const bShape = [c.batchB, ...(c.transposeB ? [c.n, c.k] : [c.k, c.n])];
    const aData = randomValues(
      aShape.reduce((x, y) => x * y),
      17 + index,
    );
    const bData = randomValues(
      bShape.reduce((x, y) => x * y),
      91 + index,
    );
    gpu.pushErrorScope('validation');
    let values: Float32Array;
    try {
      const got = tf.tidy(() => {
        const a = tf.tensor(aData, aShape);
        const b = tf.tensor(bData, bShape);
        const out = runF16Gemm(backend, a, b, c.transposeA, c.transposeB, plan, 0);
        if (!out) throw new Error(`case ${index} was not taken by the f16 GEMM`);
        return tf.engine().makeTensorFromTensorInfo(out);
      });
      values = (await got.data()) as Float32Array;
      got.dispose();
    } catch (err) {
      await gpu.popErrorScope();
      return compilerErrors((err as Error).message);
    }
    const error = await gpu.popErrorScope();
    if (error) return compilerErrors(error.message);
    const want = referenceGemm(aData, bData, c);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      scale = Math.max(scale, Math.abs(want[i]!));
      worst = Math.max(worst, Math.abs(values[i]! - want[i]!));
    }
    // f32 sums of at most a few hundred f16 products: anything past 1e-5 of the scale is a wrong product.
    if (!(worst <= 1e-5 * scale)) {
      const t = `${c.transposeA ? 'T' : 'N'}${c.transposeB ? 'T' : 'N'}`;
      return (
        `${c.batch}x${c.m}x${c.n}x${c.k} ${t}: max error ${worst.toExponential(2)} of ${scale.toFixed(2)}; ` +
        describeMismatch(values, want, c.m, c.n, 1e-5 * scale)
      );
    }
  }
  return null;
}

/**
 * Where a wrong product is wrong (for the failure message, to tell a driver's fault from ours): the share of
 * wrong elements, the first one, and whether the values are there but misplaced (transposed, or shifted along a
 * row) or zero.
 */
export function describeMismatch(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  m: number,
  n: number,
  tol: number,
) {
  const close = (a: number, b: number) => Math.abs(a - b) <= tol;
  let wrong = 0;
  let first = -1;
  let zeros = 0;
  for (let i = 0; i < want.length; i++) {
    if (close(got[i]!, want[i]!)) continue;
    wrong++;
    if (first < 0) first = i;
    if (got[i] === 0) zeros++;
  }
  if (first < 0) return 'no wrong element';
  const batchOff = first - (first % (m * n));
  const r = Math.floor((first % (m * n)) / n);
  const col = first % n;
  const hints: string[] = [];
  if (zeros === wrong) hints.push('all wrong ones are 0');
  if (r < n && col < m && close(got[first]!, want[batchOff + col * n + r]!)) hints.push('looks transposed');
  for (const shift of [1, 2, 4, 8, 16]) {
    if (col + shift < n && close(got[first]!, want[first + shift]!)) hints.push(`equals want[r][c+${shift}]`);
    if (col >= shift && close(got[first]!, want[first - shift]!)) hints.push(`equals want[r][c-${shift}]`);
  }
  return (
    `${wrong} of ${want.length} wrong, first at row ${r} col ${col}: got ${got[first]!.toFixed(4)}, ` +
    `want ${want[first]!.toFixed(4)}${hints.length ? ` (${hints.join(', ')})` : ''}`
  );
}

function chooseTile(engine: GemmEngine, requested: GemmTile | undefined): GemmTile {
  const fromEnv = env(F16_GEMM_TILE_ENV);
  if (requested) return requested;
  if (fromEnv) return parseTile(fromEnv);
  return engine === 'matrix' ? DEFAULT_MATRIX_TILE : DEFAULT_SCALAR_TILE;
}

/**
 * Settles the active webgpu device's f16 GEMM plan, once per device (and tile): the matrix engine where the
 * device has `shader-f16` and `f16 x f16 -> f32` subgroup matrices with a fixed subgroup size, the scalar engine
 * where asked for (`engine: 'scalar'` or `MPTJS_F16_GEMM_ENGINE=scalar`), each only if its self-check passes.
 * `MPTJS_WEBGPU_F16=0` turns it off.
 */
export async function settleF16Gemm(options: SettleOptions = {}): Promise<F16GemmSettlement> {
  const device = activeDevice();
  if (!device) return { plan: null, reason: 'not the webgpu backend' };
  const known = settlements.get(device);
  const defaults = !options.tile && !options.engine && !options.layout && !options.shape;
  if (known && defaults) return known;
  const result = await settle(device, options);
  // A settlement for chosen options replaces the device's only where it found a plan.
  if (defaults || result.plan) settlements.set(device, result);
  return result;
}

async function settle(device: object, options: SettleOptions): Promise<F16GemmSettlement> {
  if (env(F16_GEMM_ENV) === '0') return { plan: null, reason: `turned off by ${F16_GEMM_ENV}=0` };
  const caps = webGpuCapabilities();
  if (!caps) return { plan: null, reason: 'the device was not opened by mptjs' };
  const requested = options.engine ?? (env(F16_GEMM_ENGINE_ENV) as GemmEngine | undefined);
  if (requested !== undefined && requested !== 'matrix' && requested !== 'scalar')
    return { plan: null, reason: `${F16_GEMM_ENGINE_ENV} must be matrix or scalar, got "${requested}"` };
  let bases: Omit<F16GemmPlan, 'layout'>[];
  if (requested === 'scalar') {
    bases = [
      {
        engine: 'scalar',
        shape: SCALAR_SHAPE,
        lanes: SCALAR_LANES,
        tile: chooseTile('scalar', options.tile),
      },
    ];
  } else {
    const configs = caps.subgroupMatrixConfigs
      .filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32')
      .filter(
        (c) =>
          !options.shape || (c.M === options.shape.M && c.N === options.shape.N && c.K === options.shape.K),
      )
      .sort((x, y) => y.M * y.N * y.K - x.M * x.N * x.K);
    if (!caps.features.includes('shader-f16'))
      return {
        plan: null,
        reason: 'the device offers no shader-f16 (on NVIDIA Vulkan, Dawn needs vulkan_enable_f16_on_nvidia)',
      };
    if (configs.length === 0)
      return { plan: null, reason: 'the device offers no f16 x f16 -> f32 subgroup matrices' };
    if (caps.subgroupMinSize !== caps.subgroupMaxSize || caps.subgroupMaxSize <= 0)
      return {
        plan: null,
        reason: `subgroup size varies (${caps.subgroupMinSize}..${caps.subgroupMaxSize})`,
      };
    const tile = chooseTile('matrix', options.tile);
    bases = configs.map((c) => ({
      engine: 'matrix' as const,
      shape: { M: c.M, N: c.N, K: c.K },
      lanes: caps.subgroupMaxSize,
      tile,
    }));
  }
  const limits = (device as { limits?: Record<string, number> }).limits ?? {};
  const describe = (b: Omit<F16GemmPlan, 'layout'>) =>
    `${b.engine} engine, ${b.shape.M}x${b.shape.N}x${b.shape.K} f16, tile ${tileName(b.tile)}`;
  const failures: string[] = [];
  for (const base of bases) {
    for (const layout of options.layout ? [options.layout] : GEMM_LAYOUTS) {
      const plan: F16GemmPlan = { ...base, layout };
      const unfit = tileProblem(
        plan.tile,
        plan.shape,
        plan.engine,
        plan.lanes,
        limits['maxComputeWorkgroupStorageSize'] ?? 16384,
        limits['maxComputeInvocationsPerWorkgroup'] ?? 256,
        layout,
      );
      const error = unfit ?? (await selfCheck(device, plan));
      if (error === null) return { plan, reason: `${describe(base)}, ${layoutName(layout)}` };
      failures.push(`${base.shape.M}x${base.shape.N}x${base.shape.K} ${layoutName(layout)}: ${error}`);
    }
  }
  const what = `${bases[0]!.engine} engine, tile ${tileName(bases[0]!.tile)}`;
  return { plan: null, reason: `${what} failed its self-check (${failures.join('; ')})` };
}
