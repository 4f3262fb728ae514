// The one `${...}` interpolator of the project's YAML configs: the trainer (`mptjs-train run`) and the data tools
// (`mptjs-train data`) read the same llm-foundry file, so they resolve it by the same rules. The rules are listed
// once, in the data-mixer README ("Interpolation").

/** What went wrong with a reference. */
export type InterpolationProblem = 'missing' | 'cycle' | 'contains-itself' | 'splice';

const DESCRIBE: Record<InterpolationProblem, (ref: string) => string> = {
  missing: (ref) => `cannot resolve \${${ref}}`,
  cycle: (ref) => `interpolation cycle through \${${ref}}`,
  'contains-itself': () => 'contains itself (a YAML alias inside its own anchor)',
  splice: (ref) => `cannot splice the mapping or list \${${ref}} into a string`,
};

/**
 * A reference that cannot be resolved. `key` is the config key holding it (`''` for the whole document,
 * `a.b`, `a.b[0]`) and `ref` the reference inside `${}` (trimmed), so a caller can word the error its own way;
 * the message is `SOURCE.KEY: ...`.
 */
export class InterpolationError extends Error {
  override name = 'InterpolationError';

  constructor(
    readonly problem: InterpolationProblem,
    readonly key: string,
    readonly ref: string,
    source: string,
  ) {
    const where = key === '' ? source : key.startsWith('[') ? `${source}${key}` : `${source}.${key}`;
    super(`${where}: ${DESCRIBE[problem](ref)}`);
  }
}

const REF = /\$\{([^}]+)\}/g;
const WHOLE = /^\$\{([^}]+)\}$/;

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lookup(root: Record<string, unknown>, path: string): unknown {
  let cur: unknown = root;
  for (const part of path.split('.')) {
    // Own keys only: `${constructor}` must not find Object's inherited members.
    if (!isMapping(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/**
 * Resolves OmegaConf-style `${a.b}` references in `value` against the document `root`, as llm-foundry does:
 * - `${a.b}` is a path from the top of the document; a bare `${name}` is looked up at the top level, then under
 *   `variables`; only the document's own keys count;
 * - a string that is exactly one reference takes the referenced value with its type (a number stays a number, a
 *   mapping a mapping); references inside a longer string are spliced in as text, and splicing a mapping or a
 *   list is an error;
 * - referenced values are resolved in turn; a reference that leads back to itself is an error, as is a YAML
 *   alias inside its own anchor (`a: &x [*x]`).
 * Errors are `InterpolationError`s whose message starts with `source` and the key.
 */
export function interpolate(value: unknown, root: Record<string, unknown>, source = 'config'): unknown {
  // Locations being resolved (`a.b`, `variables.n`): meeting one again is a cycle.
  const resolving = new Set<string>();
  // Containers being walked: a YAML alias inside its own anchor makes a cycle.
  const ancestors = new Set<object>();

  const resolveRef = (ref: string, at: string): unknown => {
    const path = ref.trim();
    let where = path;
    let found = lookup(root, path);
    if (found === undefined && !path.includes('.')) {
      where = `variables.${path}`;
      found = lookup(root, where);
    }
    if (found === undefined) throw new InterpolationError('missing', at, path, source);
    if (resolving.has(where)) throw new InterpolationError('cycle', at, path, source);
    resolving.add(where);
    try {
      return walk(found, where);
    } finally {
      resolving.delete(where);
    }
  };

  const walk = (v: unknown, at: string): unknown => {
    if (typeof v === 'string') {
      const whole = WHOLE.exec(v);
      if (whole) return resolveRef(whole[1]!, at);
      if (!v.includes('${')) return v;
      return v.replace(REF, (_m, ref: string) => {
        const r = resolveRef(ref, at);
        if (typeof r === 'object' && r !== null)
          throw new InterpolationError('splice', at, ref.trim(), source);
        return String(r);
      });
    }
    if (typeof v !== 'object' || v === null) return v;
    if (ancestors.has(v)) throw new InterpolationError('contains-itself', at, '', source);
    ancestors.add(v);
    try {
      if (Array.isArray(v)) return v.map((item, i) => walk(item, `${at}[${i}]`));
      // fromEntries defines own keys: a `__proto__` key stays a key (and an unknown one), not a prototype.
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, at ? `${at}.${k}` : k)]));
    } finally {
      ancestors.delete(v);
    }
  };

  return walk(value, '');
}
