// Moving FSDP's flat buffers between the tensor backend and the host without a fresh array per call. Every step
// reads each shard twice (for the forward and the backward gathers) and every gradient once, and writes every
// gathered parameter twice: allocated anew, that is several times the model's size in garbage a step, whose
// collection then competes with the ranks for the cores. On wasm a tensor's values are read where they lie in
// the backend's heap, and a tensor made from a host array copies it at once, so host buffers can be reused; on
// webgpu a tensor made here is uploaded at once (its values copied to a staging buffer before the call returns),
// so the same holds there.
import * as tf from '@tensorflow/tfjs-core';

interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/** tfjs-backend-webgpu's public `uploadToGPU`: copies a tensor's host values to GPU memory now. */
interface UploadingBackend {
  uploadToGPU(dataId: tf.DataId): void;
}

function heapBackend(): HeapBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof backend.typedArrayFromHeap === 'function' ? (backend as HeapBackend) : null;
}

function uploadingBackend(): UploadingBackend | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const backend = tf.backend() as unknown as Partial<UploadingBackend>;
  return typeof backend.uploadToGPU === 'function' ? (backend as UploadingBackend) : null;
}

/**
 * Whether tensors live in GPU memory, so that reading one is an asynchronous copy over the bus that completes only
 * once the GPU has run everything queued before it (FSDP then reads gradients in buckets, without waiting).
 */
export function backendIsGpu(): boolean {
  const name = tf.getBackend();
  return name === 'webgpu' || name === 'webgl';
}

/**
 * Whether a tensor made by `tensorFromHost` is done with the host array when the call returns (wasm copies it
 * into its heap, webgpu uploads it), so the array may be overwritten afterwards. cpu keeps the array itself (and
 * webgl uploads it later): they need arrays of their own.
 */
export function backendCopiesHostArrays(): boolean {
  return heapBackend() !== null || uploadingBackend() !== null;
}

/**
 * A tensor holding `values`. On webgpu it is uploaded now rather than when a kernel first reads it: a gathered
 * unit's parameters then reach GPU memory while the unit before it computes, not in the middle of dispatching
 * the unit's own kernels. Tensors smaller than tfjs's CPU hand-off size stay on the host (ops on them alone run
 * there, and uploading them would make those wait on the GPU), as copies.
 */
export function tensorFromHost(values: Float32Array, shape: readonly number[]): tf.Tensor {
  const uploader = uploadingBackend();
  if (!uploader) return tf.tensor(values, [...shape], 'float32');
  const onGpu =
    !tf.env().getBool('WEBGPU_CPU_FORWARD') ||
    values.length >= tf.env().getNumber('WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD');
  const t = tf.tensor(onGpu ? values : values.slice(), [...shape], 'float32');
  if (onGpu) uploader.uploadToGPU(t.dataId);
  return t;
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
