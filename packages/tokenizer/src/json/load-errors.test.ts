// Loading a broken tokenizer.json: every error is one line with at most a short escaped excerpt, UTF-16 and invalid
// UTF-8 are refused by name (never decoded into replacement characters), lone surrogates are refused as HF does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hf from 'tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenizerJsonError } from '../errors.js';
import { trainBpe } from '../models/bpe/trainer.js';
import type { AnyJson } from '../testing/json.js';
import { isOneLine } from '../testing/one-line.js';
import { PROSE } from '../testing/seed-texts.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenizer-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let json: AnyJson;
let text: string;
beforeAll(async () => {
  json = await trainBpe({ texts: PROSE, vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  text = JSON.stringify(json, null, 2);
});

let serial = 0;
function file(bytes: Uint8Array | string): string {
  const path = join(dir, `t${serial++}.json`);
  writeFileSync(path, bytes);
  return path;
}

/** The error a load gives, checked to be a one-line TokenizerJsonError of bounded length. */
async function loadError(load: () => Promise<unknown> | unknown): Promise<TokenizerJsonError> {
  let error: unknown;
  try {
    await load();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(TokenizerJsonError);
  const message = (error as Error).message;
  expect(isOneLine(message), message).toBe(true);
  expect(message.length).toBeLessThanOrEqual(403);
  return error as TokenizerJsonError;
}

describe('tokenizer.json load errors', () => {
  it('names UTF-16 input (with or without a byte-order mark) instead of echoing its NUL bytes', async () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    expect((await loadError(() => Tokenizer.fromFile(file(le)))).message).toBe(
      'tokenizer.json is UTF-16 (little-endian, with a byte-order mark) text; save it as UTF-8',
    );
    expect((await loadError(() => Tokenizer.fromFile(file(Buffer.from(text, 'utf16le'))))).message).toBe(
      'tokenizer.json is UTF-16 (little-endian) text; save it as UTF-8',
    );
    const be = Buffer.from(text, 'utf16le').swap16();
    expect((await loadError(() => Tokenizer.fromFile(file(be)))).message).toBe(
      'tokenizer.json is UTF-16 (big-endian) text; save it as UTF-8',
    );
  });

  it('refuses invalid UTF-8 inside a string, naming the byte, offset and line (it used to become U+FFFD)', async () => {
    const bytes = Buffer.from(text);
    const at = bytes.indexOf(Buffer.from('"<|endoftext|>"')) + 2;
    bytes[at] = 0xff;
    const line = bytes.subarray(0, at).toString('latin1').split('\n').length;
    expect((await loadError(() => Tokenizer.fromFile(file(bytes)))).message).toBe(
      `tokenizer.json is not valid UTF-8: byte 0xff at offset ${at} (line ${line}) does not form a character`,
    );
    // Overlong encodings and encoded surrogates are invalid too.
    for (const bad of [
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
    ]) {
      const b = Buffer.from(text);
      const p = b.indexOf(Buffer.from('<|endoftext|>'));
      const broken = Buffer.concat([b.subarray(0, p), Buffer.from(bad), b.subarray(p)]);
      expect((await loadError(() => Tokenizer.fromJSON(new Uint8Array(broken)))).message).toContain(
        `is not valid UTF-8: byte 0x${bad[0]!.toString(16)} at offset ${p}`,
      );
    }
  });

  it('drops a UTF-8 byte-order mark and loads the same tokenizer', async () => {
    const plain = Tokenizer.fromJSON(text);
    const bom = await Tokenizer.fromFile(
      file(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])),
    );
    for (const t of PROSE.slice(0, 3)) expect(bom.encode(t)).toEqual(plain.encode(t));
  });

  it('reports a JSON syntax error on one line with line, column and an escaped excerpt', async () => {
    const lines = text.split('\n');
    const broken = [...lines.slice(0, 3), `${lines[3]!.slice(0, -1)} \u0000oops,`, ...lines.slice(4)].join(
      '\n',
    );
    const message = (await loadError(() => Tokenizer.fromJSON(broken))).message;
    // Column 19 is the NUL after `  "padding": null `; it shows escaped in the excerpt.
    expect(message).toMatch(
      /^tokenizer\.json is not valid JSON at line 4, column 19: [^\n]+ near ".*null \\u0000oops,\\n/,
    );
    expect((await loadError(() => Tokenizer.fromJSON('{"model":\n x}'))).message).toBe(
      `tokenizer.json is not valid JSON at line 2, column 2: Unexpected token 'x' near " x}"`,
    );
    const truncated = (await loadError(() => Tokenizer.fromFile(file(text.slice(0, 500))))).message;
    expect(truncated).toMatch(/^tokenizer\.json is not valid JSON at the end of the text \(truncated\?\): /);
    const huge = `{"model": ${'['.repeat(5)}\n${'x'.repeat(100_000)}`;
    const hugeMessage = (await loadError(() => Tokenizer.fromJSON(huge))).message;
    expect(hugeMessage).toMatch(/^tokenizer\.json is not valid JSON at line 2, column 1: /);
    expect(hugeMessage.length).toBeLessThan(250);
  });

  it('keeps value errors on one line however long or odd the value', async () => {
    const j = structuredClone(json);
    j.model.merges[0] = `${'a\n'.repeat(5000)} b`;
    const message = (await loadError(() => Tokenizer.fromJSON(j))).message;
    expect(message).toMatch(/^model\.merges\[0\]: merge token "a\\na\\n/);
  });

  it('refuses token ids that do not fit the id arrays instead of encoding to corrupted ids', async () => {
    const vocab = structuredClone(json);
    vocab.model.vocab['1'] = 3788548024293007;
    expect((await loadError(() => Tokenizer.fromJSON(vocab))).message).toBe(
      'model.vocab["1"]: expected a token id in 0..2147483647, got number 3788548024293007',
    );
    const added = structuredClone(json);
    added.added_tokens[0].id = 2 ** 31;
    expect((await loadError(() => Tokenizer.fromJSON(added))).message).toBe(
      'added_tokens[0].id: expected a token id in 0..2147483647, got number 2147483648',
    );
  });

  it('refuses a lone surrogate escape in a vocab key with its JSON path, as HF tokenizers does', async () => {
    const j = structuredClone(json);
    j.model.vocab['\ud800x'] = 299;
    const broken = JSON.stringify(j);
    expect(broken).toContain('\\ud800x');
    const err = await loadError(() => Tokenizer.fromJSON(broken));
    expect(err.path).toBe('model.vocab["\\ud800x"]');
    expect(err.message).toContain('string holds a lone surrogate');
    expect(() => hf.Tokenizer.fromString(broken)).toThrow();
    // A surrogate pair written as escapes is one character and loads.
    const pair = structuredClone(json);
    pair.model.vocab['\ud83d\ude00'] = 299;
    expect(() => Tokenizer.fromJSON(JSON.stringify(pair).replace('😀', '\\ud83d\\ude00'))).not.toThrow();
  });

  it('loads Split pre-tokenizers on literal strings with regex syntax characters, as HF does', async () => {
    for (const literal of ['-', '/', '.', '(', '$', ']']) {
      const j = structuredClone(json);
      j.pre_tokenizer = {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { String: literal }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        ],
      };
      const s = JSON.stringify(j);
      const sample = `a-b/c.d(e$f]g ${literal}${literal} end`;
      const want = (await hf.Tokenizer.fromString(s).encode(sample)).getIds();
      expect(Tokenizer.fromJSON(s).encode(sample), literal).toEqual(want);
    }
  });
});
