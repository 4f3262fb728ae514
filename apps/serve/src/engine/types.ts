/**
 * What the server needs from a model: full-sequence logits, and per-sequence generation with a KV cache
 * (prefill once, then batched single-token decode steps). The MPT adapter implements it; the scheduler and the
 * HTTP layer depend only on this.
 */
export interface ModelInfo {
  vocabSize: number;
  maxSeqLen: number;
}

/** One sequence's state inside the engine (its KV cache); opaque to callers. */
export interface EngineSequence {
  /** Tokens the cache holds. */
  readonly length: number;
}

/**
 * How an engine may choose a row's next token itself: the arg-max (lowest id on ties), or the draw number
 * `counter` of mpt-model's host sampler (`chooseToken` with `SeededRandom(seed)`) at the given temperature,
 * top-k and top-p, which it must reproduce so that a request's tokens do not depend on the engine.
 */
export type RowChoice =
  | { greedy: true }
  | {
      greedy?: false;
      temperature: number;
      topK?: number | undefined;
      topP?: number | undefined;
      seed: number;
      counter: number;
    };

/** One row of `decodeRows`: its logits, or the token the engine chose when the row gave it a choice. */
export type DecodedRow = { logits: Float32Array } | { token: number };

export interface Engine {
  readonly info: ModelInfo;
  /** Logits `[B, T, V]` (row-major) for same-length rows of token ids. */
  logits(ids: readonly (readonly number[])[]): Promise<Float32Array>;
  /** Runs a prompt through the model, keeping its KV cache; returns the next-token logits `[V]`. */
  prefill(promptIds: readonly number[]): Promise<{ sequence: EngineSequence; logits: Float32Array }>;
  /**
   * Several prompts in one batched pass (optional; the scheduler prefills one at a time without it): the same
   * sequences and logits as `prefill` on each, in order. Throws when any prompt is bad; no sequence is kept then.
   */
  prefillMany?(
    prompts: readonly (readonly number[])[],
  ): Promise<{ sequence: EngineSequence; logits: Float32Array }[]>;
  /** One decode step: appends `tokens[i]` to `sequences[i]`, returns each one's next-token logits `[V]`. */
  decode(sequences: readonly EngineSequence[], tokens: readonly number[]): Promise<Float32Array[]>;
  /**
   * `decode` where a row may skip its logits (optional; the scheduler calls `decode` without it): a row with a
   * `choices[i]` gets only the token chosen by it, for a sequence without logprobs or repetition penalty, whose
   * logits an engine choosing tokens on the device need not read back; a row without one gets its logits.
   */
  decodeRows?(
    sequences: readonly EngineSequence[],
    tokens: readonly number[],
    choices: readonly (RowChoice | undefined)[],
  ): Promise<DecodedRow[]>;
  /** Frees a sequence's cache. Safe to call twice. */
  release(sequence: EngineSequence): void;
  dispose(): void;
}

/** Text <-> token ids, as far as the server needs it. */
export interface TextTokenizer {
  encode(text: string): number[];
  /** Same ids as `encode`, giving the event loop turns while a long text is encoded (when supported). */
  encodeAsync?(text: string): Promise<number[]>;
  decode(ids: readonly number[]): string;
  /** Id of the end-of-text token, which ends generation; undefined when the vocabulary has none. */
  readonly eosTokenId: number | undefined;
  /** Size of the real vocabulary (ids at or above it are padding rows of the embedding). */
  readonly vocabSize: number;
}
