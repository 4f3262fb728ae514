// @mptjs/tokenizer: Hugging Face tokenizer.json (byte-level BPE) in TypeScript, bit-exact with HF tokenizers.
export { TokenizerJsonError, UnsupportedComponentError } from './errors.js';
export { BPE, type BpeOptions } from './models/bpe/model.js';
export { type TrainBpeOptions, trainBpe } from './models/bpe/trainer.js';
export type { AddedToken } from './tokenizer/added-vocabulary.js';
export { DecodeStream } from './tokenizer/decode-stream.js';
export { closeWorkers, workerCount } from './tokenizer/encode-batch.js';
export type {
  BatchOptions,
  DecodeOptions,
  EncodeOptions,
  EncodeWithOffsetsOptions,
  Encoding,
} from './tokenizer/tokenizer.js';
export { Tokenizer } from './tokenizer/tokenizer.js';
export { byteLevelAlphabet } from './utils/byte-level.js';
