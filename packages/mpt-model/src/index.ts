export {
  type AttnImpl,
  CONFIG_LIMITS,
  ConfigError,
  type ModelType,
  type MPTConfig,
  type NormType,
  parseMptConfig,
  toMptConfigJson,
} from './config.js';
export {
  BatchedDecoder,
  BatchedSequence,
  type PrefilledSequence,
} from './inference/batched-decoder.js';
export { chooseToken } from './inference/choose-token.js';
export {
  DecodeSequence,
  type DecodeSequenceOptions,
  type FinishReason,
  type GeneratedToken,
  type ScoredToken,
  type TextDelta,
  type TokenChooser,
} from './inference/decode-sequence.js';
export {
  type GenerateOptions,
  type GenerateResult,
  generate,
  generateStream,
} from './inference/generate.js';
export { KVCache, type KVCacheOptions } from './inference/kv-cache.js';
export { logprobsOf, logSumExp, type TokenLogprob, topIndices } from './inference/logprobs.js';
export {
  applyRepetitionPenalty,
  argMax,
  isGreedy,
  type SamplingOptions,
  sampleToken,
  validateSampling,
} from './inference/sampling.js';
export { StopStringMatcher } from './inference/stop-string-matcher.js';
export { setWasmHeapDecode, wasmHeapDecodeEnabled } from './inference/wasm-decode-step.js';
export {
  type BatchRow,
  type BatchRowOutput,
  disposeRecordedDecoder,
  MAX_RECORDED_SLOTS,
  type PrefilledRecordedSequence,
  RecordedBatchDecoder,
  type RecordedBatchDecoderOptions,
  RecordedDecodeError,
  RecordedDecoder,
  type RecordedDecoderOptions,
  RecordedSequence,
  recordedDecoderFor,
  type StepOutput,
  type StepWeightFormat,
  type TokenChoice,
  WEIGHT_FORMATS,
  type WeightFormat,
  type WeightStats,
} from './inference/webgpu-decode/index.js';
export { type SoftmaxStats, sampleTopP } from './inference/weighted-select.js';
export { initStateDict, initStd } from './init.js';
export { embeddingLookup, scaleGradient } from './layers.js';
export { lmHeadCrossEntropy, lmHeadCrossEntropyFused } from './lm-head-loss.js';
export {
  type ModelOptions,
  MPTModel,
  type MPTUnit,
  StateDictError,
  type TokenBatch,
  type WeightOffloadState,
} from './model.js';
export {
  activationReserveBytes,
  backendHeapBytes,
  chooseOffload,
  formatBytes,
  type OffloadChoice,
  type OffloadMode,
  type OffloadOptions,
  type OffloadPlan,
  planOffload,
  WASM_HEAP_LIMIT_BYTES,
  weightBytes,
} from './offload.js';
export {
  BLOCK_LINEARS,
  type BlockParams,
  blockParams,
  type EmbeddingParams,
  embeddingParams,
  type HeadParams,
  headParams,
  INT8_HEAD,
  type Int8Lookup,
  isBlockLinearWeight,
  type ParameterLookup,
} from './parameters.js';
export {
  assertInt8Backend,
  INT8_BACKENDS,
  parseQuantizeMode,
  QUANTIZE_MODES,
  QuantizationError,
  type QuantizeMode,
  quantizedWeightBytes,
  quantizeModelWeights,
} from './quantize.js';
export { deriveSeed, SeededRandom } from './random.js';
export { expectedParameterShapes } from './state-dict.js';
export * from './unit-chain/index.js';
export {
  type AttentionContext,
  attentionSlopes,
  blockForward,
  crossEntropyLoss,
  embedForward,
  headForward,
  headLoss,
  IGNORE_INDEX,
} from './units.js';
