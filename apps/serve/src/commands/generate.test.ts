import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMptConfig, weightBytes } from '@mptjs/mpt-model';
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

  it('--resident-weights-gib streams blocks from host memory and gives the same continuation', async () => {
    const { prompt, continuation } = fx!.expected.greedy;
    const config = parseMptConfig(JSON.parse(readFileSync(join(fx!.dir, 'config.json'), 'utf8')));
    const { fixed, block } = weightBytes(config);
    const r = await runCliProcess([
      'generate',
      fx!.dir,
      '--prompt-ids',
      prompt.join(','),
      '--max-new-tokens',
      String(continuation.length),
      '--backend',
      'wasm',
      '--resident-weights-gib',
      String((fixed + block) / 2 ** 30),
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/weight offload: budget [\d.]+ MiB of weights in the heap/);
    expect(r.stderr).toContain(`embedding + 0 of ${config.nLayers} blocks resident`);
    const out = JSON.parse(r.stdout) as {
      ids: number[];
      memory: { heap_bytes: number; offload: { streamed_blocks: number; peak_tensor_bytes: number } };
    };
    expect(out.ids).toEqual(continuation);
    expect(out.memory.offload.streamed_blocks).toBe(config.nLayers);
    expect(out.memory.heap_bytes).toBeGreaterThan(out.memory.offload.peak_tensor_bytes);
  });

  it('rejects --resident-weights-gib with --offload off, and an unknown mode', async () => {
    const base = ['generate', fx!.dir, '--prompt-ids', '1'];
    const off = await runCliProcess([...base, '--offload', 'off', '--resident-weights-gib', '1']);
    expect(off.code).toBe(2);
    expect(off.stderr).toContain('--resident-weights-gib needs weight offload');
    const bad = await runCliProcess([...base, '--offload', 'sometimes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected auto, on or off');
  });

  it('--quantize int8 runs greedy decode on wasm with int8 weights and says so; other backends are refused', async () => {
    const { prompt } = fx!.expected.greedy;
    const base = ['generate', fx!.dir, '--prompt-ids', prompt.join(','), '--max-new-tokens', '4'];
    const r = await runCliProcess([
      ...base,
      '--temperature',
      '0',
      '--backend',
      'wasm',
      '--quantize',
      'int8',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\[mptjs\] int8 weights: [\d.]+ MiB -> [\d.]+ MiB/);
    const out = JSON.parse(r.stdout) as { ids: number[]; memory: { quantization: string; offload: null } };
    expect(out.ids).toHaveLength(4);
    expect(out.memory).toMatchObject({ quantization: 'int8', offload: null });
    const cpu = await runCliProcess([...base, '--backend', 'cpu', '--quantize', 'int8']);
    expect(cpu.code).toBe(2);
    expect(cpu.stderr).toContain('--quantize int8 runs on the wasm and webgpu backends (selected: cpu)');
    const bad = await runCliProcess([...base, '--quantize', 'int4']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown quantization "int4" (supported: int8, w8a8)');
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
