// The mixer's configuration, parsed from llm-foundry's `train_loader` section. This is the one definition of a
// valid dataset / stream section: the trainer's `text` loader reads its sections with `parseDataset` too.
import { MixerConfigError, type ValueRule } from './config-error.js';
import { PRESETS, type PresetName, presetStreams } from './presets.js';

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
  /** `preset: redpajama` with `root`: expanded into the seven RedPajama streams (see `mixerConfig`). */
  preset?: { name: PresetName; root: string };
  shuffleBlockSize: number;
  /** The streams as written (a dataset-level `text_field` is applied when the mixer config is built). */
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

const fail = (key: string, rule: ValueRule, got: unknown): never => {
  throw new MixerConfigError(key, { kind: 'invalid', rule, got });
};

/**
 * Typed reads of one mapping's keys. A null value is an absent key (YAML's `key:`, `--set key=null`, and
 * MosaicML streaming's `None` default).
 */
class Keys {
  constructor(
    readonly obj: Dict,
    readonly where: string,
  ) {}

  key(name: string): string {
    return `${this.where}.${name}`;
  }

  private get(name: string): unknown {
    return Object.hasOwn(this.obj, name) ? (this.obj[name] ?? undefined) : undefined;
  }

  only(allowed: ReadonlySet<string>): void {
    for (const name of Object.keys(this.obj)) {
      if (!allowed.has(name)) throw new MixerConfigError(this.key(name), { kind: 'unknown-key' });
    }
  }

  string(name: string): string | undefined {
    const v = this.get(name);
    return v === undefined || typeof v === 'string' ? v : fail(this.key(name), { type: 'string' }, v);
  }

  path(name: string): string | undefined {
    const v = this.get(name);
    return v === undefined || (typeof v === 'string' && v !== '')
      ? v
      : fail(this.key(name), { type: 'path' }, v);
  }

  boolean(name: string): boolean | undefined {
    const v = this.get(name);
    return v === undefined || typeof v === 'boolean' ? v : fail(this.key(name), { type: 'boolean' }, v);
  }

  positiveNumber(name: string): number | undefined {
    const v = this.get(name);
    if (v === undefined || (typeof v === 'number' && Number.isFinite(v) && v > 0)) return v;
    return fail(this.key(name), { type: 'positive-number' }, v);
  }

  integer(name: string, min: number, fallback?: number): number | undefined {
    const v = this.get(name) ?? fallback;
    if (v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= min)) return v;
    return fail(this.key(name), { type: 'integer', min }, v);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.get(name);
    if (v === undefined || (allowed as readonly unknown[]).includes(v)) return v as T | undefined;
    return fail(this.key(name), { type: 'one-of', allowed }, v);
  }

  mapping(name: string, of?: string): Dict | undefined {
    const v = this.get(name);
    if (v === undefined || isDict(v)) return v;
    return fail(this.key(name), of ? { type: 'mapping', of } : { type: 'mapping' }, v);
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
 * Every key `train_loader.dataset` may have: the ones this mixer uses (with this project's `preset` / `root`), and
 * those llm-foundry / MosaicML streaming accept that do not change what it produces here (no remote download).
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
  'preset',
  'root',
]);

function parseStream(name: string, raw: unknown, where: string): StreamConfig {
  if (raw === null || raw === undefined) throw new MixerConfigError(where, { kind: 'missing' });
  if (!isDict(raw)) return fail(where, { type: 'mapping' }, raw);
  const keys = new Keys(raw, where);
  keys.only(STREAM_KEYS);
  const local = keys.path('local');
  if (local === undefined) throw new MixerConfigError(keys.key('local'), { kind: 'missing' });
  const stream: StreamConfig = { name, local };
  keys.string('remote'); // checked to be a path; nothing is downloaded
  const split = keys.string('split');
  const proportion = keys.positiveNumber('proportion');
  const repeat = keys.positiveNumber('repeat');
  const choose = keys.integer('choose', 1);
  const textField = keys.string('text_field');
  const given = (['proportion', 'repeat', 'choose'] as const).filter(
    (k) => ({ proportion, repeat, choose })[k] !== undefined,
  );
  if (given.length > 1) {
    throw new MixerConfigError(where, {
      kind: 'conflict',
      detail: `give only one of proportion, repeat, choose (got ${given.join(', ')})`,
    });
  }
  if (proportion !== undefined) stream.proportion = proportion;
  if (repeat !== undefined) stream.repeat = repeat;
  if (choose !== undefined) stream.choose = choose;
  if (split !== undefined) stream.split = split;
  if (textField !== undefined) stream.textField = textField;
  return stream;
}

/** `train_loader.dataset` of a loader section, or the section itself when it is the dataset mapping. */
function datasetOf(loader: unknown, where: string): { dataset: unknown; where: string } {
  if (!isDict(loader)) return fail(where, { type: 'mapping' }, loader);
  return isDict(loader['dataset'])
    ? { dataset: loader['dataset'], where: `${where}.dataset` }
    : { dataset: loader, where };
}

/**
 * Validates a loader's `dataset` mapping (`where` is its key path, e.g. `eval_loader.dataset`): every key, every
 * stream, a preset and the weights. `max_seq_len` falls back to `fallbackMaxSeqLen` (the config's top-level
 * value). Every problem is a `MixerConfigError` naming the key.
 */
export function parseDataset(raw: unknown, where: string, fallbackMaxSeqLen?: number): DatasetConfig {
  if (raw === null || raw === undefined) throw new MixerConfigError(where, { kind: 'missing' });
  if (!isDict(raw)) return fail(where, { type: 'mapping' }, raw);
  const keys = new Keys(raw, where);
  keys.only(DATASET_KEYS);
  const dataset: DatasetConfig = {
    maxSeqLen:
      keys.integer('max_seq_len', 1, fallbackMaxSeqLen) ??
      fail(keys.key('max_seq_len'), { type: 'integer', min: 1 }, undefined),
    // llm-foundry's StreamingTextDataset reads in stored order unless `shuffle: true` (its train yamls set it).
    shuffle: keys.boolean('shuffle') ?? false,
    shuffleSeed: keys.integer('shuffle_seed', 0) ?? DEFAULT_SHUFFLE_SEED,
    shuffleBlockSize: keys.integer('shuffle_block_size', 1) ?? DEFAULT_SHUFFLE_BLOCK_SIZE,
    onBadRecord: keys.oneOf('on_bad_record', ['fail', 'skip'] as const) ?? 'fail',
    streams: [],
  };
  const textField = keys.string('text_field');
  const local = keys.path('local');
  const remote = keys.string('remote');
  const split = keys.string('split');
  const eos = keys.integer('eos_token_id', 0);
  const bos = keys.integer('bos_token_id', 0);
  if (textField !== undefined) dataset.textField = textField;
  if (local !== undefined) dataset.local = local;
  if (remote !== undefined) dataset.remote = remote;
  if (split !== undefined) dataset.split = split;
  if (eos !== undefined) dataset.eosTokenId = eos;
  if (bos !== undefined) dataset.bosTokenId = bos;

  const preset = keys.oneOf('preset', Object.keys(PRESETS) as PresetName[]);
  const root = keys.path('root');
  if (preset !== undefined) {
    if (root === undefined)
      throw new MixerConfigError(keys.key('preset'), { kind: 'needs', anyOf: [keys.key('root')] });
    dataset.preset = { name: preset, root };
  } else if (root !== undefined) {
    throw new MixerConfigError(keys.key('root'), { kind: 'only-with', other: keys.key('preset') });
  }

  const streams = keys.mapping('streams', 'name -> stream');
  if (streams !== undefined) {
    dataset.streams = Object.entries(streams).map(([name, s]) =>
      parseStream(name, s, `${keys.key('streams')}.${name}`),
    );
    if (dataset.streams.length === 0 && preset === undefined) {
      throw new MixerConfigError(keys.key('streams'), { kind: 'empty' });
    }
    validateWeights(dataset.streams, keys.key('streams'));
  } else if (local === undefined && preset === undefined) {
    throw new MixerConfigError(where, { kind: 'needs', anyOf: ['streams', 'local', 'preset'] });
  }
  return dataset;
}

/**
 * The mixer config a validated dataset describes: a `preset` expanded into its streams (it replaces `streams`),
 * else the `streams`, else the lone `local` (with `split`) as one stream named `default`; a dataset-level
 * `text_field` applies to every stream that gives none.
 */
export function mixerConfig(dataset: DatasetConfig): MixerConfig {
  let streams: StreamConfig[];
  if (dataset.preset) streams = presetStreams(dataset.preset.name, dataset.preset.root);
  else if (dataset.streams.length > 0) streams = dataset.streams.map((s) => ({ ...s }));
  else {
    streams = [{ name: 'default', local: dataset.local as string }];
    if (dataset.split !== undefined) streams[0]!.split = dataset.split;
  }
  if (dataset.textField !== undefined) for (const s of streams) s.textField ??= dataset.textField;
  const { maxSeqLen, shuffle, shuffleSeed, shuffleBlockSize, onBadRecord } = dataset;
  return { streams, maxSeqLen, shuffle, shuffleSeed, shuffleBlockSize, onBadRecord };
}

/**
 * Parses `train_loader` (or its `dataset` mapping directly) into the mixer's config. `max_seq_len` falls back to
 * `fallbackMaxSeqLen` (the config's top-level value); `where` names the section in errors (`eval_loader`).
 */
export function parseTrainLoader(
  trainLoader: unknown,
  fallbackMaxSeqLen?: number,
  where = 'train_loader',
): MixerConfig {
  const section = datasetOf(trainLoader, where);
  return mixerConfig(parseDataset(section.dataset, section.where, fallbackMaxSeqLen));
}

/** Either every stream gives `proportion`, or none does (then each uses `repeat` or `choose`, default repeat 1). */
export function validateWeights(streams: StreamConfig[], where = 'streams'): void {
  const withProportion = streams.filter((s) => s.proportion !== undefined).length;
  if (withProportion !== 0 && withProportion !== streams.length) {
    const missing = streams.filter((s) => s.proportion === undefined).map((s) => s.name);
    throw new MixerConfigError(where, {
      kind: 'conflict',
      detail: `proportion given for some streams but not for ${missing.join(', ')}`,
    });
  }
}
