// The mixture: global sample g comes from stream s with probability weight[s], chosen by a hash of (seed, g)
// alone, so the choice for any sample is known without drawing the ones before it. Each stream packs its own
// documents; the state (next global sample and each stream's cursor) is a small JSON object.
import { join } from 'node:path';
import type { MixerConfig, StreamConfig } from './config.js';
import { type StreamCursor, StreamPacker } from './packer.js';
import { uniformAt } from './random.js';
import { ShuffledDocuments } from './shuffled-documents.js';
import { openSource, type StreamSource } from './source.js';
import { type LoadedTokenizer, loadTokenizer, type TextTokenizer, type TokenizerSpec } from './tokenizer.js';

export interface MixerState {
  version: 1;
  seed: number;
  maxSeqLen: number;
  /** Global index of the next sample. */
  sample: number;
  streams: Record<string, StreamCursor>;
  /** Per stream, a fingerprint of its files: a state does not resume over changed data. */
  sources: Record<string, string>;
}

/** A tokenizer given as an object (in-thread only) rather than a spec a worker can load. */
export interface TokenizerInstance {
  tokenizer: TextTokenizer;
  eosId: number;
}

export function isTokenizerSpec(t: TokenizerSpec | TokenizerInstance): t is TokenizerSpec {
  return typeof (t as TokenizerSpec).path === 'string';
}

export interface MixerOptions {
  config: MixerConfig;
  tokenizer: TokenizerSpec | TokenizerInstance;
  /** Resume from a state saved by `state()`. */
  state?: MixerState;
  /**
   * Receives warnings (proportions that do not sum to 1, records skipped under `on_bad_record: skip`);
   * default `console.warn`. With worker prefetch the worker's warnings come back to this callback.
   */
  warn?: (message: string) => void;
}

export interface Sample {
  tokens: Int32Array;
  stream: number;
}

export function streamDir(stream: StreamConfig): string {
  return stream.split ? join(stream.local, stream.split) : stream.local;
}

/**
 * Target fraction of samples per stream: normalised proportions, or repeat x size / choose. Proportions that do
 * not sum to 1 are normalised with a warning naming the sum and the proportions used.
 */
export async function streamWeights(
  streams: StreamConfig[],
  sources: StreamSource[],
  warn: (message: string) => void = console.warn,
): Promise<number[]> {
  const raw: number[] = [];
  for (let i = 0; i < streams.length; i++) {
    const s = streams[i]!;
    if (s.proportion !== undefined) raw.push(s.proportion);
    else if (s.choose !== undefined) raw.push(s.choose);
    else raw.push((s.repeat ?? 1) * (await sources[i]!.countRecords()));
  }
  const total = raw.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error('stream weights sum to zero: every stream is empty');
  // Rounded to 15 digits so that proportions summing to 1 come back as given (0.67, not 0.6699999999999999).
  const weights = raw.map((w) => Number((w / total).toPrecision(15)));
  if (streams[0]?.proportion !== undefined && Math.abs(total - 1) > 1e-9) {
    const used = streams.map((s, i) => `${s.name} ${Number(weights[i]!.toPrecision(6))}`).join(', ');
    warn(`stream proportions sum to ${Number(total.toPrecision(12))}, not 1: normalized to ${used}`);
  }
  return weights;
}

/** Which stream global sample `g` is drawn from. */
export function chooseStream(seed: number, g: number, cumulative: readonly number[]): number {
  const u = uniformAt(seed, 'mix', g);
  for (let i = 0; i < cumulative.length - 1; i++) if (u < cumulative[i]!) return i;
  return cumulative.length - 1;
}

export class Mixer {
  private sample = 0;
  private tokenizerPromise: Promise<LoadedTokenizer | TokenizerInstance> | undefined;
  private readonly cumulative: number[];

  private constructor(
    readonly config: MixerConfig,
    readonly weights: number[],
    private readonly packers: StreamPacker[],
    private readonly sources: StreamSource[],
    private readonly tokenizerSource: TokenizerSpec | TokenizerInstance,
  ) {
    let acc = 0;
    this.cumulative = weights.map((w) => {
      acc += w;
      return acc;
    });
  }

  /** `known.weights` (internal: a worker reopening a mixer) skips recounting records and the proportion warning. */
  static async open(options: MixerOptions, known?: { weights: number[] }): Promise<Mixer> {
    const { config } = options;
    const names = config.streams.map((s) => s.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate !== undefined) throw new Error(`stream name ${duplicate} is used twice`);
    if (config.streams.length > 65535) throw new Error('at most 65535 streams');
    const warn = options.warn ?? console.warn;
    const sources = await Promise.all(
      config.streams.map((s) =>
        openSource(streamDir(s), s.textField, { onBadRecord: config.onBadRecord ?? 'fail', warn }),
      ),
    );
    const weights = known?.weights ?? (await streamWeights(config.streams, sources, warn));
    let mixer: Mixer;
    const packers = config.streams.map(
      (s, i) =>
        new StreamPacker(
          new ShuffledDocuments(
            sources[i]!,
            s.name,
            config.shuffleSeed,
            config.shuffle,
            config.shuffleBlockSize,
          ),
          () => mixer.tokenizer(),
        ),
    );
    mixer = new Mixer(config, weights, packers, sources, options.tokenizer);
    if (options.state) mixer.restore(options.state);
    return mixer;
  }

  get streamNames(): string[] {
    return this.config.streams.map((s) => s.name);
  }

  /** Global index of the next sample. */
  get position(): number {
    return this.sample;
  }

  private tokenizer(): Promise<LoadedTokenizer | TokenizerInstance> {
    const t = this.tokenizerSource;
    this.tokenizerPromise ??= isTokenizerSpec(t) ? loadTokenizer(t) : Promise.resolve(t);
    return this.tokenizerPromise;
  }

  state(): MixerState {
    const streams: Record<string, StreamCursor> = {};
    const sources: Record<string, string> = {};
    this.config.streams.forEach((s, i) => {
      streams[s.name] = this.packers[i]!.cursor;
      sources[s.name] = this.sources[i]!.fingerprint;
    });
    const { shuffleSeed: seed, maxSeqLen } = this.config;
    return { version: 1, seed, maxSeqLen, sample: this.sample, streams, sources };
  }

  restore(state: MixerState): void {
    if (state?.version !== 1)
      throw new Error(`mixer state: unsupported version ${JSON.stringify(state?.version)}`);
    if (state.seed !== this.config.shuffleSeed) {
      throw new Error(
        `mixer state: saved with shuffle_seed ${state.seed}, config has ${this.config.shuffleSeed}`,
      );
    }
    if (state.maxSeqLen !== this.config.maxSeqLen) {
      throw new Error(
        `mixer state: saved with max_seq_len ${state.maxSeqLen}, config has ${this.config.maxSeqLen}`,
      );
    }
    const names = this.streamNames;
    const saved = Object.keys(state.streams).sort();
    if (saved.join(',') !== [...names].sort().join(',')) {
      throw new Error(
        `mixer state: streams ${saved.join(', ')} do not match the config's ${names.join(', ')}`,
      );
    }
    if (!Number.isInteger(state.sample) || state.sample < 0) throw new Error('mixer state: bad sample index');
    names.forEach((name, i) => {
      const c = state.streams[name]!;
      const fingerprint = this.sources[i]!.fingerprint;
      if (state.sources?.[name] !== fingerprint) {
        throw new Error(
          `mixer state: the files of stream ${name} (${this.sources[i]!.dir}) changed since it was saved`,
        );
      }
      for (const k of ['epoch', 'unit', 'doc', 'token'] as const) {
        if (!Number.isInteger(c[k]) || c[k] < 0)
          throw new Error(`mixer state: streams.${name}.${k} is not a valid index`);
      }
      this.packers[i]!.restore(c);
    });
    this.sample = state.sample;
  }

  /**
   * Bad records skipped so far per stream name under `on_bad_record: skip` (records read by this mixer, each
   * counted once; a resumed mixer counts from zero).
   */
  skippedRecords(): Record<string, number> {
    const out: Record<string, number> = {};
    this.config.streams.forEach((s, i) => {
      out[s.name] = this.sources[i]!.skipped;
    });
    return out;
  }

  /** Stream of global sample `g`. */
  streamOf(g: number): number {
    return chooseStream(this.config.shuffleSeed, g, this.cumulative);
  }

  /** Draws the next global sample into `out` (at `offset`), or advances past it when `out` is null. */
  async next(out: Int32Array | null, offset = 0): Promise<number> {
    const stream = this.streamOf(this.sample);
    await this.packers[stream]!.fill(out, offset, this.config.maxSeqLen);
    this.sample++;
    return stream;
  }
}
