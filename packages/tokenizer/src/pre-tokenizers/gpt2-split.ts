// A hand-written scanner equivalent to the GPT-2 split regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (with Oniguruma's \s). The regex engine was the bottleneck of encode; this walks char codes with a class table
// and allocates nothing. Tests hold it to the regex on random strings and the conformance corpus.
import { ONIG_SPACE } from '../utils/unicode-classes.js';

const UNKNOWN = 0;
const LETTER = 1;
const NUMBER = 2;
const SPACE = 3;
const OTHER = 4;

const IS_LETTER = /\p{L}/u;
const IS_NUMBER = /\p{N}/u;
const IS_SPACE = new RegExp(`[${ONIG_SPACE}]`, 'u');

/** Class of each BMP code unit, filled on first sight. */
const bmpClass = new Uint8Array(65536);
const astralClass = new Map<number, number>();

function classify(cp: number): number {
  const ch = String.fromCodePoint(cp);
  return IS_LETTER.test(ch) ? LETTER : IS_NUMBER.test(ch) ? NUMBER : IS_SPACE.test(ch) ? SPACE : OTHER;
}

// ASCII up front, so the hot path never calls classify for it.
for (let c = 0; c < 128; c++) bmpClass[c] = classify(c);

/** Class of the code point at `i` (lone surrogates are OTHER, but input is well-formed by then). */
function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      let k = astralClass.get(cp);
      if (k === undefined) {
        k = classify(cp);
        astralClass.set(cp, k);
      }
      return k;
    }
  }
  let k = bmpClass[c];
  if (k === UNKNOWN) {
    k = classify(c);
    bmpClass[c] = k;
  }
  return k;
}

function widthAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) return 2;
  }
  return 1;
}

/** End of the run of chars of class `k` starting at `i`. */
function runEnd(text: string, i: number, k: number): number {
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c < 128) {
      if (bmpClass[c] !== k) break;
      i++;
    } else {
      if (classAt(text, i) !== k) break;
      i += widthAt(text, i);
    }
  }
  return i;
}

/** Length of a contraction ('s 't 're 've 'm 'll 'd) at i, which holds an apostrophe; 0 if none. */
function contractionAt(text: string, i: number): number {
  const a = text.charCodeAt(i + 1);
  if (a === 115 || a === 116 || a === 109 || a === 100) return 2; // s t m d
  const b = text.charCodeAt(i + 2);
  if ((a === 114 && b === 101) || (a === 118 && b === 101) || (a === 108 && b === 108)) return 3; // re ve ll
  return 0;
}

/** Calls emit(start, end) for each GPT-2 pre-token of `text`, in order, covering it. */
export function gpt2Split(text: string, emit: (start: number, end: number) => void): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 39) {
      const len = contractionAt(text, i);
      if (len > 0) {
        emit(i, i + len);
        i += len;
        continue;
      }
    }
    let k = c < 128 ? bmpClass[c] : classAt(text, i);
    let start = i;
    if (c === 32 && i + 1 < n) {
      // " ?X+" takes the space along when a letter, number or other char follows.
      const next = classAt(text, i + 1);
      if (next !== SPACE) {
        start = i;
        i++;
        k = next;
      }
    }
    if (k !== SPACE) {
      const end = runEnd(text, i, k);
      emit(start, end);
      i = end;
      continue;
    }
    // Whitespace run: \s+(?!\S) leaves the last space for the following word; \s+ takes a lone one.
    const end = runEnd(text, i, SPACE);
    if (end === n) {
      emit(i, end);
      i = end;
      continue;
    }
    const lastWidth = end - i >= 2 && isLowSurrogate(text.charCodeAt(end - 1)) ? 2 : 1;
    const cut = end - lastWidth;
    if (cut > i) {
      emit(i, cut);
      i = cut;
    } else {
      emit(i, end);
      i = end;
    }
  }
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c < 0xe000;
}
