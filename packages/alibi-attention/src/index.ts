// Importing this package imports @mptjs/kernels (which registers tfjs's gradient functions and patches tfjs-wasm)
// and registers the flash-attention kernels, so every model built on it can be differentiated.
import '@mptjs/kernels';
import { registerF16FlashAttentionCompanion } from './flash/f16-flash-attention.js';
import { registerFlashAttentionKernel } from './flash/register-flash-attention.js';

registerFlashAttentionKernel();
registerF16FlashAttentionCompanion();

export {
  type AlibiAttentionOptions,
  type AlibiAttentionRowsOptions,
  alibiAttention,
  alibiAttentionRows,
  attentionImplNotice,
  resolveAttentionImpl,
} from './alibi-attention.js';
export {
  type AttentionFunction,
  type AttentionImpl,
  type AttentionImplEntry,
  type AttentionImplName,
  AUTO_ATTENTION_IMPL,
  attentionImplEntry,
  attentionImplNames,
  registerAttentionImpl,
} from './attention-impls.js';
export {
  type AttentionOptions,
  attentionBackward,
  attentionProbabilities,
  attentionReference,
  resolveAttentionDims,
  resolveAttentionOptions,
} from './attention-reference.js';
export { alibiBias, MASK_VALUE, relativePositions, visibleKeys } from './bias.js';
export type { AttentionLayout } from './flash/blocked-program.js';
export {
  F16_FLASH_ATTENTION_NAME,
  F16_FLASH_BACKWARD_TOLERANCE,
  F16_FLASH_TOLERANCE,
  type F16FlashSettlement,
  type F16FlashSettleOptions,
  f16FlashAttentionBackwardPrograms,
  f16FlashAttentionConfig,
  f16FlashAttentionProgram,
  registerF16FlashAttentionCompanion,
  runF16FlashBackwardCase,
  runF16FlashCase,
  settleF16FlashAttention,
} from './flash/f16-flash-attention.js';
export {
  F16FlashAttentionDkDvProgram,
  F16FlashAttentionDqProgram,
} from './flash/f16-flash-attention-backward-program.js';
export {
  chooseFlashTile,
  F16FlashAttentionProgram,
  type FlashEngineConfig,
  type FlashKind,
  type FlashTile,
  flashTileCandidates,
  flashTileName,
  flashTileProblem,
  flashWorkgroupBytes,
  paddedHeadDim,
} from './flash/f16-flash-attention-program.js';
export {
  FLASH_CHECK_CASES,
  type FlashCase,
  flashCaseInputs,
  flashCaseOutputGrad,
  flashErrors,
  referenceFlashAttention,
  referenceFlashAttentionGrads,
  relativeMaxError,
} from './flash/f16-flash-reference.js';
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
export * from './wasm-kernels/decode-attention.js';
