// ByteLevel pre-tokenizer: optional prefix space, the GPT-2 split regex, then (in the model) the byte alphabet.
import { type Segment, sliceSegment } from '../tokenizer/segment.js';
import { ONIG_SPACE } from '../utils/unicode-classes.js';
import type { PreTokenizer } from './pre-tokenizer.js';

/** GPT-2's pattern, with Oniguruma's `\s` spelled out (it differs from JS's on U+0085 and U+FEFF). */
export const GPT2_PATTERN = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${ONIG_SPACE}\\p{L}\\p{N}]+|[${ONIG_SPACE}]+(?![^${ONIG_SPACE}])|[${ONIG_SPACE}]+`;

export class ByteLevelPreTokenizer implements PreTokenizer {
  readonly byteLevel = true;
  private readonly re = new RegExp(GPT2_PATTERN, 'gu');

  constructor(
    readonly addPrefixSpace = false,
    readonly useRegex = true,
  ) {}

  splitText(text: string, emit: (piece: string) => void): void {
    if (this.addPrefixSpace && text.length > 0 && text.charCodeAt(0) !== 32) text = ` ${text}`;
    if (!this.useRegex) {
      if (text.length > 0) emit(text);
      return;
    }
    const re = this.re;
    re.lastIndex = 0;
    let prev = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      // The pattern matches every char, so gaps never occur; kept for exactness with HF's Isolated split.
      if (m.index !== prev) emit(text.slice(prev, m.index));
      emit(m[0]);
      prev = re.lastIndex;
    }
    if (prev !== text.length) emit(text.slice(prev));
  }

  splitSegment(seg: Segment, out: Segment[]): void {
    if (this.addPrefixSpace && seg.text.length > 0 && seg.text.charCodeAt(0) !== 32) seg = prependSpace(seg);
    if (!this.useRegex) {
      if (seg.text.length > 0) out.push(seg);
      return;
    }
    const re = this.re;
    re.lastIndex = 0;
    let prev = 0;
    for (let m = re.exec(seg.text); m !== null; m = re.exec(seg.text)) {
      if (m.index !== prev) out.push(sliceSegment(seg, prev, m.index));
      out.push(sliceSegment(seg, m.index, re.lastIndex));
      prev = re.lastIndex;
    }
    if (prev !== seg.text.length) out.push(sliceSegment(seg, prev, seg.text.length));
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
