import { describe, expect, it } from 'vitest';
import { fixture, runCliProcess } from '../testing/fixture.js';

const fx = fixture();

describe.skipIf(!fx)('mptjs-serve generate', () => {
  it('greedy continuation equals the fixture (--json)', async () => {
    const { prompt, continuation } = fx!.expected.greedy;
    const r = await runCliProcess([
      'generate',
      fx!.dir,
      '--prompt-ids',
      prompt.join(','),
      '--max-new-tokens',
      String(continuation.length),
      '--temperature',
      '0',
      '--tokenizer',
      fx!.tokenizer,
      '--backend',
      'wasm',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { ids: number[]; text: string; timings: Record<string, number> };
    expect(out.ids).toEqual(continuation);
    expect(out.text.length).toBeGreaterThan(0);
    expect(out.timings['load_s']).toBeGreaterThan(0);
    expect(out.timings['prefill_tokens_per_s']).toBeGreaterThan(0);
    expect(out.timings['decode_tokens_per_s']).toBeGreaterThan(0);
  });

  it('streams text for a text prompt; the same seed gives the same sample', async () => {
    const args = [
      'generate',
      fx!.dir,
      '--prompt',
      'Hello world',
      '--max-new-tokens',
      '6',
      '--temperature',
      '0.9',
      '--top-k',
      '40',
      '--seed',
      '7',
      '--tokenizer',
      fx!.tokenizer,
      '--backend',
      'wasm',
    ];
    const [a, b] = [await runCliProcess(args), await runCliProcess([...args, '--json'])];
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const json = JSON.parse(b.stdout) as { ids: number[]; text: string };
    expect(json.ids).toHaveLength(6);
    expect(a.stdout).toBe(`${json.text}\n`);
  });

  it('is a usage error to give both --prompt and --prompt-ids', async () => {
    const r = await runCliProcess(['generate', fx!.dir, '--prompt', 'x', '--prompt-ids', '1,2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give exactly one of --prompt or --prompt-ids');
  });

  it('rejects a malformed --temperature as a usage error', async () => {
    const r = await runCliProcess(['generate', fx!.dir, '--prompt-ids', '1', '--temperature', 'hot']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("option '--temperature <t>' argument 'hot' is invalid");
  });
});
