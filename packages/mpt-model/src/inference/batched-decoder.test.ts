import { selectBackend } from '@mptjs/kernels';
import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MPTModel } from '../model.js';
import { tinyConfig } from '../testing/tiny-config.js';
import { BatchedDecoder } from './batched-decoder.js';
import { argMax } from './sampling.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const lastOf = (ids: number[]): number => ids[ids.length - 1]!;

/** Greedy continuation of `prompt` by full forward passes, one token at a time. */
async function reference(model: MPTModel, prompt: number[], steps: number): Promise<number[]> {
  const seq = [...prompt];
  for (let i = 0; i < steps; i++) {
    const logits = model.forward([seq]);
    const row = ((await logits.data()) as Float32Array).slice((seq.length - 1) * model.config.vocabSize);
    logits.dispose();
    seq.push(argMax(row));
  }
  return seq.slice(prompt.length);
}

// wasm and webgpu keep each sequence's cache preallocated and written in place; cpu concatenates. On webgpu
// (SwiftShader without a GPU) nothing may read synchronously, which uneven prompts' key masks once did.
describe.each([
  ['ALiBi', true, 'cpu'],
  ['learned positions', false, 'cpu'],
  ['ALiBi', true, 'wasm'],
  ...(webgpuExpected ? ([['ALiBi', true, 'webgpu']] as const) : []),
] as const)('BatchedDecoder (%s, %s)', (_name, alibi, backend) => {
  let model: MPTModel;
  beforeAll(async () => {
    await selectBackend(backend, { log: false });
    model = MPTModel.init(tinyConfig({ alibi, learnedPosEmb: !alibi }), 3);
  });
  afterAll(() => model.dispose());

  it('decodes sequences joining and leaving a batch as each would alone', async () => {
    const prompts = [
      [1, 2, 3, 4, 5],
      [7, 8],
      [9, 10, 11],
    ];
    const want = await Promise.all(prompts.map((p) => reference(model, p, 6)));
    const before = tf.memory().numTensors;
    const decoder = new BatchedDecoder(model);
    const prefilled = await decoder.prefillMany(prompts);
    // One prefill alone gives the same logits as the batched one.
    const alone = await decoder.prefill(prompts[1]!);
    expect(maxAbsDiff(alone.logits, prefilled[1]!.logits)).toBeLessThan(1e-5);
    decoder.release(alone.sequence);
    decoder.release(alone.sequence);
    const got = prefilled.map((p) => [argMax(p.logits)]);
    const seqs = prefilled.map((p) => p.sequence);
    // Members change between steps: all three, then the first two, then the last alone, then all three again.
    for (const members of [[0, 1, 2], [0, 1], [2], [0, 1, 2], [0, 1, 2]]) {
      const rows = await decoder.decode(
        members.map((m) => seqs[m]!),
        members.map((m) => lastOf(got[m]!)),
      );
      for (const [i, m] of members.entries()) got[m]!.push(argMax(rows[i]!));
    }
    expect(got[0]).toEqual(want[0]!.slice(0, got[0]!.length));
    expect(got[1]).toEqual(want[1]!.slice(0, got[1]!.length));
    expect(got[2]).toEqual(want[2]!.slice(0, got[2]!.length));
    expect(seqs.map((s) => s.length)).toEqual([5 + 4, 2 + 4, 3 + 4]);
    for (const s of seqs) decoder.release(s);
    await expect(decoder.decode([seqs[0]!], [1])).rejects.toThrow('cannot decode a released sequence');
    decoder.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a step without one token per sequence', async () => {
    const decoder = new BatchedDecoder(model);
    const { sequence } = await decoder.prefill([1, 2]);
    await expect(decoder.decode([sequence], [1, 2])).rejects.toThrow('decode needs one token per sequence');
    decoder.release(sequence);
    decoder.dispose();
  });
});
