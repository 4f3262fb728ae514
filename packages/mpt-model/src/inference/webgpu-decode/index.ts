export { RecordedDecodeError } from './gpu.js';
export {
  RecordedDecoder,
  type RecordedDecoderOptions,
  type StepOutput,
  type TokenChoice,
} from './recorded-decoder.js';
