import {
  DataMixer,
  expandPreset,
  type MixerBatch,
  type MixerState,
  parseTrainLoader,
  resolveTokenizerFile,
} from '@mptjs/data-mixer';
import type { Json } from './config/section.js';

/** Opens the mixer for a `train_loader`/`eval_loader` section as written (the mixer validates its own keys). */
export async function openMixer(
  loaderSection: unknown,
  tokenizerName: string,
  seqLen: number,
  state?: unknown,
): Promise<DataMixer> {
  const config = parseTrainLoader(expandPreset(loaderSection as Json, 'config'), seqLen);
  if (config.maxSeqLen !== seqLen) {
    throw new Error(
      `the loader's max_seq_len (${config.maxSeqLen}) differs from the model's sequence length (${seqLen})`,
    );
  }
  const tokenizer = { path: resolveTokenizerFile(tokenizerName) };
  return DataMixer.open(state ? { config, tokenizer, state: state as MixerState } : { config, tokenizer });
}

/** A batch iterator that remembers the state after the last batch it handed out. */
export class BatchStream {
  private readonly it: AsyncGenerator<MixerBatch>;

  constructor(
    private readonly mixer: DataMixer,
    batchSize: number,
    rank = 0,
    worldSize = 1,
  ) {
    this.it = mixer.batches({ batchSize, rank, worldSize });
  }

  async next(): Promise<MixerBatch> {
    const r = await this.it.next();
    if (r.done) throw new Error('the data stream ended');
    return r.value;
  }

  state(): unknown {
    return this.mixer.state();
  }

  get streamNames(): string[] {
    return this.mixer.streamNames;
  }

  async close(): Promise<void> {
    await this.it.return(undefined);
  }
}
