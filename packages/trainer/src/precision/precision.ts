/**
 * `precision` as llm-foundry spells it. `fp32` trains exactly as before. `amp_fp16` runs the float32 products of
 * a step (forward `x W^T`, backward `dY W` and `dY^T X`, the tied LM head) on the f16 GEMM of the webgpu backend,
 * with f32 master weights, LayerNorm, softmax statistics, loss and optimizer, and dynamic loss scaling; kernels
 * registered as f16 companions (flash attention) settle with the GEMM and run in f16 where their self-check passes.
 * `amp_bf16` is the same (WGSL has no bf16). Where no f16 GEMM exists (another backend, a device without f16
 * matrices, a failed self-check, `MPTJS_WEBGPU_F16=0`) the run says so in one line and trains in fp32.
 */
import { setF16Gemm, settleF16Companions, settleF16Gemm } from '@mptjs/kernels';
import type { TrainConfig } from '../config/schema.js';
import { DynamicLossScaler, type LossScalerOptions } from './loss-scaler.js';

export type Precision = TrainConfig['precision'];

export interface PrecisionPlan {
  precision: Precision;
  /** Whether GEMMs run in f16 (and the loss is scaled). */
  f16: boolean;
  scaler: DynamicLossScaler | null;
  /** The one-line notice the run prints. */
  notice: string;
  /** One line per kernel that runs in f16 beside the GEMMs (flash attention): what runs, or why it stays f32. */
  companions: string[];
}

export async function setupPrecision(
  precision: Precision,
  backendName: string,
  scalerOptions?: LossScalerOptions,
): Promise<PrecisionPlan> {
  setF16Gemm(false);
  if (precision === 'fp32')
    return { precision, f16: false, scaler: null, notice: '[mptjs] precision fp32', companions: [] };
  const fp32 = (why: string): PrecisionPlan => ({
    precision,
    f16: false,
    scaler: null,
    notice: `[mptjs] precision ${precision}: ${why}; training in fp32`,
    companions: [],
  });
  if (precision === 'amp_fp8') return fp32('WebGPU has no fp8 arithmetic');
  if (backendName !== 'webgpu') return fp32(`f16 GEMMs run on webgpu only, not ${backendName}`);
  const settled = await settleF16Gemm();
  if (!settled.plan || !setF16Gemm(true)) return fp32(`no f16 GEMM (${settled.reason})`);
  const companions = (await settleF16Companions()).map((line) => `[mptjs] ${line}`);
  const bf16 = precision === 'amp_bf16' ? ' (WGSL has no bf16: f16 with loss scaling instead)' : '';
  return {
    precision,
    f16: true,
    scaler: new DynamicLossScaler(scalerOptions),
    notice: `[mptjs] precision ${precision}${bf16}: f16 GEMMs (${settled.reason}), dynamic loss scaling`,
    companions,
  };
}

/** Turns f16 GEMMs off again (at the end of a run, so later work in the process is fp32). */
export function endPrecision(plan: PrecisionPlan): void {
  if (plan.f16) setF16Gemm(false);
}
