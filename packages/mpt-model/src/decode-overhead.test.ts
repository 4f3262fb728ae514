// What a KV-cached greedy decode step costs the host, counted: GPU->CPU readbacks (each one waits for the
// device), the elements they carry, shader programs compiled, GPU buffers created. On a real GPU these, not the
// arithmetic, bound decoding speed for small batches.

import { selectBackend } from '@mptjs/kernels';
import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { generate } from './inference/generate.js';
import { MPTModel } from './model.js';
import { tinyConfig } from './testing/tiny-config.js';

interface Counters {
  readbacks: number;
  elements: number;
  buffers: number;
  programs: () => number;
  restore: () => void;
}

interface BackendInternals {
  read?: (dataId: object) => unknown;
  readSync?: (dataId: object) => unknown;
  tensorMap?: { get(id: object): { shape: number[] } | undefined };
  data?: { get(id: object): { values?: ArrayLike<number> } | undefined };
  pipelineCache?: Record<string, unknown>;
  device?: { createBuffer: (...args: unknown[]) => unknown };
}

/** Counts readbacks (and their elements) and buffer creations on the active backend until `restore`. */
function count(): Counters {
  const backend = tf.backend() as unknown as BackendInternals;
  const c: Counters = { readbacks: 0, elements: 0, buffers: 0, programs: () => 0, restore: () => {} };
  const undo: (() => void)[] = [];
  const wrap = <K extends string>(obj: Record<K, unknown>, name: K, before: (...args: unknown[]) => void) => {
    const original = obj[name] as (...args: unknown[]) => unknown;
    obj[name] = function (this: unknown, ...args: unknown[]) {
      before(...args);
      return original.apply(this, args);
    } as never;
    undo.push(() => {
      obj[name] = original as never;
    });
  };
  const onRead = (dataId: unknown) => {
    c.readbacks++;
    const shape = backend.tensorMap?.get(dataId as object)?.shape;
    c.elements += shape
      ? shape.reduce((a, b) => a * b, 1)
      : (backend.data?.get(dataId as object)?.values?.length ?? 0);
  };
  const b = backend as unknown as Record<string, unknown>;
  wrap(b, 'read', onRead);
  // cpu kernels read their inputs with readSync: only the asynchronous reads (`data()`) are host readbacks there.
  if (tf.getBackend() !== 'cpu') wrap(b, 'readSync', onRead);
  if (backend.device) wrap(backend.device as Record<string, unknown>, 'createBuffer', () => c.buffers++);
  c.programs = () => Object.keys(backend.pipelineCache ?? {}).length;
  c.restore = () => {
    for (const u of undo.reverse()) u();
  };
  return c;
}

/** Counters of a whole `generate` of `n` tokens, and the compiled-program count after each token. */
async function measure(model: MPTModel, prompt: number[], n: number) {
  const c = count();
  const programsAfter: number[] = [];
  try {
    const out = await generate(model, prompt, {
      maxNewTokens: n,
      greedy: true,
      onToken: () => programsAfter.push(c.programs()),
    });
    expect(out.tokens).toHaveLength(n);
    return {
      readbacks: c.readbacks,
      elements: c.elements,
      buffers: c.buffers,
      programsAfter,
      tokens: out.tokens,
    };
  } finally {
    c.restore();
  }
}

/** Per decoded token: a run of `n` tokens minus a run of one (prefill and its readback). */
async function perToken(model: MPTModel, prompt: number[], n: number) {
  const one = await measure(model, prompt, 1);
  const all = await measure(model, prompt, n);
  const per = (k: 'readbacks' | 'elements' | 'buffers') => (all[k] - one[k]) / (n - 1);
  return { readbacks: per('readbacks'), elements: per('elements'), buffers: per('buffers'), all };
}

const prompt = [3, 14, 15, 9, 2];

afterEach(async () => {
  await selectBackend('cpu', { log: false });
});

describe('greedy decoding overhead on cpu', () => {
  it('reads back one element per decoded token (the arg-max), not the logits row', async () => {
    await selectBackend('cpu', { log: false });
    const model = MPTModel.init(tinyConfig(), 5);
    try {
      const n = await perToken(model, prompt, 8);
      expect(n.readbacks).toBe(1);
      expect(n.elements).toBe(1);
    } finally {
      model.dispose();
    }
  });
});

if (!webgpuExpected) {
  describe('greedy decoding overhead on webgpu', () => {
    it.skip('skipped: no WebGPU adapter expected (set VK_ICD_FILENAMES for SwiftShader, or CI=true)', () => {});
  });
}

describe.runIf(webgpuExpected)('greedy decoding overhead on webgpu', () => {
  it('one one-element readback per token, no new programs or buffers once decoding runs', async () => {
    await selectBackend('webgpu', { log: false });
    const config = tinyConfig({ attnImpl: 'flash', maxSeqLen: 128, vocabSize: 64 });
    const model = MPTModel.init(config, 5);
    try {
      // A first run compiles what prefill and decoding need.
      const cold = await measure(model, prompt, 12);
      const p = cold.programsAfter;
      expect(p[p.length - 1]).toBe(p[2]);
      const n = await perToken(model, prompt, 12);
      expect(n.readbacks).toBe(1);
      expect(n.elements).toBe(1);
      // The KV cache is written in place: no buffer of a new size each token (the slopes' upload may make one).
      expect(n.buffers).toBeLessThanOrEqual(1);
      expect(n.all.programsAfter.every((x) => x === p[p.length - 1])).toBe(true);
      expect(n.all.tokens).toEqual(cold.tokens);
      // The same greedy tokens as the concatenating cache and host arg-max on cpu.
      const gpuTokens = n.all.tokens;
      await selectBackend('cpu', { log: false });
      const cpuModel = MPTModel.init(config, 5);
      const cpu = await generate(cpuModel, prompt, { maxNewTokens: 12, greedy: true });
      cpuModel.dispose();
      expect(gpuTokens).toEqual(cpu.tokens);
    } finally {
      model.dispose();
    }
  });
});
