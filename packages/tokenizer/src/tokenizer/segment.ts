// A piece of text on its way through the pipeline, optionally carrying its alignment to the original input
// (HF's NormalizedString). Alignments are only built when offsets are requested.

export interface Segment {
  /** The current (normalized / pre-tokenized) text. */
  text: string;
  /**
   * For each UTF-16 unit of `text`, the [start, end) range in the original input (UTF-16 units) it came from,
   * flattened; null when offsets are not tracked.
   */
  align: Int32Array | null;
  /** Original position this segment starts at (where HF's "0 of this segment" points). */
  origin: number;
}

/** A segment covering original[start, end) unchanged. */
export function originalSegment(original: string, start: number, end: number, track: boolean): Segment {
  const text = original.slice(start, end);
  if (!track) return { text, align: null, origin: start };
  const align = new Int32Array(text.length * 2);
  for (let i = 0; i < text.length; ) {
    const width = isLead(text.charCodeAt(i)) && i + 1 < text.length ? 2 : 1;
    for (let k = 0; k < width; k++) {
      align[2 * (i + k)] = start + i;
      align[2 * (i + k) + 1] = start + i + width;
    }
    i += width;
  }
  return { text, align, origin: start };
}

export function sliceSegment(seg: Segment, start: number, end: number): Segment {
  const text = seg.text.slice(start, end);
  if (!seg.align) return { text, align: null, origin: seg.origin };
  return {
    text,
    align: seg.align.slice(2 * start, 2 * end),
    origin: end > start ? seg.align[2 * start] : seg.origin,
  };
}

/**
 * Rebuilds a segment from a list of (code point, change) pairs, exactly as HF's `NormalizedString::transform`:
 * change 0 replaces the next original char, -n also removes the n chars after it, +1 inserts a char that shares the
 * alignment of the char before it.
 */
export function transformSegment(seg: Segment, items: readonly number[]): Segment {
  const src = seg.text;
  const from = seg.align;
  let text = '';
  const align: number[] = [];
  let p = 0;
  const charWidth = (at: number) => (isLead(src.charCodeAt(at)) && at + 1 < src.length ? 2 : 1);
  for (let k = 0; k < items.length; k += 2) {
    const cp = items[k];
    const change = items[k + 1];
    let s: number;
    let e: number;
    if (change > 0) {
      if (p < 1) {
        s = seg.origin;
        e = seg.origin;
      } else {
        s = from ? from[2 * (p - 1)] : 0;
        e = from ? from[2 * (p - 1) + 1] : 0;
      }
    } else {
      s = from ? from[2 * p] : 0;
      e = from ? from[2 * p + 1] : 0;
      p += charWidth(p);
      for (let r = 0; r < -change; r++) p += charWidth(p);
    }
    const c = String.fromCodePoint(cp);
    text += c;
    for (let u = 0; u < c.length; u++) align.push(s, e);
  }
  return { text, align: from ? Int32Array.from(align) : null, origin: seg.origin };
}

function isLead(c: number): boolean {
  return c >= 0xd800 && c < 0xdc00;
}

/** Code points of a string with change 0 (identity items), the base for per-char maps. */
export function codePoints(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) out.push(ch.codePointAt(0) as number);
  return out;
}
