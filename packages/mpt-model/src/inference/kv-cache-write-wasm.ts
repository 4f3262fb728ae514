/**
 * Writes one step's keys or values into a preallocated KV cache in place on the wasm backend: rows of
 * `X [B, T, H * Dh]` (heads not yet split) go to positions `pos .. pos + T - 1` of `cache [B, H, capacity, Dh]`,
 * one head's `Dh` floats at a time, straight from heap to heap. It replaces the head split and the concatenation
 * that copied the whole cache on every decode step (a cost that grows with the context).
 */
import * as tf from '@tensorflow/tfjs-core';

interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Copies `rows [B, T, H * Dh]` (float32) into `cache [B, H, capacity, Dh]` at position `pos`. Only for the wasm
 * backend; the cache must not share its data with another tensor.
 */
export function writeCacheRowsWasm(cache: tf.Tensor4D, rows: tf.Tensor, pos: number): void {
  const [b, t, width] = rows.shape as [number, number, number];
  const [cb, h, capacity, dh] = cache.shape;
  if (rows.rank !== 3 || b !== cb || width !== h * dh || pos < 0 || pos + t > capacity) {
    throw new RangeError(`cannot write rows [${rows.shape}] at ${pos} into a cache [${cache.shape}]`);
  }
  if (cache.dtype !== 'float32') throw new TypeError(`the cache must be float32, got ${cache.dtype}`);
  const input = rows.dtype === 'float32' ? rows : tf.cast(rows, 'float32');
  try {
    const backend = tf.backend() as unknown as HeapBackend;
    // Views after every allocation: growing the heap detaches views taken before.
    const src = backend.typedArrayFromHeap(input) as Float32Array;
    const dst = backend.typedArrayFromHeap(cache) as Float32Array;
    for (let bi = 0; bi < b; bi++) {
      for (let step = 0; step < t; step++) {
        const from = (bi * t + step) * width;
        for (let head = 0; head < h; head++) {
          const to = ((bi * h + head) * capacity + pos + step) * dh;
          dst.set(src.subarray(from + head * dh, from + (head + 1) * dh), to);
        }
      }
    }
  } finally {
    if (input !== rows) input.dispose();
  }
}
