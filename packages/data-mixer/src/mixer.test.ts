import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MixerBatch } from './batches.js';
import type { MixerConfig } from './config.js';
import { DataMixer } from './data-mixer.js';
import { readJsonlDocuments } from './jsonl.js';
import { Mixer, type TokenizerInstance } from './mixer.js';
import { mixStats } from './stats.js';
import { sampleConfig, sampleDir, sampleStreams, tempDir, tokenizerSpec } from './testing/fixtures.js';
import { type LoadedTokenizer, loadTokenizer } from './tokenizer.js';

async function take(
  mixer: DataMixer,
  n: number,
  opts: Parameters<DataMixer['batches']>[0],
): Promise<MixerBatch[]> {
  const out: MixerBatch[] = [];
  for await (const b of mixer.batches({ ...opts, limit: n })) out.push(b);
  return out;
}

async function draw(config: MixerConfig, tokenizer: TokenizerInstance, n: number): Promise<Int32Array[]> {
  const mixer = await Mixer.open({ config, tokenizer });
  const out: Int32Array[] = [];
  for (let i = 0; i < n; i++) {
    const row = new Int32Array(config.maxSeqLen);
    await mixer.next(row);
    out.push(row);
  }
  return out;
}

describe.skipIf(!tokenizerSpec)('mixer on the sample corpus with the GPT-NeoX tokenizer', () => {
  let tok: LoadedTokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(tokenizerSpec!);
  });

  it('realises the RedPajama mix within the binomial confidence interval', async () => {
    const n = 3000;
    const stats = await mixStats(sampleConfig(), tok, n);
    let chi2 = 0;
    for (const [name, s] of Object.entries(stats.streams)) {
      const sd = Math.sqrt((s.target * (1 - s.target)) / n);
      expect(Math.abs(s.fraction - s.target), name).toBeLessThan(4 * sd);
      expect(s.tokens).toBe(s.samples * 128);
      chi2 += (s.samples - n * s.target) ** 2 / (n * s.target);
    }
    expect(chi2).toBeLessThan(22.46); // p = 0.001 for 6 degrees of freedom
    expect(Object.values(stats.streams).reduce((a, s) => a + s.samples, 0)).toBe(n);
  });

  it('is deterministic for a seed and changes with it', async () => {
    const a = await draw(sampleConfig(), tok, 24);
    const b = await draw(sampleConfig(), tok, 24);
    const c = await draw(sampleConfig({ shuffleSeed: 18 }), tok, 24);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('packs every document of an epoch exactly once, in order, with EOS after each', async () => {
    // One stream, small shuffle windows: one epoch's tokens, split at EOS, are the documents' token ids.
    const config = sampleConfig({ streams: sampleStreams(['books']), shuffleBlockSize: 7, maxSeqLen: 50 });
    const docs: string[] = [];
    for await (const d of readJsonlDocuments(join(sampleDir, 'books/part-00.jsonl'), 'text')) docs.push(d);
    const encoded = docs.map((d) => Array.from(tok.tokenizer.encode(d) as ArrayLike<number>));
    const epochTokens = encoded.reduce((a, ids) => a + ids.length + 1, 0);
    const samples = await draw(config, tok, Math.ceil(epochTokens / 50) + 2);
    const flat = samples.flatMap((s) => Array.from(s));
    const seen: string[] = [];
    let start = 0;
    for (let i = 0; i < epochTokens; i++) {
      if (flat[i] === tok.eosId) {
        seen.push(flat.slice(start, i).join(','));
        start = i + 1;
      }
    }
    expect(start).toBe(epochTokens); // the epoch ends exactly on an EOS
    const expected = encoded.map((ids) => ids.join(','));
    expect([...seen].sort()).toEqual([...expected].sort()); // nothing lost, nothing duplicated
    expect(seen).not.toEqual(expected); // and shuffled
    // The remainder of the last sample carries over into the next epoch's first document.
    const next = flat.slice(epochTokens, epochTokens + 5).join(',');
    expect(expected.some((e) => e.startsWith(next))).toBe(true);
  });

  it('keeps stored order with shuffle: false', async () => {
    const config = sampleConfig({ streams: sampleStreams(['arxiv']), shuffle: false, maxSeqLen: 64 });
    const docs: string[] = [];
    for await (const d of readJsonlDocuments(join(sampleDir, 'arxiv/part-00.jsonl'), 'text')) docs.push(d);
    const expected = docs
      .slice(0, 3)
      .flatMap((d) => [...Array.from(tok.tokenizer.encode(d) as ArrayLike<number>), tok.eosId]);
    const flat = (await draw(config, tok, Math.ceil(expected.length / 64))).flatMap((s) => Array.from(s));
    expect(flat.slice(0, expected.length)).toEqual(expected);
  });

  it('resumes exactly from a saved state (JSON round trip), in-thread and on a worker', async () => {
    const config = sampleConfig({ shuffleBlockSize: 5 });
    const full = await take(await DataMixer.open({ config, tokenizer: tok }), 9, {
      batchSize: 4,
      prefetch: 0,
    });
    const first = await DataMixer.open({ config, tokenizer: tok });
    await take(first, 4, { batchSize: 4, prefetch: 0 });
    const saved = JSON.parse(JSON.stringify(first.state()));
    expect(JSON.stringify(saved).length).toBeLessThan(1000);
    const resumed = await take(await DataMixer.open({ config, tokenizer: tok, state: saved }), 5, {
      batchSize: 4,
      prefetch: 0,
    });
    expect(resumed.map((b) => b.tokens)).toEqual(full.slice(4).map((b) => b.tokens));
    expect(resumed.map((b) => b.streams)).toEqual(full.slice(4).map((b) => b.streams));
    const onWorker = await take(
      await DataMixer.open({ config, tokenizer: tokenizerSpec!, state: saved }),
      5,
      {
        batchSize: 4,
        prefetch: 2,
      },
    );
    expect(onWorker.map((b) => b.tokens)).toEqual(full.slice(4).map((b) => b.tokens));
  });

  it('gives the same global stream at world sizes 1, 2 and 4, each rank a disjoint slice', async () => {
    const config = sampleConfig();
    const globalBatch = 8;
    const single = await take(await DataMixer.open({ config, tokenizer: tok }), 3, {
      batchSize: globalBatch,
      prefetch: 0,
    });
    for (const world of [2, 4]) {
      const perRank: MixerBatch[][] = [];
      for (let rank = 0; rank < world; rank++) {
        const mixer = await DataMixer.open({ config, tokenizer: tok });
        perRank.push(
          await take(mixer, 3, { batchSize: globalBatch / world, rank, worldSize: world, prefetch: 0 }),
        );
      }
      for (let step = 0; step < 3; step++) {
        const ranks = perRank.map((batches) => batches[step]!);
        const joined = new Int32Array(globalBatch * config.maxSeqLen);
        for (const [r, b] of ranks.entries()) joined.set(b.tokens, r * b.tokens.length);
        expect(joined).toEqual(single[step]!.tokens);
        const firsts = ranks.map((b) => b.firstSample);
        expect(firsts).toEqual(ranks.map((_, r) => step * globalBatch + (r * globalBatch) / world));
        // Every rank ends the step in the same state, so any rank's checkpoint resumes all of them.
        expect(new Set(ranks.map((b) => JSON.stringify(b.state))).size).toBe(1);
      }
    }
  });

  it('resumes a state saved at one world size at another', async () => {
    const config = sampleConfig();
    const single = await take(await DataMixer.open({ config, tokenizer: tok }), 4, {
      batchSize: 8,
      prefetch: 0,
    });
    const saved = single[1]!.state;
    for (const world of [2, 4]) {
      const joined: Int32Array[] = [];
      for (let rank = 0; rank < world; rank++) {
        const mixer = await DataMixer.open({ config, tokenizer: tok, state: saved });
        const [b] = await take(mixer, 1, { batchSize: 8 / world, rank, worldSize: world, prefetch: 0 });
        joined.push(b!.tokens);
      }
      const flat = new Int32Array(8 * config.maxSeqLen);
      joined.forEach((t, r) => {
        flat.set(t, r * t.length);
      });
      expect(flat).toEqual(single[2]!.tokens);
    }
  });

  it('keeps batches ready while the consuming thread is busy (no data stall)', async () => {
    const config = sampleConfig({ maxSeqLen: 1024 });
    const opts = { batchSize: 8, limit: 4 };
    // The same three batches drawn on this thread, after a warm-up batch.
    const inline = (await DataMixer.open({ config, tokenizer: tok })).batches({ ...opts, prefetch: 0 });
    await inline.next();
    let t0 = performance.now();
    for (let i = 0; i < 3; i++) await inline.next();
    const onThread = performance.now() - t0;

    const it = (await DataMixer.open({ config, tokenizer: tokenizerSpec! })).batches({
      ...opts,
      prefetch: 3,
    });
    await it.next(); // worker started, tokenizer loaded
    const until = performance.now() + 3000;
    while (performance.now() < until); // a training step that never yields to the event loop
    t0 = performance.now();
    for (let i = 0; i < 3; i++) expect((await it.next()).done).toBe(false);
    const waited = performance.now() - t0;
    expect(waited).toBeLessThan(onThread / 2);
    await it.return(undefined);
  });

  it('prefetches on a worker thread with output identical to the calling thread', async () => {
    const config = sampleConfig();
    const inline = await take(await DataMixer.open({ config, tokenizer: tok }), 6, {
      batchSize: 4,
      prefetch: 0,
    });
    const worker = await DataMixer.open({ config, tokenizer: tokenizerSpec! });
    const prefetched = await take(worker, 6, { batchSize: 4, prefetch: 3 });
    expect(prefetched.map((b) => b.tokens)).toEqual(inline.map((b) => b.tokens));
    expect(prefetched.map((b) => b.streams)).toEqual(inline.map((b) => b.streams));
    expect(worker.state()).toEqual(inline[5]!.state);
  });

  it('rejects states that do not fit the config', async () => {
    const mixer = await Mixer.open({ config: sampleConfig(), tokenizer: tok });
    const state = mixer.state();
    await expect(
      Mixer.open({ config: sampleConfig({ shuffleSeed: 1 }), tokenizer: tok, state }),
    ).rejects.toThrow('mixer state: saved with shuffle_seed 17, config has 1');
    const fewer = sampleConfig({ streams: sampleStreams(['c4']) });
    await expect(Mixer.open({ config: fewer, tokenizer: tok, state })).rejects.toThrow(
      'mixer state: streams arxiv, books, c4, common_crawl, github, stackexchange, wikipedia do not match',
    );
    const dm = await DataMixer.open({
      config: sampleConfig(),
      tokenizer: tok,
      state: { ...state, sample: 3 },
    });
    await expect(take(dm, 1, { batchSize: 2, prefetch: 0 })).rejects.toThrow(
      'mixer state is at sample 3, not at a boundary of the global batch (2)',
    );
    await expect(take(dm, 1, { batchSize: 2, prefetch: 1 })).rejects.toThrow(
      'worker prefetch needs a tokenizer spec',
    );
  });

  it('loads the same ids through @mptjs/tokenizer and the tokenizers binding', async () => {
    const hf = await loadTokenizer({ path: tokenizerSpec!.path, library: 'hf-tokenizers' });
    expect(hf.eosId).toBe(tok.eosId);
    const docs: string[] = [];
    for await (const d of readJsonlDocuments(join(sampleDir, 'github/part-00.jsonl'), 'text')) docs.push(d);
    for (const d of docs.slice(0, 10)) {
      expect(Array.from(await hf.tokenizer.encode(d))).toEqual(Array.from(await tok.tokenizer.encode(d)));
    }
  });

  describe('sources that fail', () => {
    const tmp = tempDir();
    afterAll(tmp.cleanup);

    it('reports a bad JSON line from the worker thread with file and line', async () => {
      const file = join(tmp.dir, 'broken.jsonl');
      writeFileSync(file, '{"text": "fine"}\n{"text": oops}\n');
      const config: MixerConfig = {
        ...sampleConfig(),
        streams: [{ name: 'broken', local: tmp.dir, proportion: 1 }],
      };
      const mixer = await DataMixer.open({ config, tokenizer: tokenizerSpec! });
      await expect(take(mixer, 1, { batchSize: 2, prefetch: 2 })).rejects.toThrow(`${file}:2: invalid JSON`);
    });

    it('with on_bad_record: skip, skips it and reports the warning from the worker thread', async () => {
      const dir = join(tmp.dir, 'skip');
      mkdirSync(dir);
      const file = join(dir, 'broken.jsonl');
      writeFileSync(file, '{"text": "fine"}\n{"text": oops}\n{"text": "also fine"}\n');
      const config: MixerConfig = {
        ...sampleConfig(),
        onBadRecord: 'skip',
        shuffle: false,
        streams: [{ name: 'broken', local: dir, proportion: 1 }],
      };
      const warnings: string[] = [];
      const mixer = await DataMixer.open({
        config,
        tokenizer: tokenizerSpec!,
        warn: (m) => warnings.push(m),
      });
      const [worker] = await take(mixer, 1, { batchSize: 2, prefetch: 2 });
      const inThread = await DataMixer.open({ config, tokenizer: tok, warn: () => {} });
      const [direct] = await take(inThread, 1, { batchSize: 2, prefetch: 0 });
      expect(worker!.tokens).toEqual(direct!.tokens);
      const encode = (t: string) => Array.from(tok.tokenizer.encode(t) as ArrayLike<number>);
      const ids = [...encode('fine'), tok.eosId, ...encode('also fine'), tok.eosId];
      expect(Array.from(worker!.tokens.subarray(0, ids.length))).toEqual(ids);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`${file}:2: invalid JSON`);
      expect(warnings[0]).toContain('skipped (on_bad_record: skip; 1 skipped');
    });

    it('refuses to resume over changed files', async () => {
      const dir = join(tmp.dir, 'changing');
      mkdirSync(dir);
      const file = join(dir, 'a.jsonl');
      writeFileSync(file, '{"text": "one"}\n{"text": "two"}\n');
      const config: MixerConfig = {
        ...sampleConfig(),
        streams: [{ name: 'changing', local: dir, proportion: 1 }],
      };
      const state = (await Mixer.open({ config, tokenizer: tok })).state();
      await Mixer.open({ config, tokenizer: tok, state });
      appendFileSync(file, '{"text": "three"}\n');
      await expect(Mixer.open({ config, tokenizer: tok, state })).rejects.toThrow(
        `mixer state: the files of stream changing (${dir}) changed since it was saved`,
      );
    });

    it('names a stream with no documents, and a directory with no data files', async () => {
      const empty = join(tmp.dir, 'empty');
      mkdirSync(empty);
      writeFileSync(join(empty, 'a.jsonl'), '\n\n');
      writeFileSync(join(empty, 'b.jsonl'), '');
      const config: MixerConfig = {
        ...sampleConfig(),
        streams: [{ name: 'empty', local: empty, proportion: 1 }],
      };
      const mixer = await Mixer.open({ config, tokenizer: tok });
      await expect(mixer.next(null)).rejects.toThrow(`stream empty: no documents in ${empty}`);
      const bare = join(tmp.dir, 'bare');
      mkdirSync(bare);
      writeFileSync(join(bare, 'notes.txt'), 'x');
      const bareConfig: MixerConfig = {
        ...sampleConfig(),
        streams: [{ name: 'bare', local: bare, proportion: 1 }],
      };
      await expect(Mixer.open({ config: bareConfig, tokenizer: tok })).rejects.toThrow(
        `${bare}: no index.json and no .jsonl/.jsonl.gz/.jsonl.zst files`,
      );
    });

    it('weights repeat and choose streams by their record counts', async () => {
      const config: MixerConfig = {
        ...sampleConfig(),
        streams: [
          { name: 'books', local: join(sampleDir, 'books'), repeat: 2 },
          { name: 'arxiv', local: join(sampleDir, 'arxiv'), choose: 40 },
        ],
      };
      const mixer = await Mixer.open({ config, tokenizer: tok });
      expect(mixer.weights).toEqual([60 / 100, 40 / 100]); // books: 2 x 30 records, arxiv: 40
    });
  });
});
