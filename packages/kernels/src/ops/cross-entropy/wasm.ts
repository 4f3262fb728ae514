/**
 * Softmax cross-entropy over the columns of `z [classes, positions]` on tfjs-wasm tensors (`cross-entropy.wat`):
 * the layout in which the LM head's logits come out of `W h^T`, so they need no transpose. One kernel gives each
 * column's max, sum of exponentials and target logit (the loss follows from those `3 x positions` numbers); the
 * other writes the gradient `(softmax - onehot) * scale` in one pass, with no softmax tensor in between.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type WasmBackendLike } from '../../wasm/load.js';
import { registerWasmKernels, wasmModuleRuns } from '../../wasm/register.js';

/** `z [rows, cols]`, `pick [cols]` int32 -> `[3, cols]`: max, sum of exp(z - max), `z[pick[c], c]` (0 if none). */
export const CROSS_ENTROPY_COLUMN_STATS_KERNEL = 'CrossEntropyColumnStats';
/** `z [rows, cols]`, `lse`, `scale` `[cols]`, `pick [cols]` int32 -> `(exp(z - lse) - onehot(pick)) * scale`. */
export const CROSS_ENTROPY_COLUMN_GRAD_KERNEL = 'CrossEntropyColumnGrad';

interface CrossEntropyExports {
  col_stats(z: number, rows: number, cols: number, pick: number, stats: number): void;
  col_grad(
    z: number,
    out: number,
    rows: number,
    cols: number,
    lse: number,
    scale: number,
    pick: number,
  ): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown };

function exportsFor(backend: WasmBackendLike): CrossEntropyExports {
  const kernels = kernelsFor<CrossEntropyExports>(backend, 'cross-entropy');
  if (!kernels)
    throw new Error('the cross-entropy kernels need WebAssembly SIMD and a reachable wasm memory');
  return kernels;
}

function checkFloat(name: string, t: tf.TensorInfo, shape: number[]): void {
  if (t.dtype !== 'float32' || t.shape.join() !== shape.join()) {
    throw new RangeError(`${name} must be float32 [${shape}], got ${t.dtype} [${t.shape}]`);
  }
}

function columnStats(args: KernelArgs): tf.TensorInfo {
  const { z, pick } = args.inputs as Record<'z' | 'pick', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  const [rows, cols] = z.shape as [number, number];
  checkFloat('z', z, [rows, cols]);
  if (pick.dtype !== 'int32' || pick.shape.join() !== `${cols}`)
    throw new RangeError(`pick must be int32 [${cols}]`);
  const kernels = exportsFor(backend);
  const out = backend.makeOutput([3, cols], 'float32');
  // Addresses after the allocation: allocating may grow the memory.
  const at = (t: { dataId: object }) => addressOf(backend, t.dataId);
  kernels.col_stats(at(z), rows, cols, at(pick), at(out));
  return out as tf.TensorInfo;
}

function columnGrad(args: KernelArgs): tf.TensorInfo {
  const { z, lse, scale, pick } = args.inputs as Record<'z' | 'lse' | 'scale' | 'pick', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  const [rows, cols] = z.shape as [number, number];
  checkFloat('z', z, [rows, cols]);
  checkFloat('lse', lse, [cols]);
  checkFloat('scale', scale, [cols]);
  if (pick.dtype !== 'int32' || pick.shape.join() !== `${cols}`)
    throw new RangeError(`pick must be int32 [${cols}]`);
  const kernels = exportsFor(backend);
  const out = backend.makeOutput([rows, cols], 'float32');
  const at = (t: { dataId: object }) => addressOf(backend, t.dataId);
  kernels.col_grad(at(z), at(out), rows, cols, at(lse), at(scale), at(pick));
  return out as tf.TensorInfo;
}

/** Registers both kernels for the wasm backend (idempotent). */
export function registerCrossEntropyColumnKernels(): void {
  registerWasmKernels({
    [CROSS_ENTROPY_COLUMN_STATS_KERNEL]: columnStats,
    [CROSS_ENTROPY_COLUMN_GRAD_KERNEL]: columnGrad,
  });
}

/**
 * Whether the column cross-entropy kernels run here: the active backend is wasm with SIMD and a reachable memory,
 * and our wasm kernels are not switched off (`setWasmSimdMatMul('off')`).
 */
export function crossEntropyColumnKernelsAvailable(): boolean {
  if (!wasmModuleRuns('cross-entropy')) return false;
  registerCrossEntropyColumnKernels();
  return true;
}

/** Per column of `z [rows, cols]`: `[3, cols]` max, sum of exp(z - max), `z[pick[c], c]` (0 where pick < 0). */
export function crossEntropyColumnStats(z: tf.Tensor2D, pick: tf.Tensor1D): tf.Tensor2D {
  return tf.engine().runKernel(CROSS_ENTROPY_COLUMN_STATS_KERNEL, { z, pick }) as tf.Tensor2D;
}

/** `(exp(z - lse) - onehot(pick)) * scale` per column of `z [rows, cols]`, as a new tensor. */
export function crossEntropyColumnGrad(
  z: tf.Tensor2D,
  lse: tf.Tensor1D,
  scale: tf.Tensor1D,
  pick: tf.Tensor1D,
): tf.Tensor2D {
  return tf.engine().runKernel(CROSS_ENTROPY_COLUMN_GRAD_KERNEL, { z, lse, scale, pick }) as tf.Tensor2D;
}
