/**
 * Products with more than one batch entry go to our SIMD kernel (`wasm-kernels/`): tfjs-wasm runs those through
 * a scalar loop, XNNPACK only sees batch-1 products.
 *
 * tfjs-wasm's BatchMatMul is also 5-25x slower when an operand is transposed (`transposeA`/`transposeB`, which every
 * matmul gradient uses) than on plain row-major operands. This wraps the wasm kernel so a transposed operand is
 * first materialized (our SIMD transpose, or tfjs's Transpose when our kernels are off or unavailable) and the
 * multiply runs untransposed on XNNPACK. The wasm Transpose kernel itself is also wrapped: the permutations our
 * kernels cover run on them. `A^T B` with an inner size from `SPLIT_K_MIN` up (the LM head's input gradient) is
 * summed over K-chunks of XNNPACK products (`wasm-kernels/split-k-matmul.ts`), which reorders its sums (float
 * rounding differs); every other result is identical. Only wasm is affected. Measured here (512x512x2048): plain 5.1 GFLOP/s, transposeA 0.2,
 * transposeB 0.9, explicit transpose + plain 14.7 (busy machine).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MatmulExports, WasmBackendLike } from '../../wasm/load.js';
import { matMulShape, matmulKernels, simdBatchMatMul, simdHandles, simdSwapLastTwo } from './batch-matmul.js';
import { SPLIT_K_MIN, splitKTransposedA } from './split-k-matmul.js';
import { planTranspose, simdTranspose } from './transpose.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type KernelFunc = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

let patched = false;
/**
 * Which products go to our SIMD kernel: none, those with batch > 1 (default), or every one (for measuring).
 * 'off' also leaves Transpose to tfjs-wasm.
 */
export type WasmSimdMatMulMode = 'off' | 'batched' | 'all';
let simdMode: WasmSimdMatMulMode = 'batched';

/** Chooses which wasm products use our SIMD kernel (see `WasmSimdMatMulMode`); returns the previous mode. */
export function setWasmSimdMatMul(mode: WasmSimdMatMulMode): WasmSimdMatMulMode {
  const previous = simdMode;
  simdMode = mode;
  return previous;
}

/** Whether our wasm SIMD kernels are in use at all (any mode but 'off'); the fused kernels follow this switch. */
export function wasmSimdKernelsOn(): boolean {
  return simdMode !== 'off';
}

/** Installs the wrapper (idempotent). Returns false when the wasm kernels are not registered. */
export function patchWasmTransposedMatMul(): boolean {
  if (patched) return true;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transposeKernel = tf.getKernel('Transpose', 'wasm');
  if (!original || !transposeKernel) return false;
  const multiply = original.kernelFunc as unknown as KernelFunc;
  const transpose = transposeKernel.kernelFunc as unknown as KernelFunc;

  const swapLastTwo = (t: tf.TensorInfo, backend: WasmBackendLike, kernels: MatmulExports | null) => {
    if (kernels) return simdSwapLastTwo(backend, kernels, t);
    const rank = t.shape.length;
    const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
    return transpose({ inputs: { x: t }, backend, attrs: { perm } }) as tf.TensorInfo;
  };

  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    const backend = args.backend as WasmBackendLike;
    const float = a.dtype === 'float32' && b.dtype === 'float32';
    const kernels = simdMode !== 'off' && float ? matmulKernels(backend) : null;
    if (kernels) {
      const shape = matMulShape(a.shape, b.shape, !!transposeA, !!transposeB);
      // Batch 1 stays with XNNPACK by default, which is faster there.
      const batched = Math.max(shape.batchA, shape.batchB) > 1;
      if ((batched || simdMode === 'all') && simdHandles(shape)) {
        return simdBatchMatMul(backend, kernels, a, b, !!transposeA, !!transposeB, shape);
      }
    }
    if (kernels && transposeA && !transposeB) {
      const shape = matMulShape(a.shape, b.shape, true, false);
      // A^T B with a long inner dimension (the LM head's input gradient): XNNPACK on K-chunks.
      if (shape.k >= SPLIT_K_MIN && shape.batchA === 1 && shape.batchB === 1) {
        const plain = (x: tf.TensorInfo, y: tf.TensorInfo) =>
          multiply({
            inputs: { a: x, b: y },
            backend,
            attrs: { transposeA: false, transposeB: false },
          }) as tf.TensorInfo;
        return splitKTransposedA(backend, kernels, plain, a, b, shape, shape.outShape);
      }
      // XNNPACK packs the right operand of every product on a new tensor (~30 ns a value here), a large share
      // of a weight gradient x^T dy whose dy is wider than x: run (dy^T x)^T instead, packing the narrower x.
      // Each output is the same dot product in the same order: the result is identical.
      if (a.shape.length === 2 && b.shape.length === 2 && shape.n > shape.m) {
        return transposedProduct(a, b, backend, kernels);
      }
    }
    if (!transposeA && !transposeB) return multiply(args) as tf.TensorInfo;
    return materializedProduct(a, b, !!transposeA, !!transposeB, backend, kernels, args.attrs);
  };

  /** `a^T b` (both 2D) as `(b^T a)^T`: XNNPACK packs `a`, not `b`. */
  const transposedProduct = (
    a: tf.TensorInfo,
    b: tf.TensorInfo,
    backend: WasmBackendLike,
    kernels: MatmulExports,
  ): tf.TensorInfo => {
    const bT = swapLastTwo(b, backend, kernels);
    let outT: tf.TensorInfo | null = null;
    try {
      outT = multiply({
        inputs: { a: bT, b: a },
        backend,
        attrs: { transposeA: false, transposeB: false },
      }) as tf.TensorInfo;
      return swapLastTwo(outT, backend, kernels);
    } finally {
      backend.disposeData(bT.dataId);
      if (outT) backend.disposeData(outT.dataId);
    }
  };

  /** A product with a transposed operand: the operand is transposed first and XNNPACK multiplies plainly. */
  const materializedProduct = (
    a: tf.TensorInfo,
    b: tf.TensorInfo,
    transposeA: boolean,
    transposeB: boolean,
    backend: WasmBackendLike,
    kernels: MatmulExports | null,
    attrs: tf.NamedAttrMap | undefined,
  ): tf.TensorInfo => {
    const temporaries: tf.TensorInfo[] = [];
    const plainA = transposeA ? swapLastTwo(a, backend, kernels) : a;
    const plainB = transposeB ? swapLastTwo(b, backend, kernels) : b;
    if (transposeA) temporaries.push(plainA);
    if (transposeB) temporaries.push(plainB);
    try {
      return multiply({
        inputs: { a: plainA, b: plainB },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      }) as tf.TensorInfo;
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }
  };

  // Transpose: the permutations our kernels cover (see wasm-kernels/transpose.ts), the rest unchanged.
  const transposeFunc = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const perm = (args.attrs as { perm: number[] }).perm;
    const backend = args.backend as WasmBackendLike;
    const kernels = simdMode !== 'off' && x.dtype === 'float32' ? matmulKernels(backend) : null;
    const plan = kernels && x.shape.every((d) => d > 0) ? planTranspose(x.shape, perm) : null;
    if (kernels && plan)
      return simdTranspose(
        backend,
        kernels,
        x,
        perm.map((axis) => x.shape[axis]!),
        plan,
      );
    return transpose(args) as tf.TensorInfo;
  };

  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({ ...transposeKernel, kernelFunc: transposeFunc as unknown as tf.KernelFunc });
  patched = true;
  return true;
}
