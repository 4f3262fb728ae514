// biome-ignore-all lint/suspicious/noTemplateCurlyInString: OmegaConf ${...} references are what these tests are about
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { InterpolationError, interpolate } from './interpolate.js';
import { parseYamlStrict } from './parse-strict.js';

function resolve(yaml: string): unknown {
  const doc = parse(yaml) as Record<string, unknown>;
  return interpolate(doc, doc, 'c.yaml');
}

function problemOf(yaml: string): InterpolationError {
  try {
    resolve(yaml);
  } catch (err) {
    if (err instanceof InterpolationError) return err;
    throw err;
  }
  throw new Error('resolved without an error');
}

describe('the YAML interpolator', () => {
  it('resolves paths from the top, and a bare name at the top level before variables', () => {
    expect(resolve('variables: {n: 3, m: 4}\nm: 9\na: ${variables.n}\nb: ${n}\nc: ${m}\n')).toMatchObject({
      a: 3,
      b: 3,
      c: 9,
    });
  });

  it('keeps the type of a whole-string reference and splices references into longer strings', () => {
    const out = resolve(
      'variables: {n: 128, dir: data, on: true, sec: {x: 1}}\na: ${variables.sec}\nb: "${dir}/c4-${n}"\nc: ${on}\nd: "${ n }"\n',
    ) as Record<string, unknown>;
    expect(out['a']).toEqual({ x: 1 });
    expect(out['b']).toBe('data/c4-128');
    expect(out['c']).toBe(true);
    expect(out['d']).toBe(128);
  });

  it('resolves references inside referenced values, through lists too', () => {
    expect(
      resolve('variables: {root: /d, c4: "${root}/c4"}\nstreams: ["${variables.c4}", x]\n'),
    ).toMatchObject({
      streams: ['/d/c4', 'x'],
    });
  });

  it('names the key and the reference of a dangling one, and never finds inherited members', () => {
    const e = problemOf('a: {b: [1, "${nope}"]}\n');
    expect([e.problem, e.key, e.ref]).toEqual(['missing', 'a.b[1]', 'nope']);
    expect(e.message).toBe('c.yaml.a.b[1]: cannot resolve ${nope}');
    expect(problemOf('a: ${constructor}\n').message).toBe('c.yaml.a: cannot resolve ${constructor}');
    expect(problemOf('a: ${a.toString}\n').problem).toBe('missing');
  });

  it('reports a cycle instead of recursing without end', () => {
    const e = problemOf('a: ${b}\nb: "x${variables.c}"\nvariables: {c: "${a}"}\n');
    expect(e.problem).toBe('cycle');
    expect(e.message).toMatch(/^c\.yaml\.a: interpolation cycle through \$\{b\}$/);
    expect(problemOf('a: ${a}\n').problem).toBe('cycle');
  });

  it('refuses to splice a mapping or a list into a string', () => {
    expect(problemOf('v: {x: 1}\na: "p-${v}"\n').message).toBe(
      'c.yaml.a: cannot splice the mapping or list ${v} into a string',
    );
    expect(problemOf('v: [1]\na: "p-${v}"\n').problem).toBe('splice');
  });

  it('refuses a YAML alias inside its own anchor', () => {
    const doc = parseYamlStrict('a: &x [1, *x]\n') as Record<string, unknown>;
    expect(() => interpolate(doc, doc)).toThrow(
      'config.a[1]: contains itself (a YAML alias inside its own anchor)',
    );
    // The same mapping twice, side by side, is fine: only a container inside itself is a cycle.
    expect(resolve('v: &s {x: 1}\na: [*s, *s]\n')).toMatchObject({ a: [{ x: 1 }, { x: 1 }] });
  });

  it('keeps a __proto__ key as a key of the result, never as its prototype', () => {
    const doc = parseYamlStrict('a: {__proto__: {polluted: 1}, b: 2}\n') as Record<string, unknown>;
    const out = interpolate(doc, doc) as Record<string, Record<string, unknown>>;
    expect(Object.keys(out['a']!)).toEqual(['__proto__', 'b']);
    expect(Object.getPrototypeOf(out['a'])).toBe(Object.prototype);
    expect(out['a']!['polluted']).toBeUndefined();
  });

  it('leaves values without references as they are', () => {
    const doc = { a: 1, b: null, c: ['x', { d: false }], e: '$notaref {x}' };
    expect(interpolate(doc, doc)).toEqual(doc);
  });
});

describe('strict YAML parsing', () => {
  it('refuses an unresolved tag instead of reading it as a string', () => {
    expect(() => parseYamlStrict('a: !foo bar\n')).toThrow('Unresolved tag: !foo');
    expect(parseYamlStrict('a: [1, 2]\n')).toEqual({ a: [1, 2] });
  });
});
