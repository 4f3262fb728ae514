// Reads the parts of an llm-foundry YAML config the data tools need: `variables` (for `${...}` interpolation),
// `max_seq_len`, `tokenizer` and `train_loader`. Other top-level keys belong to the trainer and are ignored here.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { type MixerConfig, parseTrainLoader } from './config.js';
import { type PresetName, presetStreams } from './presets.js';

export interface DataRunConfig {
  mixer: MixerConfig;
  /** `tokenizer.name`: a tokenizer.json file or a directory with one. */
  tokenizerPath: string;
}

const REF = /\$\{([^}]+)\}/g;

function lookup(root: Record<string, unknown>, path: string, where: string): unknown {
  let value: unknown = root;
  for (const part of path.trim().split('.')) {
    // Own keys only: `${constructor}` must not find Object's inherited members.
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) {
      throw new Error(`${where}: cannot resolve \${${path}}`);
    }
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Resolves OmegaConf-style `${a.b}` references against the whole document (a whole-string ref keeps its type). */
export function interpolate(
  value: unknown,
  root: Record<string, unknown>,
  where = 'config',
  depth = 0,
  ancestors: Set<object> = new Set(),
): unknown {
  if (depth > 20) throw new Error(`${where}: interpolation too deep (a cycle?)`);
  if (typeof value === 'string') {
    const whole = /^\$\{([^}]+)\}$/.exec(value);
    if (whole) return interpolate(lookup(root, whole[1]!, where), root, where, depth + 1, ancestors);
    if (!value.includes('${')) return value;
    return value.replace(REF, (_, path: string) =>
      String(interpolate(lookup(root, path, where), root, where, depth + 1, ancestors)),
    );
  }
  if (typeof value !== 'object' || value === null) return value;
  // A YAML alias inside its own anchor (`a: &x [*x]`) makes a cycle.
  if (ancestors.has(value)) throw new Error(`${where}: contains itself (a YAML alias inside its own anchor)`);
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((v, i) => interpolate(v, root, `${where}[${i}]`, depth, ancestors));
    }
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, root, `${where}.${k}`, depth, ancestors)]),
    );
  } finally {
    ancestors.delete(value);
  }
}

/** Parses a config document (already read). `preset: redpajama` with `root: DIR` may stand in for `streams`. */
export function parseDataRunConfig(text: string, file = 'config'): DataRunConfig {
  let doc: unknown;
  try {
    // Warnings are errors: an unresolved tag (`!foo bar`) would otherwise silently become a string.
    const parsed = parseDocument(text, { logLevel: 'silent' });
    const problem = parsed.errors[0] ?? parsed.warnings[0];
    if (problem) throw problem;
    doc = parsed.toJS();
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
