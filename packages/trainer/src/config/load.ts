import { readFileSync } from 'node:fs';
import { InterpolationError, interpolate, parseYamlStrict } from '@mptjs/data-mixer';
import { stringify as stringifyYaml } from 'yaml';
import { TrainConfigError } from './errors.js';
import { applyOverrides } from './overrides.js';
import { type TrainConfig, validateTrainConfig } from './schema.js';
import { isObject, type Json } from './section.js';

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
  const resolved = resolveReferences(applyOverrides(doc, overrides));
  return { resolved, config: validateTrainConfig(resolved) };
}

/** The data mixer's interpolator (one set of rules for every reader of the file), its errors in this schema's words. */
function resolveReferences(doc: Json): Json {
  try {
    return interpolate(doc, doc) as Json;
  } catch (err) {
    if (!(err instanceof InterpolationError)) throw err;
    const { key, ref } = err;
    const message = {
      missing: `config key "${key}": interpolation "\${${ref}}" refers to a key that does not exist`,
      cycle: `config key "${key}": interpolation cycle through "\${${ref}}"`,
      'contains-itself': `config key "${key}" contains itself (a YAML alias inside its own anchor)`,
      splice: `config key "${key}": cannot splice the object "\${${ref}}" into a string`,
    }[err.problem];
    throw new TrainConfigError(message, { cause: err });
  }
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
