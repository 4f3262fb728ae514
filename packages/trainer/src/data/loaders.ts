import {
  DATASET_KEYS,
  DataMixer,
  type DatasetConfig,
  DEFAULT_SHUFFLE_SEED,
  expandPreset,
  type LoaderConfig,
  type MixerState,
  PRESETS,
  parseTrainLoader,
  resolveTokenizerFile,
  STREAM_KEYS,
  type StreamConfig,
} from '@mptjs/data-mixer';
import { TrainConfigError } from '../config/errors.js';
import { Registry } from '../config/registry.js';
import { nonNegative, type Section } from '../config/section.js';

/**
 * One data loader: reads its own keys of a `train_loader` / `eval_loader` section (not `name`), and opens it from
 * the section as written (the data mixer validates what it reads again when it opens).
 */
export interface LoaderEntry {
  read(s: Section, name: string, defaultSeqLen: number): LoaderConfig;
  open(section: unknown, tokenizerName: string, seqLen: number, state?: unknown): Promise<DataMixer>;
}

function readStream(s: Section, name: string): StreamConfig {
  const stream: StreamConfig = { name, local: s.required('local', (sec, k) => sec.str(k)) };
  s.str('remote'); // accepted (and checked to be a path); nothing is downloaded here
  const split = s.str('split');
  const proportion = s.num('proportion', nonNegative, 'a number >= 0');
  const repeat = s.num('repeat', nonNegative, 'a number >= 0');
  const choose = s.int('choose', 0);
  const textField = s.str('text_field');
  // The data mixer validates the rest itself when it opens (see its README); here they are only known keys.
  s.accept(...STREAM_KEYS);
  s.finish();
  if (textField !== undefined) stream.textField = textField;
  if (split !== undefined) stream.split = split;
  if (proportion !== undefined) stream.proportion = proportion;
  if (repeat !== undefined) stream.repeat = repeat;
  if (choose !== undefined) stream.choose = choose;
  const given = [proportion, repeat, choose].filter((v) => v !== undefined).length;
  if (given > 1)
    throw new TrainConfigError(`config key "${s.path}" may set only one of proportion, repeat, choose`);
  return stream;
}

function readDataset(d: Section, defaultSeqLen: number): DatasetConfig {
  const streamsSection = d.optionalSection('streams');
  const streams = streamsSection
    ? Object.keys(streamsSection.obj).map((k) => readStream(streamsSection.section(k), k))
    : [];
  streamsSection?.finish();
  const dataset: DatasetConfig = {
    shuffle: d.bool('shuffle') ?? false,
    // The mixer's default (llm-foundry's 9176), not `seed`: this view must describe what the mixer does.
    shuffleSeed: d.int('shuffle_seed') ?? DEFAULT_SHUFFLE_SEED,
    maxSeqLen: d.int('max_seq_len', 1) ?? defaultSeqLen,
    onBadRecord: d.oneOf('on_bad_record', ['fail', 'skip'] as const) ?? 'fail',
    streams,
  };
  d.int('shuffle_block_size', 1);
  const textField = d.str('text_field');
  if (textField !== undefined) dataset.textField = textField;
  const preset = d.oneOf('preset', Object.keys(PRESETS));
  const root = d.str('root');
  if (preset !== undefined) {
    if (root === undefined)
      throw new TrainConfigError(`config key "${d.key('preset')}" needs "${d.key('root')}"`);
    dataset.preset = { name: preset, root };
  } else if (root !== undefined) {
    throw new TrainConfigError(`config key "${d.key('root')}" is only used with "${d.key('preset')}"`);
  }
  const local = d.str('local');
  const remote = d.str('remote');
  const split = d.str('split');
  const eos = d.int('eos_token_id');
  const bos = d.int('bos_token_id');
  if (local !== undefined) dataset.local = local;
  if (remote !== undefined) dataset.remote = remote;
  if (split !== undefined) dataset.split = split;
  if (eos !== undefined) dataset.eosTokenId = eos;
  if (bos !== undefined) dataset.bosTokenId = bos;
  d.accept(...DATASET_KEYS);
  d.finish();
  if (streams.length === 0 && local === undefined && remote === undefined && preset === undefined) {
    throw new TrainConfigError(`config key "${d.path}" needs "local", "remote", "streams" or "preset"`);
  }
  return dataset;
}

/** Opens the mixer for a loader section as written (the mixer validates its own keys). */
export async function openMixer(
  loaderSection: unknown,
  tokenizerName: string,
  seqLen: number,
  state?: unknown,
): Promise<DataMixer> {
  const config = parseTrainLoader(expandPreset(loaderSection, 'config'), seqLen);
  if (config.maxSeqLen !== seqLen) {
    throw new Error(
      `the loader's max_seq_len (${config.maxSeqLen}) differs from the model's sequence length (${seqLen})`,
    );
  }
  const tokenizer = { path: resolveTokenizerFile(tokenizerName) };
  return DataMixer.open(state ? { config, tokenizer, state: state as MixerState } : { config, tokenizer });
}

/** llm-foundry's `text` loader: the data mixer over JSON-lines or MDS streams. */
export const loaders = new Registry<LoaderEntry>('data loader').register('text', {
  read: (s, name, defaultSeqLen) => {
    const loader: LoaderConfig = {
      name,
      dataset: readDataset(s.section('dataset'), defaultSeqLen),
      dropLast: s.bool('drop_last') ?? true,
      numWorkers: s.int('num_workers') ?? 0,
    };
    s.accept('pin_memory', 'prefetch_factor', 'persistent_workers', 'timeout', 'label');
    return loader;
  },
  open: openMixer,
});
