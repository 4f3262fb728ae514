import type { Segment } from '../tokenizer/segment.js';

/** A normalizer works on plain text (the fast path) or on a segment whose alignments it keeps up to date. */
export interface Normalizer {
  normalizeText(text: string): string;
  normalizeSegment(seg: Segment): Segment;
}
