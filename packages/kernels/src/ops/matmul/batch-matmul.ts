/**
 * BatchMatMul on tfjs-wasm tensors with our SIMD kernel (`matmul.wat`). tfjs-backend-wasm 4.22 sends every
 * product with more than one batch entry through a scalar loop (~1 GFLOP/s); this runs them register-blocked.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type MatmulExports, type WasmBackendLike } from '../../wasm/load.js';

export interface MatMulShape {
  batchA: number;
  batchB: number;
  m: number;
  n: number;
  k: number;
  /** Broadcast batch dims followed by `[m, n]`. */
  outShape: number[];
  /** Whether each operand's batch dims are the trailing batch dims of the output (or absent). */
  periodicA: boolean;
  periodicB: boolean;
}

const product = (dims: number[]) => dims.reduce((p, d) => p * d, 1);

/**
 * Whether `dims`, padded with leading 1s, is 1 up to some axis and equals `outer` from there on: then the
 * operand's matrix for output product `i` is number `i % size(dims)`, which is how every tfjs backend indexes.
 */
function periodic(dims: number[], outer: number[]): boolean {
  const padded = [...Array<number>(outer.length - dims.length).fill(1), ...dims];
  const first = padded.findIndex((d) => d !== 1);
  return first < 0 || padded.slice(first).every((d, i) => d === outer[first + i]);
}

/** Shapes of `matMul(a, b, transposeA, transposeB)` as tfjs defines them; throws on mismatched operands. */
export function matMulShape(a: number[], b: number[], transposeA: boolean, transposeB: boolean): MatMulShape {
  const ra = a.length;
  const rb = b.length;
  const m = transposeA ? a[ra - 1]! : a[ra - 2]!;
  const ka = transposeA ? a[ra - 2]! : a[ra - 1]!;
  const kb = transposeB ? b[rb - 1]! : b[rb - 2]!;
  const n = transposeB ? b[rb - 2]! : b[rb - 1]!;
  if (ka !== kb) {
    throw new RangeError(
      `matMul inner sizes differ: a [${a}] (transposeA ${transposeA}) and b [${b}] (transposeB ${transposeB})`,
    );
  }
  const outerA = a.slice(0, -2);
  const outerB = b.slice(0, -2);
  const rank = Math.max(outerA.length, outerB.length);
  const outer: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = outerA[outerA.length - rank + i] ?? 1;
    const db = outerB[outerB.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`matMul batch dims [${outerA}] and [${outerB}] do not broadcast`);
    }
    outer.push(Math.max(da, db));
  }
  return {
    batchA: product(outerA),
    batchB: product(outerB),
    m,
    n,
    k: ka,
    outShape: [...outer, m, n],
    periodicA: periodic(outerA, outer),
    periodicB: periodic(outerB, outer),
  };
}

/**
 * Whether our kernel computes this product as tfjs does: each operand's batch dims are absent, all 1, or the
 * output's trailing batch dims (other broadcasts, e.g. [2, 1] with [1, 3], tfjs-wasm indexes its own way and
 * keeps), and no size is 0.
 */
export function simdHandles(s: MatMulShape): boolean {
  return s.periodicA && s.periodicB && s.m > 0 && s.n > 0 && s.k > 0;
}

/** The matmul kernels for this backend, or null where they cannot run (no SIMD, memory not reachable). */
export function matmulKernels(backend: WasmBackendLike): MatmulExports | null {
  return kernelsFor<MatmulExports>(backend, 'matmul');
}

/** `t` with its last two dims swapped, as a new float32 tensor (4 x 4 tiles transposed in SIMD registers). */
export function simdSwapLastTwo(backend: WasmBackendLike, kernels: MatmulExports, t: TensorInfo): TensorInfo {
  const rank = t.shape.length;
  const rows = t.shape[rank - 2]!;
  const cols = t.shape[rank - 1]!;
  const out = backend.makeOutput([...t.shape.slice(0, -2), cols, rows], 'float32');
  const batch = product(t.shape.slice(0, -2));
  kernels.transpose(addressOf(backend, t.dataId), addressOf(backend, out.dataId), batch, rows, cols);
  return out as TensorInfo;
}

/**
 * `matMul(a, b, transposeA, transposeB)` into a new float32 tensor. A transposed A is read with swapped
 * strides; a transposed B is first transposed into a temporary (the kernel streams rows of B).
 */
export function simdBatchMatMul(
  backend: WasmBackendLike,
  kernels: MatmulExports,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  shape: MatMulShape,
): TensorInfo {
  const { batchA, batchB, m, n, k, outShape } = shape;
  const batch = product(outShape.slice(0, -2));
  let plainB: { dataId: object } = b;
  if (transposeB) plainB = backend.makeOutput([batchB, k, n], 'float32');
  try {
    const out = backend.makeOutput(outShape, 'float32');
    // Addresses are read after every allocation: allocating may grow the memory (offsets stay valid).
    if (transposeB)
      kernels.transpose(addressOf(backend, b.dataId), addressOf(backend, plainB.dataId), batchB, n, k);
    const pa = addressOf(backend, a.dataId);
    const pb = addressOf(backend, plainB.dataId);
    const pc = addressOf(backend, out.dataId);
    const [sa, sb, sc] = [m * k * 4, k * n * 4, m * n * 4];
    const uniform = (batchA === batch || batchA === 1) && (batchB === batch || batchB === 1);
    if (uniform) {
      const strideA = batchA === 1 ? 0 : sa;
      const strideB = batchB === 1 ? 0 : sb;
      kernels.matmul(pa, pb, pc, batch, m, n, k, transposeA ? 1 : 0, strideA, strideB);
    } else {
      // An operand repeats along leading batch dims: product i uses its matrix i % batch.
      for (let i = 0; i < batch; i++) {
        const ai = pa + (i % batchA) * sa;
        const bi = pb + (i % batchB) * sb;
        kernels.matmul(ai, bi, pc + i * sc, 1, m, n, k, transposeA ? 1 : 0, 0, 0);
      }
    }
    return out as TensorInfo;
  } finally {
    if (plainB !== b) backend.disposeData(plainB.dataId);
  }
}
