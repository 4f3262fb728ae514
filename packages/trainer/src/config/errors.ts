import { MixerConfigError, type MixerConfigProblem, type ValueRule } from '@mptjs/data-mixer';

/** A config that cannot be used as written; the message names the full key path. */
export class TrainConfigError extends Error {
  override name = 'TrainConfigError';
}

const quoted = (names: readonly string[]) => names.map((n) => `"${n}"`);

/** A rule in the words `Section` uses for the same kind of value. */
function expected(rule: ValueRule): string {
  switch (rule.type) {
    case 'mapping':
      return rule.of ? `a mapping of ${rule.of}` : 'a section (a mapping)';
    case 'string':
      return 'a string';
    case 'path':
      return 'a directory path';
    case 'boolean':
      return 'true or false';
    case 'positive-number':
      return 'a positive number';
    case 'integer':
      return `an integer >= ${rule.min}`;
    case 'one-of':
      return `one of ${quoted(rule.allowed).join(', ')}`;
  }
}

function describe(key: string, problem: MixerConfigProblem): string {
  switch (problem.kind) {
    case 'unknown-key':
      return `unknown config key "${key}"`;
    case 'missing':
      return `config key "${key}" is required`;
    case 'invalid':
      return `config key "${key}" must be ${expected(problem.rule)}, got ${JSON.stringify(problem.got)}`;
    case 'needs': {
      const names = quoted(problem.anyOf);
      const list = names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
      return `config key "${key}" needs ${list}`;
    }
    case 'only-with':
      return `config key "${key}" is only used with "${problem.other}"`;
    case 'empty':
      return `config key "${key}" is empty`;
    case 'conflict':
      return `config key "${key}": ${problem.detail}`;
  }
}

/**
 * The data mixer's verdict on a loader's dataset or stream key (its parser is the one definition of a valid
 * section), worded as this config's other errors; anything else is returned as it is.
 */
export function fromMixerConfigError(err: unknown): unknown {
  if (!(err instanceof MixerConfigError)) return err;
  return new TrainConfigError(describe(err.key, err.problem), { cause: err });
}
