import {
  DataMixer,
  type LoaderConfig,
  type MixerState,
  mixerConfig,
  parseDataset,
  resolveTokenizerFile,
} from '@mptjs/data-mixer';
import { fromMixerConfigError } from '../config/errors.js';
import { Registry } from '../config/registry.js';
import type { Section } from '../config/section.js';

/**
 * One data loader: reads its own keys of a `train_loader` / `eval_loader` section (not `name`) into a validated
 * config, and opens its batches from that config.
 */
export interface LoaderEntry {
  read(s: Section, name: string, defaultSeqLen: number): LoaderConfig;
  open(config: LoaderConfig, tokenizerName: string, seqLen: number, state?: unknown): Promise<DataMixer>;
}

/** Opens the data mixer over a validated `text` loader config. */
export async function openMixer(
  loader: LoaderConfig,
  tokenizerName: string,
  seqLen: number,
  state?: unknown,
): Promise<DataMixer> {
  const config = mixerConfig(loader.dataset);
  if (config.maxSeqLen !== seqLen) {
    throw new Error(
      `the loader's max_seq_len (${config.maxSeqLen}) differs from the model's sequence length (${seqLen})`,
    );
  }
  const tokenizer = { path: resolveTokenizerFile(tokenizerName) };
  return DataMixer.open(state ? { config, tokenizer, state: state as MixerState } : { config, tokenizer });
}

/**
 * llm-foundry's `text` loader: the data mixer over JSON-lines or MDS streams. Its `dataset` is validated by the
 * data mixer's own parser (the one definition of a valid dataset and stream), its errors worded as this config's.
 */
export const loaders = new Registry<LoaderEntry>('data loader').register('text', {
  read: (s, name, defaultSeqLen) => {
    let dataset: LoaderConfig['dataset'];
    try {
      dataset = parseDataset(s.raw('dataset'), s.key('dataset'), defaultSeqLen);
    } catch (err) {
      throw fromMixerConfigError(err);
    }
    const loader: LoaderConfig = {
      name,
      dataset,
      dropLast: s.bool('drop_last') ?? true,
      numWorkers: s.int('num_workers') ?? 0,
    };
    s.accept('pin_memory', 'prefetch_factor', 'persistent_workers', 'timeout', 'label');
    return loader;
  },
  open: openMixer,
});
