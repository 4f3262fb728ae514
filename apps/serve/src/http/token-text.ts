import type { GeneratedToken } from '../generation/generation.js';
import { logprobsOf } from '../generation/logprobs.js';
import type { ServeContext } from './context.js';

/** A token's text for logprob listings (`token_id:N` when the model has no tokenizer). */
export function tokenString(ctx: ServeContext, id: number): string {
  return ctx.tokenizer ? ctx.tokenizer.decode([id]) : `token_id:${id}`;
}

/** Logprobs of every prompt token after the first (the first has none), for `echo` with `logprobs`. */
export async function promptLogprobs(
  ctx: ServeContext,
  prompt: readonly number[],
  top: number,
): Promise<(GeneratedToken & { logprob: number | undefined })[]> {
  const vocab = ctx.engine.info.vocabSize;
  const logits = await ctx.engine.logits([prompt]);
  return prompt.map((id, t) => {
    if (t === 0) return { id, logprob: undefined };
    const lp = logprobsOf(logits.subarray((t - 1) * vocab, t * vocab), id, top);
    return { id, logprob: lp.logprob, top: lp.top };
  });
}
