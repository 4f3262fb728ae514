import type { FinishReason } from '@mptjs/mpt-model';
import { ApiError, badRequest } from '../errors.js';
import { Generation, type GenerationObserver, type RequestSampling } from '../generation/generation.js';
import type { PromptScore } from '../generation/prompt-logprobs.js';
import {
  EngineFailedError,
  QueueFullError,
  ShuttingDownError,
  TooManySequencesError,
} from '../scheduler/scheduler.js';
import type { ServeContext } from './context.js';

/** A request's choices: its sampling (mpt-model's options and the seed) and OpenAI's count, budget and stops. */
export interface ChoiceParams extends RequestSampling {
  maxTokens: number;
  stop: readonly string[];
  n: number;
  /** Alternatives per token, or undefined for no logprobs. */
  logprobs: number | undefined;
  /** Alternatives per token of the prompt's own logprobs (`echo` with `logprobs`), or undefined for none. */
  promptLogprobs?: number | undefined;
}

/** The HTTP error for a scheduler refusal; other errors pass through. */
function schedulerError(err: unknown): unknown {
  if (err instanceof QueueFullError)
    return new ApiError(429, err.message, 'rate_limit_error', null, 'queue_full');
  if (err instanceof TooManySequencesError)
    return new ApiError(413, err.message, 'invalid_request_error', 'n', 'too_many_sequences');
  if (err instanceof ShuttingDownError)
    return new ApiError(503, err.message, 'server_error', null, 'shutting_down');
  if (err instanceof EngineFailedError)
    return new ApiError(503, err.message, 'server_error', null, 'engine_failed');
  return err;
}

/** Refuses a request of `count` sequences that cannot be queued now (429, 413, 503), before any work on it. */
export function checkCapacity(ctx: ServeContext, count: number): void {
  try {
    ctx.scheduler.checkCapacity(count);
  } catch (err) {
    throw schedulerError(err);
  }
}

/** Encodes a text prompt (an empty one becomes the end-of-text token, as for GPT models). */
export async function encodePrompt(ctx: ServeContext, text: string, param: string): Promise<number[]> {
  if (!ctx.tokenizer) {
    throw badRequest('this model has no tokenizer: send prompts as token id arrays', param, 'no_tokenizer');
  }
  const ids = ctx.tokenizer.encodeAsync ? await ctx.tokenizer.encodeAsync(text) : ctx.tokenizer.encode(text);
  if (ids.length > 0) return ids;
  if (ctx.tokenizer.eosTokenId === undefined) throw badRequest(`'${param}' must not be empty`, param);
  return [ctx.tokenizer.eosTokenId];
}

/** Checks token ids against the vocabulary and the prompt length against the context window (413). */
export function checkPromptIds(ctx: ServeContext, ids: readonly number[], param: string): void {
  const vocab = ctx.engine.info.vocabSize;
  if (ids.length === 0) throw badRequest(`'${param}' must not be empty`, param);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw badRequest(`'${param}' holds token id ${id}, outside [0, ${vocab})`, param);
    }
  }
  const max = ctx.engine.info.maxSeqLen;
  if (ids.length >= max) {
    throw new ApiError(
      413,
      `the prompt has ${ids.length} tokens; this model's context is ${max} tokens and at least one must be left to generate`,
      'invalid_request_error',
      param,
      'context_length_exceeded',
    );
  }
}

/**
 * Creates `n` generations per prompt (choice index = prompt index * n + j; seeds advance by choice) and queues
 * them on the scheduler. Throws at once (429, 503) when they cannot be queued, so a stream opens only after;
 * resolves with the finished generations in choice order.
 */
export function runChoices(
  ctx: ServeContext,
  prompts: readonly (readonly number[])[],
  params: ChoiceParams,
  signal: AbortSignal,
  observe: (choice: number) => GenerationObserver,
): Promise<Generation[]> {
  const stopIds = ctx.tokenizer?.eosTokenId === undefined ? [] : [ctx.tokenizer.eosTokenId];
  const generations: Generation[] = [];
  prompts.forEach((prompt, p) => {
    const top = params.promptLogprobs;
    const score: PromptScore | undefined = top === undefined ? undefined : { top };
    for (let j = 0; j < params.n; j++) {
      const choice = p * params.n + j;
      const seed = params.seed === undefined ? undefined : params.seed + choice;
      generations.push(
        new Generation(
          prompt,
          { ...params, seed, maxNewTokens: params.maxTokens, stopStrings: params.stop, stopIds },
          ctx.engine.info.maxSeqLen,
          ctx.tokenizer,
          withMetrics(ctx, observe(choice)),
        ),
      );
      generations[generations.length - 1]!.promptScore = score;
    }
  });
  let finished: Promise<void>;
  try {
    finished = ctx.scheduler.submit(generations, signal);
  } catch (err) {
    throw schedulerError(err);
  }
  ctx.metrics.promptTokens.inc(prompts.reduce((sum, p) => sum + p.length, 0));
  return finished.then(() => generations);
}

/** Counts finished choices so the stream can put `usage` on the last finish chunk. */
export class FinishCounter {
  private finished = 0;
  constructor(
    private readonly total: number,
    private readonly prompts: readonly (readonly number[])[],
  ) {}

  /** Call once per finished choice; returns the usage when it was the last one. */
  finish(all: () => readonly Generation[]): ReturnType<typeof usageOf> | undefined {
    this.finished++;
    return this.finished === this.total ? usageOf(this.prompts, all()) : undefined;
  }
}

function withMetrics(ctx: ServeContext, observer: GenerationObserver): GenerationObserver {
  return {
    onDelta: (delta, g) => observer.onDelta?.(delta, g),
    onToken: (g, gap) => {
      if (gap === undefined) ctx.metrics.timeToFirstToken.observe((g.firstTokenAt! - g.createdAt) / 1000);
      else ctx.metrics.interTokenLatency.observe(gap);
    },
    onFinish: (g) => {
      ctx.metrics.completionTokens.inc(g.ids.length);
      observer.onFinish?.(g);
    },
  };
}

/**
 * OpenAI's finish reasons: a stop id or stop string is `stop`; the token budget and the full context are
 * `length`, and so is an aborted sequence (shutdown), which reports an error beside it.
 */
export function openAiFinishReason(reason: FinishReason | undefined): 'stop' | 'length' {
  return reason === 'stop_token' || reason === 'stop_string' ? 'stop' : 'length';
}

/** Throws the error a finished set of generations implies (engine failure, shutdown), if any. */
export function throwIfFailed(generations: readonly Generation[]): void {
  const failed = generations.find((g) => g.finishReason === 'error');
  if (failed?.error instanceof EngineFailedError) throw schedulerError(failed.error);
  if (failed)
    throw new ApiError(500, `generation failed: ${failed.error?.message ?? 'unknown error'}`, 'server_error');
  if (generations.some((g) => g.finishReason === 'abort')) {
    throw new ApiError(
      503,
      'the server shut down before the request finished',
      'server_error',
      null,
      'shutting_down',
    );
  }
}

export function usageOf(prompts: readonly (readonly number[])[], generations: readonly Generation[]) {
  const prompt_tokens = prompts.reduce((sum, p) => sum + p.length, 0);
  const completion_tokens = generations.reduce((sum, g) => sum + g.ids.length, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}
