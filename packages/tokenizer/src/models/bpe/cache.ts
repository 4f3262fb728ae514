// Per-word cache: pre-token string -> ids. Most words repeat, so this is where encode spends most of its hits.

const MAX_ENTRIES = 1 << 18;
/** Words at least this long (UTF-16 units) are not cached, like HF's MAX_LENGTH. */
export const MAX_CACHED_LENGTH = 256;

/** A single id is stored as a number (the common case) to avoid allocating an array per word. */
export type CachedIds = number | Int32Array;

export class WordCache {
  private map = new Map<string, CachedIds>();

  get(word: string): CachedIds | undefined {
    return this.map.get(word);
  }

  set(word: string, ids: CachedIds): void {
    if (word.length >= MAX_CACHED_LENGTH) return;
    // Bounded memory on endless streams: start over rather than track recency.
    if (this.map.size >= MAX_ENTRIES) this.map.clear();
    this.map.set(word, ids);
  }

  clear(): void {
    this.map.clear();
  }
}

/**
 * The same cache for words given as ranges of a larger string: an open-addressing table probed with a hash of the
 * range's char codes, so a hit costs no substring allocation and no Map hashing. Keys are kept to compare exactly.
 */
export class RangeWordCache {
  private mask = (1 << 16) - 1;
  private keys: Array<string | undefined> = new Array(1 << 16);
  private hashes = new Int32Array(1 << 16);
  private values: CachedIds[] = new Array(1 << 16);
  private size = 0;
  /** Slot where the last missed lookup would insert. */
  private pending = -1;
  private pendingHash = 0;

  /** Cached ids for text[start, end), or undefined (then `insert` stores the computed ids). */
  get(text: string, start: number, end: number): CachedIds | undefined {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    const len = end - start;
    let slot = h & this.mask;
    for (;;) {
      const key = this.keys[slot];
      if (key === undefined) break;
      if (this.hashes[slot] === h && key.length === len && sameChars(key, text, start))
        return this.values[slot];
      slot = (slot + 1) & this.mask;
    }
    this.pending = slot;
    this.pendingHash = h;
    return undefined;
  }

  /** Stores ids for the range of the last missed `get`. */
  insert(word: string, ids: CachedIds): void {
    if (word.length >= MAX_CACHED_LENGTH || this.pending < 0) return;
    this.keys[this.pending] = word;
    this.hashes[this.pending] = this.pendingHash;
    this.values[this.pending] = ids;
    this.pending = -1;
    if (++this.size * 2 > this.mask) this.grow();
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldHashes = this.hashes;
    const oldValues = this.values;
    // Bounded memory on endless streams: past MAX_ENTRIES start over rather than track recency.
    const cap = this.size >= MAX_ENTRIES ? 1 << 16 : (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.keys = new Array(cap);
    this.hashes = new Int32Array(cap);
    this.values = new Array(cap);
    const keep = cap > oldKeys.length;
    this.size = 0;
    if (!keep) return;
    for (let s = 0; s < oldKeys.length; s++) {
      const key = oldKeys[s];
      if (key === undefined) continue;
      let slot = oldHashes[s] & this.mask;
      while (this.keys[slot] !== undefined) slot = (slot + 1) & this.mask;
      this.keys[slot] = key;
      this.hashes[slot] = oldHashes[s];
      this.values[slot] = oldValues[s];
      this.size++;
    }
  }
}

function sameChars(key: string, text: string, start: number): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) !== text.charCodeAt(start + i)) return false;
  return true;
}
