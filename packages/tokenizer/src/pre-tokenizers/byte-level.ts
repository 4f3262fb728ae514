// ByteLevel pre-tokenizer: optional prefix space, the GPT-2 split regex, then (in the model) the byte alphabet.
import { type Segment, sliceSegment } from '../tokenizer/segment.js';
import { ONIG_SPACE } from '../utils/unicode-classes.js';
import { gpt2Split } from './gpt2-split.js';
import type { PreTokenizer } from './pre-tokenizer.js';

/**
 * GPT-2's pattern, with Oniguruma's `\s` spelled out (it differs from JS's on U+0085 and U+FEFF). The split itself
 * runs through `gpt2Split`, an equivalent scanner; this regex is its specification in tests.
 */
export const GPT2_PATTERN = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${ONIG_SPACE}\\p{L}\\p{N}]+|[${ONIG_SPACE}]+(?![^${ONIG_SPACE}])|[${ONIG_SPACE}]+`;

export class ByteLevelPreTokenizer implements PreTokenizer {
  readonly byteLevel = true;

  constructor(
    readonly addPrefixSpace = false,
    readonly useRegex = true,
  ) {}

  /** splitText giving each piece as a range of the (possibly space-prefixed) text, for slice-free cache lookups. */
  splitRanges(text: string, emit: (text: string, start: number, end: number) => void): void {
    if (this.addPrefixSpace && text.length > 0 && text.charCodeAt(0) !== 32) text = ` ${text}`;
    if (!this.useRegex) {
      if (text.length > 0) emit(text, 0, text.length);
      return;
    }
    const t = text;
    gpt2Split(t, (start, end) => emit(t, start, end));
  }

  splitText(text: string, emit: (piece: string) => void): void {
    if (this.addPrefixSpace && text.length > 0 && text.charCodeAt(0) !== 32) text = ` ${text}`;
    if (!this.useRegex) {
      if (text.length > 0) emit(text);
      return;
    }
    gpt2Split(text, (start, end) => emit(text.slice(start, end)));
  }

  splitSegment(seg: Segment, out: Segment[]): void {
    if (this.addPrefixSpace && seg.text.length > 0 && seg.text.charCodeAt(0) !== 32) seg = prependSpace(seg);
    if (!this.useRegex) {
      if (seg.text.length > 0) out.push(seg);
      return;
    }
    gpt2Split(seg.text, (start, end) => out.push(sliceSegment(seg, start, end)));
  }
}

/** HF's `prepend(" ")`: the new space and the first char both align with the first char. */
function prependSpace(seg: Segment): Segment {
  const text = ` ${seg.text}`;
  if (!seg.align) return { ...seg, text };
  const align = new Int32Array(seg.align.length + 2);
  align[0] = seg.align[0];
  align[1] = seg.align[1];
  align.set(seg.align, 2);
  return { text, align, origin: seg.origin };
}
