/**
 * `x . W^T` for a few rows of x on tfjs-wasm (`gemv.wat`): decode steps multiply one row per sequence by every
 * weight matrix, where XNNPACK's GEMM reaches a fraction of the memory bandwidth (it multiplies `W x^T` tiled
 * for many columns of x). Our kernel streams each weight row once and keeps the rows of x in L1. Sums run in a
 * different order than XNNPACK's, so results agree to float rounding, not bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type WasmBackendLike } from '../../wasm/load.js';
import { registerWasmKernels, wasmModuleRuns } from '../../wasm/register.js';

/** `x [m, k]`, `w [n, k]` -> `x . w^T [m, n]`, float32. */
export const GEMV_KERNEL = 'GemvSimd';

/**
 * Up to this many rows of x the model's wasm `linear` multiplies on `gemvSimd`; from there XNNPACK, which reuses
 * each loaded weight across many rows, is as fast (our kernel streams the weight once per block of four rows).
 */
export const GEMV_ROWS_MAX = 4;

interface GemvExports {
  gemv(x: number, w: number, y: number, m: number, n: number, k: number): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown };

function gemvWasm(args: KernelArgs): tf.TensorInfo {
  const { x, w } = args.inputs as Record<'x' | 'w', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  if (x.dtype !== 'float32' || w.dtype !== 'float32' || x.shape.length !== 2 || w.shape.length !== 2) {
    throw new RangeError(
      `gemv: x and w must be float32 matrices, got x ${x.dtype} [${x.shape}], w ${w.dtype} [${w.shape}]`,
    );
  }
  const [m, k] = x.shape as [number, number];
  const [n, kw] = w.shape as [number, number];
  if (k !== kw) throw new RangeError(`gemv: x [${x.shape}] has ${k} features, w [${w.shape}] expects ${kw}`);
  const kernels = kernelsFor<GemvExports>(backend, 'gemv');
  if (!kernels) throw new Error('gemv needs WebAssembly SIMD and a tfjs-wasm build that exposes its memory');
  const out = backend.makeOutput([m, n], 'float32');
  if (m === 0 || n === 0) return out as tf.TensorInfo;
  // Addresses after the allocation: allocating may grow the memory.
  kernels.gemv(
    addressOf(backend, x.dataId),
    addressOf(backend, w.dataId),
    addressOf(backend, out.dataId),
    m,
    n,
    k,
  );
  return out as tf.TensorInfo;
}

/** Registers the wasm kernel (idempotent). */
export function registerGemvKernel(): void {
  registerWasmKernels({ [GEMV_KERNEL]: gemvWasm });
}

/** Whether `gemvSimd` runs here: wasm with SIMD and a reachable memory, our wasm kernels not switched off. */
export function gemvKernelsAvailable(): boolean {
  if (!wasmModuleRuns('gemv')) return false;
  registerGemvKernel();
  return true;
}

/**
 * `x [m, k] . w [n, k]^T -> [m, n]` on our kernel (needs `gemvKernelsAvailable()`), with its gradient as tfjs
 * matmuls: `dx = dy w`, `dw = dy^T x`.
 */
export function gemvSimd(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[1]) {
    throw new RangeError(`gemvSimd: x [${x.shape}] and w [${w.shape}] are not [m, k] and [n, k]`);
  }
  registerGemvKernel();
  // Outside tf.grads/variableGrads nothing is taped: skip the custom-gradient scope (a decode step has dozens).
  if (tf.engine().state.gradientDepth === 0) {
    return tf.engine().runKernel(GEMV_KERNEL, { x, w }) as tf.Tensor2D;
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, wIn, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([xIn, wIn]);
    return {
      value: tf.engine().runKernel(GEMV_KERNEL, { x: xIn, w: wIn }) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        return [tf.matMul(g, ws), tf.matMul(g, xs, true, false)];
      },
    };
  });
  return op(x, w) as tf.Tensor2D;
}
