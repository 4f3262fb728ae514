import type { ServeContext } from './context.js';

/** A token's text for logprob listings (`token_id:N` when the model has no tokenizer). */
export function tokenString(ctx: ServeContext, id: number): string {
  return ctx.tokenizer ? ctx.tokenizer.decode([id]) : `token_id:${id}`;
}
