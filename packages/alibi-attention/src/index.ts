// Importing this package imports @mptjs/kernels (which registers tfjs's gradient functions and patches tfjs-wasm)
// and registers the flash-attention kernels, so every model built on it can be differentiated.
import '@mptjs/kernels';
import { registerFlashAttentionKernel } from './flash/register-flash-attention.js';

registerFlashAttentionKernel();

export {
  type AlibiAttentionOptions,
  alibiAttention,
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
  resolveAttentionOptions,
} from './attention-reference.js';
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
export * from './wasm-kernels/decode-attention.js';
