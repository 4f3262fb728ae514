// The public entry point: a mixer over the configured streams that yields batches, on a worker thread by default.
import { type BatchOptions, checkBatchOptions, type MixerBatch, mixerBatches } from './batches.js';
import type { MixerConfig } from './config.js';
import {
  isTokenizerSpec,
  Mixer,
  type MixerOptions,
  type MixerState,
  type TokenizerInstance,
} from './mixer.js';
import { prefetchBatches } from './prefetch.js';
import type { TokenizerSpec } from './tokenizer.js';

export const DEFAULT_PREFETCH = 4;

export class DataMixer {
  private current: MixerState;

  private constructor(
    private readonly options: MixerOptions,
    private readonly mixer: Mixer,
  ) {
    this.current = mixer.state();
  }

  /** Opens every stream (reading MDS indexes; counting records only for repeat/choose weights). */
  static async open(options: MixerOptions): Promise<DataMixer> {
    return new DataMixer(options, await Mixer.open(options));
  }

  get config(): MixerConfig {
    return this.options.config;
  }

  get streamNames(): string[] {
    return this.mixer.streamNames;
  }

  /** Target fraction of samples per stream, in stream order. */
  get weights(): number[] {
    return this.mixer.weights;
  }

  /** State after the last batch this mixer yielded (or the state it was opened with). */
  state(): MixerState {
    return structuredClone(this.current);
  }

  /**
   * Batches for one rank, `[batchSize, max_seq_len]` each. With `prefetch > 0` (default 4) a worker thread
   * tokenises and packs up to that many batches ahead; that needs a tokenizer spec, not an instance.
   */
  async *batches(opts: BatchOptions): AsyncGenerator<MixerBatch> {
    checkBatchOptions(opts);
    const prefetch = opts.prefetch ?? DEFAULT_PREFETCH;
    let source: AsyncGenerator<MixerBatch>;
    if (prefetch > 0) {
      const tokenizer = this.options.tokenizer;
      if (!isTokenizerSpec(tokenizer)) {
        throw new Error(
          'worker prefetch needs a tokenizer spec ({ path }); pass prefetch: 0 to use a tokenizer instance',
        );
      }
      source = prefetchBatches(
        {
          config: this.config,
          tokenizer,
          state: this.current,
          weights: this.mixer.weights,
          batch: opts,
          prefetch,
        },
        this.options.warn,
      );
    } else {
      this.mixer.restore(this.current);
      source = mixerBatches(this.mixer, opts);
    }
    for await (const batch of source) {
      this.current = batch.state;
      yield batch;
    }
  }
}

export type { TokenizerInstance, TokenizerSpec };
