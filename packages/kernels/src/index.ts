// Importing this package registers tfjs's gradient functions and patches tfjs-wasm's transposed MatMul, Slice and
// Identity with in-place or SIMD versions, so every model built on it can be differentiated and runs its wasm
// fast paths.
import './backend/gradients.js';
import { patchWasmIdentity } from './ops/identity/wasm.js';
import { patchWasmTransposedMatMul } from './ops/matmul/wasm.js';
import { patchWasmSlice } from './ops/slice/wasm.js';

patchWasmTransposedMatMul();
patchWasmSlice();
patchWasmIdentity();

export * from './backend/index.js';
export {
  hoistEnableDirectives,
  SUBGROUP_MATRIX_FEATURE,
  type SubgroupMatrixConfig,
  type WebGpuCapabilities,
  webGpuCapabilities,
} from './backend/webgpu-device.js';
export * from './ops/adamw/wasm.js';
export { adamwUpdateWebGpu, adamwWebGpuAvailable } from './ops/adamw/webgpu.js';
export { crossEntropyPlain } from './ops/cross-entropy/plain.js';
export * from './ops/cross-entropy/wasm.js';
export { fusedCrossEntropy } from './ops/cross-entropy/webgpu.js';
export { geluErf } from './ops/gelu/gelu.js';
export * from './ops/gelu/wasm.js';
export { fusedLinearGelu, linearGelu, linearGeluPlain } from './ops/gelu/webgpu.js';
export { GELU_SNIPPET } from './ops/gelu/webgpu-programs.js';
export { patchWasmIdentity } from './ops/identity/wasm.js';
export * from './ops/int8-linear/thread-pool.js';
export * from './ops/int8-linear/wasm.js';
export {
  INT8_MATMUL_LAYOUTS,
  INT8_MATMUL_W8A8_KERNEL,
  type Int8MatrixPlan,
  type Int8MatrixSettlement,
  int8MatrixPlan,
  pickInt8Config,
  registerInt8WebGpuKernels,
  settleInt8MatrixPlan,
} from './ops/int8-linear/webgpu.js';
export {
  activationRowBytes,
  INT8_ROWS_MAX,
  Int8DequantizeProgram,
  type Int8MatmulLayout,
  Int8RowsProgram,
  Int8SubgroupMatmulProgram,
  QuantizeRowsProgram,
} from './ops/int8-linear/webgpu-programs.js';
export { layerNorm, type NormParams } from './ops/layer-norm/layer-norm.js';
export { layerNormPlain } from './ops/layer-norm/plain.js';
export * from './ops/layer-norm/wasm.js';
export { fusedLayerNorm } from './ops/layer-norm/webgpu.js';
export {
  DEFAULT_MATRIX_TILE,
  DEFAULT_SCALAR_TILE,
  describeMismatch,
  F16_GEMM_ENGINE_ENV,
  F16_GEMM_ENV,
  F16_GEMM_MIN_WORK,
  F16_GEMM_TILE_ENV,
  type F16Companion,
  type F16GemmPlan,
  type F16GemmSettlement,
  f16GemmActive,
  f16GemmPlan,
  referenceGemm,
  registerF16Companion,
  roundToF16,
  runF16Gemm,
  setF16Gemm,
  settleF16Companions,
  settleF16Gemm,
} from './ops/matmul/f16-gemm.js';
export {
  F16GemmProgram,
  GEMM_LAYOUTS,
  type GemmEngine,
  type GemmLayout,
  type GemmProblem,
  type GemmTile,
  layoutName,
  type MatrixShape,
  parseTile,
  SCALAR_LANES,
  tileName,
  tileProblem,
  workgroupBytes,
} from './ops/matmul/f16-gemm-program.js';
export * from './ops/matmul/gemv.js';
export { type LinearLayout, type LinearParams, linear } from './ops/matmul/linear.js';
export {
  patchWasmTransposedMatMul,
  setWasmSimdMatMul,
  type WasmSimdMatMulMode,
  wasmSimdKernelsOn,
} from './ops/matmul/wasm.js';
export { copySlice, patchWasmSlice } from './ops/slice/wasm.js';
export { rowSumsOfSquares } from './ops/sum-of-squares/webgpu.js';
export { type WasmHeapKernels, wasmHeapKernels } from './wasm/heap-kernels.js';
export {
  addressOf,
  backendMemory,
  kernelsFor,
  type WasmBackendLike,
  type WasmModuleTable,
} from './wasm/load.js';
export { registerWasmKernels, wasmModuleRuns } from './wasm/register.js';
export { SharedHeap } from './wasm/shared-heap.js';
export { setWasmThreads, WASM_THREADS_ENV, WASM_THREADS_MAX, wasmThreads } from './wasm/threads.js';
export { compilerErrors } from './webgpu/compile-errors.js';
export { fusedKernelsAvailable, registerFusedKernels } from './webgpu/fused-kernels.js';
export type { WebGpuBackendLike, WebGpuProgramLike } from './webgpu/program-like.js';
