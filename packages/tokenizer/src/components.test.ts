// Every supported tokenizer.json component, checked against the Rust binding: small tokenizers are built from a
// trained base, each variant switching on other components, and must give HF's ids, offsets and decoding.
import hf from 'tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { trainBpe, trainFromCounts } from './models/bpe/trainer.js';
import { generateCorpus } from './testing/corpus.js';
import type { AnyJson } from './testing/json.js';
import { CODE, PROSE } from './testing/seed-texts.js';
import { Tokenizer } from './tokenizer/tokenizer.js';

type Json = AnyJson;

const TEXTS = [
  'Hello world! HELLO World, hello-world hello_world <mask> x<mask>y  <mask>  end',
  'Numbers 12345 and 3.14 and ٣٤٥ ①② in text; WORLD world WoRlD',
  'Café naïve e\u0301 A\u030a \u212b ﬁ ㎏ Ⅻ İstanbul ΣΟΦΟΣ straße',
  '  leading spaces, trailing   ',
  '<s> hello </s> <unk> 日本語 😀 👩‍👩‍👧',
  '',
  ' ',
  'tab\there\nnew line\r\nwindows',
  ...PROSE.slice(0, 6),
  ...CODE.slice(0, 3),
];

let base: Json;
let corpus: string[];

beforeAll(async () => {
  base = await trainBpe({
    texts: [...PROSE, ...CODE],
    vocabSize: 900,
    specialTokens: ['<s>', '</s>', '<unk>', '<mask>'],
  });
  corpus = generateCorpus({ seed: 99, chars: 30_000 });
});

function variant(edit: (j: Json) => void): string {
  const j = structuredClone(base);
  edit(j);
  return JSON.stringify(j);
}

async function expectSameAsHf(json: string, texts = [...TEXTS, ...corpus]): Promise<void> {
  const ours = Tokenizer.fromJSON(json);
  const theirs = hf.Tokenizer.fromString(json);
  const expected = await theirs.encodeBatch(texts);
  const idsList = expected.map((e) => e.getIds());
  const decoded = [await theirs.decodeBatch(idsList, false), await theirs.decodeBatch(idsList, true)];
  for (let i = 0; i < texts.length; i++) {
    const enc = ours.encode(texts[i], { withOffsets: true });
    const want = { text: texts[i], ids: idsList[i], offsets: expected[i].getOffsets() };
    expect({ text: texts[i], ids: enc.ids, offsets: enc.offsets }).toEqual(want);
    expect(ours.encode(texts[i])).toEqual(want.ids);
    expect(ours.decode(want.ids)).toBe(decoded[0][i]);
    expect(ours.decode(want.ids, { skipSpecialTokens: true })).toBe(decoded[1][i]);
  }
}

const added = (id: number, content: string, flags: Json = {}) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
  ...flags,
});

describe('components match HF tokenizers', () => {
  it('trained byte-level tokenizer (NFC, ByteLevel, special tokens)', async () => {
    await expectSameAsHf(JSON.stringify(base));
  });

  it('normalizers: Sequence of NFD and Lowercase; NFKC; NFKD', async () => {
    await expectSameAsHf(
      variant((j) => {
        j.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }] };
      }),
    );
    await expectSameAsHf(
      variant((j) => {
        j.normalizer = { type: 'NFKC' };
      }),
    );
    await expectSameAsHf(
      variant((j) => {
        j.normalizer = { type: 'NFKD' };
      }),
    );
    await expectSameAsHf(
      variant((j) => {
        j.normalizer = null;
      }),
    );
  });

  it('pre-tokenizers: ByteLevel options, Digits, Split behaviors, Sequence', async () => {
    await expectSameAsHf(
      variant((j) => {
        j.pre_tokenizer = {
          type: 'ByteLevel',
          add_prefix_space: true,
          trim_offsets: true,
          use_regex: true,
        };
      }),
    );
    await expectSameAsHf(
      variant((j) => {
        j.pre_tokenizer = {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Digits', individual_digits: true },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
          ],
        };
        j.post_processor = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true };
      }),
    );
    await expectSameAsHf(
      variant((j) => {
        j.pre_tokenizer = {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Digits', individual_digits: false },
            { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false },
          ],
        };
      }),
    );
    for (const behavior of ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']) {
      for (const invert of [false, true]) {
        await expectSameAsHf(
          variant((j) => {
            j.pre_tokenizer = {
              type: 'Sequence',
              pretokenizers: [
                { type: 'Split', pattern: { Regex: "\\s+|[,.!?;]|'s" }, behavior, invert },
                { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
              ],
            };
          }),
          TEXTS,
        );
      }
    }
    await expectSameAsHf(
      variant((j) => {
        j.pre_tokenizer = {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { String: 'o' }, behavior: 'MergedWithNext', invert: false },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
          ],
        };
      }),
    );
  });

  it('added tokens: lstrip, rstrip, single_word, normalized, non-special', async () => {
    await expectSameAsHf(
      variant((j) => {
        j.normalizer = { type: 'Lowercase' };
        j.added_tokens = [
          ...j.added_tokens.filter((t: Json) => t.content !== '<mask>'),
          added(3, '<mask>', { lstrip: true, rstrip: true }),
          added(900, 'hello', { single_word: true, normalized: true, special: false }),
          added(901, 'world', { normalized: true, special: false }),
          added(902, 'WORLD', { normalized: false, special: false }),
          added(903, '  ', { normalized: true, special: false }),
          added(904, '   ', { normalized: true, special: false }),
        ];
      }),
    );
  });

  it('post-processors: TemplateProcessing with and without special tokens, Sequence', async () => {
    const template = {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: {
        '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] },
        '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] },
      },
    };
    await expectSameAsHf(
      variant((j) => {
        j.post_processor = template;
      }),
    );
    await expectSameAsHf(
      variant((j) => {
        j.post_processor = {
          type: 'Sequence',
          processors: [{ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true }, template],
        };
      }),
    );
    const json = variant((j) => {
      j.post_processor = template;
    });
    const theirs = hf.Tokenizer.fromString(json);
    const raw = await theirs.encode('Hello world', null, { addSpecialTokens: false });
    expect(Tokenizer.fromJSON(json).encode('Hello world', { addSpecialTokens: false })).toEqual(raw.getIds());
  });

  it('decoders: Sequence of ByteLevel, Replace, Strip, Fuse; none', async () => {
    await expectSameAsHf(
      variant((j) => {
        j.decoder = {
          type: 'Sequence',
          decoders: [
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
            { type: 'Replace', pattern: { String: 'o' }, content: '0' },
            { type: 'Strip', content: 'H', start: 1, stop: 1 },
            { type: 'Fuse' },
          ],
        };
      }),
      // HF's Strip decoder panics on a token it strips to nothing, so no empty text here.
      TEXTS.filter((t) => t.length > 0),
    );
    await expectSameAsHf(
      variant((j) => {
        j.decoder = null;
      }),
      TEXTS,
    );
  });

  it('char-level BPE with byte_fallback, unk (fused and not), continuing prefix and end-of-word suffix', async () => {
    const counts = new Map<string, number>();
    for (const t of [...PROSE.slice(0, 3), ...CODE.slice(0, 2)])
      for (const w of t.split(/\s+/)) if (w) counts.set(w, (counts.get(w) ?? 0) + 1);
    const { vocab, merges } = trainFromCounts(counts, 400, ['<unk>'], [], 0);
    const withBytes = Object.fromEntries(vocab);
    for (let b = 0; b < 256; b++)
      withBytes[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = vocab.size + b;
    const charLevel = (model: Json, decoders: Json[]) =>
      JSON.stringify({
        version: '1.0',
        added_tokens: [added(0, '<unk>')],
        normalizer: null,
        pre_tokenizer: { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false },
        post_processor: null,
        decoder: { type: 'Sequence', decoders },
        model: {
          type: 'BPE',
          dropout: null,
          unk_token: null,
          fuse_unk: false,
          byte_fallback: false,
          vocab: Object.fromEntries(vocab),
          merges,
          ...model,
        },
      });
    await expectSameAsHf(
      charLevel({ byte_fallback: true, vocab: withBytes }, [{ type: 'ByteFallback' }, { type: 'Fuse' }]),
    );
    await expectSameAsHf(charLevel({ unk_token: '<unk>', fuse_unk: true }, [{ type: 'Fuse' }]));
    await expectSameAsHf(charLevel({ unk_token: '<unk>', fuse_unk: false }, [{ type: 'Fuse' }]));
    // Prefix / suffix variants: every vocab entry also exists prefixed or suffixed, merges stay valid.
    const prefixed = Object.fromEntries(vocab);
    const suffixed = Object.fromEntries(vocab);
    let next = vocab.size;
    for (const t of vocab.keys()) {
      prefixed[`##${t}`] = next;
      suffixed[`${t}</w>`] = next++;
    }
    await expectSameAsHf(
      charLevel(
        {
          unk_token: '<unk>',
          continuing_subword_prefix: '##',
          vocab: prefixed,
          merges: merges.map(([a, b]) => [a, `##${b}`]).filter(([a, b]) => `${a}${b.slice(2)}` in prefixed),
        },
        [{ type: 'Fuse' }],
      ),
      TEXTS,
    );
    await expectSameAsHf(
      charLevel({ unk_token: '<unk>', end_of_word_suffix: '</w>', vocab: suffixed }, [{ type: 'Fuse' }]),
      TEXTS,
    );
  });

  it('legacy "a b" merges load the same as [a, b] pairs', async () => {
    const legacy = variant((j) => {
      j.model.merges = j.model.merges.map(([a, b]: string[]) => `${a} ${b}`);
    });
    await expectSameAsHf(legacy, TEXTS);
    expect(Tokenizer.fromJSON(legacy).encode(TEXTS[0])).toEqual(Tokenizer.fromJSON(base).encode(TEXTS[0]));
  });
});
