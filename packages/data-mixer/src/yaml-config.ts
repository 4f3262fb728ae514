// Reads the parts of an llm-foundry YAML config the data tools need: `variables` (for `${...}` interpolation),
// `max_seq_len`, `tokenizer` and `train_loader`. Other top-level keys belong to the trainer and are ignored here.
import { readFileSync } from 'node:fs';
import { type MixerConfig, parseTrainLoader } from './config.js';
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
  const fallback = typeof resolved['max_seq_len'] === 'number' ? resolved['max_seq_len'] : undefined;
  return { mixer: parseTrainLoader(resolved['train_loader'], fallback), tokenizerPath: tokenizer['name'] };
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
