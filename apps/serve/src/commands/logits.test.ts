import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '@mptjs/hf-loader';
import { relativeL2 } from '@mptjs/test-fixtures';
import { afterAll, describe, expect, it } from 'vitest';
import { fixture, runCliProcess } from '../testing/fixture.js';

const fx = fixture();
const work = mkdtempSync(join(tmpdir(), 'mptjs-logits-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!fx)('mptjs-serve logits', () => {
  const expectedPath = () => join(fx!.dir, 'expected.safetensors');

  it.each(['wasm', 'cpu'])('matches the fixture logits on %s (I64 input)', async (backend) => {
    const out = join(work, `logits-${backend}.safetensors`);
    const r = await runCliProcess([
      'logits',
      fx!.dir,
      '--input',
      expectedPath(),
      '--out',
      out,
      '--backend',
      backend,
    ]);
    expect(r.stderr).toContain(`backend=${backend}`);
    expect(r.code).toBe(0);
    const got = (await readSafetensors(out)).get('logits')!;
    const want = (await readSafetensors(expectedPath(), { names: ['logits'] })).get('logits')!;
    expect(got.dtype).toBe('F32');
    expect(got.shape).toEqual([2, 24, 50432]);
    expect(relativeL2(got.data as Float32Array, want.data as Float32Array)).toBeLessThan(1e-4);
  });

  it('accepts I32 input_ids', async () => {
    const input = join(work, 'ids32.safetensors');
    const ids = fx!.expected.input_ids.map((row) => row.slice(0, 5));
    await writeSafetensors(input, { input_ids: { shape: [2, 5], data: Int32Array.from(ids.flat()) } });
    const out = join(work, 'logits32.safetensors');
    const r = await runCliProcess(['logits', fx!.dir, '--input', input, '--out', out, '--backend', 'wasm']);
    expect(r.code).toBe(0);
    const got = (await readSafetensors(out)).get('logits')!;
    expect(got.shape).toEqual([2, 5, 50432]);
    // Causal model: the first 5 positions of the full-length run are the same logits.
    const want = (await readSafetensors(expectedPath(), { names: ['logits'] })).get('logits')!
      .data as Float32Array;
    const v = 50432;
    const prefix = new Float32Array(2 * 5 * v);
    for (let b = 0; b < 2; b++) prefix.set(want.subarray(b * 24 * v, (b * 24 + 5) * v), b * 5 * v);
    expect(relativeL2(got.data as Float32Array, prefix)).toBeLessThan(1e-4);
  });

  it('rejects float input_ids with a one-line message (exit 1)', async () => {
    const input = join(work, 'float.safetensors');
    await writeSafetensors(input, { input_ids: { shape: [1, 2], data: new Float32Array([1, 2]) } });
    const r = await runCliProcess([
      'logits',
      fx!.dir,
      '--input',
      input,
      '--out',
      join(work, 'x.safetensors'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('input_ids must be I64 or I32, got F32');
  });

  it('is a usage error (exit 2) without --out', async () => {
    const r = await runCliProcess(['logits', fx!.dir, '--input', expectedPath()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("required option '--out <file>' not specified");
  });
});
