// Log-probabilities for `logprobs` in responses; token choice itself is mpt-model's `sampleToken`.

export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** log-softmax normaliser: log(sum(exp(x))). */
export function logSumExp(values: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i]! - max);
  return max + Math.log(sum);
}

/**
 * The model's log-probability of `id` and its `top` most likely alternatives (raw logits, no temperature). `lse`
 * is the log-sum-exp of the logits when already known (it is one pass of `exp` over the vocabulary).
 */
export function logprobsOf(
  logits: Float32Array,
  id: number,
  top: number,
  lse: number = logSumExp(logits),
): { logprob: number; top: TokenLogprob[] } {
  const best = topIndices(logits, top);
  return {
    logprob: logits[id]! - lse,
    top: best.map((i) => ({ id: i, logprob: logits[i]! - lse })),
  };
}

/** Indices of the k largest values, largest first (a partial selection: k is small next to the vocabulary). */
export function topIndices(values: Float32Array, k: number): number[] {
  const n = Math.min(k, values.length);
  if (n <= 0) return [];
  const idx: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const smallest = idx[n - 1];
    if (smallest !== undefined && v <= values[smallest]!) continue;
    let pos = idx.length < n ? idx.length : n - 1;
    if (idx.length < n) idx.push(i);
    // Insertion into the short sorted list.
    while (pos > 0) {
      const above = idx[pos - 1]!;
      if (values[above]! >= v) break;
      idx[pos] = above;
      pos--;
    }
    idx[pos] = i;
  }
  return idx;
}
