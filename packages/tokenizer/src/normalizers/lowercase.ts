import { type Segment, transformSegment } from '../tokenizer/segment.js';
import type { Normalizer } from './normalizer.js';

/**
 * Rust's per-char `to_lowercase`: no context rules, so a final capital sigma becomes 'σ' where JS's whole-string
 * toLowerCase would give 'ς'.
 */
export class Lowercase implements Normalizer {
  normalizeText(text: string): string {
    if (!text.includes('\u03a3')) return text.toLowerCase();
    let out = '';
    for (const ch of text) out += ch.toLowerCase();
    return out;
  }

  normalizeSegment(seg: Segment): Segment {
    const lowered = this.normalizeText(seg.text);
    if (lowered.length === seg.text.length || !seg.align) return { ...seg, text: lowered };
    const items: number[] = [];
    for (const ch of seg.text) {
      let first = true;
      for (const l of ch.toLowerCase()) {
        items.push(l.codePointAt(0) as number, first ? 0 : 1);
        first = false;
      }
    }
    return transformSegment(seg, items);
  }
}
