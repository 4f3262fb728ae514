/**
 * Our wasm kernels called on byte addresses in tfjs-wasm's heap, for a caller that chains them without tfjs
 * ops. A decode step of a small model spends more time in tfjs's per-op bookkeeping (scopes, tensor tracking,
 * reshapes, kernel lookup) than in its LayerNorms, adds and GELU; these entry points skip all of it. Every
 * address is a byte offset into the backend's memory, every buffer float32, and nothing is allocated.
 */
import type { MatmulExports } from './load.js';
import { kernelsFor, type WasmBackendLike } from './load.js';
import { wasmModuleRuns } from './register.js';

interface LayerNormExports {
  layer_norm(x: number, w: number, b: number, y: number, rows: number, d: number, eps: number): void;
}
interface GemvExports {
  gemv(x: number, w: number, y: number, m: number, n: number, k: number): void;
}
interface GeluExports {
  gelu(x: number, y: number, n: number): void;
}

export interface WasmHeapKernels {
  /** `y[r] = (x[r] - mean) / sqrt(var + eps) * w (+ b)` for `rows` rows of width `d`; `b = 0`: no bias. `y` may be `x`. */
  layerNorm(x: number, w: number, b: number, y: number, rows: number, d: number, eps: number): void;
  /** `y [m, n] = x [m, k] . w [n, k]^T` for m from 1 to 4 (`GEMV_ROWS_MAX`). */
  gemv(x: number, w: number, y: number, m: number, n: number, k: number): void;
  /** `y = x Phi(x)` over `n` floats (the exact GELU); `y` may be `x`. */
  gelu(x: number, y: number, n: number): void;
  /** `dst += src` over `n` floats. */
  addInto(dst: number, src: number, n: number): void;
  /** Copies `bytes` bytes (the ranges may overlap). */
  copy(dst: number, src: number, bytes: number): void;
}

const MODULES = ['layer-norm', 'gemv', 'gelu', 'matmul'] as const;

/**
 * The kernels bound to `backend`'s memory, or null where any of them cannot run (not wasm, no SIMD, our wasm
 * kernels switched off with `setWasmSimdMatMul('off')`): the caller then takes the tfjs-op path.
 */
export function wasmHeapKernels(backend: WasmBackendLike): WasmHeapKernels | null {
  if (!MODULES.every((name) => wasmModuleRuns(name))) return null;
  const norm = kernelsFor<LayerNormExports>(backend, 'layer-norm');
  const gemv = kernelsFor<GemvExports>(backend, 'gemv');
  const gelu = kernelsFor<GeluExports>(backend, 'gelu');
  const matmul = kernelsFor<MatmulExports>(backend, 'matmul');
  if (!norm || !gemv || !gelu || !matmul) return null;
  return {
    layerNorm: norm.layer_norm,
    gemv: gemv.gemv,
    gelu: gelu.gelu,
    addInto: matmul.add_into,
    copy: matmul.copy,
  };
}
