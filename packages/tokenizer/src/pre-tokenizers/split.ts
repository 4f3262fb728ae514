// Split (by a literal string or an Oniguruma regex), Digits, and Sequence pre-tokenizers.
import { type Segment, sliceSegment } from '../tokenizer/segment.js';
import type { PreTokenizer } from './pre-tokenizer.js';
import { applyBehavior, charSpans, regexSpans, type SplitBehavior } from './split-behavior.js';

abstract class SpanPreTokenizer implements PreTokenizer {
  readonly byteLevel: boolean = false;
  protected abstract spans(text: string): number[];
  protected abstract readonly behavior: SplitBehavior;

  splitText(text: string, emit: (piece: string) => void): void {
    const ranges = applyBehavior(this.spans(text), this.behavior);
    for (let i = 0; i < ranges.length; i += 2)
      if (ranges[i + 1] > ranges[i]) emit(text.slice(ranges[i], ranges[i + 1]));
  }

  splitSegment(seg: Segment, out: Segment[]): void {
    const ranges = applyBehavior(this.spans(seg.text), this.behavior);
    for (let i = 0; i < ranges.length; i += 2)
      if (ranges[i + 1] > ranges[i]) out.push(sliceSegment(seg, ranges[i], ranges[i + 1]));
  }
}

export class SplitPreTokenizer extends SpanPreTokenizer {
  constructor(
    private readonly re: RegExp | null,
    protected readonly behavior: SplitBehavior,
    private readonly invert: boolean,
  ) {
    super();
  }

  protected spans(text: string): number[] {
    // An empty pattern never matches (HF): the whole text is one non-match.
    if (this.re === null) return [0, text.length, this.invert ? 1 : 0];
    return regexSpans(this.re, text, this.invert);
  }
}

const NUMERIC = /\p{N}/u;

/** Rust's `char::is_numeric` (categories Nd, Nl, No) as split points. */
export class DigitsPreTokenizer extends SpanPreTokenizer {
  protected readonly behavior: SplitBehavior;

  constructor(readonly individualDigits: boolean) {
    super();
    this.behavior = individualDigits ? 'Isolated' : 'Contiguous';
  }

  protected spans(text: string): number[] {
    return charSpans(text, (ch) => NUMERIC.test(ch));
  }
}

export class PreTokenizerSequence implements PreTokenizer {
  readonly byteLevel: boolean;

  constructor(readonly steps: readonly PreTokenizer[]) {
    this.byteLevel = steps.some((s) => s.byteLevel);
  }

  splitText(text: string, emit: (piece: string) => void): void {
    const run = (i: number, piece: string): void => {
      if (i === this.steps.length) emit(piece);
      else this.steps[i].splitText(piece, (p) => run(i + 1, p));
    };
    run(0, text);
  }

  splitSegment(seg: Segment, out: Segment[]): void {
    let pieces = [seg];
    for (const step of this.steps) {
      const next: Segment[] = [];
      for (const p of pieces) step.splitSegment(p, next);
      pieces = next;
    }
    out.push(...pieces);
  }
}
