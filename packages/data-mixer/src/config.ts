// The mixer's configuration, parsed from llm-foundry's `train_loader` section.

/** One dataset of the mixture, as in `train_loader.dataset.streams.<name>`. */
export interface StreamConfig {
  name: string;
  /** Directory holding the stream's JSON-lines files or MDS dataset. */
  local: string;
  /** Relative weight; normalised over all streams. */
  proportion?: number;
  /** Upsampling factor relative to the stream's size (in records). */
  repeat?: number;
  /** Records drawn per pass, absolute. */
  choose?: number;
  /** Sub-directory under `local` (MosaicML streaming's `split`). */
  split?: string;
  /** JSON-lines field that holds the document text (default `text`). */
  textField?: string;
}

export interface MixerConfig {
  streams: StreamConfig[];
  maxSeqLen: number;
  /** Shuffle documents within each stream (default true). */
  shuffle: boolean;
  shuffleSeed: number;
  /** Documents shuffled together in memory (a window of consecutive records of one file or shard). */
  shuffleBlockSize: number;
  /**
   * A bad record (a JSON-lines line that is not valid JSON, not a JSON object, or without a string text field;
   * an MDS sample that does not decode): `fail` (default) stops naming `file:line` or the sample; `skip` leaves it
   * out with one warning naming it, and counts it (`Mixer.skippedRecords()`, `MixerBatch.skipped`).
   */
  onBadRecord?: BadRecordPolicy;
}

export type BadRecordPolicy = 'fail' | 'skip';

/**
 * `train_loader.dataset` (or `eval_loader.dataset`) as a config validator reads it, camel-cased, before the mixer
 * resolves it into a `MixerConfig` (a `preset` expanded, a lone `local` made one stream).
 */
export interface DatasetConfig {
  local?: string;
  remote?: string;
  split?: string;
  shuffle: boolean;
  shuffleSeed: number;
  maxSeqLen: number;
  eosTokenId?: number;
  bosTokenId?: number;
  /** What the mixer does with a bad record: stop (`fail`, default) or leave it out and count it (`skip`). */
  onBadRecord: BadRecordPolicy;
  textField?: string;
  /** `preset: redpajama` with `root`: expanded into the seven RedPajama streams (see `expandPreset`). */
  preset?: { name: string; root: string };
  streams: StreamConfig[];
}

/** A `train_loader` / `eval_loader` section: llm-foundry's `name: text` loader over the mixer's dataset. */
export interface LoaderConfig {
  name: string;
  dataset: DatasetConfig;
  dropLast: boolean;
  numWorkers: number;
}

export const DEFAULT_SHUFFLE_SEED = 9176; // llm-foundry's default `shuffle_seed`
export const DEFAULT_SHUFFLE_BLOCK_SIZE = 4096;

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveNumber(v: unknown, where: string, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new Error(
      `${where} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function checkKeys(obj: Dict, allowed: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) throw new Error(`unknown key ${where}.${key}`);
  }
}

/** Every key a stream mapping may have (`train_loader.dataset.streams.<name>`). */
export const STREAM_KEYS: ReadonlySet<string> = new Set([
  'local',
  'remote',
  'split',
  'proportion',
  'repeat',
  'choose',
  'download_retry',
  'download_timeout',
  'validate_hash',
  'keep_zip',
  'text_field',
]);

/**
 * Every key `train_loader.dataset` may have: the ones this mixer uses, and those llm-foundry / MosaicML streaming
 * accept that do not change what it produces here (no remote download). `preset` and `root` are expanded into
 * `streams` before this check (see `expandPreset`).
 */
export const DATASET_KEYS: ReadonlySet<string> = new Set([
  'streams',
  'local',
  'remote',
  'split',
  'max_seq_len',
  'shuffle',
  'shuffle_seed',
  'shuffle_block_size',
  'shuffle_algo',
  'num_canonical_nodes',
  'predownload',
  'download_retry',
  'download_timeout',
  'validate_hash',
  'keep_zip',
  'cache_limit',
  'partition_algo',
  'sampling_method',
  'sampling_granularity',
  'batching_method',
  'eos_token_id',
  'bos_token_id',
  'allow_unsafe_types',
  'text_field',
  'on_bad_record',
  'epoch_size',
  'allow_pad_trimming',
]);

function parseStream(name: string, raw: unknown, where: string): StreamConfig {
  if (!isDict(raw)) throw new Error(`${where} must be a mapping`);
  checkKeys(raw, STREAM_KEYS, where);
  if (typeof raw['local'] !== 'string' || raw['local'] === '') {
    throw new Error(`${where}.local must be a directory path`);
  }
  const stream: StreamConfig = { name, local: raw['local'] };
  if (raw['proportion'] !== undefined)
    stream.proportion = positiveNumber(raw['proportion'], `${where}.proportion`);
  if (raw['repeat'] !== undefined) stream.repeat = positiveNumber(raw['repeat'], `${where}.repeat`);
  if (raw['choose'] !== undefined) stream.choose = positiveNumber(raw['choose'], `${where}.choose`, true);
  const given = ['proportion', 'repeat', 'choose'].filter((k) => raw[k] !== undefined);
  if (given.length > 1)
    throw new Error(`${where}: give only one of proportion, repeat, choose (got ${given.join(', ')})`);
  if (typeof raw['split'] === 'string') stream.split = raw['split'];
  if (raw['text_field'] !== undefined) {
    if (typeof raw['text_field'] !== 'string') throw new Error(`${where}.text_field must be a string`);
    stream.textField = raw['text_field'];
  }
  return stream;
}

/**
 * Parses `train_loader` (or its `dataset` mapping directly). `max_seq_len` falls back to `fallbackMaxSeqLen`
 * (the config's top-level value).
 */
export function parseTrainLoader(trainLoader: unknown, fallbackMaxSeqLen?: number): MixerConfig {
  if (!isDict(trainLoader)) throw new Error('train_loader must be a mapping');
  const dataset = isDict(trainLoader['dataset']) ? trainLoader['dataset'] : trainLoader;
  const where = dataset === trainLoader ? 'train_loader' : 'train_loader.dataset';
  checkKeys(dataset, DATASET_KEYS, where);
  const maxSeqLen = positiveNumber(dataset['max_seq_len'] ?? fallbackMaxSeqLen, `${where}.max_seq_len`, true);
  // llm-foundry's StreamingTextDataset reads in stored order unless `shuffle: true` (its train yamls set it).
  const shuffle = dataset['shuffle'] ?? false;
  if (typeof shuffle !== 'boolean') throw new Error(`${where}.shuffle must be true or false`);
  const seed = dataset['shuffle_seed'] ?? DEFAULT_SHUFFLE_SEED;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) {
    throw new Error(`${where}.shuffle_seed must be a non-negative integer, got ${JSON.stringify(seed)}`);
  }
  const block = dataset['shuffle_block_size'] ?? DEFAULT_SHUFFLE_BLOCK_SIZE;
  const shuffleBlockSize = positiveNumber(block, `${where}.shuffle_block_size`, true);
  const onBadRecord = dataset['on_bad_record'] ?? 'fail';
  if (onBadRecord !== 'fail' && onBadRecord !== 'skip') {
    throw new Error(`${where}.on_bad_record must be fail or skip, got ${JSON.stringify(onBadRecord)}`);
  }

  let streams: StreamConfig[];
  const textField = typeof dataset['text_field'] === 'string' ? dataset['text_field'] : undefined;
  if (dataset['streams'] !== undefined && dataset['streams'] !== null) {
    if (!isDict(dataset['streams'])) throw new Error(`${where}.streams must be a mapping of name -> stream`);
    streams = Object.entries(dataset['streams']).map(([name, raw]) =>
      parseStream(name, raw, `${where}.streams.${name}`),
    );
  } else if (typeof dataset['local'] === 'string') {
    streams = [parseStream('default', { local: dataset['local'], split: dataset['split'] }, where)];
  } else {
    throw new Error(`${where} needs streams or local`);
  }
  if (streams.length === 0) throw new Error(`${where}.streams is empty`);
  if (textField) for (const s of streams) s.textField ??= textField;
  validateWeights(streams, `${where}.streams`);
  return { streams, maxSeqLen, shuffle, shuffleSeed: seed, shuffleBlockSize, onBadRecord };
}

/** Either every stream gives `proportion`, or none does (then each uses `repeat` or `choose`, default repeat 1). */
export function validateWeights(streams: StreamConfig[], where = 'streams'): void {
  const withProportion = streams.filter((s) => s.proportion !== undefined).length;
  if (withProportion !== 0 && withProportion !== streams.length) {
    const missing = streams.filter((s) => s.proportion === undefined).map((s) => s.name);
    throw new Error(`${where}: proportion given for some streams but not for ${missing.join(', ')}`);
  }
}
