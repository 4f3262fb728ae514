// Reads the parts of an llm-foundry YAML config the data tools need: `variables` (for `${...}` interpolation),
// `max_seq_len`, `tokenizer` and `train_loader`. Other top-level keys belong to the trainer and are ignored here.
import { readFileSync } from 'node:fs';
import { type MixerConfig, parseTrainLoader } from './config.js';
import { type PresetName, presetStreams } from './presets.js';
import { interpolate } from './yaml/interpolate.js';
import { parseYamlStrict } from './yaml/parse-strict.js';

export interface DataRunConfig {
  mixer: MixerConfig;
  /** `tokenizer.name`: a tokenizer.json file or a directory with one. */
  tokenizerPath: string;
}

/** Parses a config document (already read). `preset: redpajama` with `root: DIR` may stand in for `streams`. */
export function parseDataRunConfig(text: string, file = 'config'): DataRunConfig {
  let doc: unknown;
  try {
    doc = parseYamlStrict(text);
  } catch (err) {
    throw new Error(`${file}: invalid YAML (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error(`${file}: expected a mapping`);
  const root = doc as Record<string, unknown>;
  const resolved = interpolate(
    { max_seq_len: root['max_seq_len'], tokenizer: root['tokenizer'], train_loader: root['train_loader'] },
    root,
    file,
  ) as Record<string, unknown>;
  const tokenizer = resolved['tokenizer'] as Record<string, unknown> | undefined;
  if (typeof tokenizer?.['name'] !== 'string')
    throw new Error(`${file}: tokenizer.name must be a path to tokenizer.json`);
  if (resolved['train_loader'] === undefined) throw new Error(`${file}: no train_loader section`);
  const loader = expandPreset(resolved['train_loader'], file);
  const fallback = typeof resolved['max_seq_len'] === 'number' ? resolved['max_seq_len'] : undefined;
  return { mixer: parseTrainLoader(loader, fallback), tokenizerPath: tokenizer['name'] };
}

/**
 * `dataset: {preset: redpajama, root: DIR}` expands to the seven RedPajama streams under DIR; any other loader is
 * returned as it is. `file` prefixes errors.
 */
export function expandPreset(loader: unknown, file: string): unknown {
  const dataset = (loader as Record<string, unknown> | null)?.['dataset'] as
    | Record<string, unknown>
    | undefined;
  if (!dataset || dataset['preset'] === undefined) return loader;
  const { preset, root, ...rest } = dataset;
  if (typeof root !== 'string')
    throw new Error(`${file}: train_loader.dataset.preset needs root: <directory>`);
  const streams = Object.fromEntries(
    presetStreams(preset as PresetName, root).map((s) => [
      s.name,
      { local: s.local, proportion: s.proportion },
    ]),
  );
  return { ...(loader as object), dataset: { ...rest, streams } };
}

export function loadDataRunConfig(path: string): DataRunConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`config not found: ${path}`);
  }
  return parseDataRunConfig(text, path);
}
