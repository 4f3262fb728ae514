import type { LinearLayout } from '@mptjs/kernels';
import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseMptConfig } from './config.js';
import { generate } from './inference/generate.js';
import { initStateDict } from './init.js';
import { MPTModel } from './model.js';
import {
  activationReserveBytes,
  backendHeapBytes,
  chooseOffload,
  planOffload,
  WASM_HEAP_LIMIT_BYTES,
  weightBytes,
} from './offload.js';
import { tinyConfig } from './testing/tiny-config.js';

const MPT_1B = parseMptConfig({
  model_type: 'mosaic_gpt',
  d_model: 2048,
  n_heads: 16,
  n_layers: 24,
  mlp_ratio: 4,
  max_seq_len: 2048,
  vocab_size: 50432,
  alibi: true,
  attn_qk_ln: true,
  no_bias: true,
});

/** A budget that keeps the embedding and `resident` blocks, plus room for one streamed block. */
function budgetFor(config: ReturnType<typeof tinyConfig>, resident: number): number {
  const { fixed, block } = weightBytes(config);
  return fixed + (resident + 1) * block;
}

const values = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array);

describe('planOffload / chooseOffload', () => {
  it('keeps as many blocks resident as the budget allows, counting one streamed block', () => {
    const config = tinyConfig({ nLayers: 4 });
    const { fixed, block, total } = weightBytes(config);
    expect(planOffload(config, { maxResidentBytes: budgetFor(config, 2) })).toMatchObject({
      residentBlocks: 2,
      streamedBlocks: 2,
      residentBytes: fixed + 2 * block,
    });
    expect(planOffload(config, { maxResidentBytes: budgetFor(config, 2) + block - 1 }).residentBlocks).toBe(
      2,
    );
    expect(planOffload(config, { maxResidentBytes: total }).streamedBlocks).toBe(0);
    expect(planOffload(config, { maxResidentBytes: total - 1 }).residentBlocks).toBe(2);
    expect(() => planOffload(config, { maxResidentBytes: fixed + block - 1 })).toThrow(
      /cannot hold the embedding .* plus one streamed block/,
    );
  });

  it('mpt-1b weights are 1,311,442,944 floats', () => {
    expect(weightBytes(MPT_1B).total).toBe(4 * 1_311_442_944);
  });

  it('auto offloads mpt-1b on wasm only, and names the budget', () => {
    const wasm = chooseOffload(MPT_1B, { backend: 'wasm', mode: 'auto' });
    const budget = WASM_HEAP_LIMIT_BYTES - activationReserveBytes(MPT_1B);
    expect(wasm.offload).toEqual({ maxResidentBytes: budget });
    expect(wasm.notice).toContain(`budget ${(budget / 2 ** 30).toFixed(2)} GiB`);
    expect(wasm.notice).toMatch(/do not fit the 4\.00 GiB wasm heap/);
    const plan = planOffload(MPT_1B, wasm.offload!);
    expect(plan.residentBlocks).toBeGreaterThan(0);
    expect(plan.residentBlocks + plan.streamedBlocks).toBe(24);
    expect(plan.residentBytes + plan.blockBytes).toBeLessThanOrEqual(budget);
    expect(chooseOffload(MPT_1B, { backend: 'cpu', mode: 'auto' }).offload).toBeUndefined();
    expect(chooseOffload(MPT_1B, { backend: 'wasm', mode: 'off' }).offload).toBeUndefined();
    expect(chooseOffload(tinyConfig(), { backend: 'wasm', mode: 'auto' }).offload).toBeUndefined();
  });

  it('on, or an explicit budget, offloads whatever the backend', () => {
    const config = tinyConfig({ nLayers: 4 });
    const on = chooseOffload(config, { backend: 'cpu', mode: 'on', maxResidentBytes: budgetFor(config, 1) });
    expect(on.offload).toEqual({ maxResidentBytes: budgetFor(config, 1) });
    expect(on.notice).toContain('embedding + 1 of 4 blocks resident, 3 streamed');
    const explicit = chooseOffload(config, { backend: 'cpu', mode: 'auto', maxResidentBytes: 1e9 });
    expect(explicit.notice).toContain('4 of 4 blocks resident, 0 streamed');
  });
});

describe.each(['cpu', 'wasm'] as const)('weight offload on %s', (backend) => {
  async function pair(layout: LinearLayout, resident: number, overrides = {}) {
    await selectBackend(backend, { log: false });
    const config = tinyConfig({ nLayers: 4, ...overrides });
    const sd = initStateDict(config, 11);
    const plain = MPTModel.fromStateDict(config, sd, { linearLayout: layout });
    const offloaded = MPTModel.fromStateDict(config, sd, {
      linearLayout: layout,
      offload: { maxResidentBytes: budgetFor(config, resident) },
    });
    return { config, plain, offloaded };
  }

  it.each([
    ['outIn', 0],
    ['outIn', 2],
    ['inOut', 1],
  ] as const)('%s layout, %i resident blocks: forward logits are bit-identical', async (layout, resident) => {
    const { plain, offloaded } = await pair(layout, resident, { noBias: false });
    expect(offloaded.weightOffload).toMatchObject({ residentBlocks: resident, streamedBlocks: 4 - resident });
    expect(offloaded.params.size).toBeLessThan(plain.params.size);
    expect(offloaded.numParameters).toBe(plain.numParameters);
    const ids = [
      [1, 5, 9, 2, 7, 30, 4],
      [3, 3, 8, 21, 0, 12, 39],
    ];
    const a = plain.forward(ids);
    const b = offloaded.forward(ids);
    expect(await values(b)).toEqual(await values(a));
    expect(offloaded.weightOffload!.uploads).toBe(4 - resident);
    tf.dispose([a, b]);
    plain.dispose();
    offloaded.dispose();
  });

  it('prefill and decode steps through the KV cache are bit-identical, and greedy generation equal', async () => {
    const { plain, offloaded } = await pair('outIn', 1);
    const caches = [plain.newCache(), offloaded.newCache()];
    const prompt = [[4, 8, 15, 16, 23]];
    let a = plain.prefill(prompt, caches[0]!);
    let b = offloaded.prefill(prompt, caches[1]!);
    for (let step = 0; step < 4; step++) {
      expect(await values(b)).toEqual(await values(a));
      const next = [step * 7 + 1];
      tf.dispose([a, b]);
      a = plain.decodeStep(next, caches[0]!);
      b = offloaded.decodeStep(next, caches[1]!);
    }
    tf.dispose([a, b]);
    for (const c of caches) c.dispose();
    const before = tf.memory();
    const greedy = await generate(offloaded, [1, 2, 3], { maxNewTokens: 12 });
    expect(greedy.tokens).toEqual((await generate(plain, [1, 2, 3], { maxNewTokens: 12 })).tokens);
    const sampled = { maxNewTokens: 10, temperature: 0.9, topK: 20, seed: 5 };
    expect((await generate(offloaded, [7], sampled)).tokens).toEqual(
      (await generate(plain, [7], sampled)).tokens,
    );
    // No tensor leaks: streamed weights are freed after every block.
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    expect(offloaded.weightOffload!.peakTensorBytes).toBeGreaterThan(0);
    plain.dispose();
    offloaded.dispose();
  });

  it('keeps streamed weights off the backend, names them in get(), and returns them in toStateDict', async () => {
    const before = tf.memory().numBytes;
    const { config, plain, offloaded } = await pair('inOut', 1);
    const { fixed, block, total } = weightBytes(config);
    expect(tf.memory().numBytes - before).toBe(total + fixed + block);
    plain.dispose();
    expect(() => offloaded.get('transformer.blocks.3.attn.Wqkv.weight')).toThrow(/offloaded to host memory/);
    expect(offloaded.get('transformer.blocks.0.attn.Wqkv.weight').shape).toEqual([24, 72]);
    const sd = initStateDict(config, 11);
    const back = await offloaded.toStateDict();
    expect([...back.keys()]).toEqual([...sd.keys()]);
    for (const [name, t] of sd) {
      expect(back.get(name)!.shape, name).toEqual(t.shape);
      expect(Array.from(back.get(name)!.data), name).toEqual(Array.from(t.data));
    }
    offloaded.dispose();
    expect(tf.memory().numBytes).toBe(before);
    if (backend === 'wasm') expect(backendHeapBytes()).toBeGreaterThan(0);
    else expect(backendHeapBytes()).toBeNull();
  });
});
