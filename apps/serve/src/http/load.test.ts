// Bounded load on loopback: 64 concurrent streaming requests with malformed ones interleaved; every stream must
// finish with [DONE] and the same tokens as the non-streamed greedy completion, every bad request must get a 4xx
// OpenAI error object, and the server must keep serving afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { createServeApp } from '../serve-app.js';
import { fixture } from '../testing/fixture.js';
import type { ServeHttpServer } from './server.js';

const fx = fixture();
const STREAMS = 64;
const MAX_TOKENS = 4;
const MAX_BODY = 64 * 1024;
const PROMPTS = ['The weather today is', 'Once upon a time', 'def main():', 'Paris is the capital of'];

interface Completion {
  choices: { text: string; finish_reason: string }[];
  usage: { completion_tokens: number };
}

interface StreamResult {
  status: number;
  contentType: string | null;
  text: string;
  finishReason: string | null;
  completionTokens: number | undefined;
  chunks: number;
  done: boolean;
}

/** POSTs a streaming completion and reads the whole event stream. */
async function streamCompletion(url: string, prompt: string): Promise<StreamResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt,
      max_tokens: MAX_TOKENS,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  const body = await res.text();
  const result: StreamResult = {
    status: res.status,
    contentType: res.headers.get('content-type'),
    text: '',
    finishReason: null,
    completionTokens: undefined,
    chunks: 0,
    done: false,
  };
  for (const event of body.split('\n\n')) {
    if (!event.startsWith('data: ')) continue;
    const data = event.slice('data: '.length);
    if (data === '[DONE]') {
      result.done = true;
      continue;
    }
    const chunk = JSON.parse(data) as Partial<Completion> & { error?: unknown };
    if (chunk.error) throw new Error(`error event: ${data}`);
    result.chunks++;
    for (const choice of chunk.choices ?? []) {
      result.text += choice.text;
      if (choice.finish_reason) result.finishReason = choice.finish_reason;
    }
    if (chunk.usage) result.completionTokens = chunk.usage.completion_tokens;
  }
  return result;
}

/** The concatenation of text (as UTF-8) and raw bytes, as a request body. */
function bytes(...parts: (string | number[])[]): ArrayBuffer {
  const encoded = parts.map((p) =>
    typeof p === 'string' ? new TextEncoder().encode(p) : Uint8Array.from(p),
  );
  const out = new ArrayBuffer(encoded.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of encoded) {
    new Uint8Array(out).set(p, offset);
    offset += p.length;
  }
  return out;
}

const promptAt = (i: number): string => PROMPTS[i % PROMPTS.length] ?? '';

/** Sends a raw body and returns the status and the parsed JSON answer. */
async function rawPost(url: string, body: string | ArrayBuffer, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    json: JSON.parse(text) as {
      error: { message: string; type: string; param: string | null; code: string | null };
    },
  };
}

describe.skipIf(!fx)('load: 64 concurrent streams with bad requests interleaved', () => {
  let model: LoadedModel;
  let app: ServeHttpServer;
  let url: string;
  let base: string;

  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
    app = createServeApp({
      engine: model.engine,
      tokenizer: model.tokenizer,
      modelId: 'mpt-tiny',
      maxBatch: 16,
      maxQueue: STREAMS,
      maxBodyBytes: MAX_BODY,
    });
    const address = await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${address.port}`;
    url = `${base}/v1/completions`;
  });
  afterAll(async () => {
    await app?.shutdown(1000);
    model?.engine.dispose();
  });

  it('rejects a body that is not valid UTF-8 with 400', async () => {
    // 0xC3 0x28 is an invalid two-byte sequence; 0xFF never occurs in UTF-8; 0xE2 0x82 is a truncated one.
    for (const bad of [[0xc3, 0x28], [0xff], [0xe2, 0x82]]) {
      const answer = await rawPost(url, bytes('{"prompt": "caf', bad, '", "max_tokens": 1}'));
      expect(answer.status).toBe(400);
      expect(answer.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_encoding' });
    }
    // Valid multi-byte UTF-8 (and a byte-order mark) still goes through.
    const ok = await rawPost(url, bytes('\uFEFF{"prompt": "café ☕", "max_tokens": 1}'));
    expect(ok.status).toBe(200);
  });

  it('413 for a chunked body over the limit (no content-length), and the server keeps serving', async () => {
    const piece = new TextEncoder().encode(`{"prompt": "${'x'.repeat(MAX_BODY)}`);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Four times the limit in total, sent as a stream of chunks.
        if (sent++ < 4) controller.enqueue(piece);
        else controller.close();
      },
    });
    const init: RequestInit & { duplex: 'half' } = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    };
    const res = await fetch(url, init);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
    const after = await rawPost(url, JSON.stringify({ prompt: 'x', max_tokens: 1 }));
    expect(after.status).toBe(200);
  });

  it('completes every stream with the greedy tokens while bad requests get 4xx errors', async () => {
    // The reference: each prompt's non-streamed greedy completion.
    const expected = new Map<string, Completion>();
    for (const prompt of PROMPTS) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt, max_tokens: MAX_TOKENS, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      expected.set(prompt, (await res.json()) as Completion);
    }

    const huge = JSON.stringify({ prompt: 'x'.repeat(MAX_BODY * 4) });
    const badRequests: {
      name: string;
      run: () => Promise<{
        status: number;
        json: { error: { code: string | null; param: string | null; type: string } };
      }>;
      status: number;
      code?: string | null;
      param?: string;
    }[] = [
      {
        name: 'truncated JSON',
        run: () => rawPost(url, '{"prompt": "x", '),
        status: 400,
        code: 'invalid_json',
      },
      { name: 'not an object', run: () => rawPost(url, '[1, 2, 3]'), status: 400, code: 'invalid_json' },
      {
        name: 'wrong type',
        run: () => rawPost(url, JSON.stringify({ prompt: 'x', max_tokens: 'four' })),
        status: 400,
        param: 'max_tokens',
      },
      {
        name: 'wrong stream type',
        run: () => rawPost(url, JSON.stringify({ prompt: 'x', stream: 'yes' })),
        status: 400,
        param: 'stream',
      },
      { name: 'huge body', run: () => rawPost(url, huge), status: 413, code: 'body_too_large' },
      {
        name: 'invalid UTF-8',
        run: () => rawPost(url, bytes('{"prompt": "', [0xff, 0xfe], '"}')),
        status: 400,
        code: 'invalid_encoding',
      },
    ];

    const streams: Promise<StreamResult>[] = [];
    const bad: Promise<{
      name: string;
      status: number;
      json: unknown;
      want: (typeof badRequests)[number];
    }>[] = [];
    for (let i = 0; i < STREAMS; i++) {
      streams.push(streamCompletion(url, promptAt(i)));
      // A bad request after every eighth stream, each kind at least once.
      if (i % 8 === 7) {
        const want = badRequests[(i >> 3) % badRequests.length]!;
        bad.push(want.run().then((r) => ({ name: want.name, status: r.status, json: r.json, want })));
      }
    }
    const [results, errors] = await Promise.all([Promise.all(streams), Promise.all(bad)]);

    expect(results).toHaveLength(STREAMS);
    results.forEach((r, i) => {
      const want = expected.get(promptAt(i))!;
      expect(r.status).toBe(200);
      expect(r.contentType).toContain('text/event-stream');
      expect(r.done).toBe(true);
      expect(r.text).toBe(want.choices[0]!.text);
      expect(r.finishReason).toBe(want.choices[0]!.finish_reason);
      expect(r.completionTokens).toBe(want.usage.completion_tokens);
    });
    // The fixture's greedy continuations run the full length: the counts are the requested ones.
    for (const c of expected.values()) expect(c.usage.completion_tokens).toBe(MAX_TOKENS);

    expect(errors.length).toBeGreaterThanOrEqual(badRequests.length);
    for (const e of errors) {
      expect(e.status, e.name).toBe(e.want.status);
      const err = (e.json as { error: Record<string, unknown> }).error;
      expect(err, e.name).toMatchObject({ type: 'invalid_request_error' });
      expect(typeof err.message, e.name).toBe('string');
      if (e.want.code !== undefined) expect(err.code, e.name).toBe(e.want.code);
      if (e.want.param !== undefined) expect(err.param, e.name).toBe(e.want.param);
    }

    // Nothing is left in the scheduler, and the server still answers.
    const health = (await (await fetch(`${base}/health`)).json()) as { waiting: number; running: number };
    expect(health).toMatchObject({ status: 'ok', waiting: 0, running: 0 });
    const last = await streamCompletion(url, promptAt(0));
    expect(last).toMatchObject({
      status: 200,
      done: true,
      text: expected.get(promptAt(0))?.choices[0]?.text,
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/status="413"/);
  });
});
