import { parseYamlStrict } from '@mptjs/data-mixer';
import { TrainConfigError } from './errors.js';

/**
 * Applies `a.b.c=value` overrides (the CLI's `--set`) to a raw config, creating sections as needed. Values are
 * parsed as YAML scalars, so `lr=1e-3` is a number, `eval_first=true` a boolean and `name=foo` a string.
 */
export function applyOverrides(
  config: Record<string, unknown>,
  overrides: readonly string[],
): Record<string, unknown> {
  const out = structuredClone(config);
  for (const item of overrides) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new TrainConfigError(`override "${item}" must look like key.path=value`);
    const path = item.slice(0, eq).trim().split('.');
    if (path.some((p) => p === ''))
      throw new TrainConfigError(`override "${item}" has an empty key in its path`);
    // Assigning to `__proto__` would change an object's prototype (or Object.prototype itself), not set a key.
    if (path.includes('__proto__'))
      throw new TrainConfigError(`override "${item}": "__proto__" is not a config key`);
    let value: unknown;
    try {
      value = parseYamlStrict(item.slice(eq + 1));
    } catch (err) {
      throw new TrainConfigError(`override "${item}": value is not valid YAML (${(err as Error).message})`);
    }
    let cur: Record<string, unknown> = out;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i]!;
      const next = Object.hasOwn(cur, key) ? cur[key] : undefined;
      if (next === undefined || next === null) cur[key] = {};
      else if (typeof next !== 'object' || Array.isArray(next)) {
        throw new TrainConfigError(
          `override "${item}": "${path.slice(0, i + 1).join('.')}" is not a section`,
        );
      }
      cur = cur[key] as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = value ?? null;
  }
  return out;
}
