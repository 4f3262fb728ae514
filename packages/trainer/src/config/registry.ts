import { TrainConfigError } from './errors.js';
import type { Section } from './section.js';

/**
 * Names mapped to builders, llm-foundry style: a config section says `name: X` and the entry registered as X
 * validates the rest of that section and builds the thing. Adding an optimizer, a scheduler or a data loader is
 * one `register` call; the config schema never lists the names itself.
 */
export class Registry<Entry> {
  private readonly entries = new Map<string, Entry>();

  /** `what` names the kind in errors ("optimizer"). */
  constructor(readonly what: string) {}

  register(name: string, entry: Entry): this {
    if (this.entries.has(name)) throw new Error(`${this.what} "${name}" is already registered`);
    this.entries.set(name, entry);
    return this;
  }

  /** The registered names, in registration order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry for a name a validated config holds; an unknown one is a programming error, named. */
  get(name: string): Entry {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      throw new TrainConfigError(`no ${this.what} named "${name}" (registered: ${this.names().join(', ')})`);
    }
    return entry;
  }

  /**
   * Reads the name at `key` of section `s` (required unless `fallback` is given) and returns it with its entry;
   * a name nobody registered is an error listing the registered ones.
   */
  choose(s: Section, key = 'name', fallback?: string): { name: string; entry: Entry } {
    const read = (sec: Section, k: string) => sec.oneOf(k, this.names());
    const name = fallback === undefined ? s.required(key, read) : (read(s, key) ?? fallback);
    return { name, entry: this.get(name) };
  }
}
