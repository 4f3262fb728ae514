// Registering our wasm kernels with tfjs, and the one test of whether one of our wasm modules runs here.
import * as tf from '@tensorflow/tfjs-core';
import { wasmSimdKernelsOn } from '../ops/matmul/wasm.js';
import { WASM_KERNELS } from '../wasm-kernels.generated.js';
import { kernelsFor, type WasmBackendLike, type WasmModuleTable } from './load.js';

/** Registers each `kernelName -> kernelFunc` for the wasm backend, skipping those already registered. */
export function registerWasmKernels(kernels: Readonly<Record<string, unknown>>): void {
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    if (tf.getKernel(kernelName, 'wasm')) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
  }
}

/**
 * Whether the named module of `table` runs on the active backend: it is wasm, our wasm kernels are not switched
 * off (`setWasmSimdMatMul('off')`), and the module validates (SIMD) against a memory this build exposes.
 */
export function wasmModuleRuns(name: string, table: WasmModuleTable = WASM_KERNELS): boolean {
  if (tf.getBackend() !== 'wasm' || !wasmSimdKernelsOn()) return false;
  return kernelsFor(tf.backend() as unknown as WasmBackendLike, name, table) !== null;
}
