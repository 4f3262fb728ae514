// The mixture without a real tokenizer: realised fractions of the RedPajama mix, one stream per sample, and the
// warning for proportions that do not sum to 1.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MixerConfig } from './config.js';
import { DataMixer } from './data-mixer.js';
import { chooseStream, Mixer, type TokenizerInstance } from './mixer.js';
import { REDPAJAMA_MIX } from './presets.js';
import { tempDir } from './testing/fixtures.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

const names = Object.keys(REDPAJAMA_MIX);
const targets = Object.values(REDPAJAMA_MIX);

function cumulative(weights: readonly number[]): number[] {
  let acc = 0;
  return weights.map((w) => {
    acc += w;
    return acc;
  });
}

// Stream s holds documents "s len": the fake tokenizer turns one into `len` ids in [1000 (s + 1), 1000 (s + 2)),
// so every id names the stream it came from. EOS is 0.
const STREAM_DOCS = 20;
const streamTokenizer: TokenizerInstance = {
  eosId: 0,
  tokenizer: {
    encode(text: string) {
      const [s, len] = text.split(' ').map(Number) as [number, number];
      return Int32Array.from({ length: len }, (_, j) => 1000 * (s + 1) + (j % 1000));
    },
  },
};

function writeStreams(root: string, proportions: readonly number[]): MixerConfig {
  const streams = names.map((name, s) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const lines = Array.from({ length: STREAM_DOCS }, (_, d) =>
      JSON.stringify({ text: `${s} ${1 + ((d * 37) % 150)}` }),
    );
    writeFileSync(join(dir, 'part-00.jsonl'), `${lines.join('\n')}\n`);
    return { name, local: dir, proportion: proportions[s]! };
  });
  return { streams, maxSeqLen: 64, shuffle: true, shuffleSeed: 17, shuffleBlockSize: 8 };
}

describe('mixing', () => {
  it('realises the RedPajama mix over 20,000 samples within 3 standard errors of each target', () => {
    const n = 20_000;
    const cum = cumulative(targets);
    for (const seed of [17, 9176]) {
      const counts = new Array<number>(names.length).fill(0);
      for (let g = 0; g < n; g++) counts[chooseStream(seed, g, cum)]!++;
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      targets.forEach((p, s) => {
        const se = Math.sqrt((p * (1 - p)) / n);
        expect(Math.abs(counts[s]! / n - p), `seed ${seed}, ${names[s]}`).toBeLessThan(3 * se);
      });
    }
  });

  it('fills every sample from the one stream chooseStream picks for it', async () => {
    const config = writeStreams(join(tmp.dir, 'single'), targets);
    const mixer = await Mixer.open({ config, tokenizer: streamTokenizer, warn: () => {} });
    const cum = cumulative(mixer.weights);
    const row = new Int32Array(config.maxSeqLen);
    for (let g = 0; g < 2000; g++) {
      const s = await mixer.next(row);
      expect(s).toBe(chooseStream(config.shuffleSeed, g, cum));
      for (const id of row) {
        if (id !== 0 && Math.floor(id / 1000) - 1 !== s)
          throw new Error(`sample ${g} (${names[s]}) holds id ${id}`);
      }
    }
  });

  it('normalises proportions that do not sum to 1, with one warning naming the sum and the result', async () => {
    const config = writeStreams(join(tmp.dir, 'unnormalised'), [6, 3, 1, 1, 1, 1, 1]);
    config.streams = config.streams.slice(0, 3);
    const warnings: string[] = [];
    const mixer = await Mixer.open({ config, tokenizer: streamTokenizer, warn: (m) => warnings.push(m) });
    expect(mixer.weights).toEqual([0.6, 0.3, 0.1]);
    expect(warnings).toEqual([
      'stream proportions sum to 10, not 1: normalized to common_crawl 0.6, c4 0.3, github 0.1',
    ]);
    // DataMixer.open passes its callback on; proportions that already sum to 1 are quiet.
    const viaDataMixer: string[] = [];
    await DataMixer.open({ config, tokenizer: streamTokenizer, warn: (m) => viaDataMixer.push(m) });
    expect(viaDataMixer).toEqual(warnings);
    const quiet: string[] = [];
    await Mixer.open({
      config: writeStreams(join(tmp.dir, 'rp'), targets),
      tokenizer: streamTokenizer,
      warn: (m) => quiet.push(m),
    });
    expect(quiet).toEqual([]);
  });
});
