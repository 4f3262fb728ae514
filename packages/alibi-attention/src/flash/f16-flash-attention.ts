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
  type WebGpuBackendLike,
} from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionLayout } from './blocked-program.js';
import {
  F16FlashAttentionDkDvProgram,
  F16FlashAttentionDqProgram,
} from './f16-flash-attention-backward-program.js';
import {
  chooseFlashTile,
  F16FlashAttentionProgram,
  type FlashEngineConfig,
  flashTileName,
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
import { FlashAttentionRowStatsProgram } from './flash-attention-backward-program.js';

export const F16_FLASH_ATTENTION_NAME = 'f16 flash attention';

/** The largest error the self-check allows by default: of O relative to max |V|, and of the log-sum-exps. */
export const F16_FLASH_TOLERANCE = 2e-3;

/** The largest error the backward's check allows by default, relative to each gradient's largest entry. */
export const F16_FLASH_BACKWARD_TOLERANCE = 5e-3;

export interface F16FlashSettlement {
  config: FlashEngineConfig | null;
  /** Whether the backward runs in f16 too. */
  backward: boolean;
  /** One line: what runs, or why attention stays f32. */
  line: string;
}

export interface F16FlashSettleOptions {
  /** The error allowed (see `F16_FLASH_TOLERANCE`); a smaller one makes the check stricter. */
  tolerance?: number;
  /** The backward's (see `F16_FLASH_BACKWARD_TOLERANCE`). */
  backwardTolerance?: number;
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
 * The f16 forward program for Q of `queryShape` (in `layout`) on `backend` when f16 attention is active and a
 * tile fits the head dim on the device, else null (the float32 kernel runs).
 */
export function f16FlashAttentionProgram(
  backend: WebGpuBackendLike,
  queryShape: readonly number[],
  withLse: boolean,
  layout: AttentionLayout = 'heads',
): F16FlashAttentionProgram | null {
  const config = f16FlashAttentionConfig();
  if (!config) return null;
  const { bytes, invocations } = limitsOf(backend);
  const fit = chooseFlashTile(config, queryShape[3]!, bytes, invocations);
  return 'tile' in fit ? new F16FlashAttentionProgram(queryShape, withLse, config, fit.tile, layout) : null;
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
    const out = backend.runWebGPUProgram(program, tensors, 'float32', caseUniforms(c));
    return tf.engine().makeTensorFromTensorInfo(out);
  });
  const values = (await got.data()) as Float32Array;
  got.dispose();
  return values;
}

function describe(c: FlashCase): string {
  return (
    `${c.b}x${c.h}x${c.tq}x${c.tk} dh ${c.dh}${c.causal ? ' causal' : ''}${c.alibi ? ' alibi' : ''}` +
    `${c.maskedKeys ? ' masked' : ''}`
  );
}

/** The f16 backward's programs for these shapes (in `layout`) where tiles fit, else null. */
function backwardPrograms(
  config: FlashEngineConfig,
  backend: WebGpuBackendLike,
  queryShape: readonly number[],
  keyShape: readonly number[],
  layout: AttentionLayout = 'heads',
): { dq: F16FlashAttentionDqProgram; dkdv: F16FlashAttentionDkDvProgram } | null {
  const { bytes, invocations } = limitsOf(backend);
  const dh = queryShape[3]!;
  const dq = chooseFlashTile(config, dh, bytes, invocations, 'dq');
  const dkdv = chooseFlashTile(config, dh, bytes, invocations, 'dkdv');
  if (!('tile' in dq) || !('tile' in dkdv)) return null;
  return {
    dq: new F16FlashAttentionDqProgram(queryShape, config, dq.tile, layout),
    dkdv: new F16FlashAttentionDkDvProgram(keyShape, config, dkdv.tile, layout),
  };
}

/**
 * The f16 backward's dQ and dK/dV programs for `backend` while f16 attention is active, its backward passed the
 * check and tiles fit the head dim, else null (the float32 backward runs). Shapes are in `layout`.
 */
export function f16FlashAttentionBackwardPrograms(
  backend: WebGpuBackendLike,
  queryShape: readonly number[],
  keyShape: readonly number[],
  layout: AttentionLayout = 'heads',
) {
  const device = activeDevice();
  const config = f16FlashAttentionConfig();
  if (!device || !config || !settlements.get(device)?.settled.backward) return null;
  return backwardPrograms(config, backend, queryShape, keyShape, layout);
}

/**
 * Runs the f16 backward on one case (the f16 forward with log-sum-exps, the row statistics, dQ and dK/dV) with
 * `forward`'s tile: dQ, dK and dV as laid out like Q, K and V; null where no backward tile fits.
 */
export async function runF16FlashBackwardCase(
  config: FlashEngineConfig,
  forward: F16FlashAttentionProgram,
  c: FlashCase,
  inputs: ReturnType<typeof flashCaseInputs>,
  dyValues: Float32Array,
): Promise<{ dq: Float32Array; dk: Float32Array; dv: Float32Array } | null> {
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const qShape = [c.b, c.h, c.tq, c.dh];
  const kShape = [c.b, c.h, c.tk, c.dh];
  const programs = backwardPrograms(config, backend, qShape, kShape);
  if (!programs) return null;
  const uniforms = caseUniforms(c);
  const [dq, dkdv] = tf.tidy(() => {
    const q = tf.tensor(inputs.q, qShape);
    const k = tf.tensor(inputs.k, kShape);
    const v = tf.tensor(inputs.v, kShape);
    const dy = tf.tensor(dyValues, qShape);
    const slopes = tf.tensor(inputs.slopes, [c.h]);
    const keyMask = tf.tensor(inputs.keyMask, [c.b, c.tk]);
    const out = backend.runWebGPUProgram(forward, [q, k, v, slopes, keyMask], 'float32', uniforms);
    const stats = backend.runWebGPUProgram(new FlashAttentionRowStatsProgram(qShape), [out, dy], 'float32');
    const all = [q, k, v, dy, stats, slopes, keyMask];
    const dqInfo = backend.runWebGPUProgram(programs.dq, all, 'float32', uniforms);
    const dkdvInfo = backend.runWebGPUProgram(programs.dkdv, all, 'float32', uniforms);
    backend.disposeData(out.dataId);
    backend.disposeData(stats.dataId);
    return [dqInfo, dkdvInfo].map((t) => tf.engine().makeTensorFromTensorInfo(t));
  });
  const dqValues = (await dq!.data()) as Float32Array;
  const dkdvValues = (await dkdv!.data()) as Float32Array;
  tf.dispose([dq!, dkdv!]);
  const size = c.b * c.h * c.tk * c.dh;
  return { dq: dqValues, dk: dkdvValues.slice(0, size), dv: dkdvValues.slice(size) };
}

function caseUniforms(c: FlashCase) {
  return [
    { type: 'float32', data: [c.scale] },
    { type: 'int32', data: [c.queryOffset] },
    { type: 'int32', data: [c.causal ? 1 : 0] },
  ];
}

/** Runs `check` inside a validation error scope: its result, or the compiler's errors. */
async function scoped<T>(run: () => Promise<T>): Promise<{ value: T } | { error: string }> {
  const gpu = (tf.backend() as unknown as WebGpuBackendLike).device as unknown as ErrorScopes;
  gpu.pushErrorScope('validation');
  let value: T;
  try {
    value = await run();
  } catch (err) {
    await gpu.popErrorScope();
    return { error: compilerErrors((err as Error).message) };
  }
  const error = await gpu.popErrorScope();
  return error ? { error: compilerErrors(error.message) } : { value };
}

/**
 * Every check case with `config`: for the forward and for the backward, null when all agree with the float64
 * reference, else what went wrong (the backward is not checked when the forward fails).
 */
async function selfCheck(
  config: FlashEngineConfig,
  tolerance: number,
  backwardTolerance: number,
): Promise<{ forward: string | null; backward: string | null }> {
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const { bytes, invocations } = limitsOf(backend);
  let ran = 0;
  let backward: string | null = null;
  let backwardRan = 0;
  for (const [index, c] of FLASH_CHECK_CASES.entries()) {
    const fit = chooseFlashTile(config, c.dh, bytes, invocations);
    // A head dim no tile fits runs on the float32 kernel anyway.
    if (!('tile' in fit)) continue;
    const program = new F16FlashAttentionProgram([c.b, c.h, c.tq, c.dh], c.withLse, config, fit.tile);
    const inputs = flashCaseInputs(c, 31 + 7 * index);
    const got = await scoped(() => runF16FlashCase(program, c, inputs));
    if ('error' in got) return { forward: got.error, backward: null };
    const errors = flashErrors(c, got.value, referenceFlashAttention(c, inputs), inputs.v);
    if (!(errors.o <= tolerance && errors.lse <= tolerance)) {
      const forward =
        `${describe(c)}, tile ${flashTileName(fit.tile)}: error ${errors.o.toExponential(2)} in O, ` +
        `${errors.lse.toExponential(2)} in the log-sum-exps (allowed ${tolerance})`;
      return { forward, backward: null };
    }
    ran++;
    // The backward is checked on the training forward's cases (those that keep log-sum-exps).
    if (backward !== null || !c.withLse) continue;
    const lseProgram = new F16FlashAttentionProgram([c.b, c.h, c.tq, c.dh], true, config, fit.tile);
    const dy = flashCaseOutputGrad(c, 53 + 7 * index);
    const grads = await scoped(() => runF16FlashBackwardCase(config, lseProgram, c, inputs, dy));
    if ('error' in grads) {
      backward = grads.error;
      continue;
    }
    if (grads.value === null) continue;
    backwardRan++;
    const want = referenceFlashAttentionGrads(c, inputs, dy);
    const worst = (['dq', 'dk', 'dv'] as const).map((name) => ({
      name,
      error: relativeMaxError(grads.value![name], want[name]),
    }));
    const bad = worst.find((w) => !(w.error <= backwardTolerance));
    if (bad) {
      backward =
        `${describe(c)}: error ${bad.error.toExponential(2)} of the largest ${bad.name} ` +
        `(allowed ${backwardTolerance})`;
    }
  }
  if (ran === 0) return { forward: 'no check case fits the device', backward: null };
  return {
    forward: null,
    backward: backward ?? (backwardRan === 0 ? 'no backward tile fits the device' : null),
  };
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
    return {
      config: null,
      backward: false,
      line: `${F16_FLASH_ATTENTION_NAME}: not the webgpu backend; stays f32`,
    };
  const config: FlashEngineConfig = {
    engine: plan.engine,
    shape: plan.shape,
    lanes: plan.lanes,
    layout: plan.layout,
  };
  const key = JSON.stringify(config);
  const known = settlements.get(device);
  const defaults = options.tolerance === undefined && options.backwardTolerance === undefined;
  if (known && defaults && known.key === key) return known.settled;
  const { M, N, K } = config.shape;
  const what = `${config.engine} engine, ${M}x${N}x${K} f16, ${layoutName(config.layout)}`;
  const failure = await selfCheck(
    config,
    options.tolerance ?? F16_FLASH_TOLERANCE,
    options.backwardTolerance ?? F16_FLASH_BACKWARD_TOLERANCE,
  );
  let settled: F16FlashSettlement;
  if (failure.forward !== null) {
    settled = {
      config: null,
      backward: false,
      line: `${F16_FLASH_ATTENTION_NAME} (${what}) failed its self-check (${failure.forward}); attention stays f32`,
    };
  } else if (failure.backward !== null) {
    settled = {
      config,
      backward: false,
      line:
        `${F16_FLASH_ATTENTION_NAME}: ${what}, forward; the backward failed its self-check ` +
        `(${failure.backward}) and stays f32`,
    };
  } else {
    settled = { config, backward: true, line: `${F16_FLASH_ATTENTION_NAME}: ${what}, forward and backward` };
  }
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
