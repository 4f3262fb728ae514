import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ScoredToken } from '@mptjs/mpt-model';
import { badRequest } from '../errors.js';
import type { Generation } from '../generation/generation.js';
import type { ServeContext } from './context.js';
import { checkMaxTokens, checkN, checkPromptBytes, checkPromptCount, checkPromptTokens } from './limits.js';
import { checkModel, requestAbortSignal, sendJson } from './respond.js';
import {
  type ChoiceParams,
  checkCapacity,
  checkPromptIds,
  encodePrompt,
  FinishCounter,
  openAiFinishReason,
  runChoices,
  throwIfFailed,
  usageOf,
} from './run-choices.js';
import { requestSampling, SAMPLING_FIELDS } from './sampling-fields.js';
import { SseStream, streamToEnd } from './sse.js';
import { tokenString } from './token-text.js';
import { optionalBoolean, optionalNumber, type Reader, readFields, wrongType } from './validate.js';

/** `prompt`: a string, a list of strings, a token id array, or a list of token id arrays. */
function promptField(): Reader<string[] | number[][]> {
  const isIds = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
  return (v, p) => {
    if (v === undefined || v === null) throw badRequest(`'${p}' is required`, p);
    if (typeof v === 'string') return [v];
    if (isIds(v)) return [v];
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
    if (Array.isArray(v) && v.length > 0 && v.every(isIds)) return v as number[][];
    return wrongType(p, 'a string, a list of strings, a token id array or a list of token id arrays', v);
  };
}

const COMPLETION_FIELDS = {
  ...SAMPLING_FIELDS,
  prompt: promptField(),
  max_tokens: optionalNumber(16, { min: 1, max: 1_000_000, integer: true }),
  logprobs: optionalNumber(undefined, { min: 0, max: 5, integer: true }),
  echo: optionalBoolean(false),
};

interface LogprobsBlock {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

function logprobsBlock(ctx: ServeContext, tokens: readonly ScoredToken[], offset: number): LogprobsBlock {
  const block: LogprobsBlock = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const t of tokens) {
    const text = tokenString(ctx, t.token);
    block.tokens.push(text);
    block.token_logprobs.push(t.logprob ?? null);
    block.top_logprobs.push(
      t.top ? Object.fromEntries(t.top.map((a) => [tokenString(ctx, a.id), a.logprob])) : null,
    );
    block.text_offset.push(offset);
    offset += text.length;
  }
  return block;
}

export async function handleCompletions(
  ctx: ServeContext,
  body: Record<string, unknown>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<number> {
  const f = readFields(body, COMPLETION_FIELDS);
  checkModel(ctx, f.model);
  // Everything that bounds the request's cost is checked before any tokenizing or forward pass.
  checkPromptCount(ctx.limits, f.prompt.length);
  checkN(ctx.limits, f.n);
  checkMaxTokens(ctx.limits, ctx.engine.info.maxSeqLen, f.max_tokens, 'max_tokens');
  checkCapacity(ctx, f.prompt.length * f.n);
  checkPromptBytes(
    ctx.limits,
    f.prompt.filter((p): p is string => typeof p === 'string'),
    'prompt',
  );
  if (f.stop.length > 0 && !ctx.tokenizer) throw badRequest("'stop' needs a tokenizer", 'stop');
  const prompts: number[][] = [];
  let promptTokens = 0;
  for (const [i, p] of f.prompt.entries()) {
    const param = f.prompt.length > 1 ? `prompt[${i}]` : 'prompt';
    const ids = typeof p === 'string' ? await encodePrompt(ctx, p, param) : p;
    promptTokens += ids.length;
    checkPromptTokens(ctx.limits, promptTokens, 'prompt');
    checkPromptIds(ctx, ids, param);
    prompts.push(ids);
  }
  const params: ChoiceParams = {
    maxTokens: f.max_tokens,
    ...requestSampling(f),
    stop: f.stop,
    n: f.n,
    logprobs: f.logprobs,
    // The prompt's own logprobs are computed by the scheduler, one prompt at a time like any prefill.
    promptLogprobs: f.echo ? f.logprobs : undefined,
  };
  const echoTexts = f.echo ? prompts.map((p) => (ctx.tokenizer ? ctx.tokenizer.decode(p) : '')) : [];
  const id = `cmpl-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const promptOf = (choice: number) => Math.floor(choice / f.n);
  const signal = requestAbortSignal(req, res);

  if (!f.stream) {
    const generations = await runChoices(ctx, prompts, params, signal, () => ({}));
    throwIfFailed(generations);
    const choices = generations.map((g: Generation, index) => {
      const echo = f.echo ? echoTexts[promptOf(index)]! : '';
      let logprobs: LogprobsBlock | null = null;
      if (f.logprobs !== undefined) {
        const tokens = [...(g.promptScore?.tokens ?? []), ...g.tokens];
        logprobs = logprobsBlock(ctx, tokens, 0);
      }
      return { text: echo + g.text, index, logprobs, finish_reason: openAiFinishReason(g.finishReason) };
    });
    sendJson(res, 200, {
      id,
      object: 'text_completion',
      created,
      model: ctx.modelId,
      choices,
      usage: usageOf(prompts, generations),
    });
    return 200;
  }

  let sse: SseStream | undefined;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    id,
    object: 'text_completion',
    created,
    model: ctx.modelId,
    choices,
    ...extra,
  });
  const offsets = new Map<number, number>();
  const started = new Set<number>();
  const all: Generation[] = [];
  const counter = new FinishCounter(prompts.length * f.n, prompts);
  /** Sends a choice's new text (after its echoed prompt, the first time). */
  const sendText = (index: number, g: Generation, newText: string, newTokens: readonly ScoredToken[]) => {
    let text = newText;
    let tokens = newTokens;
    if (!started.has(index)) {
      started.add(index);
      if (f.echo) {
        text = echoTexts[promptOf(index)]! + text;
        tokens = [...(g.promptScore?.tokens ?? []), ...tokens];
      }
    }
    if (text.length === 0 && (f.logprobs === undefined || tokens.length === 0)) return;
    const offset = offsets.get(index) ?? 0;
    offsets.set(index, offset + text.length);
    const logprobs = f.logprobs === undefined ? null : logprobsBlock(ctx, tokens, offset);
    sse?.send(chunk([{ text, index, logprobs, finish_reason: null }]));
  };
  const generations = runChoices(ctx, prompts, params, signal, (index) => ({
    onDelta: (delta, g) => sendText(index, g, delta.text, delta.tokens),
    onFinish(g) {
      if (!started.has(index)) sendText(index, g, '', []);
      all[index] = g;
      const usage = counter.finish(() => all);
      if (g.finishReason === 'abort' || g.finishReason === 'error') return;
      const choice = { text: '', index, logprobs: null, finish_reason: openAiFinishReason(g.finishReason) };
      sse?.send(chunk([choice], usage ? { usage } : {}));
    },
  }));
  // runChoices throws 429 / 503 before anything is written; the stream opens once the request is queued.
  sse = new SseStream(res);
  return streamToEnd(sse, generations, prompts, f.stream_options.includeUsage, chunk);
}
