// The model on the real webgpu backend (fused attention kernel) against cpu, on a tiny config so SwiftShader
// stays fast: forward, KV-cache decoding and gradients.
import { alibiAttention, attentionImplNames, registerAttentionImpl } from '@mptjs/alibi-attention';
import { selectBackend } from '@mptjs/kernels';
import { relativeL2, webgpuExpected, withWebGpuPrograms } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initStateDict } from './init.js';
import { MPTModel } from './model.js';
import { tinyConfig } from './testing/tiny-config.js';

const ids = [
  [3, 1, 4, 1, 5, 9, 2, 6, 5],
  [2, 7, 1, 8, 2, 8, 1, 8, 2],
];

async function run(backend: 'cpu' | 'webgpu') {
  await selectBackend(backend, { log: false });
  const config = tinyConfig({ attnImpl: 'flash', maxSeqLen: 32 });
  const model = MPTModel.fromStateDict(config, initStateDict(config, 17));
  const logits = await model.forward(ids).data();
  const cache = model.newCache();
  const steps = [
    await model
      .prefill(
        ids.map((r) => r.slice(0, 5)),
        cache,
      )
      .data(),
  ];
  for (let t = 5; t < 9; t++)
    steps.push(
      await model
        .decodeStep(
          ids.map((r) => r[t]!),
          cache,
        )
        .data(),
    );
  cache.dispose();
  const targets = ids.map((r) => [...r.slice(1), -100]);
  const vars = [...model.params.values()];
  const { value, grads } = tf.variableGrads(() => model.loss(ids, targets), vars);
  const gradData = await Promise.all(vars.map((v) => grads[v.name]!.data()));
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  model.dispose();
  return { logits, steps, loss, gradData };
}

describe.runIf(webgpuExpected)('MPTModel on webgpu with the fused attention kernel', () => {
  it('matches cpu for forward, prefill + decode steps and every parameter gradient', async () => {
    const cpu = await run('cpu');
    const gpu = await run('webgpu');
    expect(relativeL2(gpu.logits, cpu.logits)).toBeLessThan(1e-5);
    gpu.steps.forEach((s, i) => {
      expect(relativeL2(s, cpu.steps[i]!)).toBeLessThan(1e-5);
    });
    expect(Math.abs(gpu.loss - cpu.loss)).toBeLessThan(1e-5);
    gpu.gradData.forEach((g, i) => {
      expect(relativeL2(g, cpu.gradData[i]!)).toBeLessThan(1e-4);
    });
  });
});

// The fused kernels in the heads layout behind splitHeads/mergeHeads: how a block attended before the rows layout.
const SPLIT_FLASH = 'flash-split-heads';
if (!attentionImplNames().includes(SPLIT_FLASH)) {
  registerAttentionImpl(SPLIT_FLASH, {
    path: (q, k, v, options) => alibiAttention(q, k, v, { ...options, impl: 'flash' }),
  });
}

/** A training step's loss and gradients on webgpu, with the shader keys of the programs it ran. */
async function trainingStep(attnImpl: string) {
  const config = tinyConfig({ attnImpl, maxSeqLen: 32 });
  const model = MPTModel.fromStateDict(config, initStateDict(config, 23));
  const targets = ids.map((r) => [...r.slice(1), -100]);
  const vars = [...model.params.values()];
  const { value: step, keys } = withWebGpuPrograms(() =>
    tf.variableGrads(() => model.loss(ids, targets), vars),
  );
  const gradData = await Promise.all(vars.map((v) => step.grads[v.name]!.data()));
  const loss = (await step.value.data())[0]!;
  tf.dispose([step.value, ...Object.values(step.grads)]);
  model.dispose();
  return { loss, gradData, keys };
}

describe.runIf(webgpuExpected)('MPTModel training on webgpu without head transposes', () => {
  it('gives the loss and every gradient of the split-heads attention, with fewer programs', async () => {
    await selectBackend('webgpu', { log: false });
    const split = await trainingStep(SPLIT_FLASH);
    const rows = await trainingStep('flash');
    expect(Math.abs(rows.loss - split.loss)).toBeLessThan(1e-6 * Math.abs(split.loss));
    rows.gradData.forEach((g, i) => {
      expect(relativeL2(g, split.gradData[i]!)).toBeLessThan(1e-5);
    });
    const transposes = (keys: string[]) => keys.filter((k) => /transpose/i.test(k)).length;
    // Per layer the split layout transposes q, k, v and O in the forward and dO, dq, dk, dv in the backward.
    expect(transposes(split.keys) - transposes(rows.keys)).toBeGreaterThanOrEqual(8 * 2);
    expect(rows.keys.filter((k) => k.startsWith('mptFlashAttention') && k.endsWith('_rows'))).toHaveLength(
      4 * 2,
    );
    expect(rows.keys.length).toBeLessThan(split.keys.length);
  });
});
