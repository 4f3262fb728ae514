// The one error a loader section's parser throws: the key path and what is wrong with it, as data, so that every
// reader of the section (this package's, the trainer's) reports the same rule in its own words.

/** What a value must be. */
export type ValueRule =
  | { type: 'mapping'; of?: string }
  | { type: 'string' }
  | { type: 'path' }
  | { type: 'boolean' }
  | { type: 'positive-number' }
  | { type: 'integer'; min: number }
  | { type: 'one-of'; allowed: readonly string[] };

export type MixerConfigProblem =
  /** A key the section does not take. */
  | { kind: 'unknown-key' }
  /** A required key that is absent (or null). */
  | { kind: 'missing' }
  /** A value that breaks its rule. */
  | { kind: 'invalid'; rule: ValueRule; got: unknown }
  /** A section that needs one of these keys (names relative to the section, or full keys for a sibling). */
  | { kind: 'needs'; anyOf: readonly string[] }
  /** A key that means something only next to another (a full key). */
  | { kind: 'only-with'; other: string }
  /** A mapping that must hold at least one entry. */
  | { kind: 'empty' }
  /** Keys of one section that contradict each other. */
  | { kind: 'conflict'; detail: string };

/** `a, b or c`. */
function listOr(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

function describeRule(rule: ValueRule): string {
  switch (rule.type) {
    case 'mapping':
      return rule.of ? `a mapping of ${rule.of}` : 'a mapping';
    case 'string':
      return 'a string';
    case 'path':
      return 'a directory path';
    case 'boolean':
      return 'true or false';
    case 'positive-number':
      return 'a positive number';
    case 'integer':
      return rule.min === 1
        ? 'a positive integer'
        : rule.min === 0
          ? 'a non-negative integer'
          : `an integer >= ${rule.min}`;
    case 'one-of':
      return listOr(rule.allowed);
  }
}

function describe(key: string, problem: MixerConfigProblem): string {
  switch (problem.kind) {
    case 'unknown-key':
      return `unknown key ${key}`;
    case 'missing':
      return `${key} is required`;
    case 'invalid':
      return `${key} must be ${describeRule(problem.rule)}, got ${JSON.stringify(problem.got)}`;
    case 'needs':
      return `${key} needs ${listOr(problem.anyOf)}`;
    case 'only-with':
      return `${key} is only used with ${problem.other}`;
    case 'empty':
      return `${key} is empty`;
    case 'conflict':
      return `${key}: ${problem.detail}`;
  }
}

/**
 * A `train_loader` / `eval_loader` dataset or stream key that cannot be used as written. `key` is the full dotted
 * path (`train_loader.dataset.streams.c4.proportion`); the message is this package's wording of `problem`
 * (`train_loader.dataset.streams.c4.proportion must be a positive number, got 0`).
 */
export class MixerConfigError extends Error {
  override name = 'MixerConfigError';

  constructor(
    readonly key: string,
    readonly problem: MixerConfigProblem,
  ) {
    super(describe(key, problem));
  }
}
