// NFC / NFD / NFKC / NFKD. The text path uses String.prototype.normalize. The offset-tracking path replays the
// decompose/recompose iterators of the `unicode-normalization-alignments` crate HF uses, because the alignment of
// each output char depends on that exact sequence of (char, change) steps.
import { type Segment, transformSegment } from '../tokenizer/segment.js';
import { CCC_RANGES } from './ccc-table.js';
import type { Normalizer } from './normalizer.js';

export type UnicodeForm = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

export class UnicodeNormalizer implements Normalizer {
  constructor(readonly form: UnicodeForm) {}

  normalizeText(text: string): string {
    return text.normalize(this.form);
  }

  normalizeSegment(seg: Segment): Segment {
    const normalized = seg.text.normalize(this.form);
    // Already normalized text decomposes and recomposes char by char: every change is 0, alignments unchanged.
    if (normalized === seg.text || !seg.align) return { ...seg, text: normalized };
    const compat = this.form === 'NFKC' || this.form === 'NFKD';
    const decomposed = decompose(seg.text, compat);
    return transformSegment(
      seg,
      this.form === 'NFC' || this.form === 'NFKC' ? recompose(decomposed) : decomposed,
    );
  }
}

export function combiningClass(cp: number): number {
  let lo = 0;
  let hi = CCC_RANGES.length / 3 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < CCC_RANGES[mid * 3]) hi = mid - 1;
    else if (cp > CCC_RANGES[mid * 3 + 1]) lo = mid + 1;
    else return CCC_RANGES[mid * 3 + 2];
  }
  return 0;
}

/** Flat (code point, change) list: each char's full decomposition, non-starter runs stably sorted by class. */
function decompose(text: string, compat: boolean): number[] {
  const form = compat ? 'NFKD' : 'NFD';
  const buf: Array<[number, number, number]> = []; // [class, cp, change]
  let ready = 0;
  const sortPending = () => {
    const pending = buf.slice(ready).sort((a, b) => a[0] - b[0]); // Array.prototype.sort is stable
    buf.splice(ready, pending.length, ...pending);
    ready = buf.length;
  };
  for (const ch of text) {
    let first = true;
    for (const d of ch.normalize(form)) {
      const cp = d.codePointAt(0) as number;
      const cls = combiningClass(cp);
      if (cls === 0) sortPending();
      buf.push([cls, cp, first ? 0 : 1]);
      first = false;
    }
  }
  sortPending();
  const out: number[] = [];
  for (const [, cp, change] of buf) out.push(cp, change);
  return out;
}

const composeCache = new Map<number, number>();

/** Primary composite of (a, b), or -1. */
function compose(a: number, b: number): number {
  const key = a * 0x110000 + b;
  let r = composeCache.get(key);
  if (r === undefined) {
    const s = String.fromCodePoint(a, b).normalize('NFC');
    const cp = s.codePointAt(0) as number;
    r = s.length === (cp > 0xffff ? 2 : 1) ? cp : -1;
    composeCache.set(key, r);
  }
  return r;
}

/** The crate's `Recompositions` iterator over a decomposed (code point, change) list. */
function recompose(items: number[]): number[] {
  const out: number[] = [];
  let buffer: number[] = [];
  let composee: [number, number] | null = null;
  let lastClass: number | null = null;
  for (let i = 0; i < items.length; i += 2) {
    const ch = items[i];
    const change = items[i + 1];
    const cls = combiningClass(ch);
    if (composee === null) {
      if (cls !== 0) out.push(ch, change);
      else composee = [ch, change];
      continue;
    }
    const k: [number, number] = composee;
    if (lastClass === null) {
      const r = compose(k[0], ch);
      if (r >= 0) {
        composee = [r, k[1] + change - 1];
        continue;
      }
      if (cls === 0) {
        composee = [ch, change];
        out.push(k[0], k[1]);
        continue;
      }
      buffer.push(ch, change);
      lastClass = cls;
      continue;
    }
    if (lastClass >= cls) {
      if (cls === 0) {
        composee = [ch, change];
        lastClass = null;
        out.push(k[0], k[1], ...buffer);
        buffer = [];
        continue;
      }
      buffer.push(ch, change);
      lastClass = cls;
      continue;
    }
    const r = compose(k[0], ch);
    if (r >= 0) {
      composee = [r, k[1] + change - 1];
      continue;
    }
    buffer.push(ch, change);
    lastClass = cls;
  }
  if (composee) out.push(composee[0], composee[1]);
  out.push(...buffer);
  return out;
}
