import { TrainConfigError } from './errors.js';

type Json = unknown;
const REF = /\$\{([^}]+)\}/g;
const WHOLE = /^\$\{([^}]+)\}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lookup(root: Record<string, unknown>, path: string): unknown {
  let cur: unknown = root;
  for (const part of path.split('.')) {
    // Own keys only: `${constructor}` must not find Object's inherited members.
    if (!isObject(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/**
 * Resolves OmegaConf-style `${a.b}` references against the whole config, as llm-foundry does. A bare `${name}`
 * is looked up at the top level and then under `variables`. A string that is exactly one reference takes the
 * referenced value with its type; references inside longer strings are spliced in as text. Cycles are an error.
 */
export function interpolate(root: Record<string, unknown>): Record<string, unknown> {
  const resolving = new Set<string>();
  // Containers being walked: a YAML alias inside its own anchor (`a: &x [*x]`) makes a cycle.
  const ancestors = new Set<object>();

  const resolveRef = (ref: string, at: string): unknown => {
    const path = ref.trim();
    if (resolving.has(path))
      throw new TrainConfigError(`config key "${at}": interpolation cycle through "\${${path}}"`);
    let value = lookup(root, path);
    let where = path;
    if (value === undefined && !path.includes('.')) {
      value = lookup(root, `variables.${path}`);
      where = `variables.${path}`;
    }
    if (value === undefined) {
      throw new TrainConfigError(
        `config key "${at}": interpolation "\${${path}}" refers to a key that does not exist`,
      );
    }
    resolving.add(path);
    try {
      return walk(value, where);
    } finally {
      resolving.delete(path);
    }
  };

  const walk = (value: Json, at: string): Json => {
    if (typeof value === 'string') {
      const whole = WHOLE.exec(value);
      if (whole) return resolveRef(whole[1]!, at);
      if (!value.includes('${')) return value;
      return value.replace(REF, (_m, ref: string) => {
        const v = resolveRef(ref, at);
        if (isObject(v) || Array.isArray(v)) {
          throw new TrainConfigError(
            `config key "${at}": cannot splice the object "\${${ref}}" into a string`,
          );
        }
        return String(v);
      });
    }
    if (typeof value !== 'object' || value === null) return value;
    if (ancestors.has(value)) {
      throw new TrainConfigError(`config key "${at}" contains itself (a YAML alias inside its own anchor)`);
    }
    ancestors.add(value);
    try {
      if (Array.isArray(value)) return value.map((v, i) => walk(v, `${at}[${i}]`));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = walk(v, at ? `${at}.${k}` : k);
      return out;
    } finally {
      ancestors.delete(value);
    }
  };

  return walk(root, '') as Record<string, unknown>;
}
