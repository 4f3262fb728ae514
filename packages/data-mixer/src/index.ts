export type { BatchOptions, MixerBatch } from './batches.js';
export {
  type BadRecordPolicy,
  DATASET_KEYS,
  type DatasetConfig,
  DEFAULT_SHUFFLE_BLOCK_SIZE,
  DEFAULT_SHUFFLE_SEED,
  type LoaderConfig,
  type MixerConfig,
  mixerConfig,
  parseDataset,
  parseTrainLoader,
  STREAM_KEYS,
  type StreamConfig,
} from './config.js';
export { MixerConfigError, type MixerConfigProblem, type ValueRule } from './config-error.js';
export { DataMixer, DEFAULT_PREFETCH } from './data-mixer.js';
export { readJsonlDocuments } from './jsonl.js';
export {
  decodeMdsRecord,
  documentColumn,
  type MdsIndex,
  type MdsRecord,
  type MdsShardInfo,
  readMdsIndex,
  readMdsShard,
} from './mds.js';
export { MdsWriter, type MdsWriterOptions, pythonJson } from './mds-writer.js';
export {
  chooseStream,
  Mixer,
  type MixerOptions,
  type MixerState,
  type Sample,
  type TokenizerInstance,
} from './mixer.js';
export type { StreamCursor } from './packer.js';
export { type PreparedStream, type PrepareOptions, prepareStreams } from './prepare.js';
export { PRESETS, type PresetName, presetStreams, REDPAJAMA_MIX } from './presets.js';
export { type Document, openSource, type SourceOptions, type StreamSource } from './source.js';
export { formatMixStats, type MixStats, mixStats, type StreamStats } from './stats.js';
export {
  EOS_TOKEN,
  type LoadedTokenizer,
  loadTokenizer,
  resolveTokenizerFile,
  type TextTokenizer,
  type TokenizerLibrary,
  type TokenizerSpec,
} from './tokenizer.js';
export {
  InterpolationError,
  type InterpolationProblem,
  interpolate,
} from './yaml/interpolate.js';
export { parseYamlStrict } from './yaml/parse-strict.js';
export { type DataRunConfig, loadDataRunConfig, parseDataRunConfig } from './yaml-config.js';
export { zstdCompress, zstdDecompress } from './zstd.js';
