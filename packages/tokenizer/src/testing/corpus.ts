// Deterministic conformance corpus: seeded random documents mixing the seed texts with the awkward cases
// (whitespace runs, control chars, special-token strings, NFD/NFKD variants, lone surrogates, random code points).
import { seededRandom } from '@mptjs/test-fixtures';
import { CODE, EMOJI, PROSE, SPACES, SPECIALS } from './seed-texts.js';

const BLOCKS: Array<[number, number]> = [
  [0x20, 0x7e],
  [0xa0, 0x24f],
  [0x300, 0x36f], // combining marks
  [0x370, 0x52f],
  [0x590, 0x6ff],
  [0x900, 0x97f],
  [0xe00, 0xe7f],
  [0x1100, 0x11ff], // Hangul jamo (compose under NFC)
  [0x1e00, 0x1fff],
  [0x2000, 0x206f],
  [0x2100, 0x22ff],
  [0x3000, 0x30ff],
  [0x4e00, 0x9fff],
  [0xac00, 0xd7a3],
  [0xfb00, 0xfb4f],
  [0xff00, 0xffef],
  [0x1d400, 0x1d7ff],
  [0x1f300, 0x1faff],
  [0x20000, 0x2a6df],
];

export interface CorpusOptions {
  seed?: number;
  /** Approximate total size in UTF-16 units. */
  chars: number;
  /** Natural text only (prose, code, light whitespace): for throughput numbers rather than edge cases. */
  natural?: boolean;
}

export function generateCorpus({ seed = 1, chars, natural = false }: CorpusOptions): string[] {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const docs: string[] = [];
  let total = 0;
  while (total < chars) {
    const parts: string[] = [];
    const n = int(1, natural ? 40 : 24);
    for (let i = 0; i < n; i++) {
      parts.push(natural ? naturalPart() : part());
      parts.push(pick(natural ? [' ', '\n', '\n\n', ' '] : ['', ' ', '\n', '  ', '\n\n', ' ', '']));
    }
    const doc = parts.join('');
    docs.push(doc);
    total += doc.length;
  }
  return docs;

  function naturalPart(): string {
    const x = r();
    if (x < 0.7) return pick(PROSE.slice(0, 3).concat(PROSE.slice(18)));
    if (x < 0.9) return pick(CODE);
    return pick(PROSE);
  }

  function part(): string {
    const x = r();
    if (x < 0.3) return casing(pick(PROSE));
    if (x < 0.45) return pick(CODE);
    if (x < 0.5) return pick(PROSE).normalize(pick(['NFD', 'NFKD', 'NFKC']));
    if (x < 0.56) return Array.from({ length: int(1, 6) }, () => pick(EMOJI)).join(pick(['', ' ']));
    if (x < 0.64) return Array.from({ length: int(1, 30) }, () => pick(SPACES)).join('');
    if (x < 0.69) return ' '.repeat(int(2, 40));
    if (x < 0.74) return pick(SPECIALS);
    if (x < 0.8) return numbers();
    if (x < 0.85)
      return Array.from({ length: int(1, 8) }, () =>
        String.fromCharCode(pick([int(0, 0x1f), 0x7f, int(0x80, 0x9f)])),
      ).join('');
    if (x < 0.95) return randomCodePoints(int(1, 40));
    if (x < 0.97) return String.fromCharCode(int(0xd800, 0xdfff)); // lone surrogate
    return pick(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "''", "'"]);
  }

  function casing(s: string): string {
    const y = r();
    return y < 0.1 ? s.toUpperCase() : y < 0.2 ? s.toLowerCase() : s;
  }

  function numbers(): string {
    const forms = [
      () => String(int(0, 10 ** int(1, 12))),
      () => (r() * 1000).toFixed(int(0, 6)),
      () => `${int(1, 31)}/${int(1, 12)}/${int(1900, 2100)}`,
      () => int(0, 1e9).toLocaleString('en-US'),
      () => '٠١٢٣٤٥٦٧٨٩ ०१२३ ①②③ ⅠⅡⅢ ¹²³ ½',
    ];
    return pick(forms)();
  }

  function randomCodePoints(count: number): string {
    let s = '';
    for (let i = 0; i < count; i++) {
      const [lo, hi] = pick(BLOCKS);
      s += String.fromCodePoint(int(lo, hi));
    }
    return s;
  }
}
