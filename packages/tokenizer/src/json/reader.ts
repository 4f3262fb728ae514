// Typed access to parsed JSON that reports the JSON path of every bad value.
import { TokenizerJsonError, UnsupportedComponentError } from '../errors.js';
import { describeJsonSyntaxError, loneSurrogatePath } from './text.js';

export const MAX_TOKEN_ID = 2 ** 31 - 1;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'object') return 'an object';
  if (value === undefined) return 'nothing (missing)';
  return `${typeof value} ${String(value)}`;
}

/** A value inside a JSON document, together with its path for error messages. */
export class JsonNode {
  constructor(
    readonly value: unknown,
    readonly path: string,
  ) {}

  fail(expected: string): never {
    throw new TokenizerJsonError(this.path, `expected ${expected}, got ${describe(this.value)}`);
  }

  unsupported(detail: string): never {
    throw new UnsupportedComponentError(this.path, detail);
  }

  isMissing(): boolean {
    return this.value === undefined || this.value === null;
  }

  get(key: string): JsonNode {
    const obj = this.object();
    const step = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    return new JsonNode(
      Object.hasOwn(obj, key) ? obj[key] : undefined,
      this.path ? `${this.path}${step}` : step.replace(/^\./, ''),
    );
  }

  object(): Record<string, unknown> {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value))
      this.fail('an object');
    return this.value as Record<string, unknown>;
  }

  array(): JsonNode[] {
    if (!Array.isArray(this.value)) this.fail('an array');
    return (this.value as unknown[]).map((v, i) => new JsonNode(v, `${this.path}[${i}]`));
  }

  /** Element i of an array node (no check that it exists: for error reporting). */
  at(i: number): JsonNode {
    return new JsonNode((this.value as unknown[])[i], `${this.path}[${i}]`);
  }

  string(): string {
    if (typeof this.value !== 'string') this.fail('a string');
    return this.value as string;
  }

  boolean(): boolean {
    if (typeof this.value !== 'boolean') this.fail('a boolean');
    return this.value as boolean;
  }

  integer(): number {
    if (typeof this.value !== 'number' || !Number.isInteger(this.value)) this.fail('an integer');
    return this.value as number;
  }

  nonNegativeInteger(): number {
    const n = this.integer();
    if (n < 0) this.fail('a non-negative integer');
    return n;
  }

  /** A token id: ids live in Int32Arrays, so 0..2^31-1 (ids beyond would be corrupted, never silently). */
  tokenId(): number {
    const n = this.integer();
    if (n < 0 || n > MAX_TOKEN_ID) this.fail(`a token id in 0..${MAX_TOKEN_ID}`);
    return n;
  }

  number(): number {
    if (typeof this.value !== 'number') this.fail('a number');
    return this.value as number;
  }

  optionalString(): string | null {
    return this.isMissing() ? null : this.string();
  }

  optionalBoolean(fallback: boolean): boolean {
    return this.value === undefined || this.value === null ? fallback : this.boolean();
  }

  /** The `type` tag of a component object. */
  type(): string {
    return this.get('type').string();
  }
}

// A `\uD800`-`\uDFFF` escape: the only way valid JSON text can carry a lone surrogate.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Parses tokenizer.json text or takes an already parsed object. Syntax errors are one line (line, column, an escaped
 * excerpt); strings holding lone surrogates are refused, as the reference implementation refuses them.
 */
export function parseTokenizerJson(input: unknown): JsonNode {
  let parsed: unknown = input;
  if (typeof input === 'string') {
    try {
      parsed = JSON.parse(input);
    } catch (err) {
      throw new TokenizerJsonError('', describeJsonSyntaxError(input, err as Error));
    }
  }
  if (typeof input !== 'string' || SURROGATE_ESCAPE.test(input)) {
    const path = loneSurrogatePath(parsed);
    if (path !== undefined) {
      throw new TokenizerJsonError(
        path,
        'string holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not Unicode text',
      );
    }
  }
  return new JsonNode(parsed, '');
}
