import type { RequestSampling } from '../generation/generation.js';
import {
  optionalBoolean,
  optionalNumber,
  optionalString,
  type Parsed,
  stopStrings,
  streamOptions,
} from './validate.js';

/**
 * Fields shared by completions and chat, with OpenAI's names and bounds. Their order is the order they are
 * checked in, so it decides which error a request with several bad fields gets.
 */
export const SAMPLING_FIELDS = {
  model: optionalString(),
  temperature: optionalNumber(1, { min: 0, max: 2 }),
  top_p: optionalNumber(1, { min: 0, max: 1, minExclusive: true }),
  top_k: optionalNumber(0, { min: -1, max: 1_000_000, integer: true }),
  repetition_penalty: optionalNumber(1, { min: 0, max: 100, minExclusive: true }),
  stop: stopStrings(),
  seed: optionalNumber(undefined, { min: -(2 ** 53), max: 2 ** 53, integer: true }),
  n: optionalNumber(1, { min: 1, max: 1_000_000, integer: true }),
  stream: optionalBoolean(false),
  stream_options: streamOptions(),
  user: optionalString(),
};

type SamplingFields = Parsed<
  Pick<typeof SAMPLING_FIELDS, 'temperature' | 'top_p' | 'top_k' | 'repetition_penalty' | 'seed'>
>;

/**
 * The one place a request's sampling fields become mpt-model's `SamplingOptions` (and the seed): `top_p` is
 * `topP`, and `top_k: -1` (vLLM's "all") is mpt-model's 0.
 */
export function requestSampling(f: SamplingFields): RequestSampling {
  return {
    temperature: f.temperature,
    topP: f.top_p,
    topK: Math.max(0, f.top_k),
    repetitionPenalty: f.repetition_penalty,
    seed: f.seed,
  };
}
