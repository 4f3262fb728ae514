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
