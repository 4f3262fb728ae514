// The token batches the kit's "same learning" section trains on: the bundled RedPajama-style sample
// (data/sample, its own mix of seven streams), tokenized with GPT-NeoX-20B's tokenizer and packed by
// @mptjs/data-mixer exactly as a training run would be, drawn here at build time and shipped in the kit as plain
// int32 ids, so the GPU machine needs neither the corpus's tokenizer nor the mixer's workers.
// Usage (build.mjs calls it): writeSampleTokens(outDir, { seqLen, samples }); readSampleTokens(dir) in the kit.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataMixer, loadDataRunConfig } from '@mptjs/data-mixer';

export const SAMPLE_TOKENS_BIN = 'sample-tokens.bin';
export const SAMPLE_TOKENS_JSON = 'sample-tokens.json';

/** GPT-NeoX-20B's tokenizer.json in the shared data directory (`MPTJS_SHARED_DIR`, default ../shared). */
export function sampleTokenizerPath(root) {
  const shared = resolve(process.env.MPTJS_SHARED_DIR ?? join(root, '../shared'));
  return join(shared, 'data/gpt-neox-20b-tokenizer.json');
}

/**
 * Draws `samples` packed samples of `seqLen` tokens from the sample mix into `outDir`. Returns a note (and writes
 * nothing) when the tokenizer is missing.
 */
export async function writeSampleTokens(outDir, { root, seqLen, samples }) {
  const tokenizerPath = sampleTokenizerPath(root);
  if (!existsSync(tokenizerPath)) {
    return `no tokenizer at ${tokenizerPath} (set MPTJS_SHARED_DIR): the kit has no sample tokens, so its same-learning section will skip`;
  }
  // The sample config's stream paths are relative to the repository root.
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const { mixer: config } = loadDataRunConfig('data/sample/redpajama-sample.yaml');
    const mixer = await DataMixer.open({
      config: { ...config, maxSeqLen: seqLen },
      tokenizer: { path: tokenizerPath },
    });
    const ids = new Int32Array(samples * seqLen);
    let filled = 0;
    for await (const batch of mixer.batches({ batchSize: 16, limit: Math.ceil(samples / 16) })) {
      const take = Math.min(batch.tokens.length, ids.length - filled);
      ids.set(batch.tokens.subarray(0, take), filled);
      filled += take;
    }
    if (filled !== ids.length) throw new Error(`the mixer gave ${filled} of ${ids.length} tokens`);
    writeFileSync(join(outDir, SAMPLE_TOKENS_BIN), Buffer.from(ids.buffer));
    const meta = {
      source:
        'data/sample/redpajama-sample.yaml (seven streams, RedPajama proportions), packed by @mptjs/data-mixer',
      tokenizer: 'gpt-neox-20b',
      seq_len: seqLen,
      samples,
      max_id: ids.reduce((m, x) => Math.max(m, x), 0),
    };
    writeFileSync(join(outDir, SAMPLE_TOKENS_JSON), `${JSON.stringify(meta, null, 2)}\n`);
    return null;
  } finally {
    process.chdir(cwd);
  }
}

/** The kit's sample tokens (`{ meta, ids }`), or null when the kit was built without them. */
export function readSampleTokens(dir) {
  const json = join(dir, SAMPLE_TOKENS_JSON);
  if (!existsSync(json)) return null;
  const meta = JSON.parse(readFileSync(json, 'utf8'));
  const bytes = readFileSync(join(dir, SAMPLE_TOKENS_BIN));
  const ids = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (ids.length !== meta.samples * meta.seq_len) {
    throw new Error(
      `${SAMPLE_TOKENS_BIN} holds ${ids.length} ids, its JSON says ${meta.samples} x ${meta.seq_len}`,
    );
  }
  return { meta, ids };
}
