// `mptjs-serve serve --decode-engine` as a child process: on webgpu (SwiftShader here) the recorded engine gives
// concurrent requests, greedy and seeded sampled (drawn on the device), the tokens the tfjs engine gives them on
// wasm, and the option's errors.
import { webgpuExpected } from '@mptjs/test-fixtures';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, runCliProcess, type ServedCli, serveCli } from '../testing/fixture.js';

const fx = fixture();

type Served = ServedCli;

const serve = (args: string[]) => serveCli(args, 240_000);

let running: Served | undefined;
afterEach(() => {
  if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
  running = undefined;
});

interface Choice {
  text: string;
  finish_reason: string;
  logprobs?: { tokens: string[]; token_logprobs: number[] } | null;
}

/** Greedy completions of varied prompts, all sent at once: some read their logprobs, most only the tokens. */
const GREEDY = [
  { prompt: 'One, two,', max_tokens: 10 },
  { prompt: 'The capital of France is', max_tokens: 6 },
  { prompt: 'a', max_tokens: 12, logprobs: 2 },
  { prompt: 'Once upon a time, in a land far away,', max_tokens: 8 },
  { prompt: 'Hello', max_tokens: 9, stop: ['\n\n'] },
].map((body) => ({ ...body, temperature: 0 }));

/**
 * Seeded sampled completions with their own temperature, top-k and top-p, all sent at once: the first four are
 * drawn on the device by the recorded engine; logprobs and a repetition penalty keep the last two on the host.
 */
const SAMPLED = [
  { prompt: 'One, two,', max_tokens: 10, temperature: 0.9, seed: 1 },
  { prompt: 'The capital of France is', max_tokens: 7, temperature: 1.3, top_k: 20, seed: 2 },
  { prompt: 'a', max_tokens: 12, temperature: 1, top_p: 0.9, seed: 3 },
  { prompt: 'Once upon a time,', max_tokens: 8, temperature: 0.7, top_k: 40, top_p: 0.8, seed: -4 },
  { prompt: 'Hello', max_tokens: 6, temperature: 1, seed: 5, logprobs: 1 },
  { prompt: 'Hello', max_tokens: 6, temperature: 1.1, seed: 6, repetition_penalty: 1.3 },
];

async function completeAll(base: string, requests: readonly object[] = GREEDY): Promise<Choice[]> {
  const replies = await Promise.all(
    requests.map(async (body) => {
      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { choices: Choice[] }).choices[0]!;
    }),
  );
  return replies;
}

describe.skipIf(!fx)('mptjs-serve serve --decode-engine (child process)', () => {
  it.runIf(webgpuExpected)(
    'takes the recorded engine on webgpu by default; its concurrent greedy and seeded sampled requests get the tokens of tfjs on wasm',
    async () => {
      running = await serve([
        fx!.dir,
        '--tokenizer',
        fx!.tokenizer,
        '--backend',
        'webgpu',
        '--max-batch',
        '4',
      ]);
      expect(running.stderr()).toMatch(/decode engine: recorded, 4 slots, \d+ dispatches per step/);
      // Five requests through four slots: one waits for a slot and joins while the others decode.
      const recorded = await completeAll(running.base);
      const recordedSampled = await completeAll(running.base, SAMPLED);
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);

      running = await serve([fx!.dir, '--tokenizer', fx!.tokenizer, '--backend', 'wasm', '--max-batch', '4']);
      expect(running.stderr()).toContain('decode engine: tfjs');
      const tfjs = await completeAll(running.base);
      const tfjsSampled = await completeAll(running.base, SAMPLED);
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);

      expect(recorded.map((c) => [c.text, c.finish_reason])).toEqual(
        tfjs.map((c) => [c.text, c.finish_reason]),
      );
      expect(recorded.map((c) => c.text.length).reduce((a, b) => a + b)).toBeGreaterThan(0);
      expect(recordedSampled.map((c) => [c.text, c.finish_reason])).toEqual(
        tfjsSampled.map((c) => [c.text, c.finish_reason]),
      );
      // Sampling, not the arg-max: the seeded draws differ from the greedy text of the same prompt.
      expect(recordedSampled.slice(0, 3).map((c) => c.text)).not.toEqual(
        recorded.slice(0, 3).map((c) => c.text),
      );
      const withLogprobs = recorded[2]?.logprobs;
      const reference = tfjs[2]?.logprobs;
      expect(withLogprobs?.tokens.length).toBeGreaterThan(0);
      expect(withLogprobs?.tokens).toEqual(reference?.tokens);
      withLogprobs?.token_logprobs.forEach((lp, i) => {
        expect(lp).toBeCloseTo(reference?.token_logprobs[i] ?? Number.NaN, 3);
      });
    },
    600_000,
  );

  it.runIf(webgpuExpected)(
    'falls back to the tfjs engine on webgpu when the recorded step cannot run the model, saying why',
    async () => {
      // The recorded step reads an int8 model's own int8 weights, and makes no f16 copies of them.
      const args = [
        ...[fx!.dir, '--tokenizer', fx!.tokenizer, '--backend', 'webgpu'],
        ...['--quantize', 'int8', '--decode-weights', 'f16'],
      ];
      running = await serve(args);
      expect(running.stderr()).toContain(
        'decode engine: tfjs (the recorded step is unavailable: this model is int8-quantized: its recorded step ' +
          'reads its int8 weights (f16 copies are made of float32 weights only))',
      );
      const res = await fetch(`${running.base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'One, two,', max_tokens: 2, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);
      const refused = await runCliProcess(['serve', ...args, '--decode-engine', 'recorded']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        '--decode-engine recorded: this model is int8-quantized: its recorded step reads its int8 weights',
      );
    },
    300_000,
  );

  it.runIf(webgpuExpected)(
    'reads f16 weights with --decode-weights f16, half the matrix bytes of f32 per step',
    async () => {
      const base = [fx!.dir, '--tokenizer', fx!.tokenizer, '--backend', 'webgpu', '--max-batch', '2'];
      const mibRead = (stderr: string, format: string): number => {
        const m = new RegExp(
          `recorded, 2 slots, \\d+ dispatches per step, ${format} weights \\(([\\d.]+) MiB read per step\\)`,
        ).exec(stderr);
        expect(m, stderr).not.toBeNull();
        return Number(m![1]);
      };
      running = await serve([...base, '--decode-weights', 'f16']);
      const f16 = mibRead(running.stderr(), 'f16');
      const replies = await completeAll(running.base);
      for (const r of replies) expect(['length', 'stop']).toContain(r.finish_reason);
      expect(replies.map((c) => c.text.length).reduce((a, b) => a + b)).toBeGreaterThan(0);
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);
      running = await serve(base);
      const f32 = mibRead(running.stderr(), 'f32');
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);
      // The matrices halve; the float32 vectors and the embedding row stay (a small share).
      expect(f16 / f32).toBeGreaterThan(0.45);
      expect(f16 / f32).toBeLessThan(0.55);
    },
    600_000,
  );

  it('refuses an unknown --decode-weights and f16 weights with the tfjs engine', async () => {
    const bad = await runCliProcess(['serve', fx!.dir, '--decode-weights', 'f8']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      "option '--decode-weights <format>' argument 'f8' is invalid. expected one of f32, f16",
    );
    const onTfjs = await runCliProcess([
      'serve',
      fx!.dir,
      '--tokenizer',
      fx!.tokenizer,
      '--backend',
      'wasm',
      '--decode-engine',
      'tfjs',
      '--decode-weights',
      'f16',
    ]);
    expect(onTfjs.code).toBe(2);
    expect(onTfjs.stderr).toContain(
      '--decode-weights f16 applies to the recorded engine, not --decode-engine tfjs',
    );
  }, 120_000);

  it('refuses --decode-engine recorded off webgpu and an unknown engine', async () => {
    const onWasm = await runCliProcess([
      'serve',
      fx!.dir,
      '--tokenizer',
      fx!.tokenizer,
      '--backend',
      'wasm',
      '--decode-engine',
      'recorded',
    ]);
    expect(onWasm.code).toBe(2);
    expect(onWasm.stderr).toContain(
      '--decode-engine recorded runs on the webgpu backend (selected: wasm); add --backend webgpu',
    );
    const unknown = await runCliProcess(['serve', fx!.dir, '--decode-engine', 'fast']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      "option '--decode-engine <engine>' argument 'fast' is invalid. expected one of auto, recorded, tfjs",
    );
  }, 120_000);
});
