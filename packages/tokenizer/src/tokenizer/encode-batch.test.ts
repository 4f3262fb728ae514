// encodeBatch on real worker threads: runs the package as built by the test setup (node_modules/.cache/test-dist/), since workers load
// the built encode-worker.js.

import { sharedFile, TOKENIZER_JSON } from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainBpe } from '../models/bpe/trainer.js';
import { generateCorpus } from '../testing/corpus.js';
import type { Tokenizer as TokenizerInstance } from './tokenizer.js';

const built = (await import(
  new URL('../../node_modules/.cache/test-dist/index.js', import.meta.url).href
)) as typeof import('../index.js');
const { closeWorkers, Tokenizer, workerCount } = built;

let tok: TokenizerInstance;
const docs = generateCorpus({ seed: 21, chars: 400_000 });

beforeAll(async () => {
  tok = Tokenizer.fromJSON(
    JSON.stringify(
      await trainBpe({ texts: docs.slice(0, 50), vocabSize: 3000, specialTokens: ['<|endoftext|>'] }),
    ),
  );
});
afterAll(() => closeWorkers(tok));

describe('encodeBatch', () => {
  it('gives the same ids as encode, in order, across worker threads', async () => {
    const expected = docs.map((d) => tok.encode(d));
    expect(await tok.encodeBatch(docs, { threads: 3 })).toEqual(expected);
    expect(await workerCount(tok)).toBe(2); // plus the calling thread
    // Again on the warm pool, with two batches in flight at once.
    const [a, b] = await Promise.all([
      tok.encodeBatch(docs.slice(0, 100), { threads: 3 }),
      tok.encodeBatch(docs.slice(100), { threads: 3 }),
    ]);
    expect([...a, ...b]).toEqual(expected);
  });

  it('encodes small or single-thread batches in-thread, and empty batches', async () => {
    expect(await tok.encodeBatch(['a b', '<|endoftext|>'])).toEqual([
      tok.encode('a b'),
      tok.encode('<|endoftext|>'),
    ]);
    expect(await tok.encodeBatch(docs.slice(0, 20), { threads: 1 })).toEqual(
      docs.slice(0, 20).map((d) => tok.encode(d)),
    );
    expect(await tok.encodeBatch([])).toEqual([]);
  });

  it('rejects non-string entries before starting', async () => {
    await expect(tok.encodeBatch(['ok', 5 as unknown as string])).rejects.toThrow(
      'encodeBatch: texts[1] is number, expected a string',
    );
  });

  const neox = sharedFile(TOKENIZER_JSON);
  it.skipIf(!neox)('matches encode with the GPT-NeoX tokenizer', async () => {
    const big = await Tokenizer.fromFile(neox as string);
    try {
      expect(await big.encodeBatch(docs, { threads: 2 })).toEqual(docs.map((d) => big.encode(d)));
    } finally {
      await closeWorkers(big);
    }
  });
});
