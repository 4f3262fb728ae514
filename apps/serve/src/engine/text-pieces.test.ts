import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixture } from '../testing/fixture.js';
import { JsonTokenizer } from './json-tokenizer.js';
import { splitForEncoding, splitsExactly } from './text-pieces.js';

const fx = fixture();

// Characters that stress every branch of the GPT-2 split: letters, digits, punctuation, contractions, each kind of
// whitespace (U+0085 and U+3000 included), combining marks, astral characters, lone surrogates, special tokens.
const PARTS = [
  'a',
  'Z',
  'é',
  'e\u0301',
  '\u0301',
  '日本',
  '7',
  '42',
  '.',
  ',',
  "'s",
  "'ll",
  '-',
  '(',
  '"',
  '😀',
  '\ud800',
  ' ',
  ' ',
  ' ',
  '  ',
  '   ',
  '\n',
  '\n\n',
  '\t',
  '\r\n',
  '\u00a0',
  '\u0085',
  '\u3000',
  '\ufeff',
  '<|endoftext|>',
  '<|padding|>',
  'hello',
  ' world',
  'def f():',
  '    return 1',
];

describe('splitForEncoding', () => {
  it('keeps the text and cuts only before a lone whitespace character between two others', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...PARTS), { maxLength: 80 }),
        fc.integer({ min: 1, max: 12 }),
        (parts, target) => {
          const text = parts.join('');
          const pieces = splitForEncoding(text, target);
          expect(pieces.join('')).toBe(text);
          for (const piece of pieces.slice(1)) {
            expect(piece[0]).toMatch(/[\s\u0085]/);
            expect(piece[1] ?? 'x').not.toMatch(/[\s\u0085]/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('leaves a text without cut points whole and refuses a target below 1', () => {
    expect(splitForEncoding('x'.repeat(50), 4)).toEqual(['x'.repeat(50)]);
    expect(splitForEncoding('ab cd  ef\ngh', 1)).toEqual(['ab', ' cd  ef', '\ngh']);
    expect(() => splitForEncoding('a b', 0)).toThrow(RangeError);
  });

  it('accepts GPT-NeoX-like layouts only', () => {
    const neox = {
      normalizer: { type: 'NFC' },
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
      post_processor: { type: 'ByteLevel' },
      added_tokens: [{ content: '<|endoftext|>' }, { content: '  ' }],
    };
    expect(splitsExactly(neox)).toBe(true);
    expect(splitsExactly({ ...neox, normalizer: null, post_processor: null })).toBe(true);
    expect(splitsExactly({ ...neox, normalizer: { type: 'Lowercase' } })).toBe(false);
    expect(splitsExactly({ ...neox, pre_tokenizer: { type: 'ByteLevel', use_regex: false } })).toBe(false);
    expect(splitsExactly({ ...neox, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true } })).toBe(
      false,
    );
    expect(splitsExactly({ ...neox, pre_tokenizer: { type: 'Sequence' } })).toBe(false);
    expect(splitsExactly({ ...neox, post_processor: { type: 'TemplateProcessing' } })).toBe(false);
    expect(splitsExactly({ ...neox, added_tokens: [{ content: ' ' }] })).toBe(false);
    expect(splitsExactly({ ...neox, added_tokens: [{ content: 'a b' }] })).toBe(false);
    expect(splitsExactly({ ...neox, added_tokens: [{ content: '<x>', rstrip: true }] })).toBe(false);
  });
});

describe.skipIf(!fx)('JsonTokenizer.encodeAsync on GPT-NeoX', () => {
  it('gives the ids of encode for any text, whatever the piece size', async () => {
    const tok = await JsonTokenizer.fromFile(fx!.tokenizer);
    expect(tok.encodesInPieces).toBe(true);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constantFrom(...PARTS), fc.string({ unit: 'binary', maxLength: 6 })), {
          maxLength: 120,
        }),
        fc.integer({ min: 1, max: 16 }),
        async (parts, pieceChars) => {
          const text = parts.join('');
          expect(await tok.encodeAsync(text, pieceChars)).toEqual(tok.encode(text));
        },
      ),
      { numRuns: 400 },
    );
    const prose = readFileSync(fx!.tokenizer, 'utf8').slice(0, 200_000);
    expect(await tok.encodeAsync(prose, 1000)).toEqual(tok.encode(prose));
  });
});
