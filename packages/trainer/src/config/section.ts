import { type Duration, parseDuration } from './duration.js';
import { TrainConfigError } from './errors.js';

export type Json = Record<string, unknown>;

export const positive = (n: number) => Number.isFinite(n) && n > 0;
export const nonNegative = (n: number) => Number.isFinite(n) && n >= 0;
export const unitInterval = (n: number) => Number.isFinite(n) && n >= 0 && n < 1;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads one config section with typed getters, remembering which keys were read, so `finish()` can reject every
 * key nobody asked for with its full path (`unknown config key "optimizer.betaz"`).
 */
export class Section {
  private readonly seen = new Set<string>();
  readonly obj: Json;

  constructor(
    value: unknown,
    readonly path: string,
  ) {
    if (value === undefined || value === null) this.obj = {};
    else if (isObject(value)) this.obj = value;
    else
      throw new TrainConfigError(
        `config key "${path}" must be a section (a mapping), got ${JSON.stringify(value)}`,
      );
  }

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  private get(name: string): unknown {
    this.seen.add(name);
    const v = this.obj[name];
    return v === null ? undefined : v;
  }

  fail(name: string, expected: string): never {
    throw new TrainConfigError(
      `config key "${this.key(name)}" must be ${expected}, got ${JSON.stringify(this.obj[name])}`,
    );
  }

  has(name: string): boolean {
    return this.obj[name] !== undefined && this.obj[name] !== null;
  }

  /** Marks keys as accepted without reading them (llm-foundry keys that have no effect here). */
  accept(...names: string[]): void {
    for (const n of names) this.seen.add(n);
  }

  required<T>(name: string, read: (s: Section, name: string) => T | undefined): T {
    const v = read(this, name);
    if (v === undefined) throw new TrainConfigError(`config key "${this.key(name)}" is required`);
    return v;
  }

  str(name: string): string | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.fail(name, 'a string');
    return v;
  }

  num(
    name: string,
    check: (n: number) => boolean = Number.isFinite,
    expected = 'a number',
  ): number | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !check(v)) this.fail(name, expected);
    return v;
  }

  int(name: string, min = 0): number | undefined {
    return this.num(name, (n) => Number.isInteger(n) && n >= min, `an integer >= ${min}`);
  }

  bool(name: string): boolean | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(name, 'true or false');
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(name, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
    }
    return v as T;
  }

  duration(name: string): Duration | undefined {
    const v = this.get(name);
    return v === undefined ? undefined : parseDuration(v, this.key(name));
  }

  section(name: string): Section {
    return new Section(this.get(name), this.key(name));
  }

  /** A section that may be absent (returns undefined) rather than empty. */
  optionalSection(name: string): Section | undefined {
    if (this.has(name)) return this.section(name);
    this.seen.add(name);
    return undefined;
  }

  /** The raw value, accepted as-is (free-form sections such as `callbacks`). */
  raw(name: string): unknown {
    return this.get(name);
  }

  finish(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) throw new TrainConfigError(`unknown config key "${this.key(k)}"`);
    }
  }
}
