/** Row sums of squares on the webgpu backend (`webgpu-programs.ts`): the global gradient norm's per-tensor part. */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGpuBackendLike } from '../../webgpu/program-like.js';
import { RowSumsOfSquaresProgram } from './webgpu-programs.js';

/**
 * `sum(x^2)` over the last axis of float32 `x` (a vector is one row): `[rows]`, in one dispatch. Needs the webgpu
 * backend. Nothing is taped (the norm is not differentiated).
 */
export function rowSumsOfSquares(x: tf.Tensor): tf.Tensor1D {
  if (tf.getBackend() !== 'webgpu') throw new Error('rowSumsOfSquares needs the webgpu backend');
  if (x.dtype !== 'float32' || x.rank < 1 || x.size === 0) {
    throw new RangeError(`rowSumsOfSquares: expects a non-empty float32 tensor, got ${x.dtype} [${x.shape}]`);
  }
  const width = x.shape[x.rank - 1]!;
  const rows = x.size / width;
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [rows, width]);
    const out = backend.runWebGPUProgram(new RowSumsOfSquaresProgram(rows, width), [x2], 'float32');
    return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor1D;
  });
}
