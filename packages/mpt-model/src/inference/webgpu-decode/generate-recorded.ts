/**
 * `generate` with `engine: 'recorded'`: the continuation through the model's recorded decode step. Each step
 * is queued before the previous token's read returns (the chosen token never leaves the device on the way to
 * the next step), and a stop discards the queued one.
 */
import type { FinishReason, GeneratedToken, GenerateOptions, GenerateResult } from '../../generate.js';
import type { MPTModel } from '../../model.js';
import { isGreedy } from '../../sampling.js';
import { sequenceEnd } from '../../stop-strings.js';
import { RecordedDecodeError } from './gpu.js';
import { RecordedDecoder, type StepOutput, type TokenChoice } from './recorded-decoder.js';

const decoders = new WeakMap<MPTModel, Promise<RecordedDecoder>>();
const busy = new WeakSet<RecordedDecoder>();

/** The model's recorded decoder, built on first use and kept with the model. */
export function recordedDecoderFor(model: MPTModel): Promise<RecordedDecoder> {
  let decoder = decoders.get(model);
  if (!decoder) {
    decoder = RecordedDecoder.create(model);
    decoders.set(model, decoder);
    // A failed build is not cached: the next call reports the error again (or succeeds after a fix).
    decoder.catch(() => decoders.delete(model));
  }
  return decoder;
}

/**
 * Frees the model's recorded decoder, if it has one (`MPTModel.dispose` calls it): its KV cache alone is
 * `2 * n_layers * max_seq_len * d_model` floats. Resolves once the buffers are freed.
 */
export async function disposeRecordedDecoder(model: MPTModel): Promise<void> {
  const decoder = decoders.get(model);
  decoders.delete(model);
  (await decoder?.catch(() => null))?.dispose();
}

function tokenChoice(options: GenerateOptions): TokenChoice {
  if (isGreedy(options)) return { greedy: true };
  const choice: TokenChoice = { temperature: options.temperature!, seed: options.seed ?? 0 };
  if (options.topK !== undefined) choice.topK = options.topK;
  if (options.topP !== undefined) choice.topP = options.topP;
  return choice;
}

/** The recorded engine's `generateStream` (options already validated). */
export async function* generateRecorded(
  model: MPTModel,
  prompt: readonly number[],
  options: GenerateOptions,
): AsyncGenerator<GeneratedToken, GenerateResult, void> {
  if ((options.repetitionPenalty ?? 1) !== 1) {
    throw new RangeError('the recorded engine has no repetition penalty: use engine "tfjs" for it');
  }
  const choice = tokenChoice(options);
  const decoder = await recordedDecoderFor(model);
  if (busy.has(decoder)) {
    throw new RecordedDecodeError('the recorded decoder of this model is decoding another sequence');
  }
  busy.add(decoder);
  const stopIds = new Set(options.stopTokenIds ?? []);
  const tokens: number[] = [];
  let finishReason: FinishReason = 'length';
  let text: string | undefined;
  let next: Promise<StepOutput> | null = null;
  try {
    let pending: Promise<StepOutput> | null =
      options.maxNewTokens > 0 ? decoder.prefill(prompt, choice, 0) : null;
    while (pending) {
      const full = decoder.length >= model.config.maxSeqLen;
      if (tokens.length + 1 < options.maxNewTokens && !full) next = decoder.step(choice, tokens.length + 1);
      const { token } = await pending;
      pending = null;
      tokens.push(token);
      yield { token, index: tokens.length - 1 };
      const end = sequenceEnd(tokens, { ...options, stopIds }, full);
      if (end) {
        finishReason = end.finishReason;
        text = end.text;
        break;
      }
      pending = next;
      next = null;
    }
  } finally {
    // A queued step still completes on the device; wait for it so the next sequence starts after it.
    await (next as Promise<StepOutput> | null)?.catch(() => null);
    busy.delete(decoder);
  }
  if (text === undefined && options.decode) text = options.decode(tokens);
  return text === undefined ? { tokens, finishReason } : { tokens, text, finishReason };
}
