// The trainer against HF's BpeTrainer (through the Rust binding's `train`, which uses the default trainer:
// no special tokens, min_frequency 0, vocab 30000) and against our own loader.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hf from 'tokenizers';
import { afterAll, describe, expect, it } from 'vitest';
import { generateCorpus } from '../../testing/corpus.js';
import type { AnyJson } from '../../testing/json.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { trainBpe } from './trainer.js';

const dir = mkdtempSync(join(tmpdir(), 'mptjs-trainer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Trains HF's default BpeTrainer on `file` with our tokenizer.json's normalizer and pre-tokenizer. */
function trainWithHf(ours: AnyJson, file: string): AnyJson {
  const empty = structuredClone(ours);
  empty.added_tokens = [];
  empty.model.vocab = {};
  empty.model.merges = [];
  const tok = hf.Tokenizer.fromString(JSON.stringify(empty));
  tok.train([file]);
  const out = join(dir, 'hf-trained.json');
  tok.save(out);
  return JSON.parse(readFileSync(out, 'utf8'));
}

describe('trainBpe', () => {
  it.each([
    ['natural text', true],
    ['multi-script edge cases', false],
  ])('learns the same merges as HF BpeTrainer, in the same order (%s)', async (_name, natural) => {
    // Small enough that training runs to exhaustion (every word one token) well below HF's 30000 default.
    const text = generateCorpus({ seed: 5, chars: 12_000, natural }).join('\n');
    const file = join(dir, 'corpus.txt');
    writeFileSync(file, text);
    const ours = await trainBpe({ files: [file], vocabSize: 30_000 });
    const theirs = trainWithHf(ours, file);
    const merges = (ours.model as AnyJson).merges as string[][];
    const hfMerges = (theirs.model.merges as Array<string | string[]>).map((m) =>
      typeof m === 'string' ? m.split(' ') : m,
    );
    expect(merges.length).toBeGreaterThan(500);
    expect(merges).toEqual(hfMerges);
    // Vocabularies agree on every learned token (ours also holds the full 256-char alphabet).
    const vocab = (ours.model as AnyJson).vocab as Record<string, number>;
    for (const token of Object.keys(theirs.model.vocab)) expect(vocab[token]).toBeTypeOf('number');
    expect(Object.keys(vocab).length).toBe(256 + merges.length);
  });

  it('stops at vocabSize, honours minFrequency, puts special tokens first', async () => {
    const texts = generateCorpus({ seed: 6, chars: 20_000, natural: true });
    const json = await trainBpe({ texts, vocabSize: 400, specialTokens: ['<|endoftext|>', '<|padding|>'] });
    const vocab = (json.model as AnyJson).vocab as Record<string, number>;
    expect(Object.keys(vocab).length).toBe(400);
    expect(vocab['<|endoftext|>']).toBe(0);
    expect(vocab['<|padding|>']).toBe(1);
    expect((json.model as AnyJson).merges.length).toBe(400 - 2 - 256);
    const frequent = await trainBpe({ texts, vocabSize: 10_000, minFrequency: 50 });
    const all = await trainBpe({ texts, vocabSize: 10_000 });
    expect((frequent.model as AnyJson).merges.length).toBeLessThan((all.model as AnyJson).merges.length);
    expect((all.model as AnyJson).merges.slice(0, 20)).toEqual(
      (frequent.model as AnyJson).merges.slice(0, 20),
    );
  });

  it('produces a tokenizer.json that both our loader and HF load and agree on', async () => {
    const texts = generateCorpus({ seed: 8, chars: 40_000 });
    const json = await trainBpe({ texts, vocabSize: 2000, specialTokens: ['<|endoftext|>'] });
    const text = JSON.stringify(json);
    const ours = Tokenizer.fromJSON(text);
    const theirs = hf.Tokenizer.fromString(text);
    const probe = generateCorpus({ seed: 9, chars: 20_000 });
    const expected = (await theirs.encodeBatch(probe)).map((e) => e.getIds());
    expect(probe.map((p) => ours.encode(p))).toEqual(expected);
    expect(ours.encode('a<|endoftext|>b')[1]).toBe(0);
    // Full byte alphabet: any text round-trips, even bytes never seen in training.
    const unseen = '\u0000\u00ff\u{10FFFF} 𝔸 ☃';
    expect(ours.decode(ours.encode(unseen))).toBe(unseen);
  });

  it('rejects bad options with precise messages', async () => {
    await expect(trainBpe({ texts: ['a'], vocabSize: 0 })).rejects.toThrow(
      'vocabSize must be a positive integer, got 0',
    );
    await expect(trainBpe({ vocabSize: 10 })).rejects.toThrow('give `files` or `texts`');
  });
});
