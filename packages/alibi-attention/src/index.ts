// Importing this package registers tfjs's gradient functions, so every model built on it can be differentiated.
import './backend/gradients.js';
import { registerFlashAttentionKernel } from './flash/register-flash-attention.js';
import { patchWasmIdentity } from './wasm-identity.js';
import { patchWasmTransposedMatMul } from './wasm-matmul.js';
import { patchWasmSlice } from './wasm-slice.js';

registerFlashAttentionKernel();
patchWasmTransposedMatMul();
patchWasmSlice();
patchWasmIdentity();

export {
  type AlibiAttentionOptions,
  type AttentionImpl,
  alibiAttention,
  attentionImplNotice,
  resolveAttentionImpl,
} from './alibi-attention.js';
export {
  type AttentionOptions,
  attentionBackward,
  attentionProbabilities,
  attentionReference,
  resolveAttentionOptions,
} from './attention-reference.js';
export * from './backend/index.js';
export {
  hoistEnableDirectives,
  SUBGROUP_MATRIX_FEATURE,
  type SubgroupMatrixConfig,
  type WebGpuCapabilities,
  webGpuCapabilities,
} from './backend/webgpu-device.js';
export { alibiBias, MASK_VALUE, relativePositions, visibleKeys } from './bias.js';
export { FlashAttentionProgram } from './flash/flash-attention-program.js';
export {
  FLASH_ATTENTION_GRAD_KERNEL,
  FLASH_ATTENTION_KERNEL,
  FLASH_ATTENTION_LSE_KERNEL,
  type FlashAttentionAttrs,
  registerFlashAttentionKernel,
  runFlashAttentionGradKernel,
  runFlashAttentionKernel,
  runFlashAttentionWithLse,
} from './flash/register-flash-attention.js';
export { mergeHeads, splitHeads } from './heads.js';
export { type AlibiDialect, alibiSlopes } from './slopes.js';
export { patchWasmIdentity } from './wasm-identity.js';
export * from './wasm-kernels/adamw.js';
export * from './wasm-kernels/cross-entropy.js';
export * from './wasm-kernels/decode-attention.js';
export * from './wasm-kernels/gelu.js';
export * from './wasm-kernels/gemv.js';
export * from './wasm-kernels/int8-linear.js';
export * from './wasm-kernels/layer-norm.js';
export {
  patchWasmTransposedMatMul,
  setWasmSimdMatMul,
  type WasmSimdMatMulMode,
  wasmSimdKernelsOn,
} from './wasm-matmul.js';
export { copySlice, patchWasmSlice } from './wasm-slice.js';
export {
  DEFAULT_MATRIX_TILE,
  DEFAULT_SCALAR_TILE,
  describeMismatch,
  F16_GEMM_ENGINE_ENV,
  F16_GEMM_ENV,
  F16_GEMM_MIN_WORK,
  F16_GEMM_TILE_ENV,
  type F16GemmPlan,
  type F16GemmSettlement,
  f16GemmActive,
  f16GemmPlan,
  referenceGemm,
  roundToF16,
  runF16Gemm,
  setF16Gemm,
  settleF16Gemm,
} from './webgpu-f16/f16-gemm.js';
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
  tileName,
  tileProblem,
  workgroupBytes,
} from './webgpu-f16/gemm-program.js';
export {
  activationRowBytes,
  INT8_ROWS_MAX,
  Int8DequantizeProgram,
  type Int8MatmulLayout,
  Int8RowsProgram,
  Int8SubgroupMatmulProgram,
  QuantizeRowsProgram,
} from './webgpu-int8/int8-programs.js';
export {
  INT8_MATMUL_LAYOUTS,
  INT8_MATMUL_W8A8_KERNEL,
  type Int8MatrixPlan,
  type Int8MatrixSettlement,
  int8MatrixPlan,
  pickInt8Config,
  registerInt8WebGpuKernels,
  settleInt8MatrixPlan,
} from './webgpu-int8/int8-webgpu.js';
