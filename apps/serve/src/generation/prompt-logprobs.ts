import { setImmediate as nextTurn } from 'node:timers/promises';
import { logprobsOf, type ScoredToken } from '@mptjs/mpt-model';
import type { Engine } from '../engine/types.js';

/** Rows of logits scored between two turns of the event loop (each row is a pass over the vocabulary). */
const ROWS_PER_TURN = 4;

/**
 * A prompt's own logprobs (for `echo` with `logprobs`): asked for by every choice of a prompt, computed once by
 * the scheduler when the first of them is admitted, then shared.
 */
export interface PromptScore {
  /** Alternatives per token. */
  top: number;
  /** Set once scored: every prompt token, the first without a logprob. */
  tokens?: ScoredToken[];
}

/** Runs the prompt through the model and scores each token after the first, yielding between rows. */
export async function scorePrompt(
  engine: Engine,
  prompt: readonly number[],
  top: number,
): Promise<ScoredToken[]> {
  const vocab = engine.info.vocabSize;
  const logits = await engine.logits([prompt]);
  const tokens: ScoredToken[] = [{ token: prompt[0]! }];
  for (let t = 1; t < prompt.length; t++) {
    if (t % ROWS_PER_TURN === 0) await nextTurn();
    const lp = logprobsOf(logits.subarray((t - 1) * vocab, t * vocab), prompt[t]!, top);
    tokens.push({ token: prompt[t]!, logprob: lp.logprob, top: lp.top });
  }
  return tokens;
}
