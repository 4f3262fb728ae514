import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ScoredToken } from '@mptjs/mpt-model';
import type { ChatMessage } from '../chat/template.js';
import { badRequest } from '../errors.js';
import type { Generation } from '../generation/generation.js';
import type { ServeContext } from './context.js';
import { checkMaxTokens, checkN, checkPromptBytes, checkPromptTokens } from './limits.js';
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

const ROLES = new Set(['system', 'user', 'assistant']);

/** `messages`: `[{role, content}]`, content a string or a list of `{type: "text", text}` parts. */
function messagesField(): Reader<ChatMessage[]> {
  return (v, p) => {
    if (v === undefined || v === null) throw badRequest(`'${p}' is required`, p);
    if (!Array.isArray(v) || v.length === 0) return wrongType(p, 'a non-empty list of messages', v);
    return v.map((m, i) => {
      const at = `${p}[${i}]`;
      if (typeof m !== 'object' || m === null || Array.isArray(m)) return wrongType(at, 'an object', m);
      const msg = m as Record<string, unknown>;
      for (const key of Object.keys(msg)) {
        if (!['role', 'content', 'name'].includes(key)) {
          throw badRequest(`Unrecognized request argument supplied: ${at}.${key}`, `${at}.${key}`);
        }
      }
      const role = msg['role'];
      if (typeof role !== 'string' || !ROLES.has(role)) {
        throw badRequest(`'${at}.role' must be one of system, user, assistant`, `${at}.role`);
      }
      const name = msg['name'];
      if (name !== undefined && typeof name !== 'string') wrongType(`${at}.name`, 'a string', name);
      return {
        role: role as ChatMessage['role'],
        content: contentText(msg['content'], `${at}.content`),
        name,
      };
    });
  };
}

function contentText(v: unknown, p: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        const o = part as { type?: unknown; text?: unknown } | null;
        if (!o || o.type !== 'text' || typeof o.text !== 'string') {
          throw badRequest(`'${p}[${i}]' must be a text part {"type": "text", "text": "..."}`, `${p}[${i}]`);
        }
        return o.text;
      })
      .join('');
  }
  return wrongType(p, 'a string or a list of text parts', v);
}

const CHAT_FIELDS = {
  ...SAMPLING_FIELDS,
  messages: messagesField(),
  max_tokens: optionalNumber(undefined, { min: 1, max: 1_000_000, integer: true }),
  max_completion_tokens: optionalNumber(undefined, { min: 1, max: 1_000_000, integer: true }),
  logprobs: optionalBoolean(false),
  top_logprobs: optionalNumber(undefined, { min: 0, max: 20, integer: true }),
};

function chatLogprobs(ctx: ServeContext, tokens: readonly ScoredToken[]) {
  const entry = (id: number, logprob: number) => {
    const token = tokenString(ctx, id);
    return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  };
  return {
    content: tokens.map((t) => ({
      ...entry(t.token, t.logprob ?? 0),
      top_logprobs: (t.top ?? []).map((a) => entry(a.id, a.logprob)),
    })),
  };
}

export async function handleChatCompletions(
  ctx: ServeContext,
  body: Record<string, unknown>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<number> {
  const f = readFields(body, CHAT_FIELDS);
  checkModel(ctx, f.model);
  if (f.top_logprobs !== undefined && !f.logprobs) {
    throw badRequest("'top_logprobs' needs 'logprobs' set to true", 'top_logprobs');
  }
  // Everything that bounds the request's cost is checked before any tokenizing or forward pass.
  checkN(ctx.limits, f.n);
  const maxSeqLen = ctx.engine.info.maxSeqLen;
  if (f.max_tokens !== undefined) checkMaxTokens(ctx.limits, maxSeqLen, f.max_tokens, 'max_tokens');
  if (f.max_completion_tokens !== undefined) {
    checkMaxTokens(ctx.limits, maxSeqLen, f.max_completion_tokens, 'max_completion_tokens');
  }
  checkCapacity(ctx, f.n);
  checkPromptBytes(
    ctx.limits,
    f.messages.map((m) => m.content),
    'messages',
  );
  const promptText = ctx.chatTemplate.render(f.messages);
  checkPromptBytes(ctx.limits, [promptText], 'messages');
  const prompt = await encodePrompt(ctx, promptText, 'messages');
  checkPromptTokens(ctx.limits, prompt.length, 'messages');
  checkPromptIds(ctx, prompt, 'messages');
  const prompts = [prompt];
  const params: ChoiceParams = {
    maxTokens: f.max_completion_tokens ?? f.max_tokens ?? ctx.limits.maxTokens ?? maxSeqLen,
    ...requestSampling(f),
    stop: [...new Set([...f.stop, ...ctx.chatTemplate.defaultStops])],
    n: f.n,
    logprobs: f.logprobs ? (f.top_logprobs ?? 0) : undefined,
  };
  const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const signal = requestAbortSignal(req, res);

  if (!f.stream) {
    const generations = await runChoices(ctx, prompts, params, signal, () => ({}));
    throwIfFailed(generations);
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: ctx.modelId,
      choices: generations.map((g: Generation, index) => ({
        index,
        message: { role: 'assistant', content: g.text },
        logprobs: f.logprobs ? chatLogprobs(ctx, g.tokens) : null,
        finish_reason: openAiFinishReason(g.finishReason),
      })),
      usage: usageOf(prompts, generations),
    });
    return 200;
  }

  let sse: SseStream | undefined;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: ctx.modelId,
    choices,
    ...extra,
  });
  const all: Generation[] = [];
  const counter = new FinishCounter(f.n, prompts);
  const pending = runChoices(ctx, prompts, params, signal, (index) => ({
    onDelta(delta) {
      if (delta.text.length === 0 && !f.logprobs) return;
      const logprobs = f.logprobs ? chatLogprobs(ctx, delta.tokens) : null;
      sse?.send(chunk([{ index, delta: { content: delta.text }, logprobs, finish_reason: null }]));
    },
    onFinish(g) {
      all[index] = g;
      const usage = counter.finish(() => all);
      if (g.finishReason === 'abort' || g.finishReason === 'error') return;
      const choice = { index, delta: {}, logprobs: null, finish_reason: openAiFinishReason(g.finishReason) };
      sse?.send(chunk([choice], usage ? { usage } : {}));
    },
  }));
  sse = new SseStream(res);
  // The first chunk of each choice names the role, as OpenAI's stream does.
  for (let index = 0; index < f.n; index++) {
    sse.send(
      chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    );
  }
  return streamToEnd(sse, pending, prompts, f.stream_options.includeUsage, chunk);
}
