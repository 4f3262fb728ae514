/**
 * Autoregressive generation for one sequence: prefill the prompt into a KV cache, then one decode step per
 * token, choosing each token on the host (`DecodeSequence` with the reference `sampleToken`), or for plain greedy
 * decoding on the device. Tokens stream out as they are chosen.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MPTModel } from '../model.js';
import {
  DecodeSequence,
  type FinishReason,
  type GeneratedToken,
  type TokenChooser,
} from './decode-sequence.js';
import { isGreedy, type SamplingOptions, sampleToken, validateSampling } from './sampling.js';
import { generateRecorded } from './webgpu-decode/generate-recorded.js';
import type { WeightFormat } from './webgpu-decode/shaders.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Stop when one of these ids is produced (it is included in the output). */
  stopTokenIds?: readonly number[];
  /** Stop when the decoded continuation contains one of these; needs `decode`. The text is cut before it. */
  stopStrings?: readonly string[];
  /** Token ids -> text, for stop strings and `text` in results (e.g. the tokenizer's `decode`). */
  decode?: (ids: number[]) => string;
  /** Seed of the sampling generator (default 0): the same seed gives the same tokens. */
  seed?: number;
  /**
   * Report each token's log-probability under the model's raw logits and this many most likely alternatives
   * (`logprob` and `top` of each `GeneratedToken`). Chooses every token on the host; not with `recorded`.
   */
  logprobs?: number;
  /**
   * `tfjs` (default): tfjs ops per step, the token chosen on the host (or the arg-max on the backend).
   * `recorded` (webgpu only): a decode step recorded once per model, one submit per token, the token chosen on
   * the device (see `RecordedDecoder`); its sampling draws the host's tokens for the same seed (up to float32
   * rounding at a threshold), and it has no repetition penalty.
   */
  engine?: 'tfjs' | 'recorded';
  /**
   * With `engine: 'recorded'`: how its step reads the block matrices and the tied head, `f32` (default) or `f16`
   * (packed half copies made once per model, half the bytes per token; see `RecordedDecoderOptions.weights`).
   */
  recordedWeights?: WeightFormat;
}

export interface GenerateResult {
  tokens: number[];
  /** The decoded continuation (cut before a stop string), when `decode` was given. */
  text?: string;
  finishReason: FinishReason;
}

function validate(prompt: readonly number[], o: GenerateOptions): void {
  if (prompt.length === 0) throw new RangeError('the prompt must hold at least one token');
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) {
    throw new RangeError(`maxNewTokens must be a non-negative integer, got ${o.maxNewTokens}`);
  }
  if (o.stopStrings?.length && !o.decode) throw new RangeError('stopStrings need a decode function');
  if (o.logprobs !== undefined && !(Number.isInteger(o.logprobs) && o.logprobs >= 0)) {
    throw new RangeError(`logprobs must be a non-negative integer, got ${o.logprobs}`);
  }
  validateSampling(o);
}

/** The reference sampler: `generate`'s seeded draws are the ones it has always made. */
const referenceChoice: TokenChooser = (logits, options, random, seen) =>
  sampleToken(logits, options, random, seen);

/** The sequence state `generate`'s loops (tfjs and recorded) advance, one per call. */
export function generationSequence(prompt: readonly number[], options: GenerateOptions): DecodeSequence {
  // Empty stop strings never match; the text is decoded per token only when stop strings need it.
  const stopStrings = options.stopStrings?.filter((s) => s.length > 0) ?? [];
  return new DecodeSequence(prompt, {
    sampling: options,
    seed: options.seed ?? 0,
    maxNewTokens: options.maxNewTokens,
    stopIds: options.stopTokenIds,
    stopStrings,
    decode: stopStrings.length > 0 ? (ids) => options.decode!([...ids]) : undefined,
    logprobs: options.logprobs,
    choose: referenceChoice,
  });
}

/** The result once `sequence` has ended: its text is cut before a stop string, else the decoded tokens. */
export function generationResult(sequence: DecodeSequence, options: GenerateOptions): GenerateResult {
  const tokens = [...sequence.ids];
  const finishReason = sequence.finishReason ?? 'length';
  if (!options.decode) return { tokens, finishReason };
  const text = finishReason === 'stop_string' ? sequence.text : options.decode(tokens);
  return { tokens, text, finishReason };
}

/**
 * Streams the continuation of `prompt` token by token. The final `GenerateResult` is the generator's return
 * value; `generate` collects it for you.
 */
export async function* generateStream(
  model: MPTModel,
  prompt: readonly number[],
  options: GenerateOptions,
): AsyncGenerator<GeneratedToken, GenerateResult, void> {
  validate(prompt, options);
  if (options.engine === 'recorded') return yield* generateRecorded(model, prompt, options);
  if (options.recordedWeights !== undefined) {
    throw new RangeError('recordedWeights applies to engine "recorded" only');
  }
  if (options.engine !== undefined && options.engine !== 'tfjs') {
    throw new RangeError(`engine must be "tfjs" or "recorded", got ${JSON.stringify(options.engine)}`);
  }
  const sequence = generationSequence(prompt, options);
  const cache = model.newCache();
  // Greedy without a repetition penalty or logprobs takes the arg-max on the backend and reads back one int per
  // token (ties go to the lowest id, as on the host). On webgpu, whose reads are asynchronous, the next step is
  // queued from the token still on the device before its read completes: the host records that step while the
  // device computes and the read makes its round trip. A stop then discards the queued step.
  const onDevice =
    isGreedy(options) && (options.repetitionPenalty ?? 1) === 1 && options.logprobs === undefined;
  const pipelined = onDevice && tf.getBackend() === 'webgpu';
  let next: tf.Tensor2D | null = null;
  try {
    let logits: tf.Tensor2D | null = options.maxNewTokens > 0 ? model.prefill([[...prompt]], cache) : null;
    while (logits && !sequence.done) {
      // Whether the cache has room for another step, as it was before any queued step.
      const full = cache.length >= model.config.maxSeqLen;
      if (onDevice) {
        const chosen = tf.argMax(logits, -1) as tf.Tensor1D;
        logits.dispose();
        logits = null;
        let token: number;
        try {
          const read = chosen.data();
          if (pipelined && sequence.ids.length + 1 < options.maxNewTokens && !full) {
            next = model.decodeStep(chosen, cache);
          }
          token = (await read)[0]!;
        } finally {
          chosen.dispose();
        }
        sequence.accept(token, full);
      } else {
        const row = ((await logits.data()) as Float32Array).slice();
        logits.dispose();
        logits = null;
        sequence.advance(row, full);
      }
      yield sequence.tokens[sequence.tokens.length - 1]!;
      if (sequence.done) break;
      logits = next ?? model.decodeStep([sequence.lastId], cache);
      next = null;
    }
    (logits as tf.Tensor | null)?.dispose();
  } finally {
    (next as tf.Tensor | null)?.dispose();
    cache.dispose();
  }
  return generationResult(sequence, options);
}

/** Generates the whole continuation; `onToken` sees each token as it is chosen. */
export async function generate(
  model: MPTModel,
  prompt: readonly number[],
  options: GenerateOptions & { onToken?: (t: GeneratedToken) => void },
): Promise<GenerateResult> {
  const stream = generateStream(model, prompt, options);
  for (;;) {
    const step = await stream.next();
    if (step.done) return step.value;
    options.onToken?.(step.value);
  }
}
