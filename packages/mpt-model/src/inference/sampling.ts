/**
 * Next-token choice on the host from one row of logits, in Hugging Face's order: repetition penalty, then
 * temperature, then top-k, then top-p, then a draw from a seeded generator (or the arg-max when greedy).
 */
import type { SeededRandom } from '../random.js';

export interface SamplingOptions {
  /** Pick the arg-max (default when `temperature` is 0 or unset and no top-k/top-p is given). */
  greedy?: boolean;
  /** Divides the logits; must be > 0 when sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or unset: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or unset: all). */
  topP?: number;
  /** HF/CTRL penalty: logits of tokens already seen are divided by it (multiplied when negative). 1 = off. */
  repetitionPenalty?: number;
}

export function validateSampling(o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) {
    throw new RangeError(`temperature must be >= 0, got ${o.temperature}`);
  }
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) {
    throw new RangeError(`topK must be a non-negative integer, got ${o.topK}`);
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1))
    throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
  if (
    o.repetitionPenalty !== undefined &&
    !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))
  ) {
    throw new RangeError(`repetitionPenalty must be > 0, got ${o.repetitionPenalty}`);
  }
}

export function isGreedy(o: SamplingOptions): boolean {
  return o.greedy === true || !o.temperature;
}

/** Index of the largest value (the first one on ties, like torch.argmax). */
export function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Applies the repetition penalty in place to the logits of every token id in `seen`. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= logits.length) continue;
    const l = logits[id]!;
    logits[id] = l < 0 ? l * penalty : l / penalty;
  }
}

/** Chooses the next token from `logits` (which it may modify). */
export function sampleToken(
  logits: Float32Array,
  options: SamplingOptions,
  rng: SeededRandom,
  seen: readonly number[] = [],
): number {
  applyRepetitionPenalty(logits, seen, options.repetitionPenalty ?? 1);
  if (isGreedy(options)) return argMax(logits);
  const temperature = options.temperature!;
  // Candidates sorted by logit, descending; ties keep the lower id first so results do not depend on sort details.
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (options.topK && options.topK < order.length) order = order.slice(0, options.topK);
  const max = logits[order[0] ?? 0]!;
  let probs = order.map((id) => Math.exp((logits[id]! - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  if (topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < probs.length) {
      cumulative += probs[keep]! / total;
      keep++;
      if (cumulative >= topP) break;
    }
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let r = rng.next() * total;
  for (let i = 0; i < order.length; i++) {
    r -= probs[i]!;
    if (r < 0) return order[i]!;
  }
  return order[order.length - 1]!;
}
