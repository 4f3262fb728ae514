/**
 * Decoupled AdamW's per-tensor update on tfjs-wasm in one SIMD pass (`adamw.wat`): the parameter, gradient and
 * both moments are read once and the three results written once, where the tfjs-op update makes about 13
 * passes. Same operations in the same order, so the same floats.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type WasmBackendLike } from '../../wasm/load.js';
import { registerWasmKernels, wasmModuleRuns } from '../../wasm/register.js';

/** `p, g, m, v` (float32, one shape) -> `[p', m', v']`; attrs as `AdamWStep`. */
export const ADAMW_UPDATE_KERNEL = 'AdamWUpdateSimd';

/** One step's scalars: `m' = m b1 + g (1 - b1)`, `v' = v b2 + g^2 (1 - b2)`, `p' = p decay - m' / (sqrt(v') / sqrtBc2 + eps) * stepSize`. */
export interface AdamWStep {
  beta1: number;
  beta2: number;
  /** `sqrt(1 - beta2^t)`. */
  sqrtBc2: number;
  eps: number;
  /** `lr / (1 - beta1^t)`. */
  stepSize: number;
  /** The decoupled weight-decay factor (1: none). */
  decay: number;
}

interface AdamWExports {
  adamw(...args: number[]): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function adamwUpdate(args: KernelArgs): tf.TensorInfo[] {
  const { p, g, m, v } = args.inputs as Record<'p' | 'g' | 'm' | 'v', tf.TensorInfo>;
  const s = args.attrs as unknown as AdamWStep;
  const backend = args.backend as WasmBackendLike;
  for (const [name, t] of [
    ['g', g],
    ['m', m],
    ['v', v],
  ] as const) {
    if (t.dtype !== 'float32' || t.shape.join() !== p.shape.join()) {
      throw new RangeError(`adamw: ${name} must be float32 [${p.shape}], got ${t.dtype} [${t.shape}]`);
    }
  }
  const kernels = kernelsFor<AdamWExports>(backend, 'adamw');
  if (!kernels) throw new Error('the AdamW kernel needs WebAssembly SIMD and a reachable wasm memory');
  const outs = [p, m, v].map(() => backend.makeOutput(p.shape, 'float32') as tf.TensorInfo);
  const size = p.shape.reduce((a, d) => a * d, 1);
  // Addresses after the allocations: allocating may grow the memory.
  const at = (t: { dataId: object }) => addressOf(backend, t.dataId);
  kernels.adamw(
    at(p),
    at(g),
    at(m),
    at(v),
    ...outs.map(at),
    size,
    s.beta1,
    1 - s.beta1,
    s.beta2,
    1 - s.beta2,
    s.sqrtBc2,
    s.eps,
    s.stepSize,
    s.decay,
  );
  return outs;
}

/** Whether `adamwUpdateSimd` runs here: wasm with SIMD and a reachable memory, our wasm kernels not off. */
export function adamwKernelAvailable(): boolean {
  if (!wasmModuleRuns('adamw')) return false;
  registerWasmKernels({ [ADAMW_UPDATE_KERNEL]: adamwUpdate });
  return true;
}

/** `[p', m', v']` for float32 `p, g, m, v` of one shape (needs `adamwKernelAvailable()`). */
export function adamwUpdateSimd(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  step: AdamWStep,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf
    .engine()
    .runKernel(ADAMW_UPDATE_KERNEL, { p, g, m, v }, step as unknown as tf.NamedAttrMap) as unknown as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ];
}
