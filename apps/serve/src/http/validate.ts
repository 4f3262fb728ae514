import { badRequest } from '../errors.js';

/**
 * Request-field readers: each takes the raw JSON value and its parameter name and returns the typed value or
 * throws a 400 naming the parameter. `null` counts as "not given", as OpenAI's API treats it.
 */
export type Reader<T> = (value: unknown, param: string) => T;

export type Parsed<S extends Record<string, Reader<unknown>>> = { [K in keyof S]: ReturnType<S[K]> };

/** Reads every field of `body` with `spec`; a field the spec does not name is an error. */
export function readFields<S extends Record<string, Reader<unknown>>>(
  body: Record<string, unknown>,
  spec: S,
): Parsed<S> {
  for (const key of Object.keys(body)) {
    if (!Object.hasOwn(spec, key)) throw badRequest(`Unrecognized request argument supplied: ${key}`, key);
  }
  const out: Record<string, unknown> = {};
  for (const [key, read] of Object.entries(spec)) out[key] = read(body[key], key);
  return out as Parsed<S>;
}

const given = (v: unknown): boolean => v !== undefined && v !== null;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function wrongType(param: string, expected: string, value: unknown): never {
  throw badRequest(`'${param}' must be ${expected}, got ${typeName(value)}`, param);
}

export function optionalString(): Reader<string | undefined> {
  return (v, p) => {
    if (!given(v)) return undefined;
    if (typeof v !== 'string') wrongType(p, 'a string', v);
    return v;
  };
}

export function optionalBoolean(fallback: boolean): Reader<boolean> {
  return (v, p) => {
    if (!given(v)) return fallback;
    if (typeof v !== 'boolean') wrongType(p, 'a boolean', v);
    return v;
  };
}

export function optionalNumber<F extends number | undefined>(
  fallback: F,
  range: { min: number; max: number; minExclusive?: boolean; integer?: boolean },
): Reader<number | F> {
  return (v, p) => {
    if (!given(v)) return fallback;
    const what = range.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v)) wrongType(p, what, v);
    if (range.integer && !Number.isInteger(v)) wrongType(p, what, v);
    const low = range.minExclusive ? v <= range.min : v < range.min;
    if (low || v > range.max) {
      const lo = range.minExclusive ? `> ${range.min}` : `>= ${range.min}`;
      throw badRequest(`'${p}' must be ${lo} and <= ${range.max}, got ${v}`, p);
    }
    return v;
  };
}

/** `stop`: a string or a list of up to 4 non-empty strings. */
export function stopStrings(): Reader<string[]> {
  return (v, p) => {
    if (!given(v)) return [];
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
      wrongType(p, 'a string or a list of strings', v);
    }
    if (list.length > 4) throw badRequest(`'${p}' takes at most 4 strings, got ${list.length}`, p);
    if (list.some((s) => s.length === 0)) throw badRequest(`'${p}' must not contain empty strings`, p);
    return list as string[];
  };
}

/** `stream_options`: `{include_usage?: boolean}`. */
export function streamOptions(): Reader<{ includeUsage: boolean }> {
  return (v, p) => {
    if (!given(v)) return { includeUsage: false };
    if (typeof v !== 'object' || Array.isArray(v)) wrongType(p, 'an object', v);
    const o = v as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (key !== 'include_usage')
        throw badRequest(`Unrecognized request argument supplied: ${p}.${key}`, `${p}.${key}`);
    }
    return { includeUsage: optionalBoolean(false)(o['include_usage'], `${p}.include_usage`) };
  };
}
