export type { WeightStats } from './forward-recording.js';
export { disposeRecordedDecoder, recordedDecoderFor } from './generate-recorded.js';
export { RecordedDecodeError } from './gpu.js';
export {
  type BatchRow,
  type BatchRowOutput,
  MAX_RECORDED_SLOTS,
  type PrefilledRecordedSequence,
  RecordedBatchDecoder,
  type RecordedBatchDecoderOptions,
  RecordedSequence,
} from './recorded-batch-decoder.js';
export {
  RecordedDecoder,
  type RecordedDecoderOptions,
  type StepOutput,
  type TokenChoice,
} from './recorded-decoder.js';
export { type StepWeightFormat, WEIGHT_FORMATS, type WeightFormat } from './shaders.js';
