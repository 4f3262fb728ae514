import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLI,
  fixture,
  requireBuiltCli,
  runCliProcess,
  type ServedCli,
  serveCli,
} from '../testing/fixture.js';

const fx = fixture();

type Served = ServedCli;

const serve = (args: string[]) => serveCli(args);

let running: Served | undefined;
afterEach(() => {
  if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
  running = undefined;
});

describe.skipIf(!fx)('mptjs-serve serve (child process)', () => {
  it('binds 127.0.0.1, requires the key from MPTJS_API_KEY, and on SIGTERM finishes the stream, refuses new work, exits 0', async () => {
    process.env['MPTJS_API_KEY'] = 'k1';
    try {
      running = await serve([fx!.dir, '--tokenizer', fx!.tokenizer, '--backend', 'wasm']);
    } finally {
      delete process.env['MPTJS_API_KEY'];
    }
    const { base, child } = running;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${base}/v1/models`)).status).toBe(401);
    const auth = { authorization: 'Bearer k1', 'content-type': 'application/json' };
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ prompt: 'One, two,', max_tokens: 24, temperature: 0, stream: true }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let body = '';
    while (!body.includes('\n\n')) body += decoder.decode((await reader.read()).value, { stream: true });

    child.kill('SIGTERM');
    // Wait for the signal to be handled before probing.
    while (!running.stderr().includes('SIGTERM')) await new Promise((r) => setTimeout(r, 20));
    const refused = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: auth,
      body: '{"prompt":"x"}',
    });
    expect(refused.status).toBe(503);

    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      body += decoder.decode(value, { stream: true });
    }
    expect(body).toContain('"finish_reason":"length"');
    expect(body).toContain('"completion_tokens":24');
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(await running.exited).toBe(0);
  });

  it('takes the limit, origin and timeout flags; a bad --cors-origin is a usage error', async () => {
    running = await serve([
      fx!.dir,
      '--tokenizer',
      fx!.tokenizer,
      '--backend',
      'wasm',
      '--max-prompts',
      '2',
      '--max-tokens',
      '3',
      '--cors-origin',
      'https://app.example',
      '--body-timeout',
      '0.5',
    ]);
    const { base } = running;
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    const prompts = await post({ prompt: ['a', 'b', 'c'] });
    expect(prompts.status).toBe(413);
    expect(((await prompts.json()) as { error: { message: string } }).error.message).toContain(
      'at most 2 per request (--max-prompts)',
    );
    expect((await post({ prompt: 'a', max_tokens: 4 })).status).toBe(400);
    const listed = await post({ prompt: 'a', max_tokens: 1 }, { origin: 'https://app.example' });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect((await post({ prompt: 'a', max_tokens: 1 }, { origin: 'https://other.example' })).status).toBe(
      403,
    );
    const text = await fetch(`${base}/v1/completions`, { method: 'POST', body: '{"prompt":"a"}' });
    expect(text.status).toBe(415);
    // --body-timeout 0.5: a stalled body gets 408 within about half a second.
    const { port } = new URL(base);
    const socket = connect(Number(port), '127.0.0.1');
    let reply = '';
    socket.on('data', (d) => {
      reply += d;
    });
    const t0 = performance.now();
    socket.write(
      'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{',
    );
    await new Promise((r) => socket.on('close', r));
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
    expect(performance.now() - t0).toBeLessThan(2000);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);

    const bad = await runCliProcess(['serve', fx!.dir, '--cors-origin', 'https://app.example/path']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      "option '--cors-origin <origin>' argument 'https://app.example/path' is invalid",
    );
  });

  it('fails with exit 1 and one line when the model directory does not exist', async () => {
    requireBuiltCli();
    const child = spawn(process.execPath, [CLI, 'serve', '/nonexistent/model', '--backend', 'cpu']);
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(1);
    expect(stderr).toContain('mptjs-serve: model "/nonexistent/model" is not a directory');
  });
});
