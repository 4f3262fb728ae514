// A failed engine is detected: an engine error that leaves the engine working fails only its request; one that
// leaves it broken (here: its weights are freed, so every forward pass throws, as after a wasm abort) turns /health
// to 503, refuses new work with 503 engine_failed, and ends `serve` so a supervisor restarts it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUntilStopped } from '../commands/serve.js';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { createServeApp } from '../serve-app.js';
import { fixture } from '../testing/fixture.js';

const fx = fixture();

async function post(base: string, body: unknown) {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return {
    status: res.status,
    json: (await res.json()) as {
      choices: { text: string }[];
      error: { message: string; code: string | null; type: string };
    },
  };
}

const GREEDY = { prompt: 'The capital of France is', max_tokens: 6, temperature: 0 };

describe.skipIf(!fx)('engine failure', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
  });
  afterAll(() => model?.engine.dispose());

  function start() {
    const app = createServeApp({
      engine: model.engine,
      tokenizer: model.tokenizer,
      modelId: 'm',
      maxBatch: 2,
    });
    return app.listen(0, '127.0.0.1').then(({ port }) => ({ app, base: `http://127.0.0.1:${port}` }));
  }

  it('an engine error that leaves the engine working fails only its request', async () => {
    const { app, base } = await start();
    try {
      const reference = (await post(base, GREEDY)).json.choices[0]!.text;
      // One injected failure around the real engine; the probe that follows runs the real engine.
      const prefill = model.engine.prefill;
      model.engine.prefill = async () => {
        model.engine.prefill = prefill;
        throw new Error('injected failure');
      };
      const failed = await post(base, GREEDY);
      expect(failed.status).toBe(500);
      expect(failed.json.error.message).toContain('injected failure');
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      expect((await post(base, GREEDY)).json.choices[0]!.text).toBe(reference);
    } finally {
      await app.shutdown(500);
    }
  });

  it('a broken engine fails /health, refuses new work with 503 and ends the serve loop with its error', async () => {
    const { app, base } = await start();
    expect((await post(base, GREEDY)).status).toBe(200);
    const queued = [1, 2, 3].map(() => post(base, { prompt: [1, 2, 3], max_tokens: 50 }));
    // Breaks the real engine for good: every later forward pass throws.
    model.engine.model.dispose();
    const answers = await Promise.all([post(base, GREEDY), ...queued]);
    for (const a of answers) expect([500, 503]).toContain(a.status);
    expect(answers.some((a) => a.status === 500)).toBe(true);
    expect(await app.engineFailed()).toBeInstanceOf(Error);

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      status: 'failing',
      error: expect.stringContaining('engine failed'),
    });
    const refused = await post(base, GREEDY);
    expect(refused.status).toBe(503);
    expect(refused.json.error).toMatchObject({ code: 'engine_failed', type: 'server_error' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('mptjs_engine_failed 1');

    // `serve` waits in this loop: it ends with the engine's error (the command then exits 1).
    const error = await runUntilStopped(app, 1000);
    expect(error?.message).toContain('no parameter');
    // The listener is closed: a supervisor sees the process end.
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
