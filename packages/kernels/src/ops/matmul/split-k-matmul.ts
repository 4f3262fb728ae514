/**
 * `A^T B` with a long inner dimension (`A [K, M]`, `B [K, N]`, K in the tens of thousands: the LM head's input
 * gradient `W^T dz`) as a sum over K-chunks of plain XNNPACK products. XNNPACK does not block K: each output
 * tile streams a whole packed column panel of B (8 x K floats, 1.6 MB at K = 50432), which falls out of cache,
 * and the product runs at about half its usual rate. In chunks of 256 rows a chunk of B (packed: 256 x N floats,
 * 512 KB at N = 512) stays in L2 for every tile of the product. A chunk of A is transposed by our SIMD kernel
 * straight from its rows, a chunk of B is a row copy, and the partial products are summed in place. Measured on
 * the LM head's 512 x 50432 x 256 gradient: 0.8-0.9 s against 1.1-1.5 s unsplit (a plain product of that size
 * with a short inner dimension: 0.6 s).
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { addressOf, type MatmulExports, type WasmBackendLike } from '../../wasm/load.js';

/** Inner dimensions from this size up are split. */
export const SPLIT_K_MIN = 8192;
/** Rows of A and B per partial product. */
export const SPLIT_K_CHUNK = 256;

/** A plain `[m, k] x [k, n]` product on tfjs-wasm (its own BatchMatMul, i.e. XNNPACK), as a new tensor. */
export type PlainMultiply = (a: TensorInfo, b: TensorInfo) => TensorInfo;

/**
 * `A^T B` for row-major `a [K, M]` and `b [K, N]` (2D, or with batch dims all 1) into a new float32 tensor of
 * `outShape` (`[..., M, N]`). Each chunk's operands are fresh tensors: tfjs-wasm caches XNNPACK's packed B by
 * tensor id, so a reused buffer would multiply stale weights.
 */
export function splitKTransposedA(
  backend: WasmBackendLike,
  kernels: MatmulExports,
  multiply: PlainMultiply,
  a: TensorInfo,
  b: TensorInfo,
  dims: { m: number; n: number; k: number },
  outShape: number[],
): TensorInfo {
  const { m, n, k } = dims;
  const out = backend.makeOutput(outShape, 'float32');
  for (let k0 = 0; k0 < k; k0 += SPLIT_K_CHUNK) {
    const kc = Math.min(SPLIT_K_CHUNK, k - k0);
    const aChunk = backend.makeOutput([m, kc], 'float32') as TensorInfo;
    const bChunk = backend.makeOutput([kc, n], 'float32') as TensorInfo;
    let part: TensorInfo | undefined;
    try {
      // Addresses are read after every allocation: allocating may grow the memory.
      kernels.transpose(
        addressOf(backend, a.dataId) + 4 * k0 * m,
        addressOf(backend, aChunk.dataId),
        1,
        kc,
        m,
      );
      kernels.copy(addressOf(backend, bChunk.dataId), addressOf(backend, b.dataId) + 4 * k0 * n, 4 * kc * n);
      part = multiply(aChunk, bChunk);
      const dst = addressOf(backend, out.dataId);
      const src = addressOf(backend, part.dataId);
      if (k0 === 0) kernels.copy(dst, src, 4 * m * n);
      else kernels.add_into(dst, src, m * n);
    } finally {
      backend.disposeData(aChunk.dataId);
      backend.disposeData(bChunk.dataId);
      if (part) backend.disposeData(part.dataId);
    }
  }
  return out as TensorInfo;
}
