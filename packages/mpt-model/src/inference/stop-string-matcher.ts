/**
 * Finds stop strings in growing text and says how much of the text is safe to emit: text that might still turn
 * into a stop string is held back until the next token settles it.
 */
export class StopStringMatcher {
  private readonly longest: number;

  constructor(readonly stops: readonly string[]) {
    for (const s of stops) if (s.length === 0) throw new RangeError('stop strings must not be empty');
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Index of the earliest stop string in `text` at or after `from` (minus overlap), or -1. */
  find(text: string, from: number): number {
    let best = -1;
    const start = Math.max(0, from - this.longest + 1);
    for (const s of this.stops) {
      const at = text.indexOf(s, start);
      if (at >= 0 && (best < 0 || at < best)) best = at;
    }
    return best;
  }

  /** Length of the prefix of `text` that cannot be the start of a stop string. */
  safeLength(text: string): number {
    for (let keep = Math.min(this.longest - 1, text.length); keep > 0; keep--) {
      const tail = text.slice(text.length - keep);
      if (this.stops.some((s) => s.startsWith(tail))) return text.length - keep;
    }
    return text.length;
  }
}
