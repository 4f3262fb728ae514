// Builds the normalizer of a tokenizer.json (`normalizer` section).
import type { JsonNode } from '../json/reader.js';
import type { Segment } from '../tokenizer/segment.js';
import { Lowercase } from './lowercase.js';
import type { Normalizer } from './normalizer.js';
import { type UnicodeForm, UnicodeNormalizer } from './unicode.js';

export { Lowercase } from './lowercase.js';
export type { Normalizer } from './normalizer.js';
export { UnicodeNormalizer } from './unicode.js';

export class NormalizerSequence implements Normalizer {
  constructor(readonly normalizers: readonly Normalizer[]) {}

  normalizeText(text: string): string {
    for (const n of this.normalizers) text = n.normalizeText(text);
    return text;
  }

  normalizeSegment(seg: Segment): Segment {
    for (const n of this.normalizers) seg = n.normalizeSegment(seg);
    return seg;
  }
}

export const SUPPORTED_NORMALIZERS = ['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase', 'Sequence'];

export function normalizerFromJson(node: JsonNode): Normalizer | null {
  if (node.isMissing()) return null;
  const type = node.type();
  switch (type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return new UnicodeNormalizer(type as UnicodeForm);
    case 'Lowercase':
      return new Lowercase();
    case 'Sequence':
      return new NormalizerSequence(
        node
          .get('normalizers')
          .array()
          .map((n) => normalizerFromJson(n) ?? n.fail('a normalizer')),
      );
    default:
      return node
        .get('type')
        .unsupported(
          `unsupported normalizer ${JSON.stringify(type)} (supported: ${SUPPORTED_NORMALIZERS.join(', ')})`,
        );
  }
}
