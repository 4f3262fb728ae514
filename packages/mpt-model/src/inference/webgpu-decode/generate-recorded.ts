/**
 * `generate` with `engine: 'recorded'`: the continuation through the model's recorded decode step. Each step
 * is queued before the previous token's read returns (the chosen token never leaves the device on the way to
 * the next step), and a stop discards the queued one.
 */
import type { MPTModel } from '../../model.js';
import type { GeneratedToken } from '../decode-sequence.js';
import {
  type GenerateOptions,
  type GenerateResult,
  generationResult,
  generationSequence,
} from '../generate.js';
import { isGreedy } from '../sampling.js';
import { checkWeightFormat } from './forward-recording.js';
import { RecordedDecodeError } from './gpu.js';
import { RecordedDecoder, type StepOutput, type TokenChoice } from './recorded-decoder.js';
import type { WeightFormat } from './shaders.js';

/** Per model, its recorded decoder for each weight format asked for. */
const decoders = new WeakMap<MPTModel, Map<WeightFormat, Promise<RecordedDecoder>>>();
const busy = new WeakSet<RecordedDecoder>();

/** The model's recorded decoder reading `weights` (default f32), built on first use and kept with the model. */
export function recordedDecoderFor(model: MPTModel, weights: WeightFormat = 'f32'): Promise<RecordedDecoder> {
  let byFormat = decoders.get(model);
  if (!byFormat) {
    byFormat = new Map();
    decoders.set(model, byFormat);
  }
  let decoder = byFormat.get(weights);
  if (!decoder) {
    const built = RecordedDecoder.create(model, { weights });
    decoder = built;
    byFormat.set(weights, built);
    // A failed build is not cached: the next call reports the error again (or succeeds after a fix).
    built.catch(() => {
      if (byFormat.get(weights) === built) byFormat.delete(weights);
    });
  }
  return decoder;
}

/**
 * Frees the model's recorded decoders, if it has any (`MPTModel.dispose` calls it): a KV cache alone is
 * `2 * n_layers * max_seq_len * d_model` floats. Resolves once the buffers are freed.
 */
export async function disposeRecordedDecoder(model: MPTModel): Promise<void> {
  const byFormat = decoders.get(model);
  decoders.delete(model);
  for (const decoder of byFormat?.values() ?? []) (await decoder.catch(() => null))?.dispose();
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
  if (options.logprobs !== undefined) {
    throw new RangeError(
      'the recorded engine chooses tokens on the device and has no logprobs: use engine "tfjs"',
    );
  }
  const choice = tokenChoice(options);
  const weights = options.recordedWeights === undefined ? 'f32' : checkWeightFormat(options.recordedWeights);
  const decoder = await recordedDecoderFor(model, weights);
  if (busy.has(decoder)) {
    throw new RecordedDecodeError('the recorded decoder of this model is decoding another sequence');
  }
  busy.add(decoder);
  const sequence = generationSequence(prompt, options);
  let next: Promise<StepOutput> | null = null;
  try {
    let pending: Promise<StepOutput> | null =
      options.maxNewTokens > 0 ? decoder.prefill(prompt, choice, 0) : null;
    while (pending) {
      const full = decoder.length >= model.config.maxSeqLen;
      const count = sequence.ids.length;
      if (count + 1 < options.maxNewTokens && !full) next = decoder.step(choice, count + 1);
      const { token } = await pending;
      pending = null;
      sequence.accept(token, full);
      yield sequence.tokens[sequence.tokens.length - 1]!;
      if (sequence.done) break;
      pending = next;
      next = null;
    }
  } finally {
    // A queued step still completes on the device; wait for it so the next sequence starts after it.
    await (next as Promise<StepOutput> | null)?.catch(() => null);
    busy.delete(decoder);
  }
  return generationResult(sequence, options);
}
