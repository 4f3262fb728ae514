import { seededRandom } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { trieRegex } from './added-vocabulary.js';

/** Leftmost-longest non-overlapping matches, by brute force. */
function bruteForce(patterns: string[], text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const hit = patterns.filter((p) => text.startsWith(p, i)).sort((a, b) => b.length - a.length)[0];
    if (hit) {
      out.push(`${i}:${hit}`);
      i += hit.length;
    } else i++;
  }
  return out;
}

describe('trieRegex', () => {
  it('finds the leftmost-longest added token, like HF aho-corasick', () => {
    const r = seededRandom(3);
    const alphabet = ['a', 'b', ' ', '<', '>', '|', '😀', '😁', '.', '*'];
    const word = (max: number) =>
      Array.from(
        { length: 1 + Math.floor(r() * max) },
        () => alphabet[Math.floor(r() * alphabet.length)],
      ).join('');
    for (let k = 0; k < 2000; k++) {
      const patterns = [...new Set(Array.from({ length: 1 + Math.floor(r() * 6) }, () => word(4)))];
      const text = word(30);
      const re = new RegExp(trieRegex(patterns), 'g');
      const found = [...text.matchAll(re)].map((m) => `${m.index}:${m[0]}`);
      expect({ patterns, text, found }).toEqual({ patterns, text, found: bruteForce(patterns, text) });
    }
  });
});
