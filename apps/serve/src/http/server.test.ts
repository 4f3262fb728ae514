import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAIN_CHAT_TEMPLATE } from '../chat/template.js';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { createServeApp } from '../serve-app.js';
import { APP_DIR, fixture, runCliProcess } from '../testing/fixture.js';
import type { ServeHttpServer } from './server.js';

const fx = fixture();
const KEY = 'test-key-123';

async function start(model: LoadedModel, options: { maxBatch?: number; maxQueue?: number } = {}) {
  const app = createServeApp({
    engine: model.engine,
    tokenizer: model.tokenizer,
    modelId: 'mpt-tiny',
    apiKey: KEY,
    maxBatch: options.maxBatch ?? 4,
    maxQueue: options.maxQueue ?? 16,
    maxBodyBytes: 64 * 1024,
    playgroundDir: join(APP_DIR, 'dist/playground'),
  });
  const address = await app.listen(0, '127.0.0.1');
  return { app, base: `http://127.0.0.1:${address.port}` };
}

/** POSTs raw JSON text and returns status and parsed body. */
async function post(base: string, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body,
  });
  return {
    status: res.status,
    json: (await res.json()) as {
      error: { message: string; type: string; param: string | null; code: string | null };
    },
  };
}

/** Reads an SSE response until the first data event; returns the reader to keep or cancel. */
async function firstEvent(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { reader, text };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not reached in time');
}

describe.skipIf(!fx)('OpenAI-compatible server on the fixture model', () => {
  let model: LoadedModel;
  let app: ServeHttpServer;
  let base: string;
  let client: OpenAI;

  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
    ({ app, base } = await start(model));
    client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await app?.shutdown(1000);
    model?.engine.dispose();
  });

  const { prompt, continuation } = fx?.expected.greedy ?? { prompt: [], continuation: [] };

  it('completes token-id prompts greedily, as the fixture says, with usage', async () => {
    const r = await client.completions.create({ model: 'mpt-tiny', prompt, max_tokens: 12, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]!.text).toBe(model.tokenizer!.decode(continuation));
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: 8, completion_tokens: 12, total_tokens: 20 });
  });

  it('applies repetition_penalty (the fixture repeats itself greedily; penalised, it does not)', async () => {
    const plain = model.tokenizer!.decode(continuation);
    const body = { model: 'mpt-tiny', prompt, max_tokens: 12, temperature: 0, repetition_penalty: 10 };
    const res = await post(base, '/v1/completions', JSON.stringify(body));
    expect(res.status).toBe(200);
    const text = (res.json as unknown as { choices: { text: string }[] }).choices[0]!.text;
    expect(text).not.toBe(plain);
    const words = text.trim().split(/\s+/);
    expect(new Set(words).size).toBe(words.length);
  });

  it('gives the same greedy text as `mptjs-serve generate`', async () => {
    const cli = await runCliProcess([
      'generate',
      fx!.dir,
      '--prompt',
      'The capital of France is',
      '--max-new-tokens',
      '10',
      '--tokenizer',
      fx!.tokenizer,
      '--backend',
      'wasm',
      '--json',
    ]);
    expect(cli.code).toBe(0);
    const expected = JSON.parse(cli.stdout) as { text: string };
    const r = await client.completions.create({
      model: 'mpt-tiny',
      prompt: 'The capital of France is',
      max_tokens: 10,
      temperature: 0,
    });
    expect(r.choices[0]!.text).toBe(expected.text);
  });

  it('streams completions as SSE; the text equals the non-streamed one', async () => {
    const full = await client.completions.create({
      model: 'mpt-tiny',
      prompt: 'Once upon a time',
      max_tokens: 9,
      temperature: 0,
    });
    const stream = await client.completions.create({
      model: 'mpt-tiny',
      prompt: 'Once upon a time',
      max_tokens: 9,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: unknown;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(full.choices[0]!.text);
    expect(finish).toBe('length');
    expect(usage).toEqual(full.usage);
  });

  it('ends raw SSE with data: [DONE]', async () => {
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Hi', max_tokens: 3, stream: true }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const body = await res.text();
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(body.split('\n\n').filter((e) => e.startsWith('data: {')).length).toBeGreaterThanOrEqual(2);
  });

  it('answers chat completions through the plain template, streamed and not', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Say hello.' },
    ];
    const r = await client.chat.completions.create({
      model: 'mpt-tiny',
      messages,
      max_tokens: 8,
      temperature: 0,
    });
    const rendered = PLAIN_CHAT_TEMPLATE.render(messages);
    expect(rendered).toBe('You are terse.\n\nUser: Say hello.\n\nAssistant:');
    expect(r.usage!.prompt_tokens).toBe(model.tokenizer!.encode(rendered).length);
    expect(r.choices[0]!.message.role).toBe('assistant');
    const stream = await client.chat.completions.create({
      model: 'mpt-tiny',
      messages,
      max_tokens: 8,
      temperature: 0,
      stream: true,
    });
    let content = '';
    let role: string | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      role ??= c.delta.role;
      content += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    expect(role).toBe('assistant');
    expect(content).toBe(r.choices[0]!.message.content);
    expect(finish).toBe(r.choices[0]!.finish_reason);
  });

  it('serves n choices per prompt for a list of prompts; a seed makes sampling repeatable', async () => {
    const req = { model: 'mpt-tiny', prompt: ['a', 'b'], n: 2, max_tokens: 4, temperature: 1, seed: 42 };
    const [r1, r2] = [await client.completions.create(req), await client.completions.create(req)];
    expect(r1.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r1.choices.map((c) => c.text)).toEqual(r2.choices.map((c) => c.text));
    expect(r1.usage!.completion_tokens).toBe(16);
  });

  it('returns logprobs, with the echoed prompt first', async () => {
    const r = await client.completions.create({
      model: 'mpt-tiny',
      prompt: 'Hello world',
      max_tokens: 2,
      temperature: 0,
      logprobs: 3,
      echo: true,
    });
    const choice = r.choices[0]!;
    const tokens = choice.logprobs?.tokens ?? [];
    const logprobs = choice.logprobs?.token_logprobs ?? [];
    const top = choice.logprobs?.top_logprobs ?? [];
    expect(choice.text.startsWith('Hello world')).toBe(true);
    expect(tokens).toHaveLength(4);
    expect(logprobs[0]).toBeNull();
    for (const v of logprobs.slice(1)) expect(v).toBeLessThan(0);
    expect(Object.keys(top[3] ?? {})).toHaveLength(3);
    expect(choice.logprobs?.text_offset).toEqual([0, 5, 11, 11 + (tokens[2] ?? '').length]);
  });

  it('lists the model, reports health and Prometheus metrics', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['mpt-tiny']);
    const health = await (await fetch(`${base}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', running: 0, waiting: 0 });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('mptjs_requests_total{endpoint="/v1/completions",status="200"}');
    expect(metrics).toMatch(/mptjs_time_to_first_token_seconds_count \d+/);
    expect(metrics).toMatch(/mptjs_inter_token_latency_seconds_bucket\{le="0.1"\} \d+/);
    expect(metrics).toContain('mptjs_queue_depth 0');
    expect(metrics).toContain('mptjs_running_batch_size 0');
    expect(metrics).toMatch(/mptjs_completion_tokens_total [1-9]\d*/);
  });

  it('serves the playground page and its script', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('playground.js');
    const script = await fetch(`${base}/playground.js`);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect((await script.text()).length).toBeGreaterThan(500);
  });

  describe('errors', () => {
    it('401 without or with a wrong API key', async () => {
      const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 });
      await expect(bad.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
      const res = await fetch(`${base}/v1/models`);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
        'Missing API key',
      );
    });

    it('400 for invalid JSON, unknown fields and wrong types, naming the parameter', async () => {
      const invalid = await post(base, '/v1/completions', '{"prompt": ');
      expect(invalid.status).toBe(400);
      expect(invalid.json.error.code).toBe('invalid_json');
      const unknown = await post(base, '/v1/completions', JSON.stringify({ prompt: 'x', tempreature: 1 }));
      expect(unknown.status).toBe(400);
      expect(unknown.json.error).toMatchObject({ param: 'tempreature', type: 'invalid_request_error' });
      const typed = await post(base, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: '5' }));
      expect(typed.status).toBe(400);
      expect(typed.json.error).toMatchObject({
        param: 'max_tokens',
        message: "'max_tokens' must be an integer, got string",
      });
      const range = await post(base, '/v1/completions', JSON.stringify({ prompt: 'x', top_p: 0 }));
      expect(range.json.error.param).toBe('top_p');
      const noPrompt = await post(base, '/v1/completions', JSON.stringify({}));
      expect(noPrompt.json.error.message).toBe("'prompt' is required");
      const role = await post(
        base,
        '/v1/chat/completions',
        JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] }),
      );
      expect(role.json.error.param).toBe('messages[0].role');
      const path = await post(base, '/v1/completions', JSON.stringify({ prompt: 'x', file: '/etc/passwd' }));
      expect(path.json.error.param).toBe('file');
      const vocab = await post(base, '/v1/completions', JSON.stringify({ prompt: [1, 999999] }));
      expect(vocab.json.error.message).toContain('token id 999999');
    });

    it('404 for an unknown route or model', async () => {
      const route = await fetch(`${base}/v1/engines`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(route.status).toBe(404);
      await expect(
        client.completions.create({ model: 'gpt-4', prompt: 'x', max_tokens: 1 }),
      ).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    });

    it('405 for the wrong method', async () => {
      const res = await fetch(`${base}/v1/completions`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    });

    it('413 for a prompt longer than max_seq_len and for a body over the limit', async () => {
      const long = await post(base, '/v1/completions', JSON.stringify({ prompt: new Array(128).fill(5) }));
      expect(long.status).toBe(413);
      expect(long.json.error.code).toBe('context_length_exceeded');
      const big = await post(base, '/v1/completions', JSON.stringify({ prompt: 'x'.repeat(70 * 1024) }));
      expect(big.status).toBe(413);
      expect(big.json.error.code).toBe('body_too_large');
    });
  });

  it('429 when the queue is full; a client that disconnects frees its slot at once', async () => {
    const small = await start(model, { maxBatch: 1, maxQueue: 0 });
    try {
      const tokens = async () => {
        const text = await (await fetch(`${small.base}/metrics`)).text();
        return Number(/mptjs_completion_tokens_total (\d+)/.exec(text)![1]);
      };
      const controller = new AbortController();
      const res = await fetch(`${small.base}/v1/completions`, {
        method: 'POST',
        signal: controller.signal,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'Tell me a long story', max_tokens: 100, stream: true }),
      });
      await firstEvent(res);
      const full = await post(small.base, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 1 }));
      expect(full.status).toBe(429);
      expect(full.json.error.type).toBe('rate_limit_error');
      controller.abort();
      await waitFor(async () => (await (await fetch(`${small.base}/health`)).json()).running === 0);
      expect(await tokens()).toBeLessThan(100);
      const after = await post(small.base, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 1 }));
      expect(after.status).toBe(200);

      // The same for a non-streamed request: the client gives up while its tokens are being generated.
      const before = await tokens();
      const gone = new AbortController();
      const pending = fetch(`${small.base}/v1/completions`, {
        method: 'POST',
        signal: gone.signal,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'Another long story', max_tokens: 100 }),
      }).catch((err: Error) => err.name);
      await waitFor(async () => (await (await fetch(`${small.base}/health`)).json()).running === 1);
      gone.abort();
      expect(await pending).toBe('AbortError');
      await waitFor(async () => (await (await fetch(`${small.base}/health`)).json()).running === 0);
      expect((await tokens()) - before).toBeLessThan(100);
    } finally {
      await small.app.shutdown(1000);
    }
  });

  it('503 for new requests while shutting down; the running stream still finishes', async () => {
    const other = await start(model);
    const res = await fetch(`${other.base}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Count:', max_tokens: 20, stream: true }),
    });
    const { reader, text } = await firstEvent(res);
    const stopped = other.app.shutdown(30_000);
    const refused = await post(other.base, '/v1/completions', JSON.stringify({ prompt: 'x' }));
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('shutting_down');
    let rest = text;
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
    }
    expect(rest).toContain('"finish_reason":"length"');
    expect(rest.trimEnd().endsWith('data: [DONE]')).toBe(true);
    await stopped;
  });
});
