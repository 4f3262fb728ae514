import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, fixture, requireBuiltCli } from '../testing/fixture.js';

const fx = fixture();

interface Served {
  child: ChildProcessWithoutNullStreams;
  base: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `mptjs-serve serve` on a free port and waits for its "serving ... on URL" line. */
function serve(args: string[]): Promise<Served> {
  requireBuiltCli();
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--port', '0'], { env: { ...process.env } });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 60_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = / on (http:\/\/[\d.]+:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1]!, stderr: () => stderr, exited });
      }
    });
    child.on('exit', () => reject(new Error(`server exited:\n${stderr}`)));
  });
}

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
