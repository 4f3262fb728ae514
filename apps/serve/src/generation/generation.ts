import { DecodeSequence, type GeneratedToken, type SamplingOptions, type TextDelta } from '@mptjs/mpt-model';
import type { TextTokenizer } from '../engine/types.js';
import type { PromptScore } from './prompt-logprobs.js';

export interface SamplingParams {
  /** 0 means greedy (arg-max). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 keeps all. */
  topK: number;
  /** Nucleus sampling threshold; 1 keeps all. */
  topP: number;
  /** HF/CTRL repetition penalty; 1 is off. */
  repetitionPenalty?: number | undefined;
  /** Seed of the sampling generator; a random one when not given. */
  seed?: number | undefined;
}

/** A seed for requests that give none. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

export interface GenerationParams extends SamplingParams {
  maxNewTokens: number;
  stopStrings: readonly string[];
  /** Token ids that end generation (EOS); they are not part of the text. */
  stopIds: readonly number[];
  /** Number of alternatives to report with each token's logprob; undefined reports no logprobs. */
  logprobs?: number | undefined;
}

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
      sampling: {
        temperature: params.temperature,
        topK: params.topK,
        topP: params.topP,
        repetitionPenalty: params.repetitionPenalty ?? 1,
      } satisfies SamplingOptions,
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
