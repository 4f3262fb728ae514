import type { Segment } from '../tokenizer/segment.js';

/** Splits normalized text into pre-tokens (words); the model encodes each word separately. */
export interface PreTokenizer {
  /** Fast path: calls `emit` with each non-empty piece. */
  splitText(text: string, emit: (piece: string) => void): void;
  /** Offset-tracking path: appends each non-empty piece of `seg` to `out`. */
  splitSegment(seg: Segment, out: Segment[]): void;
  /** Whether the pieces go through the byte-level alphabet before the model (ByteLevel). */
  readonly byteLevel: boolean;
}
