// Conformance with Hugging Face tokenizers (the Rust binding) on the real GPT-NeoX-20B tokenizer.json and a
// generated multi-script corpus: identical ids, identical offsets, identical decoding.

import { seededRandom, sharedFile, TOKENIZER_JSON } from '@mptjs/test-fixtures';
import hf from 'tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateCorpus } from './testing/corpus.js';
import { Tokenizer } from './tokenizer/tokenizer.js';

const path = sharedFile(TOKENIZER_JSON);

/** First few differences, as readable strings (an empty list means conformance). */
function diffs<T>(docs: string[], ours: T[], theirs: T[], limit = 5): string[] {
  const out: string[] = [];
  for (let i = 0; i < docs.length && out.length < limit; i++) {
    const a = JSON.stringify(ours[i]);
    const b = JSON.stringify(theirs[i]);
    if (a !== b)
      out.push(
        `doc ${i} ${JSON.stringify(docs[i].slice(0, 200))}\n ours: ${a.slice(0, 400)}\n   hf: ${b.slice(0, 400)}`,
      );
  }
  return out;
}

describe.skipIf(!path)('GPT-NeoX-20B conformance with HF tokenizers', () => {
  let ours: Tokenizer;
  let theirs: hf.Tokenizer;
  // ~3 MB of edge-case-heavy text for ids, 600 kB of it for offsets (the slower alignment-tracking path).
  const docs = generateCorpus({ seed: 20260427, chars: 3_000_000 });
  const offsetDocs = docs.slice(0, Math.ceil(docs.length / 5));

  beforeAll(async () => {
    ours = await Tokenizer.fromFile(path as string);
    theirs = hf.Tokenizer.fromFile(path as string);
  });

  it('documents the corpus size', () => {
    const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
    expect(bytes).toBeGreaterThan(3_000_000);
    expect(docs.some((d) => d.includes('<|endoftext|>'))).toBe(true);
    expect(docs.some((d) => d !== d.normalize('NFC'))).toBe(true);
    expect(docs.some((d) => !d.isWellFormed())).toBe(true);
  });

  it('gives identical ids on every document', async () => {
    const expected = (await theirs.encodeBatch(docs)).map((e) => e.getIds());
    const actual = docs.map((d) => ours.encode(d));
    expect(diffs(docs, actual, expected)).toEqual([]);
  });

  it('gives identical offsets and tokens', async () => {
    const expected = await theirs.encodeBatch(offsetDocs);
    const actual = offsetDocs.map((d) => ours.encode(d, { withOffsets: true }));
    expect(
      diffs(
        offsetDocs,
        actual.map((e) => e.offsets),
        expected.map((e) => e.getOffsets()),
      ),
    ).toEqual([]);
    expect(
      diffs(
        offsetDocs,
        actual.map((e) => e.ids),
        expected.map((e) => e.getIds()),
      ),
    ).toEqual([]);
    expect(
      diffs(
        offsetDocs,
        actual.map((e) => e.tokens),
        expected.map((e) => e.getTokens()),
      ),
    ).toEqual([]);
  });

  it('decodes like HF, and round-trips exactly where HF does', async () => {
    const idsList = docs.map((d) => ours.encode(d));
    const expected = await theirs.decodeBatch(idsList, false);
    const actual = idsList.map((ids) => ours.decode(ids));
    expect(diffs(docs, actual, expected)).toEqual([]);
    let roundTrips = 0;
    for (let i = 0; i < docs.length; i++) {
      expect(actual[i] === docs[i]).toBe(expected[i] === docs[i]);
      if (actual[i] === docs[i]) roundTrips++;
    }
    // Only NFD text and lone surrogates fail to round-trip; most documents have neither.
    expect(roundTrips).toBeGreaterThan(docs.length / 4);
    const skipped = await theirs.decodeBatch(idsList.slice(0, 200), true);
    expect(idsList.slice(0, 200).map((ids) => ours.decode(ids, { skipSpecialTokens: true }))).toEqual(
      skipped,
    );
  });

  it('decodes arbitrary id sequences (invalid UTF-8 included) exactly like HF', async () => {
    const r = seededRandom(77);
    const lists: number[][] = [];
    for (let k = 0; k < 3000; k++) {
      const n = 1 + Math.floor(r() * 12);
      // Mostly single-byte tokens (ids < 256 + a few hundred) so partial and invalid UTF-8 sequences are common.
      lists.push(Array.from({ length: n }, () => Math.floor(r() * (r() < 0.8 ? 600 : ours.vocabSize))));
    }
    for (const skip of [false, true]) {
      const expected = await theirs.decodeBatch(lists, skip);
      expect(
        diffs(
          lists.map(String),
          lists.map((ids) => ours.decode(ids, { skipSpecialTokens: skip })),
          expected,
        ),
      ).toEqual([]);
    }
  });

  it('matches the reference examples from the model card', () => {
    expect(ours.encode('Hello world')).toEqual([12092, 1533]);
    expect(ours.encode('a  b')).toEqual([66, 50276, 67]);
    expect(ours.encode('def f():\n    return 1')).toEqual([1545, 269, 14850, 187, 50274, 2309, 337]);
    expect(ours.tokenToId('<|endoftext|>')).toBe(0);
    expect(ours.specialTokens).toEqual({ '<|endoftext|>': 0, '<|padding|>': 1 });
    expect(ours.vocabSize).toBe(theirs.getVocabSize(true));
  });

  it('handles lone surrogates and every single code unit like HF', async () => {
    const probes: string[] = [];
    for (let c = 0; c < 0x10000; c += 7) probes.push(`a${String.fromCharCode(c)}b ${String.fromCharCode(c)}`);
    probes.push('\ud800', '\udfff', '\udc00\ud800', 'x\ud83d', '\ud83d\ude00\ud83d');
    const expected = (await theirs.encodeBatch(probes)).map((e) => e.getIds());
    expect(
      diffs(
        probes,
        probes.map((p) => ours.encode(p)),
        expected,
      ),
    ).toEqual([]);
  });

  it('utf16 offsets are the code point offsets in String.prototype.slice units', () => {
    const text = 'naïve 😀 café  <|endoftext|> 𝔸𝔹 日本';
    const cp = ours.encode(text, { withOffsets: true });
    const u16 = ours.encode(text, { withOffsets: true, offsetUnit: 'utf16' });
    const unitOf = (c: number) => Array.from(text).slice(0, c).join('').length;
    expect(u16.offsets).toEqual(cp.offsets.map(([a, b]) => [unitOf(a), unitOf(b)]));
    expect(u16.offsets.map(([a, b]) => text.slice(a, b))).toContain('<|endoftext|>');
    expect(u16.offsets.map(([a, b]) => text.slice(a, b))).toContain('😀');
  });
});
