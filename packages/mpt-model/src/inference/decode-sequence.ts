/**
 * The body of every decode loop in mptjs (`generate`, the recorded WebGPU path, the server's scheduler and CLI):
 * one sequence's next token, chosen on the host from a row of logits or on the device and handed in, with its
 * logprobs when asked for; the rule that ends the sequence (stop id, stop string, token budget, full context, in
 * that order); and the text that is safe to show so far (complete UTF-8, no possible start of a stop string held
 * out). The loops differ only in how they get logits (one sequence or a batch, tfjs or a recorded step).
 */
import { SeededRandom } from '../random.js';
import { chooseToken } from './choose-token.js';
import { logprobsOf, type TokenLogprob } from './logprobs.js';
import { isGreedy, type SamplingOptions, validateSampling } from './sampling.js';
import { StopStringMatcher } from './stop-string-matcher.js';
import type { SoftmaxStats } from './weighted-select.js';

/**
 * Why a sequence ended: a stop id, a stop string, the token budget, the model's context; or from outside:
 * `abort` (the caller gave up on it) and `error` (the model failed).
 */
export type FinishReason = 'stop_token' | 'stop_string' | 'length' | 'max_seq_len' | 'abort' | 'error';

/** A token with, when asked for, its log-probability and the most likely alternatives (raw logits). */
export interface ScoredToken {
  token: number;
  logprob?: number;
  top?: TokenLogprob[];
}

export interface GeneratedToken extends ScoredToken {
  /** Position of this token in the continuation (0-based). */
  index: number;
}

/** What one token adds: the tokens, and the text now safe to show (may be empty while UTF-8 or a stop is pending). */
export interface TextDelta {
  tokens: GeneratedToken[];
  text: string;
}

/** Picks a token id from `logits` (which it may modify); `softmax`, when given, receives the normaliser. */
export type TokenChooser = (
  logits: Float32Array,
  options: SamplingOptions,
  random: SeededRandom,
  seen: readonly number[],
  softmax?: SoftmaxStats,
) => number;

export interface DecodeSequenceOptions {
  sampling: SamplingOptions;
  /** Seed of the sampling generator: the same seed gives the same tokens. */
  seed: number;
  maxNewTokens: number;
  /** Token ids that end the sequence; they are not part of its text. */
  stopIds?: readonly number[] | undefined;
  /** Text that ends the sequence; needs `decode`. The text is cut before it. */
  stopStrings?: readonly string[] | undefined;
  /** Token ids -> text; without it the sequence has no text. */
  decode?: ((ids: readonly number[]) => string) | undefined;
  /** Alternatives to report with each token's logprob; undefined reports no logprobs. */
  logprobs?: number | undefined;
  /** Host token choice (default `chooseToken`; `generate` uses the reference `sampleToken`). */
  choose?: TokenChooser | undefined;
}

const REPLACEMENT = '\uFFFD';

export class DecodeSequence {
  readonly ids: number[] = [];
  readonly tokens: GeneratedToken[] = [];
  /** Text shown so far (without any stop string or stop id). */
  text = '';
  finishReason: FinishReason | undefined;
  error: Error | undefined;

  private readonly sampling: SamplingOptions;
  private readonly random: SeededRandom;
  private readonly choose: TokenChooser;
  private readonly stopIds: ReadonlySet<number>;
  /** Prompt and generated ids, for the repetition penalty. */
  private readonly seen: number[];
  private readonly stops: StopStringMatcher;
  private pending: GeneratedToken[] = [];
  private drawCount = 0;
  private decodedLength = 0;

  constructor(
    readonly promptIds: readonly number[],
    readonly options: DecodeSequenceOptions,
  ) {
    if (promptIds.length === 0) throw new RangeError('the prompt must hold at least one token');
    if ((options.stopStrings?.length ?? 0) > 0 && !options.decode) {
      throw new RangeError('stop strings need a tokenizer');
    }
    this.sampling = options.sampling;
    validateSampling(this.sampling);
    this.random = new SeededRandom(options.seed);
    this.choose = options.choose ?? chooseToken;
    this.stopIds = new Set(options.stopIds ?? []);
    this.seen = [...promptIds];
    this.stops = new StopStringMatcher(options.stopStrings ?? []);
  }

  get done(): boolean {
    return this.finishReason !== undefined;
  }

  get lastId(): number {
    return this.ids[this.ids.length - 1]!;
  }

  /**
   * Chooses the next token from `logits` (which it may modify) and adds it; returns true when the sequence is
   * finished. `full`: the context has no room for another token after this one.
   */
  advance(logits: Float32Array, full: boolean): boolean {
    if (this.done) return true;
    const penalty = this.sampling.repetitionPenalty ?? 1;
    // The repetition penalty is applied in place; logprobs must see the model's own logits.
    const raw = this.options.logprobs !== undefined && penalty !== 1 ? logits.slice() : logits;
    // Sampling at temperature 1 from the raw logits computes the log-sum-exp that logprobs need: share it.
    const softmax =
      this.options.logprobs !== undefined && raw === logits && this.sampling.temperature === 1
        ? { max: Number.NaN, sumExp: Number.NaN }
        : undefined;
    const id = this.choose(logits, this.sampling, this.random, this.seen, softmax);
    if (!isGreedy(this.sampling)) this.drawCount++;
    const token: GeneratedToken = { token: id, index: this.ids.length };
    if (this.options.logprobs !== undefined) {
      const shared =
        softmax && Number.isFinite(softmax.sumExp) ? softmax.max + Math.log(softmax.sumExp) : undefined;
      const lp = logprobsOf(raw, id, this.options.logprobs, shared);
      token.logprob = lp.logprob;
      token.top = lp.top;
    }
    return this.add(token, full);
  }

  /**
   * Draws taken from the sampling generator so far (one per sampled token): a sampler elsewhere that reproduces
   * `SeededRandom(seed)`'s draw number `draws` chooses the token this sequence would choose next.
   */
  get draws(): number {
    return this.drawCount;
  }

  /**
   * Adds a token drawn elsewhere (on the device) with this sequence's draw number `draws`; the host generator
   * moves past that draw, so host and device draws may follow one another. Returns true when finished.
   */
  acceptDrawn(id: number, full: boolean): boolean {
    if (this.done) return true;
    if (isGreedy(this.sampling)) throw new Error('a greedy sequence takes no draws: use accept');
    this.random.next();
    this.drawCount++;
    return this.accept(id, full);
  }

  /** Adds a token chosen elsewhere (on the device); returns true when the sequence is finished. */
  accept(id: number, full: boolean): boolean {
    if (this.done) return true;
    return this.add({ token: id, index: this.ids.length }, full);
  }

  /** Ends the sequence early (caller gone, shutdown, model failure). */
  end(reason: FinishReason, error?: Error): void {
    if (this.done) return;
    this.error = error;
    if (reason !== 'error') this.flush();
    this.finish(reason);
  }

  /** Called for every new token, before its text is decoded. */
  protected onToken(_token: GeneratedToken): void {}
  /** Called when tokens and the text they make safe to show are emitted. */
  protected onDelta(_delta: TextDelta): void {}
  protected onFinish(): void {}

  private add(token: GeneratedToken, full: boolean): boolean {
    this.seen.push(token.token);
    this.onToken(token);
    this.ids.push(token.token);
    this.tokens.push(token);
    if (this.stopIds.has(token.token)) {
      this.flush();
      return this.finish('stop_token');
    }
    this.pending.push(token);
    if (this.flushText()) return this.finish('stop_string');
    if (this.ids.length >= this.options.maxNewTokens) {
      this.flush();
      return this.finish('length');
    }
    if (full) {
      this.flush();
      return this.finish('max_seq_len');
    }
    return false;
  }

  /** Decodes the new tokens; emits what is safe. Returns true when a stop string was found. */
  private flushText(): boolean {
    const decode = this.options.decode;
    if (!decode) {
      this.emit('');
      return false;
    }
    // Decoding the whole continuation keeps multi-token characters and merges right; it is cheap next to a step.
    const full = decode(this.ids);
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
    const decode = this.options.decode;
    if (!decode) {
      if (this.pending.length > 0) this.emit('');
      return;
    }
    const full = decode(this.ids.filter((id) => !this.stopIds.has(id)));
    const stopAt = this.stops.find(full, this.text.length);
    const end = stopAt >= 0 ? stopAt : full.length;
    if (end > this.text.length || this.pending.length > 0)
      this.emit(full.slice(this.text.length, Math.max(end, this.text.length)));
  }

  private emit(text: string): void {
    if (text.length === 0 && this.pending.length === 0) return;
    this.text += text;
    const delta: TextDelta = { tokens: this.pending, text };
    this.pending = [];
    this.onDelta(delta);
  }

  private finish(reason: FinishReason): true {
    this.finishReason = reason;
    this.onFinish();
    return true;
  }
}
