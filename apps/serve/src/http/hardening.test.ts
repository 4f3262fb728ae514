// Regression tests for requests that used to break or stall the server: each one is answered by a limit before any
// work, or runs bounded through the scheduler, and the server keeps its greedy text and an honest /health.
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonTokenizer } from '../engine/json-tokenizer.js';
import type { Engine } from '../engine/types.js';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { createServeApp, type ServeAppOptions } from '../serve-app.js';
import { fixture } from '../testing/fixture.js';
import type { ServeHttpServer } from './server.js';

const fx = fixture();

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: { error?: { message: string; type: string; param: string | null; code: string | null } } & Record<
    string,
    unknown
  >;
}

/** One request over node:http (so `Host` and `Origin` can be set), with a time limit. */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
  timeoutMs = 30_000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => {
        let json = {};
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} took over ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };

/**
 * Counts the engine's scoring passes, the sequences it prefilled (alone or batched) and the most calls that ever ran
 * at once (the engine itself is the real one).
 */
function instrument(engine: Engine) {
  const stats = { logits: 0, prefill: 0, inFlight: 0, peak: 0 };
  const wrap = <A extends unknown[], R>(
    name: 'logits' | 'prefill',
    fn: (...a: A) => Promise<R>,
    count: (...a: A) => number = () => 1,
  ) => {
    return async (...args: A): Promise<R> => {
      stats[name] += count(...args);
      stats.inFlight++;
      stats.peak = Math.max(stats.peak, stats.inFlight);
      try {
        return await fn(...args);
      } finally {
        stats.inFlight--;
      }
    };
  };
  const original = { logits: engine.logits, prefill: engine.prefill, prefillMany: engine.prefillMany };
  engine.logits = wrap('logits', engine.logits.bind(engine));
  engine.prefill = wrap('prefill', engine.prefill.bind(engine));
  if (engine.prefillMany) {
    engine.prefillMany = wrap('prefill', engine.prefillMany.bind(engine), (prompts) => prompts.length);
  }
  return {
    stats,
    reset: () => Object.assign(stats, { logits: 0, prefill: 0, inFlight: 0, peak: 0 }),
    restore: () => Object.assign(engine, original),
  };
}

/** The longest the event loop was blocked while `run` was in flight (10 ms ticks). */
async function maxEventLoopStall<T>(run: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last - 10);
    last = now;
  }, 10);
  try {
    return { result: await run(), stallMs };
  } finally {
    clearInterval(timer);
  }
}

describe.skipIf(!fx)('hardening: bounded requests on the fixture model', () => {
  let model: LoadedModel;
  const apps: ServeHttpServer[] = [];
  let probe: ReturnType<typeof instrument>;

  async function start(options: Partial<ServeAppOptions> = {}) {
    const app = createServeApp({
      engine: model.engine,
      tokenizer: model.tokenizer,
      modelId: 'mpt-tiny',
      maxBatch: 4,
      maxQueue: 16,
      ...options,
    });
    apps.push(app);
    const { port } = await app.listen(0, '127.0.0.1');
    return { app, port };
  }

  /** Greedy text for a fixed prompt, and /health, on a server. */
  async function greedyAndHealth(port: number) {
    const r = await send(
      port,
      'POST',
      '/v1/completions',
      JSON_TYPE,
      JSON.stringify({ prompt: 'The capital of France is', max_tokens: 8, temperature: 0 }),
    );
    expect(r.status).toBe(200);
    const health = await send(port, 'GET', '/health', {});
    return { text: (r.json['choices'] as { text: string }[])[0]!.text, health };
  }

  let reference: string;

  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
    probe = instrument(model.engine);
    const fresh = await start();
    reference = (await greedyAndHealth(fresh.port)).text;
  });
  afterAll(async () => {
    for (const app of apps) await app.shutdown(500).catch(() => {});
    probe?.restore();
    model?.engine.dispose();
  });

  const ids127 = Array.from({ length: 127 }, (_, i) => i + 1);

  it('case 1: 200 echo-logprob prompts of 127 tokens get 413 at once, and the server stays whole', async () => {
    const { port } = await start();
    probe.reset();
    const body = JSON.stringify({ prompt: Array(200).fill(ids127), max_tokens: 1, echo: true, logprobs: 0 });
    const t0 = performance.now();
    const r = await send(port, 'POST', '/v1/completions', JSON_TYPE, body);
    expect(r.status).toBe(413);
    expect(r.json.error).toMatchObject({ code: 'too_many_prompts', param: 'prompt' });
    expect(r.json.error!.message).toContain('at most 16 per request (--max-prompts)');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(probe.stats).toMatchObject({ logits: 0, prefill: 0 });
    const after = await greedyAndHealth(port);
    expect(after.text).toBe(reference);
    expect(after.health.status).toBe(200);
  });

  it('case 1 within the limits: echoed prompts are scored one at a time in the scheduler, once per prompt', async () => {
    const { port } = await start({ maxBatch: 4, maxQueue: 32 });
    const single = await send(
      port,
      'POST',
      '/v1/completions',
      JSON_TYPE,
      JSON.stringify({
        prompt: [ids127.slice(0, 40)],
        max_tokens: 1,
        echo: true,
        logprobs: 2,
        temperature: 0,
      }),
    );
    expect(single.status).toBe(200);
    probe.reset();
    const prompts = Array.from({ length: 12 }, (_, i) => ids127.slice(i, i + 40));
    const r = await send(
      port,
      'POST',
      '/v1/completions',
      JSON_TYPE,
      JSON.stringify({ prompt: prompts, n: 2, max_tokens: 1, echo: true, logprobs: 2, temperature: 0 }),
    );
    expect(r.status).toBe(200);
    // One scoring pass per prompt (shared by its n choices), one prefill per choice, never two at once.
    expect(probe.stats).toMatchObject({ logits: 12, prefill: 24, peak: 1 });
    type Choice = { logprobs: { token_logprobs: (number | null)[]; tokens: string[] } };
    const choices = r.json['choices'] as Choice[];
    expect(choices).toHaveLength(24);
    for (const c of choices) {
      expect(c.logprobs.token_logprobs).toHaveLength(41);
      expect(c.logprobs.token_logprobs[0]).toBeNull();
    }
    // The first prompt's logprobs are those it gets alone: the echoed prompt's exactly (scored one prompt at a
    // time either way); the generated token's to float32 rounding, since prompts admitted together share a prefill
    // pass whose products sum in another order.
    const alone = (single.json['choices'] as Choice[])[0]!.logprobs;
    expect(choices[0]!.logprobs.token_logprobs.slice(0, 40)).toEqual(alone.token_logprobs.slice(0, 40));
    expect(choices[0]!.logprobs.token_logprobs[40]).toBeCloseTo(alone.token_logprobs[40]!, 5);
    expect(choices[1]!.logprobs.tokens).toEqual(alone.tokens);
    expect((await greedyAndHealth(port)).text).toBe(reference);
  });

  it('case 2: 2000 one-token echo prompts are refused in milliseconds, with no forward pass', async () => {
    const { port } = await start();
    const body = JSON.stringify({ prompt: Array(2000).fill([1]), echo: true, logprobs: 0, max_tokens: 1 });
    probe.reset();
    const { result, stallMs } = await maxEventLoopStall(() =>
      Promise.all([send(port, 'POST', '/v1/completions', JSON_TYPE, body), send(port, 'GET', '/health', {})]),
    );
    const [r, health] = result;
    expect(r.status).toBe(413);
    expect(r.json.error!.code).toBe('too_many_prompts');
    expect(health.status).toBe(200);
    // The old code held the loop for seconds here; leave room for a busy machine.
    expect(stallMs).toBeLessThan(500);
    expect(probe.stats).toMatchObject({ logits: 0, prefill: 0 });

    // With the prompt limit raised, the capacity check refuses it, still before any work.
    const wide = await start({ limits: { maxPrompts: 5000 } });
    probe.reset();
    const capacity = await send(wide.port, 'POST', '/v1/completions', JSON_TYPE, body);
    expect(capacity.status).toBe(413);
    expect(capacity.json.error!.code).toBe('too_many_sequences');
    expect(capacity.json.error!.message).toContain('at most 20 (--max-batch + --max-queue)');
    expect(probe.stats).toMatchObject({ logits: 0, prefill: 0 });
  });

  it('case 2: a 1 MB text prompt is refused by --max-prompt-bytes before it is tokenized', async () => {
    const { port } = await start({ maxBodyBytes: 2 << 20 });
    const tokenizer = model.tokenizer!;
    let encoded = 0;
    const { encode, encodeAsync } = tokenizer;
    tokenizer.encode = (text) => {
      encoded++;
      return encode.call(tokenizer, text);
    };
    tokenizer.encodeAsync = async (text) => {
      encoded++;
      return encodeAsync!.call(tokenizer, text);
    };
    try {
      const big = 'hello world, this is a test. '.repeat(36_000);
      const r = await send(port, 'POST', '/v1/completions', JSON_TYPE, JSON.stringify({ prompt: big }));
      expect(r.status).toBe(413);
      expect(r.json.error).toMatchObject({ code: 'prompt_too_large', param: 'prompt' });
      expect(r.json.error!.message).toContain('(--max-prompt-bytes)');
      expect(encoded).toBe(0);
      // Chat messages are bounded the same way.
      const chat = await send(
        port,
        'POST',
        '/v1/chat/completions',
        JSON_TYPE,
        JSON.stringify({ messages: [{ role: 'user', content: big }] }),
      );
      expect(chat.status).toBe(413);
      expect(chat.json.error).toMatchObject({ code: 'prompt_too_large', param: 'messages' });
      expect(encoded).toBe(0);
    } finally {
      tokenizer.encode = encode;
      tokenizer.encodeAsync = encodeAsync;
    }
  });

  it('case 2: a 1 MB prompt let through the byte limit is tokenized in pieces, the event loop turning between them', async () => {
    const { port } = await start({ maxBodyBytes: 2 << 20, limits: { maxPromptBytes: 2 << 20 } });
    const inner = (model.tokenizer as JsonTokenizer).tokenizer;
    const encode = inner.encode;
    let pieces = 0;
    inner.encode = ((text: string, options?: object) => {
      pieces++;
      return encode.call(inner, text, options as never);
    }) as typeof inner.encode;
    try {
      const big = 'hello world, this is a test. '.repeat(36_000);
      let piecesAtHealth = 0;
      const [r, health] = await Promise.all([
        send(port, 'POST', '/v1/completions', JSON_TYPE, JSON.stringify({ prompt: big })),
        // Sent once the big request is being tokenized: it is answered in between the pieces.
        new Promise<Answer>((resolve, reject) => {
          const poll = () => {
            if (pieces === 0) return void setImmediate(poll);
            send(port, 'GET', '/health', {}).then((a) => {
              piecesAtHealth = pieces;
              resolve(a);
            }, reject);
          };
          poll();
        }),
      ]);
      expect(health.status).toBe(200);
      expect(r.status).toBe(413);
      expect(r.json.error!.message).toContain('(--max-prompt-tokens)');
      expect(pieces).toBeGreaterThan(100);
      expect(piecesAtHealth).toBeLessThan(pieces);
    } finally {
      inner.encode = encode;
    }
  });

  it('--max-prompt-tokens, --max-tokens and --max-n name themselves in 413 / 400 errors', async () => {
    const { port } = await start({ limits: { maxPromptTokens: 50, maxTokens: 4, maxN: 2 } });
    const post = (body: unknown, path = '/v1/completions') =>
      send(port, 'POST', path, JSON_TYPE, JSON.stringify(body));
    const tokens = await post({ prompt: [ids127.slice(0, 30), ids127.slice(0, 30)], max_tokens: 1 });
    expect(tokens.status).toBe(413);
    expect(tokens.json.error!.message).toBe(
      'the prompts hold 60 tokens; this server takes at most 50 per request (--max-prompt-tokens)',
    );
    const maxTokens = await post({ prompt: 'x', max_tokens: 5 });
    expect(maxTokens.status).toBe(400);
    expect(maxTokens.json.error).toMatchObject({
      param: 'max_tokens',
      message: "'max_tokens' is 5; this server allows at most 4 (--max-tokens)",
    });
    const chatTokens = await post(
      { messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 9 },
      '/v1/chat/completions',
    );
    expect(chatTokens.json.error!.param).toBe('max_completion_tokens');
    const n = await post({ prompt: 'x', n: 3 });
    expect(n.status).toBe(400);
    expect(n.json.error).toMatchObject({
      param: 'n',
      message: "'n' is 3; this server allows at most 2 (--max-n)",
    });
    // Chat without max_tokens stops at --max-tokens.
    const chat = await post(
      { messages: [{ role: 'user', content: 'hi' }], temperature: 0 },
      '/v1/chat/completions',
    );
    expect(chat.status).toBe(200);
    expect((chat.json['usage'] as { completion_tokens: number }).completion_tokens).toBeLessThanOrEqual(4);
  });

  it('max_tokens beyond the context length is refused by default', async () => {
    const { port } = await start();
    const r = await send(
      port,
      'POST',
      '/v1/completions',
      JSON_TYPE,
      JSON.stringify({ prompt: 'x', max_tokens: 129 }),
    );
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toBe(
      "'max_tokens' is 129; this server allows at most 128 (the model's context length)",
    );
  });

  describe('case 6: content type and origin', () => {
    let port: number;
    let allowed: number;
    const body = JSON.stringify({ prompt: 'x', max_tokens: 1 });
    beforeAll(async () => {
      ({ port } = await start());
      ({ port: allowed } = await start({ corsOrigins: ['https://app.example'] }));
    });

    it('415 unless the body is declared as JSON (charset utf-8 allowed)', async () => {
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
        'application/jsonx',
      ]) {
        const r = await send(port, 'POST', '/v1/completions', { 'content-type': type }, body);
        expect(r.status, type).toBe(415);
        expect(r.json.error).toMatchObject({ code: 'unsupported_media_type', type: 'invalid_request_error' });
        expect(r.json.error!.message).toContain("send 'Content-Type: application/json'");
      }
      const none = await send(port, 'POST', '/v1/completions', {}, body);
      expect(none.status).toBe(415);
      expect(none.json.error!.message).toContain('(got none)');
      for (const type of [
        'application/json',
        'Application/JSON; charset=UTF-8',
        'application/json;charset="utf-8"',
      ]) {
        expect(
          (await send(port, 'POST', '/v1/completions', { 'content-type': type }, body)).status,
          type,
        ).toBe(200);
      }
    });

    it('403 for a cross-site browser request, even a simple text/plain one; same-origin and listed origins pass', async () => {
      const payload = JSON.stringify({
        prompt: Array(200).fill(ids127),
        max_tokens: 1,
        echo: true,
        logprobs: 0,
      });
      const foreign = await send(
        port,
        'POST',
        '/v1/completions',
        { 'content-type': 'text/plain', origin: 'https://evil.example' },
        payload,
      );
      expect(foreign.status).toBe(403);
      expect(foreign.json.error).toMatchObject({ code: 'origin_not_allowed' });
      expect(foreign.json.error!.message).toContain('--cors-origin https://evil.example');
      expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
      // The playground's own requests: Origin is the server itself.
      const same = await send(
        port,
        'POST',
        '/v1/completions',
        { ...JSON_TYPE, origin: `http://127.0.0.1:${port}` },
        body,
      );
      expect(same.status).toBe(200);
      const local = await send(
        port,
        'POST',
        '/v1/completions',
        { ...JSON_TYPE, origin: `http://localhost:${port}`, host: `localhost:${port}` },
        body,
      );
      expect(local.status).toBe(200);
      // A DNS-rebound name for 127.0.0.1 looks same-origin to the browser, but is not a loopback name.
      const rebound = await send(
        port,
        'POST',
        '/v1/completions',
        { ...JSON_TYPE, origin: `http://evil.example:${port}`, host: `evil.example:${port}` },
        body,
      );
      expect(rebound.status).toBe(403);
      expect((await send(port, 'GET', '/health', { origin: 'https://evil.example' })).status).toBe(403);
      expect((await send(port, 'GET', '/health', { origin: 'null' })).status).toBe(403);
      const listed = await send(
        allowed,
        'POST',
        '/v1/completions',
        { ...JSON_TYPE, origin: 'https://app.example' },
        body,
      );
      expect(listed.status).toBe(200);
      expect(listed.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(listed.headers['vary']).toContain('Origin');
      expect(
        (
          await send(
            allowed,
            'POST',
            '/v1/completions',
            { ...JSON_TYPE, origin: 'https://app.example.evil' },
            body,
          )
        ).status,
      ).toBe(403);
    });

    it('answers CORS preflights for allowed origins only', async () => {
      const ask = {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os',
      };
      const ok = await send(allowed, 'OPTIONS', '/v1/chat/completions', ask);
      expect(ok.status).toBe(204);
      expect(ok.headers).toMatchObject({
        'access-control-allow-origin': 'https://app.example',
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'authorization, content-type, x-stainless-os',
        'access-control-max-age': '600',
      });
      const refused = await send(port, 'OPTIONS', '/v1/chat/completions', ask);
      expect(refused.status).toBe(403);
      expect(refused.headers['access-control-allow-origin']).toBeUndefined();
      expect((await send(allowed, 'OPTIONS', '/v1/nothing', ask)).status).toBe(404);
    });
  });

  describe('case 6: timeouts, connection cap and disconnect metrics', () => {
    let port: number;
    let app: ServeHttpServer;
    beforeAll(async () => {
      ({ app, port } = await start({
        headersTimeoutMs: 500,
        bodyTimeoutMs: 800,
        keepAliveTimeoutMs: 500,
        maxConnections: 4,
        maxBatch: 1,
        maxQueue: 8,
      }));
    });

    /** Opens a raw socket; resolves with what the server sent and when it closed it. */
    function rawSocket(write: string) {
      const socket: Socket = connect(port, '127.0.0.1');
      const t0 = performance.now();
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (d) => {
        received += d;
      });
      socket.on('error', () => {});
      socket.write(write);
      const closed = new Promise<{ received: string; ms: number }>((resolve) =>
        socket.on('close', () => resolve({ received, ms: performance.now() - t0 })),
      );
      return { socket, closed };
    }

    it('a body that stalls gets 408 after --body-timeout, not minutes later', async () => {
      const { closed } = rawSocket(
        `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":`,
      );
      const { received, ms } = await closed;
      expect(received).toMatch(/^HTTP\/1\.1 408/);
      expect(received).toContain('"code":"request_timeout"');
      expect(ms).toBeGreaterThan(700);
      expect(ms).toBeLessThan(2500);
    });

    it('headers that stall are cut after --headers-timeout; an idle keep-alive connection after --keep-alive-timeout', async () => {
      const slow = rawSocket('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      const headers = await slow.closed;
      expect(headers.ms).toBeLessThan(2500);
      const idle = rawSocket('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const kept = await idle.closed;
      expect(kept.received).toMatch(/^HTTP\/1\.1 200/);
      expect(kept.ms).toBeLessThan(2500);
    });

    it('closes connections beyond --max-connections at once', async () => {
      const held = Array.from({ length: 4 }, () => rawSocket('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      await new Promise((r) => setTimeout(r, 200));
      const extra = rawSocket('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const { received, ms } = await extra.closed;
      expect(received).toBe('');
      expect(ms).toBeLessThan(500);
      for (const h of held) h.socket.destroy();
      await Promise.all(held.map((h) => h.closed));
      expect((await send(port, 'GET', '/health', {})).status).toBe(200);
    });

    it('a stream that outlives the request timeouts still completes', async () => {
      const body = JSON.stringify({ prompt: [1], max_tokens: 120, stream: true });
      let t0 = performance.now();
      await send(port, 'POST', '/v1/completions', JSON_TYPE, body);
      const streamMs = performance.now() - t0;
      // Timeouts sized to this machine: Node's whole-request limit (headers + 2 x body) is well under the stream.
      const timeout = Math.max(50, Math.floor(streamMs / 8));
      const quick = await start({ headersTimeoutMs: timeout, bodyTimeoutMs: timeout });
      t0 = performance.now();
      const stream = await send(quick.port, 'POST', '/v1/completions', JSON_TYPE, body);
      expect(stream.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(stream.text).toContain('"finish_reason":"length"');
      // Longer than the limit (3 x timeout) and Node's checking interval (1 x timeout) together.
      expect(performance.now() - t0).toBeGreaterThan(4 * timeout);
    });

    it('counts clients that leave mid-body or mid-stream as 499, apart from server errors', async () => {
      const metric = async (pattern: RegExp) => {
        const text = (await send(port, 'GET', '/metrics', {})).text;
        return Number(pattern.exec(text)?.[1] ?? 0);
      };
      const disconnects = /mptjs_client_disconnects_total\{endpoint="\/v1\/completions"\} (\d+)/;
      const before = await metric(disconnects);
      // Leaves during the body.
      const partial = rawSocket(
        'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro',
      );
      await new Promise((r) => setTimeout(r, 100));
      partial.socket.destroy();
      // Leaves during a stream.
      const json = JSON.stringify({ prompt: [1], max_tokens: 100, stream: true });
      const stream = rawSocket(
        `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
      );
      await new Promise<void>((resolve) => stream.socket.once('data', () => resolve()));
      stream.socket.destroy();
      const end = Date.now() + 5000;
      while ((await metric(disconnects)) < before + 2 && Date.now() < end)
        await new Promise((r) => setTimeout(r, 50));
      expect(await metric(disconnects)).toBe(before + 2);
      const text = (await send(port, 'GET', '/metrics', {})).text;
      expect(text).toMatch(/mptjs_requests_total\{endpoint="\/v1\/completions",status="499"\} [1-9]/);
      expect(text).not.toMatch(/status="500"/);
      // The stream was cut short: far fewer than its 100 tokens were generated.
      expect(await metric(/mptjs_completion_tokens_total (\d+)/)).toBeLessThan(120 + 100);
      expect(app.ctx.scheduler.stats).toEqual({ waiting: 0, running: 0 });
    });
  });
});
