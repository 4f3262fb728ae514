/**
 * Weight-only int8 linear layers for inference on tfjs-wasm: weights quantized per output row (symmetric, scale
 * = max|w| / 127), multiplied by our SIMD kernel (`int8-matmul.wat`) straight from the wasm heap. A decode step
 * reads every weight once, so one byte per weight instead of four is its win. Activations are not quantized to
 * int8: below `INT8_FLOAT_MATMUL_ROWS` rows each row of x is rounded to int16 with its own scale (`max|x| /
 * 32767`: at most 2^-16 of the row's largest value, far below the weights' rounding) so that the products sum in
 * integer SIMD, three times the weights per second of widening each weight to float32; from there the weight is
 * widened once and the activations stay float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addressOf, kernelsFor, type WasmBackendLike } from '../../wasm/load.js';
import { registerWasmKernels } from '../../wasm/register.js';
import { onWasmThreadsChange, wasmThreads } from '../../wasm/threads.js';
import { INT8_THREAD_MIN_WEIGHTS, Int8ThreadPool } from './thread-pool.js';
import { INT8_MATMUL_W8A8_KERNEL, int8MatrixPlan, registerInt8WebGpuKernels } from './webgpu.js';
import { INT8_ROWS_MAX } from './webgpu-programs.js';

/** The tfjs kernel name of `int8Linear` (registered for the wasm backend only). */
export const INT8_LINEAR_KERNEL = 'Int8Linear';

/** A quantized `[n, k]` weight on the host: row `r` is `packed[r * rowBytes, r * rowBytes + k)` times `scales[r]`. */
export interface QuantizedInt8 {
  /** Output features (rows). */
  n: number;
  /** Input features (columns). */
  k: number;
  /** Bytes per packed row: `k` rounded up to a multiple of 16 (zeros after `k`), so SIMD loads stay in the row. */
  rowBytes: number;
  packed: Int8Array;
  scales: Float32Array;
}

/** A quantized weight uploaded as tensors: the bytes as an int32 tensor (tfjs has no int8 dtype) and the scales. */
export interface Int8Weight {
  n: number;
  k: number;
  rowBytes: number;
  /** `[n * rowBytes / 4]` int32 holding the packed int8 rows. */
  packed: tf.Tensor1D;
  /** `[n]` float32. */
  scales: tf.Tensor1D;
  /**
   * `int8`: on webgpu, rows of x beyond the few of a decode step are quantized to int8 too (per row) and
   * multiplied on the GPU's int8 matrix units where the device has them (W8A8); elsewhere, and by default,
   * activations are not quantized to int8 (see the module comment for wasm's int16 rounding of decode rows).
   */
  activations?: 'float32' | 'int8';
}

interface Int8MatmulExports {
  int8_matvec(
    x: number,
    w: number,
    s: number,
    y: number,
    m: number,
    n: number,
    k: number,
    kp: number,
    scratch: number,
  ): void;
  int8_dequantize(w: number, s: number, out: number, n: number, k: number, kp: number): void;
  int8_scratch_bytes(m: number, kp: number): number;
}

/** The dequantize kernel's name: float32 `[n, k]` rows from an int8 weight, for the many-rows path. */
export const INT8_DEQUANTIZE_KERNEL = 'Int8Dequantize';

/**
 * From this many rows of x up, `int8Linear` widens the weight to float32 once and multiplies on XNNPACK, which
 * beats the int8 kernel there (prefill); below it the int8 kernel reads a quarter of the bytes (decode).
 */
export const INT8_FLOAT_MATMUL_ROWS = 16;

/**
 * Quantizes a row-major `[n, k]` float32 weight (torch's `[out, in]`) per row: `scale = max|w| / 127`,
 * `q = round(w / scale)` in [-127, 127], so `|w - q * scale| <= scale / 2`. An all-zero row gets scale 0.
 */
export function quantizeInt8(weight: Float32Array, shape: readonly [number, number]): QuantizedInt8 {
  const [n, k] = shape;
  if (!Number.isInteger(n) || !Number.isInteger(k) || n <= 0 || k <= 0 || weight.length !== n * k) {
    throw new RangeError(`quantizeInt8: ${weight.length} values do not fill a [${n}, ${k}] matrix`);
  }
  const rowBytes = Math.ceil(k / 16) * 16;
  const packed = new Int8Array(n * rowBytes);
  const scales = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const row = weight.subarray(r * k, (r + 1) * k);
    let max = 0;
    for (let c = 0; c < k; c++) {
      const a = Math.abs(row[c]!);
      if (a > max) max = a;
      else if (!(a <= max)) throw new RangeError(`quantizeInt8: weight [${r}, ${c}] is ${row[c]}`);
    }
    // The stored scale is float32: quantize against it so the bound holds for the value the kernel uses.
    let scale = Math.fround(max / 127);
    // Rounded down, 127 steps would fall short of max and clamping would cost more than half a step.
    if (scale * 127 < max) scale = nextFloat32(scale);
    scales[r] = scale;
    if (scale === 0) continue;
    const base = r * rowBytes;
    for (let c = 0; c < k; c++) {
      packed[base + c] = Math.max(-127, Math.min(127, Math.round(row[c]! / scale)));
    }
  }
  return { n, k, rowBytes, packed, scales };
}

const bits = new Float32Array(1);
const bitsU32 = new Uint32Array(bits.buffer);

/** The next float32 above a positive float32. */
function nextFloat32(x: number): number {
  bits[0] = x;
  bitsU32[0]! += 1;
  return bits[0]!;
}

/** `q * scale` as a row-major `[n, k]` float32 matrix (what `int8Linear` multiplies by). */
export function dequantizeInt8(q: QuantizedInt8): Float32Array {
  const out = new Float32Array(q.n * q.k);
  for (let r = 0; r < q.n; r++) {
    const s = q.scales[r]!;
    for (let c = 0; c < q.k; c++) out[r * q.k + c] = q.packed[r * q.rowBytes + c]! * s;
  }
  return out;
}

/** Bytes a quantized `[n, k]` weight occupies as tensors (packed rows plus scales). */
export function int8WeightBytes(n: number, k: number): number {
  return n * Math.ceil(k / 16) * 16 + 4 * n;
}

/** Uploads a quantized weight to the active backend; dispose with `disposeInt8Weight`. */
export function uploadInt8(q: QuantizedInt8): Int8Weight {
  const words = new Int32Array(q.packed.buffer, q.packed.byteOffset, q.packed.length / 4);
  return {
    n: q.n,
    k: q.k,
    rowBytes: q.rowBytes,
    packed: tf.tensor1d(words, 'int32'),
    scales: tf.tensor1d(q.scales, 'float32'),
  };
}

export function disposeInt8Weight(w: Int8Weight): void {
  w.packed.dispose();
  w.scales.dispose();
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function int8Kernels(backend: WasmBackendLike): Int8MatmulExports {
  const kernels = kernelsFor<Int8MatmulExports>(backend, 'int8-matmul');
  if (!kernels) {
    throw new Error('int8Linear needs WebAssembly SIMD and a tfjs-wasm build that exposes its memory');
  }
  return kernels;
}

function int8DequantizeWasm(args: KernelArgs) {
  const { packed, scales } = args.inputs as Record<'packed' | 'scales', tf.TensorInfo>;
  const { n, k, rowBytes } = args.attrs as { n: number; k: number; rowBytes: number };
  const backend = args.backend as WasmBackendLike;
  const kernels = int8Kernels(backend);
  const out = backend.makeOutput([n, k], 'float32');
  kernels.int8_dequantize(
    addressOf(backend, packed.dataId),
    addressOf(backend, scales.dataId),
    addressOf(backend, out.dataId),
    n,
    k,
    rowBytes,
  );
  return out as tf.TensorInfo;
}

let pool: Int8ThreadPool | null = null;
/** Set once a pool could not be made here (no shared-memory SIMD module): stay on one thread. */
let poolUnavailable = false;
onWasmThreadsChange(disposeInt8ThreadPool);

/**
 * The thread pool that splits int8 matrix-vector products when `wasmThreads()` is above 1 (started on first
 * use, its workers unref'd), or null on one thread or where threads cannot run.
 */
export function int8ThreadPool(): Int8ThreadPool | null {
  const threads = wasmThreads();
  if (threads < 2 || poolUnavailable) return null;
  if (!pool) {
    try {
      pool = new Int8ThreadPool({ threads });
    } catch {
      poolUnavailable = true; // no shared-memory SIMD module here: today's single-thread path, no error
      return null;
    }
  }
  return pool;
}

/** Terminates the int8 worker threads and frees their shared memory; the next product starts a new pool. */
export function disposeInt8ThreadPool(): void {
  pool?.dispose();
  pool = null;
}

function int8LinearWasm(args: KernelArgs) {
  const { x, packed, scales } = args.inputs as Record<'x' | 'packed' | 'scales', tf.TensorInfo>;
  const { n, k, rowBytes } = args.attrs as { n: number; k: number; rowBytes: number };
  const backend = args.backend as WasmBackendLike;
  const m = x.shape[0]!;
  const out = backend.makeOutput([m, n], 'float32');
  try {
    int8MatvecInto(backend, x, packed, scales, out, { m, n, k, rowBytes });
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  }
  return out as tf.TensorInfo;
}

/** A tensor's data on the tfjs-wasm backend, named by its data id. */
type DataRef = { dataId: object };

/**
 * `out [m, n] = x [m, k] . (packed * scales)^T` on the wasm heap, into `out`'s existing data: split over the
 * thread pool when the weight is large enough, else on the calling thread.
 */
function int8MatvecInto(
  backend: WasmBackendLike,
  x: DataRef,
  packed: DataRef,
  scales: DataRef,
  out: DataRef,
  dims: { m: number; n: number; k: number; rowBytes: number },
): void {
  const { m, n, k, rowBytes } = dims;
  if (n >= 2 && n * rowBytes >= INT8_THREAD_MIN_WEIGHTS) {
    const threaded = int8ThreadPool();
    if (threaded) {
      try {
        threaded.matvec(backend, x, packed, scales, out, { m, n, k, kp: rowBytes });
      } catch (err) {
        // A pool whose worker died is dropped after this error; the next product starts a new one.
        if (threaded.failure && pool === threaded) disposeInt8ThreadPool();
        throw err;
      }
      return;
    }
  }
  const kernels = int8Kernels(backend);
  // The kernel's scratch: the rows of x rounded to int16 (kp each, padded to a multiple of four), their scales,
  // 16 bytes of sums.
  const scratch = backend.makeOutput([Math.ceil(kernels.int8_scratch_bytes(m, rowBytes) / 4)], 'float32');
  try {
    // Addresses after the allocations: allocating may grow the memory.
    kernels.int8_matvec(
      addressOf(backend, x.dataId),
      addressOf(backend, packed.dataId),
      addressOf(backend, scales.dataId),
      addressOf(backend, out.dataId),
      m,
      n,
      k,
      rowBytes,
      addressOf(backend, scratch.dataId),
    );
  } finally {
    backend.disposeData(scratch.dataId);
  }
}

/**
 * `out = x . (Wq * scale)^T` for `m` rows of `x` (`[m, w.k]`, m below `INT8_FLOAT_MATMUL_ROWS`) into `out`'s
 * data (`[m, w.n]`), on tfjs-wasm tensors without a tfjs op: for a caller that chains heap kernels (a decode
 * step). The same products, bit for bit, as `int8Linear`.
 */
export function int8LinearInto(
  backend: WasmBackendLike,
  x: DataRef,
  w: Int8Weight,
  out: DataRef,
  m: number,
): void {
  if (!Number.isInteger(m) || m < 1 || m >= INT8_FLOAT_MATMUL_ROWS) {
    throw new RangeError(`int8LinearInto: rows must be from 1 to ${INT8_FLOAT_MATMUL_ROWS - 1}, got ${m}`);
  }
  int8MatvecInto(backend, x, w.packed, w.scales, out, { m, n: w.n, k: w.k, rowBytes: w.rowBytes });
}

/** Registers the wasm kernel once (idempotent). */
export function registerInt8LinearKernel(): void {
  registerWasmKernels({ [INT8_LINEAR_KERNEL]: int8LinearWasm, [INT8_DEQUANTIZE_KERNEL]: int8DequantizeWasm });
}

/**
 * `x @ (Wq * scale)^T` for `x` `[..., k]` -> `[..., n]` on the wasm or webgpu backend. Inference only: there
 * is no gradient. Other backends throw.
 */
export function int8Linear(x: tf.Tensor, w: Int8Weight): tf.Tensor {
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'webgpu') {
    throw new Error(
      `int8Linear runs on the wasm and webgpu backends (active backend: ${backend}); use float32 weights`,
    );
  }
  const k = x.shape[x.rank - 1];
  if (k !== w.k)
    throw new RangeError(`int8Linear: x [${x.shape}] has ${k} features, the weight expects ${w.k}`);
  if (backend === 'webgpu') return int8LinearWebGpu(x, w);
  registerInt8LinearKernel();
  return tf.tidy(() => {
    const flat = tf.reshape(x.dtype === 'float32' ? x : tf.cast(x, 'float32'), [-1, w.k]);
    const attrs = { n: w.n, k: w.k, rowBytes: w.rowBytes } as unknown as tf.NamedAttrMap;
    const weights = { packed: w.packed, scales: w.scales };
    let y: tf.Tensor;
    if (flat.shape[0]! >= INT8_FLOAT_MATMUL_ROWS) {
      const wide = tf.engine().runKernel(INT8_DEQUANTIZE_KERNEL, weights, attrs) as tf.Tensor;
      // (W x^T)^T keeps the large operand untransposed, as the float `linear` does on wasm.
      y = tf.transpose(tf.matMul(wide, tf.transpose(flat)));
    } else {
      y = tf.engine().runKernel(INT8_LINEAR_KERNEL, { x: flat, ...weights }, attrs) as tf.Tensor;
    }
    return tf.reshape(y, [...x.shape.slice(0, -1), w.n]);
  });
}

/**
 * webgpu: a few rows (decode) read the int8 rows directly; more rows multiply on the int8 matrix units when the
 * weight asks for int8 activations and the device has a settled plan, else on the float matmul after widening.
 */
function int8LinearWebGpu(x: tf.Tensor, w: Int8Weight): tf.Tensor {
  registerInt8WebGpuKernels();
  return tf.tidy(() => {
    const flat = tf.reshape(x.dtype === 'float32' ? x : tf.cast(x, 'float32'), [-1, w.k]);
    const attrs = { n: w.n, k: w.k, rowBytes: w.rowBytes };
    const weights = { packed: w.packed, scales: w.scales };
    const rows = flat.shape[0]!;
    const plan = w.activations === 'int8' ? int8MatrixPlan() : null;
    let y: tf.Tensor;
    if (rows <= INT8_ROWS_MAX) {
      y = tf.engine().runKernel(INT8_LINEAR_KERNEL, { x: flat, ...weights }, attrs as never) as tf.Tensor;
    } else if (plan) {
      const w8a8 = { ...attrs, plan } as unknown as tf.NamedAttrMap;
      y = tf.engine().runKernel(INT8_MATMUL_W8A8_KERNEL, { x: flat, ...weights }, w8a8) as tf.Tensor;
    } else {
      const wide = tf.engine().runKernel(INT8_DEQUANTIZE_KERNEL, weights, attrs as never) as tf.Tensor;
      y = tf.matMul(flat, wide, false, true);
    }
    return tf.reshape(y, [...x.shape.slice(0, -1), w.n]);
  });
}
