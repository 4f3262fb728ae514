/**
 * LayerNorm of a few rows on tfjs-wasm in one kernel (`layer-norm.wat`): a decode step normalizes one row per
 * sequence 2 x n_layers + 1 times, and as tfjs ops each is nine kernel calls whose dispatch costs more than the
 * arithmetic. Forward only here; callers give it a gradient (see mpt-model's `layerNorm`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type WasmBackendLike } from '../../wasm/load.js';
import { registerWasmKernels, wasmModuleRuns } from '../../wasm/register.js';

/** `x [rows, d]`, `weight [d]`, optional `bias [d]` -> LayerNorm over the last axis; attr `eps`. */
export const LAYER_NORM_ROWS_KERNEL = 'LayerNormRowsSimd';

interface LayerNormExports {
  layer_norm(x: number, w: number, b: number, y: number, rows: number, d: number, eps: number): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function layerNormWasm(args: KernelArgs): tf.TensorInfo {
  const { x, weight, bias } = args.inputs as Record<'x' | 'weight', tf.TensorInfo> & { bias?: tf.TensorInfo };
  const { eps } = args.attrs as { eps: number };
  const backend = args.backend as WasmBackendLike;
  const d = x.shape[x.shape.length - 1]!;
  for (const [name, t, shape] of [
    ['weight', weight, [d]],
    ['bias', bias, [d]],
  ] as const) {
    if (t && (t.dtype !== 'float32' || t.shape.join() !== shape.join())) {
      throw new RangeError(`layerNormRows: ${name} must be float32 [${d}], got ${t.dtype} [${t.shape}]`);
    }
  }
  if (x.dtype !== 'float32' || x.shape.length !== 2) {
    throw new RangeError(`layerNormRows: x must be a float32 matrix, got ${x.dtype} [${x.shape}]`);
  }
  const kernels = kernelsFor<LayerNormExports>(backend, 'layer-norm');
  if (!kernels)
    throw new Error('layerNormRows needs WebAssembly SIMD and a tfjs-wasm build that exposes its memory');
  const out = backend.makeOutput([...x.shape], 'float32');
  const rows = x.shape[0]!;
  if (rows === 0 || d === 0) return out as tf.TensorInfo;
  // Addresses after the allocation: allocating may grow the memory.
  const at = (t: { dataId: object }) => addressOf(backend, t.dataId);
  kernels.layer_norm(at(x), at(weight), bias ? at(bias) : 0, at(out), rows, d, eps);
  return out as tf.TensorInfo;
}

/** Registers the wasm kernel (idempotent). */
export function registerLayerNormRowsKernel(): void {
  registerWasmKernels({ [LAYER_NORM_ROWS_KERNEL]: layerNormWasm });
}

/** Whether `layerNormRows` runs here: wasm with SIMD and a reachable memory, our wasm kernels not switched off. */
export function layerNormRowsAvailable(): boolean {
  if (!wasmModuleRuns('layer-norm')) return false;
  registerLayerNormRowsKernel();
  return true;
}

/**
 * LayerNorm over the last axis of `x [rows, d]` (biased variance, `eps` inside the rsqrt, as torch), forward
 * only (no gradient is recorded: wrap it in a custom gradient to train through it). Needs
 * `layerNormRowsAvailable()`.
 */
export function layerNormRows(
  x: tf.Tensor2D,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  eps: number,
): tf.Tensor2D {
  registerLayerNormRowsKernel();
  const inputs: tf.NamedTensorMap = bias ? { x, weight, bias } : { x, weight };
  return tf
    .engine()
    .runKernel(LAYER_NORM_ROWS_KERNEL, inputs, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}
