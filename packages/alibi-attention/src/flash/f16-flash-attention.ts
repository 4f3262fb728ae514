/**
 * Whether the fused attention forward runs in f16 (`F16FlashAttentionProgram`) on the active device: it does
 * while the f16 GEMM is on (`precision: amp_fp16`) and this module's startup self-check passed with the GEMM's
 * engine, matrix shape and subgroup-matrix spelling; otherwise the float32 kernel runs, as under `fp32`. The
 * self-check compares with float64 attention of the f16-rounded inputs over uneven shapes (rows and keys not a
 * multiple of the tiles, head dims not a multiple of the matrices', several heads, batches, causal, ALiBi, a
 * key mask, a query offset). It settles as an f16 companion of the GEMM, so `settleF16Companions` (the trainer
 * calls it when mixed precision starts) reports it in one line.
 */
import {
  compilerErrors,
  type F16GemmPlan,
  f16GemmActive,
  layoutName,
  registerF16Companion,
  roundToF16,
  type WebGpuBackendLike,
} from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import {
  chooseFlashTile,
  F16FlashAttentionProgram,
  type FlashEngineConfig,
  flashTileName,
} from './f16-flash-attention-program.js';

export const F16_FLASH_ATTENTION_NAME = 'f16 flash attention';

/** The largest error the self-check allows by default: of O relative to max |V|, and of the log-sum-exps. */
export const F16_FLASH_TOLERANCE = 2e-3;

export interface F16FlashSettlement {
  config: FlashEngineConfig | null;
  /** One line: what runs, or why attention stays f32. */
  line: string;
}

export interface F16FlashSettleOptions {
  /** The error allowed (see `F16_FLASH_TOLERANCE`); a smaller one makes the check stricter. */
  tolerance?: number;
}

/** Per device: the engine configuration checked (as JSON) and the outcome. */
const settlements = new WeakMap<object, { key: string; settled: F16FlashSettlement }>();

function activeDevice(): object | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return ((tf.backend() as unknown as WebGpuBackendLike).device as object | undefined) ?? null;
}

interface DeviceLimits {
  maxComputeWorkgroupStorageSize?: number;
  maxComputeInvocationsPerWorkgroup?: number;
}

function limitsOf(backend: WebGpuBackendLike): { bytes: number; invocations: number } {
  const limits = (backend.device?.limits ?? {}) as DeviceLimits;
  return {
    bytes: limits.maxComputeWorkgroupStorageSize ?? 16384,
    invocations: limits.maxComputeInvocationsPerWorkgroup ?? 256,
  };
}

/** The active device's f16 flash-attention engine while the f16 GEMM is on and the check passed, else null. */
export function f16FlashAttentionConfig(): FlashEngineConfig | null {
  const device = activeDevice();
  if (!device || !f16GemmActive()) return null;
  return settlements.get(device)?.settled.config ?? null;
}

/**
 * The f16 forward program for Q of `queryShape` on `backend` when f16 attention is active and a tile fits the
 * head dim on the device, else null (the float32 kernel runs).
 */
export function f16FlashAttentionProgram(
  backend: WebGpuBackendLike,
  queryShape: readonly number[],
  withLse: boolean,
): F16FlashAttentionProgram | null {
  const config = f16FlashAttentionConfig();
  if (!config) return null;
  const { bytes, invocations } = limitsOf(backend);
  const fit = chooseFlashTile(config, queryShape[3]!, bytes, invocations);
  return 'tile' in fit ? new F16FlashAttentionProgram(queryShape, withLse, config, fit.tile) : null;
}

/** One attention problem: sizes, options, and the inputs' generator seed. */
export interface FlashCase {
  b: number;
  h: number;
  tq: number;
  tk: number;
  dh: number;
  causal: boolean;
  alibi: boolean;
  queryOffset: number;
  scale: number;
  /** Keys masked out at the start of the last batch's key mask. */
  maskedKeys: number;
  withLse: boolean;
}

/** Uneven on purpose: rows past a block, keys past a tile, head dims past the matrices', masks and offsets. */
export const FLASH_CHECK_CASES: readonly FlashCase[] = [
  {
    b: 1,
    h: 2,
    tq: 70,
    tk: 70,
    dh: 24,
    causal: true,
    alibi: true,
    queryOffset: 0,
    scale: 24 ** -0.5,
    maskedKeys: 0,
    withLse: true,
  },
  {
    b: 2,
    h: 3,
    tq: 5,
    tk: 43,
    dh: 64,
    causal: true,
    alibi: true,
    queryOffset: 38,
    scale: 0.125,
    maskedKeys: 3,
    withLse: true,
  },
  {
    b: 1,
    h: 1,
    tq: 33,
    tk: 19,
    dh: 16,
    causal: false,
    alibi: false,
    queryOffset: 0,
    scale: 0.3,
    maskedKeys: 0,
    withLse: false,
  },
  {
    b: 1,
    h: 1,
    tq: 20,
    tk: 20,
    dh: 128,
    causal: true,
    alibi: true,
    queryOffset: 0,
    scale: 128 ** -0.5,
    maskedKeys: 0,
    withLse: true,
  },
];

function randomValues(count: number, seed: number, amplitude: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * amplitude;
  }
  return out;
}

/** The case's inputs: Q and K in [-2, 2], V in [-1, 1], ALiBi slopes 2^-(1..h), the key mask. */
export function flashCaseInputs(c: FlashCase, seed: number) {
  const qSize = c.b * c.h * c.tq * c.dh;
  const kSize = c.b * c.h * c.tk * c.dh;
  const keyMask = new Float32Array(c.b * c.tk).fill(1);
  for (let j = 0; j < c.maskedKeys; j++) keyMask[(c.b - 1) * c.tk + j] = 0;
  return {
    q: randomValues(qSize, seed, 2),
    k: randomValues(kSize, seed + 1, 2),
    v: randomValues(kSize, seed + 2, 1),
    slopes: Float32Array.from({ length: c.h }, (_, i) => (c.alibi ? 2 ** -(i + 1) : 0)),
    keyMask,
  };
}

/**
 * float64 attention of the f16-rounded Q, K and V (what a correct f16 kernel gives up to f32 sums and the f16
 * rounding of the probabilities): O `[B, H, Tq, Dh]` and each row's log-sum-exp (0 and zeros for a row that
 * sees no key), with the fused kernels' ALiBi (`slope * (j - i)`), causal mask, key mask and query offset.
 */
export function referenceFlashAttention(
  c: FlashCase,
  inputs: ReturnType<typeof flashCaseInputs>,
): { o: Float64Array; lse: Float64Array } {
  const q = Float64Array.from(inputs.q, roundToF16);
  const k = Float64Array.from(inputs.k, roundToF16);
  const v = Float64Array.from(inputs.v, roundToF16);
  const o = new Float64Array(c.b * c.h * c.tq * c.dh);
  const lse = new Float64Array(c.b * c.h * c.tq);
  const s = new Float64Array(c.tk);
  for (let bh = 0; bh < c.b * c.h; bh++) {
    const b = Math.floor(bh / c.h);
    const slope = inputs.slopes[bh % c.h]!;
    for (let i = 0; i < c.tq; i++) {
      const pos = c.queryOffset + i;
      const qRow = (bh * c.tq + i) * c.dh;
      let max = -Infinity;
      for (let j = 0; j < c.tk; j++) {
        const seen = inputs.keyMask[b * c.tk + j] !== 0 && (!c.causal || j <= pos);
        if (!seen) {
          s[j] = -Infinity;
          continue;
        }
        let dot = 0;
        for (let d = 0; d < c.dh; d++) dot += q[qRow + d]! * k[(bh * c.tk + j) * c.dh + d]!;
        s[j] = dot * c.scale + slope * (j - pos);
        max = Math.max(max, s[j]!);
      }
      if (max === -Infinity) continue;
      let sum = 0;
      for (let j = 0; j < c.tk; j++) {
        if (s[j] === -Infinity) continue;
        const p = Math.exp(s[j]! - max);
        sum += p;
        for (let d = 0; d < c.dh; d++) o[qRow + d]! += p * v[(bh * c.tk + j) * c.dh + d]!;
      }
      for (let d = 0; d < c.dh; d++) o[qRow + d]! /= sum;
      lse[bh * c.tq + i] = max + Math.log(sum);
    }
  }
  return { o, lse };
}

interface ErrorScopes {
  pushErrorScope(filter: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/** Runs the f16 forward program on one case: O and (with `withLse`) the log-sum-exps, as the kernel lays them. */
export async function runF16FlashCase(
  program: F16FlashAttentionProgram,
  c: FlashCase,
  inputs: ReturnType<typeof flashCaseInputs>,
): Promise<Float32Array> {
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const got = tf.tidy(() => {
    const tensors = [
      tf.tensor(inputs.q, [c.b, c.h, c.tq, c.dh]),
      tf.tensor(inputs.k, [c.b, c.h, c.tk, c.dh]),
      tf.tensor(inputs.v, [c.b, c.h, c.tk, c.dh]),
      tf.tensor(inputs.slopes, [c.h]),
      tf.tensor(inputs.keyMask, [c.b, c.tk]),
    ];
    const out = backend.runWebGPUProgram(program, tensors, 'float32', [
      { type: 'float32', data: [c.scale] },
      { type: 'int32', data: [c.queryOffset] },
      { type: 'int32', data: [c.causal ? 1 : 0] },
    ]);
    return tf.engine().makeTensorFromTensorInfo(out);
  });
  const values = (await got.data()) as Float32Array;
  got.dispose();
  return values;
}

/** The worst error of a kernel's output against the reference: O relative to max |V|, and the log-sum-exps. */
export function flashErrors(
  c: FlashCase,
  got: Float32Array,
  want: { o: Float64Array; lse: Float64Array },
  v: Float32Array,
): { o: number; lse: number } {
  const scale = Math.max(...v.map(Math.abs));
  let o = 0;
  for (let i = 0; i < want.o.length; i++) o = Math.max(o, Math.abs(got[i]! - want.o[i]!) / scale);
  let lse = 0;
  if (c.withLse) {
    for (let i = 0; i < want.lse.length; i++)
      lse = Math.max(lse, Math.abs(got[want.o.length + i]! - want.lse[i]!));
  }
  return { o: Number.isNaN(o) ? Infinity : o, lse: Number.isNaN(lse) ? Infinity : lse };
}

function describe(c: FlashCase): string {
  return (
    `${c.b}x${c.h}x${c.tq}x${c.tk} dh ${c.dh}${c.causal ? ' causal' : ''}${c.alibi ? ' alibi' : ''}` +
    `${c.maskedKeys ? ' masked' : ''}`
  );
}

/** Every check case with `config`: null when all agree with the reference, else what went wrong. */
async function selfCheck(config: FlashEngineConfig, tolerance: number): Promise<string | null> {
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const gpu = backend.device as unknown as ErrorScopes;
  const { bytes, invocations } = limitsOf(backend);
  let ran = 0;
  for (const [index, c] of FLASH_CHECK_CASES.entries()) {
    const fit = chooseFlashTile(config, c.dh, bytes, invocations);
    // A head dim no tile fits runs on the float32 kernel anyway.
    if (!('tile' in fit)) continue;
    const program = new F16FlashAttentionProgram([c.b, c.h, c.tq, c.dh], c.withLse, config, fit.tile);
    const inputs = flashCaseInputs(c, 31 + 7 * index);
    gpu.pushErrorScope('validation');
    let got: Float32Array;
    try {
      got = await runF16FlashCase(program, c, inputs);
    } catch (err) {
      await gpu.popErrorScope();
      return compilerErrors((err as Error).message);
    }
    const error = await gpu.popErrorScope();
    if (error) return compilerErrors(error.message);
    const errors = flashErrors(c, got, referenceFlashAttention(c, inputs), inputs.v);
    if (!(errors.o <= tolerance && errors.lse <= tolerance)) {
      return (
        `${describe(c)}, tile ${flashTileName(fit.tile)}: error ${errors.o.toExponential(2)} in O, ` +
        `${errors.lse.toExponential(2)} in the log-sum-exps (allowed ${tolerance})`
      );
    }
    ran++;
  }
  return ran === 0 ? 'no check case fits the device' : null;
}

/**
 * Settles f16 flash attention on the active device with the f16 GEMM's `plan` (its engine, matrix shape,
 * subgroup size and spelling), once per device unless options are given.
 */
export async function settleF16FlashAttention(
  plan: F16GemmPlan,
  options: F16FlashSettleOptions = {},
): Promise<F16FlashSettlement> {
  const device = activeDevice();
  if (!device)
    return { config: null, line: `${F16_FLASH_ATTENTION_NAME}: not the webgpu backend; stays f32` };
  const config: FlashEngineConfig = {
    engine: plan.engine,
    shape: plan.shape,
    lanes: plan.lanes,
    layout: plan.layout,
  };
  const key = JSON.stringify(config);
  const known = settlements.get(device);
  if (known && options.tolerance === undefined && known.key === key) return known.settled;
  const { M, N, K } = config.shape;
  const what = `${config.engine} engine, ${M}x${N}x${K} f16, ${layoutName(config.layout)}`;
  const failure = await selfCheck(config, options.tolerance ?? F16_FLASH_TOLERANCE);
  const settled: F16FlashSettlement =
    failure === null
      ? { config, line: `${F16_FLASH_ATTENTION_NAME}: ${what}` }
      : {
          config: null,
          line: `${F16_FLASH_ATTENTION_NAME} (${what}) failed its self-check (${failure}); attention stays f32`,
        };
  settlements.set(device, { key, settled });
  return settled;
}

/** Settles with the GEMM when mixed precision starts (`settleF16Companions`). */
export function registerF16FlashAttentionCompanion(): void {
  registerF16Companion({
    name: F16_FLASH_ATTENTION_NAME,
    settle: async (plan) => (await settleF16FlashAttention(plan)).line,
  });
}
