// The wasm decode step on heap kernels against the tfjs-op path it replaces: the same kernels in the same order,
// so the logits must agree bit for bit, for float32 and int8 weights, one to four sequences, and the config
// options a block reads (biases, learned positions, clip_qkv, softmax and logit scales).
import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MPTConfig } from '../config.js';
import { MPTModel } from '../model.js';
import { tinyConfig } from '../testing/tiny-config.js';
import { KVCache } from './kv-cache.js';
import { setWasmHeapDecode, wasmHeapDecodeEnabled } from './wasm-decode-step.js';

beforeAll(async () => {
  await selectBackend('wasm', { log: false });
});

afterEach(() => setWasmHeapDecode(true));

/** tfjs kernels a call runs (the heap step runs none). */
async function kernelsRun(fn: () => tf.Tensor): Promise<{ logits: Float32Array; kernels: number }> {
  let logits: Float32Array = new Float32Array();
  const info = await tf.profile(() => {
    const t = fn();
    logits = t.dataSync() as Float32Array;
    return t;
  });
  (info.result as tf.Tensor).dispose();
  return { logits, kernels: info.kernels.length };
}

/**
 * Decodes `steps` tokens for `prompts` (one row each, equal lengths) on the heap path and on the tfjs-op path
 * from the same prefill, comparing every step's logits bit for bit; returns the kernel counts of the last steps.
 */
async function compareSteps(
  model: MPTModel,
  prompts: number[][],
  steps: number,
  promptMask?: number[][],
): Promise<{ heapKernels: number; tfjsKernels: number }> {
  const caches = [model.newCache(), model.newCache()];
  for (const cache of caches) {
    const mask = promptMask ? tf.tensor2d(promptMask) : undefined;
    model.prefill(prompts, cache, mask).dispose();
    mask?.dispose();
  }
  const vocab = model.config.vocabSize;
  let counts = { heapKernels: -1, tfjsKernels: -1 };
  let tokens = prompts.map((p) => p[p.length - 1]!);
  for (let s = 0; s < steps; s++) {
    setWasmHeapDecode(true);
    const heap = await kernelsRun(() => model.decodeStep(tokens, caches[0]!));
    setWasmHeapDecode(false);
    const plain = await kernelsRun(() => model.decodeStep(tokens, caches[1]!));
    expect(heap.logits.length).toBe(prompts.length * vocab);
    let differing = 0;
    for (let i = 0; i < plain.logits.length; i++) {
      if (!Object.is(heap.logits[i], plain.logits[i])) differing++;
    }
    expect(differing, `step ${s}: logits differing from the tfjs-op path`).toBe(0);
    counts = { heapKernels: heap.kernels, tfjsKernels: plain.kernels };
    // Next tokens: a spread over the vocabulary that does not depend on the logits (equal by now anyway).
    tokens = tokens.map((t, r) => (t * 31 + s * 7 + r * 3 + 1) % vocab);
  }
  expect(caches[0]!.length).toBe(caches[1]!.length);
  for (const cache of caches) cache.dispose();
  return counts;
}

function prompts(rows: number, length: number, vocab: number): number[][] {
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length }, (_, i) => (i * 11 + r * 17 + 5) % vocab),
  );
}

describe('wasm decode step on heap kernels', () => {
  it('gives the tfjs-op path bit for bit on float32 weights (ALiBi, QK-LayerNorm), across a cache doubling', async () => {
    const model = MPTModel.init(tinyConfig({ maxSeqLen: 96 }), 7);
    // 60 prompt positions + 10 steps: the cache grows from 64 to 96 positions on the way.
    const counts = await compareSteps(model, prompts(1, 60, model.config.vocabSize), 10);
    expect(counts.heapKernels).toBe(0);
    expect(counts.tfjsKernels).toBeGreaterThan(10);
    model.dispose();
  });

  it('gives the tfjs-op path bit for bit on int8 weights, for two and four sequences', async () => {
    const fp32 = MPTModel.init(tinyConfig({ dModel: 64, nHeads: 4, vocabSize: 96 }), 3);
    const model = MPTModel.fromStateDict(fp32.config, await fp32.toStateDict(), { quantize: 'int8' });
    fp32.dispose();
    for (const rows of [2, 4]) {
      const counts = await compareSteps(model, prompts(rows, 6, model.config.vocabSize), 5);
      expect(counts.heapKernels).toBe(0);
    }
    model.dispose();
  });

  it('reads biases, learned positions, clip_qkv, softmax_scale and logit_scale as the tfjs-op path does', async () => {
    const overrides: Partial<MPTConfig> = {
      noBias: false,
      alibi: false,
      learnedPosEmb: true,
      qkLn: false,
      clipQkv: 0.05,
      softmaxScale: 0.3,
      logitScale: 1.7,
    };
    const model = MPTModel.init(tinyConfig(overrides), 11);
    // Biases start at zero: give them values so that a missing bias add would show.
    for (const [name, p] of model.params) {
      if (name.endsWith('.bias')) p.assign(tf.randomUniform(p.shape, -0.5, 0.5, 'float32', 5));
    }
    const counts = await compareSteps(model, prompts(3, 4, model.config.vocabSize), 6);
    expect(counts.heapKernels).toBe(0);
    model.dispose();
  });

  it('gives the tfjs-op path bit for bit on a left-padded batch (attention reads the key mask)', async () => {
    const model = MPTModel.init(tinyConfig({ maxSeqLen: 96 }), 9);
    const vocab = model.config.vocabSize;
    const rows = prompts(3, 8, vocab);
    const mask = [0, 3, 6].map((pad) => Array.from({ length: 8 }, (_, i) => (i < pad ? 0 : 1)));
    // 8 prompt positions + 60 steps: the padded cache grows from 64 to 96 positions on the way.
    const counts = await compareSteps(model, rows, 60, mask);
    // Only the key mask's extension and padding to the capacity run as tfjs ops.
    expect(counts.heapKernels).toBeLessThan(8);
    expect(counts.tfjsKernels).toBeGreaterThan(20);
    model.dispose();
  });

  it('joins caches into an in-place batch cache whose steps equal each sequence decoded alone', async () => {
    const model = MPTModel.init(tinyConfig(), 4);
    const vocab = model.config.vocabSize;
    const lengths = [2, 7, 4];
    const prompt = (r: number) => prompts(1, lengths[r] ?? 1, vocab)[0]!.map((t) => (t + r) % vocab);
    const alone: Float32Array[] = [];
    const own = lengths.map((_, r) => {
      const cache = model.newCache();
      model.prefill([prompt(r)], cache).dispose();
      const solo = model.newCache();
      model.prefill([prompt(r)], solo).dispose();
      const step = model.decodeStep([r + 1], solo);
      alone.push(step.dataSync() as Float32Array);
      step.dispose();
      solo.dispose();
      return cache;
    });
    const joined = KVCache.concatBatch(own, { preallocate: { maxLength: model.config.maxSeqLen } });
    expect(joined.inPlace).toBe(true);
    expect(joined.length).toBe(7);
    expect(joined.capacity).toBe(64);
    const { logits, kernels } = await kernelsRun(() => model.decodeStep([1, 2, 3], joined));
    expect(kernels).toBeLessThan(8);
    for (let r = 0; r < 3; r++) {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      let worst = 0;
      const want = alone[r] ?? new Float32Array(vocab);
      for (let i = 0; i < vocab; i++) worst = Math.max(worst, Math.abs(row[i]! - want[i]!));
      expect(worst, `row ${r}`).toBeLessThan(1e-5);
    }
    expect(joined.length).toBe(8);
    for (const cache of [...own, joined]) cache.dispose();
    model.dispose();
  });

  it('leaves five or more sequences and concatenating caches to the tfjs-op path', async () => {
    const model = MPTModel.init(tinyConfig(), 2);
    const vocab = model.config.vocabSize;
    // Five sequences: more rows than the matrix-vector kernel takes.
    const five = model.newCache();
    model.prefill(prompts(5, 3, vocab), five).dispose();
    expect((await kernelsRun(() => model.decodeStep([1, 2, 3, 4, 5], five))).kernels).toBeGreaterThan(0);
    five.dispose();
    // A cache that concatenates (no preallocation).
    const growing = new KVCache(model.config.nLayers);
    model.prefill([[1, 2]], growing).dispose();
    expect((await kernelsRun(() => model.decodeStep([3], growing))).kernels).toBeGreaterThan(0);
    growing.dispose();
    model.dispose();
  });

  it('rejects a token outside the vocabulary with the tfjs path wording, leaving the cache as it was', async () => {
    const model = MPTModel.init(tinyConfig(), 1);
    const cache = model.newCache();
    model.prefill([[1, 2]], cache).dispose();
    expect(wasmHeapDecodeEnabled()).toBe(true);
    expect(() => model.decodeStep([40], cache)).toThrow(
      /token id 40 at \[0, 0\] is outside the vocabulary \[0, 40\)/,
    );
    expect(cache.length).toBe(2);
    model.decodeStep([3], cache).dispose(); // allocates the step's buffers once
    const before = tf.memory().numTensors;
    model.decodeStep([4], cache).dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(cache.length).toBe(4);
    cache.dispose();
    model.dispose();
  });
});
