/**
 * Writes one step's keys or values into a preallocated KV cache in place on the webgpu backend: rows of
 * `X [B, T, H * Dh]` (as the QKV projection produces them, heads not yet split) go to positions
 * `pos .. pos + T - 1` of `cache [B, H, capacity, Dh]`. One dispatch replaces the head split (a transpose) and
 * the concatenation that grows a cache by copying it, and the cache keeps its buffer and shape from step to step,
 * so tfjs reuses the same compiled program and allocates nothing.
 */

import type { WebGpuBackendLike, WebGpuProgramLike } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';

const WORKGROUP = 64;

export class KVCacheWriteProgram implements WebGpuProgramLike {
  readonly variableNames = ['X'];
  readonly outputShape: number[];
  readonly shaderKey = 'mptKvCacheWrite';
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly uniforms = 'pos : i32,';

  constructor(cacheShape: readonly number[], elements: number) {
    this.outputShape = [...cacheShape];
    this.dispatch = [Math.max(1, Math.ceil(elements / WORKGROUP)), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        let t = uniforms.xShape[1];
        let width = uniforms.xShape[2];
        if (index < uniforms.xShape[0] * t * width) {
          // Unsigned division: WGSL's signed one carries overflow checks.
          let row = i32(u32(index) / u32(width));
          let col = index - row * width;
          let b = i32(u32(row) / u32(t));
          let step = row - b * t;
          let dh = uniforms.outShape[3];
          let h = i32(u32(col) / u32(dh));
          let e = col - h * dh;
          let slot = (b * uniforms.outShape[1] + h) * uniforms.outShape[2] + uniforms.pos + step;
          result[slot * dh + e] = X[index];
        }
      }
    `;
  }
}

/**
 * Copies `rows [B, T, H * Dh]` (float32) into `cache [B, H, capacity, Dh]` at position `pos`, in place: the cache
 * tensor's buffer is the program's output. Only for the webgpu backend; the cache must not share its data with
 * another tensor.
 */
export function writeCacheRowsInPlace(cache: tf.Tensor4D, rows: tf.Tensor, pos: number): void {
  const [b, t, width] = rows.shape as [number, number, number];
  const [cb, h, capacity, dh] = cache.shape;
  if (rows.rank !== 3 || b !== cb || width !== h * dh || pos < 0 || pos + t > capacity) {
    throw new RangeError(`cannot write rows [${rows.shape}] at ${pos} into a cache [${cache.shape}]`);
  }
  const input = rows.dtype === 'float32' ? rows : tf.cast(rows, 'float32');
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  backend.runWebGPUProgram(
    new KVCacheWriteProgram(cache.shape, rows.size),
    [input],
    'float32',
    [{ type: 'int32', data: [pos] }],
    cache,
  );
  if (input !== rows) input.dispose();
}
