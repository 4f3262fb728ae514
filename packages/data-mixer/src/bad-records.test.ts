// `on_bad_record: skip` over MDS datasets: a sample that does not decode is left out, named once and counted,
// through the source, the mixer and its batches; a stream of nothing but bad samples is an error, not a hang.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MixerConfig } from './config.js';
import { DataMixer } from './data-mixer.js';
import { MdsWriter } from './mds-writer.js';
import { Mixer, type TokenizerInstance } from './mixer.js';
import { openSource } from './source.js';
import { tempDir } from './testing/fixtures.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** An uncompressed MDS token dataset; a negative id makes its sample fail to decode ("token id out of range"). */
async function tokenDataset(name: string, samples: number[][]): Promise<string> {
  const dir = join(tmp.dir, name);
  const writer = new MdsWriter(dir, { columns: { tokens: 'ndarray:int32' }, compression: null });
  for (const s of samples) await writer.write({ tokens: Int32Array.from(s) });
  await writer.finish();
  return dir;
}

// Token documents never reach the tokenizer; the mixer only needs one to exist.
const unusedTokenizer: TokenizerInstance = {
  tokenizer: {
    encode: () => {
      throw new Error('token datasets are not tokenized');
    },
  },
  eosId: 0,
};

function config(dir: string, onBadRecord: 'fail' | 'skip'): MixerConfig {
  return {
    streams: [{ name: 'tokens', local: dir, proportion: 1 }],
    maxSeqLen: 4,
    shuffle: false,
    shuffleSeed: 1,
    shuffleBlockSize: 8,
    onBadRecord,
  };
}

describe('on_bad_record over MDS samples', () => {
  it('skip leaves a sample that does not decode out, names it once and counts it', async () => {
    const dir = await tokenDataset('one-bad', [
      [5, 6, 7],
      [1, -1],
      [8, 9],
    ]);
    const warnings: string[] = [];
    const source = await openSource(dir, 'text', { onBadRecord: 'skip', warn: (m) => warnings.push(m) });
    const docs = await collect(source.read(0, 0));
    expect(docs.map((d) => Array.from(d as Int32Array))).toEqual([
      [5, 6, 7],
      [8, 9],
    ]);
    await collect(source.read(0, 0));
    expect(source.skipped).toBe(1);
    expect(warnings).toEqual([
      `${join(dir, 'shard.00000.mds')}: sample 1: token id -1 out of range: skipped (on_bad_record: skip; 1 skipped in ${dir} so far)`,
    ]);
    const failing = await openSource(dir);
    await expect(collect(failing.read(0, 0))).rejects.toThrow(
      `${join(dir, 'shard.00000.mds')}: sample 1: token id -1 out of range`,
    );
  });

  it('the mixer packs around the skipped sample and reports the count in every batch', async () => {
    const dir = await tokenDataset('mixed', [
      [5, 6, 7],
      [1, -1],
      [8, 9],
      [10, 11, 12],
    ]);
    const mixer = await DataMixer.open({
      config: config(dir, 'skip'),
      tokenizer: unusedTokenizer,
      warn: () => {},
    });
    const batches = await collect(mixer.batches({ batchSize: 2, limit: 1, prefetch: 0 }));
    expect(Array.from(batches[0]!.tokens)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(batches[0]!.skipped).toEqual({ tokens: 1 });
    const strict = await Mixer.open({ config: config(dir, 'fail'), tokenizer: unusedTokenizer });
    // The first sample needs a token past [5, 6, 7]: the bad sample is next, and under fail it stops the mixer.
    await expect(strict.next(new Int32Array(4))).rejects.toThrow('sample 1: token id -1 out of range');
  });

  it('a stream whose every sample is bad fails naming the count instead of looping', async () => {
    const dir = await tokenDataset('all-bad', [[-1], [-2], [-3]]);
    const mixer = await Mixer.open({
      config: config(dir, 'skip'),
      tokenizer: unusedTokenizer,
      warn: () => {},
    });
    await expect(mixer.next(new Int32Array(4))).rejects.toThrow(
      `stream tokens: no documents in ${dir} (3 bad records skipped)`,
    );
  });
});
