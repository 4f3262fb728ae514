// Property tests: mutated tokenizer.json (bytes, and JSON values swapped for random ones) either loads and
// encodes into in-range ids, or fails with a one-line TokenizerJsonError; never a TypeError from a missing value,
// a RangeError, or a hang. Fixed run counts keep each property to a few seconds.

import { type ByteMutation, mutateBytes } from '@mptjs/test-fixtures';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenizerJsonError } from '../errors.js';
import { trainBpe } from '../models/bpe/trainer.js';
import type { AnyJson } from '../testing/json.js';
import { isOneLine } from '../testing/one-line.js';
import { PROSE } from '../testing/seed-texts.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

const mutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('copy' as const),
    from: fc.nat(),
    to: fc.nat(),
    length: fc.integer({ min: 1, max: 16 }),
  }),
);

const SAMPLE = 'Hello world, the quick brown fox; 12 34 <|endoftext|> café 😀';

let valid: AnyJson;
let validBytes: Uint8Array;
beforeAll(async () => {
  valid = await trainBpe({ texts: PROSE.slice(0, 4), vocabSize: 280, specialTokens: ['<|endoftext|>'] });
  validBytes = new TextEncoder().encode(JSON.stringify(valid));
});

/** Loads and encodes; a failure must be a TokenizerJsonError on one line. */
function loadCleanly(input: string | Uint8Array | object): void {
  let tok: Tokenizer;
  try {
    tok = Tokenizer.fromJSON(input);
  } catch (e) {
    if (!(e instanceof TokenizerJsonError)) throw e;
    expect(isOneLine(e.message), e.message).toBe(true);
    expect(e.message.length).toBeLessThanOrEqual(403);
    return;
  }
  const ids = tok.encode(SAMPLE);
  for (const id of ids) {
    expect(Number.isInteger(id) && id >= 0).toBe(true);
    expect(tok.idToToken(id)).toBeDefined();
  }
}

/** Every path to a value inside `json`, as key lists. */
function paths(json: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(prefix);
  if (Array.isArray(json)) {
    for (let i = 0; i < Math.min(json.length, 12); i++) paths(json[i], [...prefix, i], out);
  } else if (typeof json === 'object' && json !== null) {
    for (const [k, v] of Object.entries(json).slice(0, 12)) paths(v, [...prefix, k], out);
  }
  return out;
}

function replaceAt(json: AnyJson, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(json);
  let node: AnyJson = copy;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path.at(-1)!] = value;
  return copy;
}

describe('fuzzing the tokenizer.json reader', () => {
  it('loads a byte-mutated file correctly or refuses it cleanly', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        loadCleanly(mutateBytes(validBytes, ms));
      }),
      { numRuns: 1500 },
    );
  });

  it('loads a file with any value replaced by a random one correctly or refuses it cleanly', () => {
    const all = paths(valid);
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(
        'BPE',
        'ByteLevel',
        'Sequence',
        'Split',
        'NFC',
        'TemplateProcessing',
        'Regex',
        '',
        '\u0000',
      ),
      fc.record({
        type: fc.constantFrom('BPE', 'ByteLevel', 'Sequence', 'Split', 'Digits', 'Lowercase', 'Strip'),
      }),
    );
    fc.assert(
      fc.property(fc.nat(all.length - 1), value, (which, v) => {
        const mutated = replaceAt(valid, all[which]!, v);
        loadCleanly(mutated as object);
        loadCleanly(JSON.stringify(mutated));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses random bytes cleanly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        loadCleanly(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
