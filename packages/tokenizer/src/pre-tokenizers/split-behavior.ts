// HF's SplitDelimiterBehavior applied to a list of (start, end, isMatch) spans covering a string.

export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
export const SPLIT_BEHAVIORS: readonly SplitBehavior[] = [
  'Removed',
  'Isolated',
  'MergedWithPrevious',
  'MergedWithNext',
  'Contiguous',
];

/** `spans` is flat [start, end, isMatch(0/1)]; returns the flat [start, end] ranges to keep (possibly empty). */
export function applyBehavior(spans: number[], behavior: SplitBehavior): number[] {
  const out: number[] = [];
  const n = spans.length / 3;
  switch (behavior) {
    case 'Isolated':
      for (let i = 0; i < n; i++) out.push(spans[3 * i], spans[3 * i + 1]);
      return out;
    case 'Removed':
      for (let i = 0; i < n; i++) if (!spans[3 * i + 2]) out.push(spans[3 * i], spans[3 * i + 1]);
      return out;
    case 'Contiguous': {
      let previous = false;
      for (let i = 0; i < n; i++) {
        const isMatch = spans[3 * i + 2] === 1;
        if (isMatch === previous && out.length > 0) out[out.length - 1] = spans[3 * i + 1];
        else out.push(spans[3 * i], spans[3 * i + 1]);
        previous = isMatch;
      }
      return out;
    }
    case 'MergedWithPrevious': {
      let previous = false;
      for (let i = 0; i < n; i++) {
        const isMatch = spans[3 * i + 2] === 1;
        if (isMatch && !previous && out.length > 0) out[out.length - 1] = spans[3 * i + 1];
        else out.push(spans[3 * i], spans[3 * i + 1]);
        previous = isMatch;
      }
      return out;
    }
    case 'MergedWithNext': {
      const rev: number[] = [];
      let previous = false;
      for (let i = n - 1; i >= 0; i--) {
        const isMatch = spans[3 * i + 2] === 1;
        if (isMatch && !previous && rev.length > 0) rev[rev.length - 2] = spans[3 * i];
        else rev.push(spans[3 * i], spans[3 * i + 1]);
        previous = isMatch;
      }
      for (let i = rev.length - 2; i >= 0; i -= 2) out.push(rev[i], rev[i + 1]);
      return out;
    }
  }
}

/** Spans of a global regex's matches and the gaps between them (HF's Pattern::find_matches for a regex). */
export function regexSpans(re: RegExp, text: string, invert: boolean): number[] {
  if (text.length === 0) return [0, 0, 0];
  const spans: number[] = [];
  const hit = invert ? 0 : 1;
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (end === start) re.lastIndex = end + ((text.codePointAt(end) ?? 0) > 0xffff ? 2 : 1);
    if (prev !== start) spans.push(prev, start, 1 - hit);
    spans.push(start, end, hit);
    prev = end;
  }
  if (prev !== text.length) spans.push(prev, text.length, 1 - hit);
  return spans;
}

/** Spans where each char satisfying `test` is its own match (HF's Pattern for a char predicate). */
export function charSpans(text: string, test: (ch: string) => boolean): number[] {
  const spans: number[] = [];
  let last = 0;
  let i = 0;
  for (const ch of text) {
    if (test(ch)) {
      if (last < i) spans.push(last, i, 0);
      spans.push(i, i + ch.length, 1);
      last = i + ch.length;
    }
    i += ch.length;
  }
  if (i > last) spans.push(last, i, 0);
  return spans;
}
