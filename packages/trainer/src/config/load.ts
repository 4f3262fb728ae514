import { readFileSync } from 'node:fs';
import { stringify as stringifyYaml } from 'yaml';
import { TrainConfigError } from './errors.js';
import { interpolate } from './interpolate.js';
import { applyOverrides } from './overrides.js';
import { type TrainConfig, validateTrainConfig } from './schema.js';
import { isObject, type Json } from './section.js';
import { parseYamlStrict } from './yaml.js';

export interface LoadedConfig {
  /** The config as resolved: overrides applied, `${...}` interpolated. */
  resolved: Json;
  config: TrainConfig;
}

/** Parses YAML text, applies `--set` overrides, interpolates and validates. `source` names the text in errors. */
export function parseTrainConfig(
  text: string,
  overrides: readonly string[] = [],
  source = 'config',
): LoadedConfig {
  let doc: unknown;
  try {
    doc = parseYamlStrict(text);
  } catch (err) {
    throw new TrainConfigError(`${source}: invalid YAML: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new TrainConfigError(`${source}: the top level must be a mapping`);
  const resolved = interpolate(applyOverrides(doc, overrides));
  return { resolved, config: validateTrainConfig(resolved) };
}

export function loadTrainConfig(path: string, overrides: readonly string[] = []): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TrainConfigError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  return parseTrainConfig(text, overrides, path);
}

/** The resolved config as YAML, for printing at the start of a run (llm-foundry prints it too). */
export function formatResolvedConfig(resolved: Json): string {
  return stringifyYaml(resolved, { lineWidth: 0 });
}
