// Loading errors, decode edge cases, the streaming decoder and the two BPE merge strategies, on tokenizers
// trained here (no shared files needed).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenizerJsonError, UnsupportedComponentError } from '../errors.js';
import { trainBpe } from '../models/bpe/trainer.js';
import { generateCorpus } from '../testing/corpus.js';
import type { AnyJson } from '../testing/json.js';
import { PROSE } from '../testing/seed-texts.js';
import { BYTE_TO_CHAR } from '../utils/byte-level.js';
import { Tokenizer } from './tokenizer.js';

let json: AnyJson;
let tok: Tokenizer;

beforeAll(async () => {
  json = await trainBpe({
    texts: [...PROSE, ...generateCorpus({ seed: 3, chars: 30_000 })],
    vocabSize: 1500,
    specialTokens: ['<|endoftext|>'],
  });
  tok = Tokenizer.fromJSON(json);
});

function edited(edit: (j: AnyJson) => void): AnyJson {
  const j = structuredClone(json);
  edit(j);
  return j;
}

describe('loading errors name the JSON path', () => {
  it('truncated or invalid JSON', () => {
    const text = JSON.stringify(json);
    expect(() => Tokenizer.fromJSON(text.slice(0, text.length / 2))).toThrow(
      /^tokenizer.json is not valid JSON at the end of the text \(truncated\?\): /,
    );
    expect(() => Tokenizer.fromJSON('[1, 2]')).toThrow(TokenizerJsonError);
    expect(() => Tokenizer.fromJSON('{}')).toThrow(
      'model: expected a BPE model object, got nothing (missing)',
    );
  });

  it('bad merges and vocab entries', () => {
    expect(() =>
      Tokenizer.fromJSON(
        edited((j) => {
          j.model.merges[12] = 42;
        }),
      ),
    ).toThrow(
      'model.merges[12]: expected a merge "left right" or a [left, right] pair of strings, got number 42',
    );
    expect(() =>
      Tokenizer.fromJSON(
        edited((j) => {
          j.model.merges[3] = 'a b c';
        }),
      ),
    ).toThrow('model.merges[3]: expected a merge "left right" (one space)');
    expect(() =>
      Tokenizer.fromJSON(
        edited((j) => {
          j.model.merges[5] = ['nope', 'a'];
        }),
      ),
    ).toThrow('model.merges[5]: merge token "nope" is not in the vocab');
    expect(() =>
      Tokenizer.fromJSON(
        edited((j) => {
          j.model.vocab['a.b'] = -1;
        }),
      ),
    ).toThrow('model.vocab["a.b"]: expected a token id in 0..2147483647, got number -1');
    expect(() =>
      Tokenizer.fromJSON(
        edited((j) => {
          j.model.vocab = [];
        }),
      ),
    ).toThrow('model.vocab: expected an object, got an array of length 0');
    expect(() =>
      Tokenizer.fromJSON(
        edited((j) => {
          j.added_tokens[0].content = 7;
        }),
      ),
    ).toThrow('added_tokens[0].content: expected a string, got number 7');
  });

  it('unsupported components are errors, never approximations', () => {
    const cases: Array<[(j: AnyJson) => void, string]> = [
      [
        (j) => {
          j.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Precompiled' }] };
        },
        'normalizer.normalizers[1].type: unsupported normalizer "Precompiled"',
      ],
      [
        (j) => {
          j.pre_tokenizer = { type: 'Metaspace' };
        },
        'pre_tokenizer.type: unsupported pre-tokenizer "Metaspace"',
      ],
      [
        (j) => {
          j.decoder = { type: 'WordPiece' };
        },
        'decoder.type: unsupported decoder "WordPiece"',
      ],
      [
        (j) => {
          j.post_processor = { type: 'RobertaProcessing' };
        },
        'post_processor.type: unsupported post-processor "RobertaProcessing"',
      ],
      [
        (j) => {
          j.model.type = 'Unigram';
        },
        'model.type: unsupported model "Unigram" (supported: BPE)',
      ],
      [
        (j) => {
          j.model.dropout = 0.1;
        },
        'model.dropout: BPE dropout is random sampling; only null is supported',
      ],
      [
        (j) => {
          j.padding = { strategy: 'BatchLongest' };
        },
        'padding: padding is not supported',
      ],
      [
        (j) => {
          j.pre_tokenizer = {
            type: 'Sequence',
            pretokenizers: [{ type: 'ByteLevel' }, { type: 'Digits' }],
          };
        },
        'pre_tokenizer.pretokenizers[0]: ByteLevel maps pieces to bytes, so it must be the last pre-tokenizer of a Sequence',
      ],
    ];
    for (const [edit, message] of cases) {
      expect(() => Tokenizer.fromJSON(edited(edit))).toThrow(UnsupportedComponentError);
      expect(() => Tokenizer.fromJSON(edited(edit))).toThrow(message);
    }
  });

  it('fromFile fetches http(s) URLs (browsers) and reports HTTP errors', async () => {
    const body = JSON.stringify(json);
    const server = createServer((req, res) => {
      if (req.url === '/tokenizer.json') res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const remote = await Tokenizer.fromFile(`http://127.0.0.1:${port}/tokenizer.json`);
      expect(remote.encode('hello world')).toEqual(tok.encode('hello world'));
      await expect(Tokenizer.fromFile(`http://127.0.0.1:${port}/missing.json`)).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });

  it('fromFile reports a missing file', async () => {
    await expect(Tokenizer.fromFile('/nonexistent/tokenizer.json')).rejects.toThrow(/ENOENT/);
  });
});

describe('decode', () => {
  it('raises on ids outside the vocabulary', () => {
    expect(() => tok.decode([5, 1500])).toThrow(
      'decode: id 1500 at position 1 is not in the vocabulary (1500 ids)',
    );
    expect(() => tok.decode([-1])).toThrow(RangeError);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
  });

  it('skips special tokens on request and accepts typed arrays', () => {
    const ids = tok.encode('a<|endoftext|>b');
    expect(tok.decode(ids)).toBe('a<|endoftext|>b');
    expect(tok.decode(Int32Array.from(ids), { skipSpecialTokens: true })).toBe('ab');
  });

  it('turns invalid UTF-8 into U+FFFD like a lossy decoder', () => {
    const byteId = (b: number) => tok.tokenToId(BYTE_TO_CHAR[b]) as number;
    expect(tok.decode([byteId(0xe6), byteId(0x97)])).toBe('\ufffd');
    expect(tok.decode([byteId(0xff), byteId(0x41)])).toBe('\ufffdA');
  });
});

describe('DecodeStream', () => {
  it('releases text only at character boundaries and reproduces the decoded text', () => {
    for (const text of generateCorpus({ seed: 11, chars: 20_000 })) {
      const ids = tok.encode(text);
      const stream = tok.decodeStream();
      let out = '';
      for (const id of ids) {
        const piece = stream.step(id);
        if (piece !== null) {
          expect(piece.endsWith('\ufffd')).toBe(false);
          out += piece;
        }
      }
      out += stream.flush();
      expect(out).toBe(tok.decode(ids));
    }
  });

  it('holds back a partial multi-byte character', () => {
    const ids = tok.encode('☃'); // 3 bytes, rare: several tokens
    expect(ids.length).toBeGreaterThan(1);
    const stream = tok.decodeStream();
    expect(stream.step(ids[0])).toBeNull();
    let out = '';
    for (const id of ids.slice(1)) out += stream.step(id) ?? '';
    expect(out).toBe('☃');
  });
});

describe('BPE merge strategies', () => {
  it('the heap (long words) and the linear scan (short words) give the same merges', () => {
    const r = seededRandom(17);
    const chars = [
      ...new Set(
        [...PROSE.join('')].map((c) => [...new TextEncoder().encode(c)].map((b) => BYTE_TO_CHAR[b]).join('')),
      ),
    ];
    for (let k = 0; k < 3000; k++) {
      let word = '';
      const len = 1 + Math.floor(r() * (k < 2900 ? 30 : 600));
      for (let i = 0; i < len; i++) word += chars[Math.floor(r() * chars.length)];
      const linear = tok.model.encodeWordForced(word, false);
      expect(tok.model.encodeWordForced(word, true)).toEqual(linear);
    }
  });

  it('encodes a 200 kB word without spaces (heap path) and round-trips it', () => {
    const word = 'abcdefghij'.repeat(20_000);
    const ids = tok.encode(word);
    expect(tok.decode(ids)).toBe(word);
    const enc = tok.encode(word, { withOffsets: true });
    expect(enc.ids).toEqual(ids);
    expect(enc.offsets.at(-1)?.[1]).toBe(word.length);
  });
});

describe('vocabulary access', () => {
  it('maps tokens and ids both ways, with special tokens', () => {
    expect(tok.vocabSize).toBe(1500);
    expect(tok.tokenToId('<|endoftext|>')).toBe(0);
    expect(tok.specialTokens).toEqual({ '<|endoftext|>': 0 });
    expect(tok.idToToken(tok.tokenToId('Ġthe') as number)).toBe('Ġthe');
    expect(tok.idToToken(99_999)).toBeUndefined();
    expect(tok.tokenToId('not a token')).toBeUndefined();
  });

  it('rejects non-string input with a precise error', () => {
    expect(() => tok.encode(42 as unknown as string)).toThrow('encode expects a string, got number');
  });
});
