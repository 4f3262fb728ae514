import {
  DecodeSequence,
  type DecodeSequenceOptions,
  type GeneratedToken,
  isGreedy,
  type SamplingOptions,
  type TextDelta,
} from '@mptjs/mpt-model';
import type { RowChoice, TextTokenizer } from '../engine/types.js';
import type { PromptScore } from './prompt-logprobs.js';

/**
 * What a request asks of sampling, in mpt-model's terms: its `SamplingOptions` (temperature, top-k, top-p,
 * repetition penalty) and the seed of the sampling generator, which the server draws at random when not given.
 */
export type RequestSampling = SamplingOptions & Partial<Pick<DecodeSequenceOptions, 'seed'>>;

/** A seed for requests that give none. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

/** One sequence's sampling and its end rule and logprobs, as mpt-model's `DecodeSequence` takes them. */
export interface GenerationParams
  extends RequestSampling,
    Pick<DecodeSequenceOptions, 'maxNewTokens' | 'stopStrings' | 'stopIds' | 'logprobs'> {}

export interface GenerationObserver {
  onDelta?(delta: TextDelta, generation: Generation): void;
  /** Called for every sampled token with the seconds since the previous one (undefined for the first). */
  onToken?(generation: Generation, gapSeconds: number | undefined): void;
  onFinish?(generation: Generation): void;
}

/**
 * One request's sequence: mpt-model's `DecodeSequence` (token choice, logprobs, stop ids and strings, streamed
 * text) with what serving adds: request parameters, token timings for the metrics, the prompt's own logprobs and
 * the server's context rule (a sequence ends once prompt and continuation fill `maxSeqLen`). The scheduler and
 * the CLI both drive generation through it.
 */
export class Generation extends DecodeSequence {
  readonly createdAt = performance.now();
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
  /** The prompt's own logprobs, when asked for (`echo` with `logprobs`); the scheduler fills it in. */
  promptScore: PromptScore | undefined;

  constructor(
    promptIds: readonly number[],
    readonly params: GenerationParams,
    readonly maxSeqLen: number,
    tokenizer: TextTokenizer | undefined,
    private readonly observer: GenerationObserver = {},
  ) {
    super(promptIds, {
      sampling: params,
      seed: params.seed ?? randomSeed(),
      maxNewTokens: params.maxNewTokens,
      stopIds: params.stopIds,
      stopStrings: params.stopStrings,
      decode: tokenizer && ((ids) => tokenizer.decode(ids)),
      logprobs: params.logprobs,
    });
  }

  /**
   * Samples the next token from `logits`; returns true when the sequence is finished. The context is full, for the
   * server, once prompt and continuation together reach `maxSeqLen` tokens.
   */
  override advance(logits: Float32Array): boolean {
    return super.advance(logits, this.promptIds.length + this.ids.length + 1 >= this.maxSeqLen);
  }

  /**
   * The next token's choice as an engine may make it without the logits: the arg-max of a greedy sequence, or the
   * host sampler's next draw (temperature, top-k, top-p from this sequence's seed and draw count). Undefined when
   * choosing needs the logits on the host: logprobs, or a repetition penalty.
   */
  get deviceChoice(): RowChoice | undefined {
    const p = this.params;
    if (p.logprobs !== undefined || (p.repetitionPenalty ?? 1) !== 1) return undefined;
    if (isGreedy(p)) return { greedy: true };
    // The seed as `SeededRandom` reads it.
    const seed = Math.trunc(this.options.seed) >>> 0;
    return { temperature: p.temperature!, topK: p.topK, topP: p.topP, seed, counter: this.draws };
  }

  /** Whether choosing the next token needs the logits on the host (no `deviceChoice`). */
  get needsLogits(): boolean {
    return this.deviceChoice === undefined;
  }

  /** Adds the token an engine chose by `deviceChoice`; returns true when finished. */
  acceptChosen(id: number): boolean {
    if (this.needsLogits) throw new Error('this sequence chooses its tokens from the logits on the host');
    const full = this.promptIds.length + this.ids.length + 1 >= this.maxSeqLen;
    return isGreedy(this.params) ? super.accept(id, full) : super.acceptDrawn(id, full);
  }

  protected override onToken(_token: GeneratedToken): void {
    const now = performance.now();
    const gap = this.lastTokenAt === undefined ? undefined : (now - this.lastTokenAt) / 1000;
    this.firstTokenAt ??= now;
    this.lastTokenAt = now;
    this.observer.onToken?.(this, gap);
  }

  protected override onDelta(delta: TextDelta): void {
    this.observer.onDelta?.(delta, this);
  }

  protected override onFinish(): void {
    this.observer.onFinish?.(this);
  }
}
