import { type SamplingOptions, SeededRandom, validateSampling } from '@mptjs/mpt-model';
import type { TextTokenizer } from '../engine/types.js';
import { chooseToken } from './choose-token.js';
import { logprobsOf, type TokenLogprob } from './logprobs.js';
import type { PromptScore } from './prompt-logprobs.js';
import { StopStringMatcher } from './stop-strings.js';

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

export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

export interface GenerationParams extends SamplingParams {
  maxNewTokens: number;
  stopStrings: readonly string[];
  /** Token ids that end generation (EOS); they are not part of the text. */
  stopIds: readonly number[];
  /** Number of alternatives to report with each token's logprob; undefined reports no logprobs. */
  logprobs?: number | undefined;
}

export interface GeneratedToken {
  id: number;
  logprob?: number;
  top?: TokenLogprob[];
}

/** What one step adds: new tokens, and text now safe to show (may be empty while UTF-8 or a stop is pending). */
export interface GenerationDelta {
  tokens: GeneratedToken[];
  text: string;
}

export interface GenerationObserver {
  onDelta?(delta: GenerationDelta, generation: Generation): void;
  /** Called for every sampled token with the seconds since the previous one (undefined for the first). */
  onToken?(generation: Generation, gapSeconds: number | undefined): void;
  onFinish?(generation: Generation): void;
}

const REPLACEMENT = '\uFFFD';

/**
 * One sequence being generated: samples each next token from the logits the engine gives, decodes text
 * incrementally (UTF-8 safe), applies stop ids, stop strings, max tokens and the context length, and reports
 * deltas to its observer. The scheduler and the CLI both drive generation through it.
 */
export class Generation {
  readonly ids: number[] = [];
  readonly tokens: GeneratedToken[] = [];
  /** Text emitted so far (without any stop string). */
  text = '';
  finishReason: FinishReason | undefined;
  error: Error | undefined;
  readonly createdAt = performance.now();
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
  /** The prompt's own logprobs, when asked for (`echo` with `logprobs`); the scheduler fills it in. */
  promptScore: PromptScore | undefined;

  private readonly sampling: SamplingOptions;
  private readonly random: SeededRandom;
  /** Prompt and generated ids, for the repetition penalty. */
  private readonly seen: number[];
  private readonly stops: StopStringMatcher;
  private pending: GeneratedToken[] = [];
  private decodedLength = 0;

  constructor(
    readonly promptIds: readonly number[],
    readonly params: GenerationParams,
    readonly maxSeqLen: number,
    private readonly tokenizer: TextTokenizer | undefined,
    private readonly observer: GenerationObserver = {},
  ) {
    if (promptIds.length === 0) throw new RangeError('the prompt must hold at least one token');
    if (params.stopStrings.length > 0 && !tokenizer) throw new RangeError('stop strings need a tokenizer');
    this.sampling = {
      temperature: params.temperature,
      topK: params.topK,
      topP: params.topP,
      repetitionPenalty: params.repetitionPenalty ?? 1,
    };
    validateSampling(this.sampling);
    this.random = new SeededRandom(params.seed ?? randomSeed());
    this.seen = [...promptIds];
    this.stops = new StopStringMatcher(params.stopStrings);
  }

  get done(): boolean {
    return this.finishReason !== undefined;
  }

  get lastId(): number {
    return this.ids[this.ids.length - 1]!;
  }

  /** Samples the next token from `logits`; returns true when the sequence is finished. */
  advance(logits: Float32Array): boolean {
    if (this.done) return true;
    // The repetition penalty is applied in place; logprobs must see the model's own logits.
    const raw =
      this.params.logprobs !== undefined && this.sampling.repetitionPenalty !== 1 ? logits.slice() : logits;
    // Sampling at temperature 1 from the raw logits computes the log-sum-exp that logprobs need: share it.
    const softmax =
      this.params.logprobs !== undefined && raw === logits && this.sampling.temperature === 1
        ? { max: Number.NaN, sumExp: Number.NaN }
        : undefined;
    const id = chooseToken(logits, this.sampling, this.random, this.seen, softmax);
    this.seen.push(id);
    const now = performance.now();
    const gap = this.lastTokenAt === undefined ? undefined : (now - this.lastTokenAt) / 1000;
    this.firstTokenAt ??= now;
    this.lastTokenAt = now;
    this.observer.onToken?.(this, gap);
    const token: GeneratedToken = { id };
    if (this.params.logprobs !== undefined) {
      const shared =
        softmax && Number.isFinite(softmax.sumExp) ? softmax.max + Math.log(softmax.sumExp) : undefined;
      const lp = logprobsOf(raw, id, this.params.logprobs, shared);
      token.logprob = lp.logprob;
      token.top = lp.top;
    }
    this.ids.push(id);
    this.tokens.push(token);
    if (this.params.stopIds.includes(id)) {
      this.flush();
      return this.finish('stop');
    }
    this.pending.push(token);
    if (this.flushText()) return this.finish('stop');
    if (
      this.ids.length >= this.params.maxNewTokens ||
      this.promptIds.length + this.ids.length >= this.maxSeqLen
    ) {
      this.flush();
      return this.finish('length');
    }
    return false;
  }

  /** Ends the sequence early (client gone, shutdown, engine failure). */
  end(reason: FinishReason, error?: Error): void {
    if (this.done) return;
    this.error = error;
    if (reason !== 'error') this.flush();
    this.finish(reason);
  }

  /** Decodes the new tokens; emits what is safe. Returns true when a stop string was found. */
  private flushText(): boolean {
    if (!this.tokenizer) {
      this.emit('');
      return false;
    }
    // Decoding the whole continuation keeps multi-token characters and merges right; it is cheap next to a step.
    const full = this.tokenizer.decode(this.ids);
    const stopAt = this.stops.find(full, this.decodedLength);
    if (stopAt >= 0) {
      this.emit(full.slice(this.text.length, Math.max(stopAt, this.text.length)));
      return true;
    }
    // An incomplete UTF-8 sequence decodes to U+FFFD; wait for the bytes that complete it.
    let end = full.length;
    while (end > this.text.length && full[end - 1] === REPLACEMENT) end--;
    this.decodedLength = end;
    const safe = this.text.length + this.stops.safeLength(full.slice(this.text.length, end));
    this.emit(full.slice(this.text.length, safe));
    return false;
  }

  /** Emits everything still held back (at the end of the sequence). */
  private flush(): void {
    if (!this.tokenizer) {
      if (this.pending.length > 0) this.emit('');
      return;
    }
    const full = this.tokenizer.decode(this.ids.filter((id) => !this.params.stopIds.includes(id)));
    const stopAt = this.stops.find(full, this.text.length);
    const end = stopAt >= 0 ? stopAt : full.length;
    if (end > this.text.length || this.pending.length > 0)
      this.emit(full.slice(this.text.length, Math.max(end, this.text.length)));
  }

  private emit(text: string): void {
    if (text.length === 0 && this.pending.length === 0) return;
    this.text += text;
    const delta: GenerationDelta = { tokens: this.pending, text };
    this.pending = [];
    this.observer.onDelta?.(delta, this);
  }

  private finish(reason: FinishReason): true {
    this.finishReason = reason;
    this.observer.onFinish?.(this);
    return true;
  }
}
