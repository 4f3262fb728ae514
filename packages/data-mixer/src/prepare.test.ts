import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonlDocuments } from './jsonl.js';
import { MdsWriter } from './mds-writer.js';
import { Mixer } from './mixer.js';
import { prepareStreams } from './prepare.js';
import { openSource } from './source.js';
import { sampleConfig, sampleDir, sampleStreams, tempDir, tokenizerSpec } from './testing/fixtures.js';
import { type LoadedTokenizer, loadTokenizer } from './tokenizer.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe.skipIf(!tokenizerSpec)('data prepare', () => {
  let tok: LoadedTokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(tokenizerSpec!);
  });

  it('writes MDS that reads back as the same packed samples as the raw stream', async () => {
    const seqLen = 64;
    const raw = sampleConfig({
      streams: sampleStreams(['books', 'arxiv']),
      shuffle: false,
      maxSeqLen: seqLen,
    });
    const prepared = await prepareStreams(raw, tok, tmp.dir, { sizeLimit: 1 << 14 });
    expect(prepared.map((p) => p.name)).toEqual(['books', 'arxiv']);
    for (const p of prepared) {
      expect(existsSync(join(tmp.dir, p.name, 'index.json'))).toBe(true);
      expect(p.index.shards.length).toBeGreaterThan(1);
      expect(p.index.shards.every((s) => s.zip_data?.basename.endsWith('.mds.zstd'))).toBe(true);
      // Every token of every document, plus one EOS each, minus the dropped tail.
      let tokens = 0;
      for await (const d of readJsonlDocuments(join(sampleDir, p.name, 'part-00.jsonl'), 'text')) {
        tokens += (tok.tokenizer.encode(d) as ArrayLike<number>).length + 1;
      }
      expect(p.samples).toBe(Math.floor(tokens / seqLen));
      expect(p.droppedTokens).toBe(tokens % seqLen);

      const fromRaw = await Mixer.open({
        config: { ...raw, streams: sampleStreams([p.name]) },
        tokenizer: tok,
      });
      const fromMds = await Mixer.open({
        config: { ...raw, streams: [{ name: p.name, local: join(tmp.dir, p.name), proportion: 1 }] },
        tokenizer: tok,
      });
      const source = await openSource(join(tmp.dir, p.name));
      expect(source.kind).toBe('mds');
      expect(await source.countRecords()).toBe(p.samples);
      for (let i = 0; i < p.samples; i++) {
        const a = new Int32Array(seqLen);
        const b = new Int32Array(seqLen);
        await fromRaw.next(a);
        await fromMds.next(b);
        expect(b).toEqual(a);
      }
    }
  });
  it('packs an MDS text stream exactly like the JSON-lines stream it was written from', async () => {
    const dir = join(tmp.dir, 'books-text');
    const writer = new MdsWriter(dir, { columns: { text: 'str' }, sizeLimit: 1 << 13 });
    for await (const text of readJsonlDocuments(join(sampleDir, 'books/part-00.jsonl'), 'text'))
      await writer.write({ text });
    expect((await writer.finish()).shards.length).toBeGreaterThan(1);
    const base = sampleConfig({ shuffle: false, maxSeqLen: 100 });
    const fromJsonl = await Mixer.open({
      config: { ...base, streams: sampleStreams(['books']) },
      tokenizer: tok,
    });
    const fromMds = await Mixer.open({
      config: { ...base, streams: [{ name: 'books', local: dir, proportion: 1 }] },
      tokenizer: tok,
    });
    for (let i = 0; i < 60; i++) {
      const a = new Int32Array(100);
      const b = new Int32Array(100);
      await fromJsonl.next(a);
      await fromMds.next(b);
      expect(b).toEqual(a);
    }
  });
});
