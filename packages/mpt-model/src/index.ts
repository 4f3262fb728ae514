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
  type FinishReason,
  type GeneratedToken,
  type GenerateOptions,
  type GenerateResult,
  generate,
  generateStream,
} from './generate.js';
export {
  disposeRecordedDecoder,
  RecordedDecodeError,
  RecordedDecoder,
  type RecordedDecoderOptions,
  recordedDecoderFor,
  type StepOutput,
  type TokenChoice,
} from './inference/webgpu-decode/index.js';
export { initStateDict, initStd } from './init.js';
export { embeddingLookup, scaleGradient } from './layers.js';
export { lmHeadCrossEntropy, lmHeadCrossEntropyFused } from './lm-head-loss.js';
export {
  type ModelOptions,
  type ModelUnit,
  MPTModel,
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
export {
  applyRepetitionPenalty,
  argMax,
  isGreedy,
  type SamplingOptions,
  sampleToken,
  validateSampling,
} from './sampling.js';
export { expectedParameterShapes, type HostTensor, type StateDict } from './state-dict.js';
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
