/** Index of the earliest of `stops` in `text`, or -1 (empty stop strings never match). */
export function firstStop(text: string, stops: readonly string[]): number {
  let first = -1;
  for (const s of stops) {
    const at = s.length > 0 ? text.indexOf(s) : -1;
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first;
}

/** How a sequence ended, and its text when a stop string cut it. */
export interface SequenceEnd {
  finishReason: 'length' | 'stop_token' | 'stop_string' | 'max_seq_len';
  text?: string;
}

/** What ends a sequence: stop ids, stop strings (on the decoded text), a token budget. */
export interface EndRules {
  stopIds: ReadonlySet<number>;
  stopStrings?: readonly string[] | undefined;
  decode?: ((ids: number[]) => string) | undefined;
  maxNewTokens: number;
}

/**
 * Why a sequence ends after its newest token (`full`: the context has no room for another), or null while it
 * goes on. Every decode loop asks this, so all of them stop for the same reasons in the same order.
 */
export function sequenceEnd(tokens: number[], rules: EndRules, full: boolean): SequenceEnd | null {
  if (rules.stopIds.has(tokens[tokens.length - 1]!)) return { finishReason: 'stop_token' };
  if (rules.stopStrings?.length) {
    const decoded = rules.decode!(tokens);
    const hit = firstStop(decoded, rules.stopStrings);
    if (hit >= 0) return { finishReason: 'stop_string', text: decoded.slice(0, hit) };
  }
  if (tokens.length >= rules.maxNewTokens) return { finishReason: 'length' };
  return full ? { finishReason: 'max_seq_len' } : null;
}
