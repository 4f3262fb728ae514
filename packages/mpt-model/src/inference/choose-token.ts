import type { SeededRandom } from '../random.js';
import { topIndices } from './logprobs.js';
import { applyRepetitionPenalty, isGreedy, type SamplingOptions, sampleToken } from './sampling.js';
import { type SoftmaxStats, sampleTopP } from './weighted-select.js';

/**
 * mpt-model's `sampleToken`, with fast paths: its reference sorts the whole vocabulary per token (tens of
 * milliseconds for 50k logits). With top-k the candidates are the k largest, found in one pass and handed over in
 * the same order, so the draw, and the token, are the same; without top-k, `sampleTopP` finds the drawn token by
 * partitioning instead of sorting (and fills `softmax` with the normaliser it computed, when given).
 */
export function chooseToken(
  logits: Float32Array,
  options: SamplingOptions,
  random: SeededRandom,
  seen: readonly number[],
  softmax?: SoftmaxStats,
): number {
  const k = options.topK ?? 0;
  if (isGreedy(options)) return sampleToken(logits, options, random, seen);
  applyRepetitionPenalty(logits, seen, options.repetitionPenalty ?? 1);
  if (k <= 0 || k >= logits.length) {
    return sampleTopP(logits, options.temperature!, options.topP ?? 1, () => random.next(), softmax);
  }
  const candidates = topIndices(logits, k);
  const compact = Float32Array.from(candidates, (id) => logits[id]!);
  const pick = sampleToken(compact, { temperature: options.temperature, topP: options.topP }, random);
  return candidates[pick]!;
}
