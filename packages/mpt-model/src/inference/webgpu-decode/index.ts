export { disposeRecordedDecoder, recordedDecoderFor } from './generate-recorded.js';
export { RecordedDecodeError } from './gpu.js';
export {
  RecordedDecoder,
  type RecordedDecoderOptions,
  type StepOutput,
  type TokenChoice,
} from './recorded-decoder.js';
