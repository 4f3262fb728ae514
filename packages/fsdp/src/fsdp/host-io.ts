// Moving FSDP's flat buffers between the tensor backend and the host without a fresh array per call. Every step
// reads each shard twice (for the forward and the backward gathers) and every gradient once, and writes every
// gathered parameter twice: allocated anew, that is several times the model's size in garbage a step, whose
// collection then competes with the ranks for the cores. On wasm a tensor's values are read where they lie in
// the backend's heap, and a tensor made from a host array copies it at once, so host buffers can be reused.
import * as tf from '@tensorflow/tfjs-core';

interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

function heapBackend(): HeapBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof backend.typedArrayFromHeap === 'function' ? (backend as HeapBackend) : null;
}

/**
 * Whether tensors made from a host array own a copy of it (wasm copies into its heap at once), so the array may
 * be overwritten afterwards. cpu keeps the array itself and webgpu uploads it later: they need arrays of their own.
 */
export function backendCopiesHostArrays(): boolean {
  return heapBackend() !== null;
}

/**
 * Calls `use` with the float32 values of `t`: on wasm a view into the heap, valid only during the call (any
 * allocation on the backend can move the heap); elsewhere a copy, after the read completes.
 */
export function withHostValues<T>(t: tf.Tensor, use: (values: Float32Array) => T): T | Promise<T> {
  const heap = heapBackend();
  if (heap && t.dtype === 'float32') return use(heap.typedArrayFromHeap(t));
  return (t.data() as Promise<Float32Array>).then(use);
}

/** Copies the values of `t` into `out` (same length). */
export function readInto(t: tf.Tensor, out: Float32Array): void | Promise<void> {
  return withHostValues(t, (values) => {
    if (values.length !== out.length) {
      throw new RangeError(`FSDP: tensor has ${values.length} values, the buffer ${out.length}`);
    }
    out.set(values);
  });
}
