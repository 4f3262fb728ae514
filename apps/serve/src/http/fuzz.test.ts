// Property-based fuzzing of the real HTTP API (fixture model, wasm, 127.0.0.1): random and mutated bodies, methods,
// paths and headers, a few at a time. Every answer must be a clean 2xx or 4xx (no 5xx: the engine is sound), in
// time; afterwards the server gives the greedy text of a fresh server and /health tells the truth. Bounded by run
// count and by time.
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { createServeApp } from '../serve-app.js';
import { fixture } from '../testing/fixture.js';
import type { ServeHttpServer } from './server.js';

const fx = fixture();
const KEY = 'fuzz-key';
const MAX_TOKENS = 4;
const TIME_BUDGET_MS = 40_000;
const REQUEST_TIMEOUT_MS = 20_000;

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

function send(port: number, r: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: r.method,
        path: r.path,
        headers: r.headers,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms: ${show(r)}`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

function show(r: Sent): string {
  return `${r.method} ${r.path} ${JSON.stringify(r.headers)} ${r.body?.toString('utf8').slice(0, 300)}`;
}

// ---- arbitraries ----

const junk = fc.jsonValue({ maxDepth: 2 });
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
const ids = fc.array(fc.oneof(fc.integer({ min: 0, max: 50_431 }), fc.integer({ min: -3, max: 60_000 })), {
  maxLength: 24,
});
const maybe = <T>(a: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: a }, { weight: 1, arbitrary: junk });

const sampling = {
  model: maybe(fc.constantFrom('mpt-tiny', 'gpt-4')),
  max_tokens: maybe(fc.oneof(fc.integer({ min: -1, max: MAX_TOKENS + 2 }), fc.constant(1e9))),
  temperature: maybe(fc.oneof(fc.constant(0), fc.double({ min: -1, max: 3, noNaN: true }))),
  top_p: maybe(fc.double({ min: -0.5, max: 1.5, noNaN: true })),
  top_k: maybe(fc.integer({ min: -2, max: 100 })),
  repetition_penalty: maybe(fc.double({ min: -1, max: 5, noNaN: true })),
  stop: maybe(fc.oneof(text, fc.array(text, { maxLength: 6 }))),
  seed: maybe(fc.integer()),
  n: maybe(fc.integer({ min: -1, max: 4 })),
  stream: maybe(fc.boolean()),
  stream_options: maybe(fc.record({ include_usage: maybe(fc.boolean()) }, { requiredKeys: [] })),
  user: maybe(text),
};

const completion = fc.record(
  {
    ...sampling,
    prompt: maybe(fc.oneof(text, fc.array(text, { maxLength: 6 }), ids, fc.array(ids, { maxLength: 6 }))),
    echo: maybe(fc.boolean()),
    logprobs: maybe(fc.integer({ min: -1, max: 6 })),
  },
  { requiredKeys: [] },
);

const message = fc.record(
  {
    role: maybe(fc.constantFrom('system', 'user', 'assistant', 'robot')),
    content: maybe(
      fc.oneof(text, fc.array(fc.record({ type: fc.constant('text'), text }), { maxLength: 3 })),
    ),
  },
  { requiredKeys: [] },
);
const chat = fc.record(
  {
    ...sampling,
    messages: maybe(fc.array(message, { maxLength: 4 })),
    logprobs: maybe(fc.boolean()),
    top_logprobs: maybe(fc.integer({ min: -1, max: 25 })),
    max_completion_tokens: maybe(fc.integer({ min: 0, max: MAX_TOKENS + 2 })),
  },
  { requiredKeys: [] },
);

// Requests that are valid but random: most of them must run to completion.
const validText = fc.string({ minLength: 1, maxLength: 40 });
const validIds = fc.array(fc.integer({ min: 0, max: 50_431 }), { minLength: 1, maxLength: 24 });
const validSampling = {
  max_tokens: fc.integer({ min: 1, max: MAX_TOKENS }),
  temperature: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true })),
  top_p: fc.double({ min: 0.05, max: 1, noNaN: true }),
  top_k: fc.integer({ min: -1, max: 50 }),
  stop: fc.array(validText, { maxLength: 2 }),
  seed: fc.integer(),
  n: fc.integer({ min: 1, max: 2 }),
  stream: fc.boolean(),
  stream_options: fc.record({ include_usage: fc.boolean() }),
};
const validCompletion = fc.record(
  {
    ...validSampling,
    prompt: fc.oneof(
      validText,
      // Over --max-prompts (4) or --max-prompt-tokens (256), or near the body limit.
      fc.array(validIds, { minLength: 5, maxLength: 6 }),
      fc.array(fc.constant(Array(100).fill(7)), { minLength: 3, maxLength: 4 }),
      fc.integer({ min: 1000, max: 3000 }).map((k) => 'word '.repeat(k)),
      fc.array(validText, { minLength: 1, maxLength: 2 }),
      validIds,
      fc.array(validIds, { minLength: 1, maxLength: 2 }),
    ),
    echo: fc.boolean(),
    logprobs: fc.integer({ min: 0, max: 5 }),
  },
  { requiredKeys: ['prompt'] },
);
const validChat = fc.record(
  {
    ...validSampling,
    messages: fc.array(
      fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: validText }),
      { minLength: 1, maxLength: 3 },
    ),
    logprobs: fc.boolean(),
  },
  { requiredKeys: ['messages'] },
);

/** Byte-level damage: truncation, insertion, deletion and replacement (which may break UTF-8). */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(body: Buffer, m: Mutation): Buffer {
  const at = body.length === 0 ? 0 : m.at % (body.length + 1);
  switch (m.kind) {
    case 'truncate':
      return body.subarray(0, at);
    case 'insert':
      return Buffer.concat([body.subarray(0, at), Buffer.from(m.bytes), body.subarray(at)]);
    case 'delete':
      return Buffer.concat([body.subarray(0, at), body.subarray(at + m.length)]);
    case 'replace': {
      const copy = Buffer.from(body);
      if (at < copy.length) copy[at] = m.byte;
      return copy;
    }
  }
}

const PATHS = [
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/models',
  '/health',
  '/metrics',
  '/v1/nope',
  '/',
];

function requestArbitrary(port: number): fc.Arbitrary<Sent> {
  const headerText = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
  return fc
    .record({
      path: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(PATHS[0]!, PATHS[1]!) },
        { weight: 1, arbitrary: fc.constantFrom(...PATHS) },
      ),
      method: fc.oneof(
        { weight: 30, arbitrary: fc.constant('POST') },
        { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'OPTIONS') },
      ),
      body: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.oneof(validCompletion, validChat).map((o) => Buffer.from(JSON.stringify(o))),
        },
        { weight: 3, arbitrary: fc.oneof(completion, chat).map((o) => Buffer.from(JSON.stringify(o))) },
        {
          weight: 3,
          arbitrary: fc
            .tuple(fc.oneof(completion, chat), fc.array(mutation, { minLength: 1, maxLength: 3 }))
            .map(([o, ms]) => ms.reduce(mutate, Buffer.from(JSON.stringify(o)))),
        },
        { weight: 1, arbitrary: junk.map((v) => Buffer.from(JSON.stringify(v) ?? '')) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
      ),
      contentType: fc.oneof(
        { weight: 30, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
        {
          weight: 1,
          arbitrary: fc.constantFrom(undefined, 'text/plain', 'application/json; charset=latin1'),
        },
        { weight: 1, arbitrary: headerText },
      ),
      origin: fc.oneof(
        { weight: 30, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            'https://ok.example',
            `http://127.0.0.1:${port}`,
            'https://evil.example',
            'null',
          ),
        },
        { weight: 1, arbitrary: headerText },
      ),
      auth: fc.oneof(
        { weight: 30, arbitrary: fc.constant(`Bearer ${KEY}`) },
        { weight: 1, arbitrary: fc.constantFrom(undefined, 'Bearer wrong', `bearer ${KEY}`, KEY) },
        { weight: 1, arbitrary: headerText },
      ),
    })
    .map(({ path, method, body, contentType, origin, auth }) => {
      const headers: Record<string, string> = {};
      if (contentType !== undefined) headers['content-type'] = contentType;
      if (origin !== undefined) headers['origin'] = origin;
      if (auth !== undefined) headers['authorization'] = auth;
      const withBody = method === 'POST' || method === 'PUT';
      return { method, path, headers, body: withBody ? body : undefined };
    });
}

const ALLOWED = new Set([200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 429]);

/** Checks one answer: a clean 2xx or 4xx, the error object or a well-formed result. */
function checkAnswer(r: Sent, a: Answer): void {
  const what = `${a.status} ${a.text.slice(0, 300)} for ${show(r)}`;
  expect(ALLOWED.has(a.status), what).toBe(true);
  if (a.status >= 400) {
    const error = (JSON.parse(a.text) as { error: { message: unknown; type: unknown } }).error;
    expect(typeof error.message, what).toBe('string');
    expect(typeof error.type, what).toBe('string');
    return;
  }
  if (a.status !== 200 || r.method !== 'POST') return;
  if (a.contentType.startsWith('text/event-stream')) {
    expect(a.text.trimEnd().endsWith('data: [DONE]'), what).toBe(true);
    expect(a.text, what).not.toContain('data: {"error"');
    return;
  }
  const body = JSON.parse(a.text) as { choices: unknown[]; usage: { completion_tokens: number } };
  expect(body.choices.length, what).toBeGreaterThan(0);
  expect(body.usage.completion_tokens, what).toBeLessThanOrEqual(MAX_TOKENS * body.choices.length);
}

const GREEDY: Sent = {
  method: 'POST',
  path: '/v1/completions',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
  body: Buffer.from(
    JSON.stringify({ prompt: 'The capital of France is', max_tokens: MAX_TOKENS, temperature: 0 }),
  ),
};

describe.skipIf(!fx)('fuzzing the HTTP API', () => {
  let model: LoadedModel;
  let app: ServeHttpServer;
  let port: number;

  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
    app = createServeApp({
      engine: model.engine,
      tokenizer: model.tokenizer,
      modelId: 'mpt-tiny',
      apiKey: KEY,
      // A small queue, so concurrent requests also meet 429.
      maxBatch: 4,
      maxQueue: 2,
      maxBodyBytes: 16 * 1024,
      limits: { maxTokens: MAX_TOKENS, maxPrompts: 4, maxPromptTokens: 256 },
      corsOrigins: ['https://ok.example'],
      bodyTimeoutMs: 5000,
    });
    ({ port } = await app.listen(0, '127.0.0.1'));
  });
  afterAll(async () => {
    await app?.shutdown(1000);
    model?.engine.dispose();
  });

  it(
    'answers random and mutated requests cleanly, then serves the fresh greedy text',
    { timeout: 120_000 },
    async () => {
      const fresh = await send(port, GREEDY);
      expect(fresh.status).toBe(200);
      const started = performance.now();
      let runs = 0;
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(requestArbitrary(port), { minLength: 1, maxLength: 4 }), async (batch) => {
          runs++;
          const answers = await Promise.all(batch.map((r) => send(port, r)));
          batch.forEach((r, i) => {
            const a = answers[i]!;
            checkAnswer(r, a);
            statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          });
        }),
        {
          numRuns: 1000,
          interruptAfterTimeLimit: TIME_BUDGET_MS,
          seed: Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31),
        },
      );
      expect(runs).toBeGreaterThan(20);
      // Both sides were exercised: completed requests and refused ones.
      expect(statuses.get(200) ?? 0).toBeGreaterThan(runs / 10);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(runs / 10);
      expect(performance.now() - started).toBeLessThan(TIME_BUDGET_MS + REQUEST_TIMEOUT_MS);

      const health = await send(port, { method: 'GET', path: '/health', headers: {}, body: undefined });
      expect(health.status).toBe(200);
      expect(JSON.parse(health.text)).toMatchObject({ status: 'ok', waiting: 0, running: 0 });
      const after = await send(port, GREEDY);
      expect(after.status).toBe(200);
      const textOf = (a: Answer) => (JSON.parse(a.text) as { choices: { text: string }[] }).choices[0]!.text;
      expect(textOf(after)).toBe(textOf(fresh));
      const metrics = (await send(port, { method: 'GET', path: '/metrics', headers: {}, body: undefined }))
        .text;
      expect(metrics).not.toMatch(/status="5\d\d"/);
      const seen = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`);
      console.log(
        `[fuzz] ${runs} runs in ${((performance.now() - started) / 1000).toFixed(1)} s; ${seen.join(', ')}`,
      );
    },
  );
});
