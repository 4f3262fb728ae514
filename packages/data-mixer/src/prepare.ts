// `data prepare`: tokenise and pack each stream into an MDS dataset, as llm-foundry's `concat_tokens` does:
// documents in stored order, each as `ids + [eos]`, concatenated and cut into `max_seq_len` samples; the last
// partial sample is dropped. The column is `tokens` (`ndarray:int32`); shards are zstd-compressed.
import { join } from 'node:path';
import type { MixerConfig } from './config.js';
import type { MdsIndex } from './mds.js';
import { MdsWriter } from './mds-writer.js';
import { isTokenizerSpec, streamDir, type TokenizerInstance } from './mixer.js';
import { toInt32 } from './packer.js';
import { openSource } from './source.js';
import { loadTokenizer, type TokenizerSpec } from './tokenizer.js';

export interface PrepareOptions {
  compression?: string | null;
  sizeLimit?: number;
  /** Documents tokenised per `encodeBatch` call. */
  batchDocuments?: number;
  /** Digests recorded per shard file in index.json (e.g. `['sha1']`), checked when the shard is read. */
  hashes?: string[];
  /** Warnings (records skipped under `on_bad_record: skip`); default `console.warn`. */
  warn?: (message: string) => void;
}

export interface PreparedStream {
  name: string;
  dir: string;
  documents: number;
  samples: number;
  /** Tokens of the final partial sample, dropped. */
  droppedTokens: number;
  index: MdsIndex;
}

export async function prepareStreams(
  config: MixerConfig,
  tokenizer: TokenizerSpec | TokenizerInstance,
  outDir: string,
  options: PrepareOptions = {},
): Promise<PreparedStream[]> {
  const { tokenizer: tok, eosId } = isTokenizerSpec(tokenizer) ? await loadTokenizer(tokenizer) : tokenizer;
  const seqLen = config.maxSeqLen;
  const batchDocs = options.batchDocuments ?? 64;
  const results: PreparedStream[] = [];
  for (const stream of config.streams) {
    const source = await openSource(streamDir(stream), stream.textField, {
      onBadRecord: config.onBadRecord ?? 'fail',
      warn: options.warn,
    });
    const dir = join(outDir, stream.name);
    const writer = new MdsWriter(dir, {
      columns: { tokens: 'ndarray:int32' },
      compression: options.compression === undefined ? 'zstd' : options.compression,
      sizeLimit: options.sizeLimit,
      hashes: options.hashes,
    });
    let buffer = new Int32Array(seqLen * 4);
    let filled = 0;
    let documents = 0;
    let samples = 0;
    const push = async (ids: ArrayLike<number>, eos: boolean): Promise<void> => {
      const need = filled + ids.length + (eos ? 1 : 0);
      if (need > buffer.length) {
        const grown = new Int32Array(Math.max(need, buffer.length * 2));
        grown.set(buffer.subarray(0, filled));
        buffer = grown;
      }
      buffer.set(toInt32(ids), filled);
      filled += ids.length;
      if (eos) buffer[filled++] = eosId;
      let start = 0;
      while (filled - start >= seqLen) {
        await writer.write({ tokens: buffer.slice(start, start + seqLen) });
        samples++;
        start += seqLen;
      }
      buffer.copyWithin(0, start, filled);
      filled -= start;
    };
    const pending: string[] = [];
    const flushText = async (): Promise<void> => {
      const encoded = tok.encodeBatch
        ? await tok.encodeBatch(pending)
        : await Promise.all(pending.map((t) => tok.encode(t)));
      for (const ids of encoded) await push(ids, true);
      pending.length = 0;
    };
    for (let unit = 0; unit < source.units.length; unit++) {
      for await (const doc of source.read(unit, 0)) {
        documents++;
        if (typeof doc === 'string') {
          pending.push(doc);
          if (pending.length >= batchDocs) await flushText();
        } else {
          await flushText();
          await push(doc, false);
        }
      }
    }
    await flushText();
    const index = await writer.finish();
    results.push({ name: stream.name, dir, documents, samples, droppedTokens: filled, index });
  }
  return results;
}
