/**
 * tfjs-wasm's Slice kernel copies its whole input out of the wasm heap (`readSync`) on every call, however small
 * the slice, and its SplitV calls that Slice once per part: splitting an attention layer's fused QKV output makes
 * three host copies of all of it, garbage the JavaScript heap then has to collect. These replacements read the
 * input where it lies in the heap and copy only the slice, a contiguous run at a time. Other dtypes (strings) go
 * to tfjs's kernels unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type KernelFunc = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];
type HeapArray = Float32Array | Int32Array | Uint8Array;

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): HeapArray;
}

const HEAP_DTYPES: readonly string[] = ['float32', 'int32', 'bool'];

/** `x[begin : begin + size]` into a new tensor of the backend. */
export function sliceInHeap(
  backend: HeapBackend,
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  // Views only after makeOutput: allocating can grow the heap, which detaches views taken before.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  copySlice(src, x.shape, dst, begin, size);
  return out;
}

/** Copies the slice of `src` (row-major, `shape`) at `begin`/`size` into `dst`, a contiguous run at a time. */
export function copySlice(
  src: HeapArray,
  shape: readonly number[],
  dst: HeapArray,
  begin: readonly number[],
  size: readonly number[],
): void {
  const rank = shape.length;
  // computeStrides leaves out the last axis, whose stride is 1.
  const strides = [...tf.util.computeStrides([...shape]), 1];
  if (rank === 0 || tf.slice_util.isSliceContinous([...shape], [...begin], [...size])) {
    const start = begin.reduce((o, b, a) => o + b * strides[a]!, 0);
    dst.set(src.subarray(start, start + tf.util.sizeFromShape([...size])));
    return;
  }
  // Trailing axes the slice covers whole join the innermost run.
  let inner = rank - 1;
  let run = size[inner]!;
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner]!;
  }
  const index = new Array<number>(inner).fill(0);
  const runs = tf.util.sizeFromShape(size.slice(0, inner));
  let to = 0;
  for (let r = 0; r < runs; r++) {
    let from = begin[inner]! * strides[inner]!;
    for (let a = 0; a < inner; a++) from += (begin[a]! + index[a]!) * strides[a]!;
    if (run >= 16) dst.set(src.subarray(from, from + run), to);
    else for (let i = 0; i < run; i++) dst[to + i] = src[from + i]!;
    to += run;
    for (let a = inner - 1; a >= 0; a--) {
      if (++index[a]! < size[a]!) break;
      index[a] = 0;
    }
  }
}

let patched = false;

/** Installs the in-heap Slice and SplitV on the wasm backend (idempotent). False when wasm is not registered. */
export function patchWasmSlice(): boolean {
  if (patched) return true;
  const slice = tf.getKernel('Slice', 'wasm');
  const splitV = tf.getKernel('SplitV', 'wasm');
  if (!slice || !splitV) return false;
  const tfjsSlice = slice.kernelFunc as unknown as KernelFunc;
  const tfjsSplitV = splitV.kernelFunc as unknown as KernelFunc;

  const sliceFunc = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!HEAP_DTYPES.includes(x.dtype)) return tfjsSlice(args) as tf.TensorInfo;
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return sliceInHeap(args.backend as HeapBackend, x, b!, s!);
  };

  const splitVFunc = (args: KernelArgs): tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!HEAP_DTYPES.includes(x.dtype)) return tfjsSplitV(args) as tf.TensorInfo[];
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = [...x.shape];
      size[ax] = n;
      const part = sliceInHeap(args.backend as HeapBackend, x, [...begin], size);
      begin[ax]! += n;
      return part;
    });
  };

  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ ...slice, kernelFunc: sliceFunc as unknown as tf.KernelFunc });
  tf.unregisterKernel('SplitV', 'wasm');
  tf.registerKernel({ ...splitV, kernelFunc: splitVFunc as unknown as tf.KernelFunc });
  patched = true;
  return true;
}
