// The recorded decode step on the real webgpu backend (SwiftShader here) against the model's tfjs path: the
// logits of every step, greedy and seeded sampling on the device,
// the dispatches a token costs, and the errors for what it cannot run.
import { selectBackend } from '@mptjs/kernels';
import { relativeL2, webgpuExpected, withWebGpuPrograms } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initStateDict } from '../../init.js';
import { MPTModel } from '../../model.js';
import { SeededRandom } from '../../random.js';
import {
  DECODE_CASES,
  DECODE_PROMPT as prompt,
  tfjsLogits,
  tinyDecodeModel as tinyModel,
} from '../../testing/recorded-decode.js';
import { tinyConfig } from '../../testing/tiny-config.js';
import { chooseToken } from '../choose-token.js';
import { argMax, sampleToken } from '../sampling.js';
import { RecordedDecodeError } from './gpu.js';
import { RecordedDecoder, type TokenChoice } from './recorded-decoder.js';

/** `steps` tokens after `start` through the recorded step, with the logits each was chosen from. */
async function recorded(
  model: MPTModel,
  start: number[],
  steps: number,
  choice: TokenChoice = { greedy: true },
) {
  const decoder = await RecordedDecoder.create(model, { debugLogits: true });
  const outputs = [await decoder.prefill(start, choice, 0)];
  for (let i = 1; i < steps; i++) outputs.push(await decoder.step(choice, i));
  decoder.dispose();
  return outputs;
}

/** Probabilities of a row of logits at `temperature`, as the host sampler computes them. */
function softmax(logits: ArrayLike<number>, temperature = 1): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (l) => Math.exp((l - max) / temperature));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

describe.runIf(webgpuExpected)('RecordedDecoder on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  it.each(
    DECODE_CASES,
  )('matches the tfjs logits and arg-max at every step (%s)', async (_name, overrides, options) => {
    const model = tinyModel(overrides, options);
    // Up to max_seq_len: the last step decodes position 15.
    const outputs = await recorded(model, prompt, 16 - prompt.length + 1);
    const reference = await tfjsLogits(
      model,
      prompt,
      outputs.slice(0, -1).map((o) => o.token),
    );
    let worst = 0;
    outputs.forEach((o, i) => {
      const err = relativeL2(o.logits!, reference[i]!);
      worst = Math.max(worst, err);
      expect(err, `step ${i}`).toBeLessThan(1e-5);
      expect(o.token, `step ${i}`).toBe(argMax(reference[i]!));
    });
    console.log(`[recorded] ${outputs.length} steps, worst logits relative L2 ${worst.toExponential(2)}`);
    model.dispose();
  });

  it.each([
    [4, 64],
    [2, 128],
  ])('matches the tfjs logits with %i heads of %i after a prompt past the tfjs cache first capacity', async (nHeads) => {
    const config = tinyConfig({ dModel: 256, nHeads, nLayers: 1, vocabSize: 256, maxSeqLen: 160 });
    const model = MPTModel.fromStateDict(config, initStateDict(config, 9));
    // 70 positions: the tfjs cache holds 128 per head, the recorded one 160, so the copy changes the stride.
    const long = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % 256);
    const outputs = await recorded(model, long, 3);
    const reference = await tfjsLogits(
      model,
      long,
      outputs.slice(0, -1).map((o) => o.token),
    );
    outputs.forEach((o, i) => {
      expect(relativeL2(o.logits!, reference[i]!), `step ${i}`).toBeLessThan(1e-5);
      expect(o.token).toBe(argMax(reference[i]!));
    });
    model.dispose();
  });

  it('gives each step the same result whether or not the next one is queued before its read', async () => {
    const model = tinyModel();
    const decoder = await RecordedDecoder.create(model);
    const serial = [(await decoder.prefill(prompt, { greedy: true })).token];
    for (let i = 0; i < 6; i++) serial.push((await decoder.step({ greedy: true })).token);
    await decoder.prefill(prompt, { greedy: true });
    const queued = await Promise.all(Array.from({ length: 6 }, () => decoder.step({ greedy: true })));
    expect([serial[0], ...queued.map((o) => o.token)]).toEqual(serial);
    expect(decoder.length).toBe(prompt.length + 6);
    // Forward steps only (prefill runs the tfjs path): 6 serial and 6 queued.
    expect(decoder.hostStats.steps).toBe(12);
    expect(decoder.hostStats.encodeSubmitMs).toBeGreaterThan(0);
    decoder.dispose();
    model.dispose();
  });

  it('costs a fraction of the tfjs path dispatches per token', async () => {
    const model = tinyModel();
    const cache = model.newCache();
    model.prefill([prompt], cache).dispose();
    model.decodeStep([1], cache).dispose();
    const tfjsDispatches = withWebGpuPrograms(() => tf.argMax(model.decodeStep([2], cache), -1).dispose())
      .keys.length;
    cache.dispose();
    const decoder = await RecordedDecoder.create(model);
    await decoder.prefill(prompt, { greedy: true });
    const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: Record<string, unknown> } })
      .GPUComputePassEncoder.prototype;
    const dispatch = proto['dispatchWorkgroups'] as (...a: unknown[]) => void;
    let recordedDispatches = 0;
    proto['dispatchWorkgroups'] = function (this: unknown, ...args: unknown[]) {
      recordedDispatches++;
      dispatch.apply(this, args);
    };
    try {
      await decoder.step({ greedy: true });
    } finally {
      proto['dispatchWorkgroups'] = dispatch;
    }
    const layers = model.config.nLayers;
    console.log(
      `[recorded] dispatches per greedy token, ${layers} layers: tfjs ${tfjsDispatches}, recorded ${recordedDispatches}`,
    );
    expect(recordedDispatches).toBe(decoder.dispatchesPerToken.greedy);
    // Embedding, 5 per layer, the head and the two arg-max passes.
    expect(decoder.dispatchesPerToken).toEqual({ greedy: 5 * layers + 4, sample: 5 * layers + 3 });
    expect(recordedDispatches * 2).toBeLessThan(tfjsDispatches);
    decoder.dispose();
    model.dispose();
  });

  describe('token choice on the device', () => {
    let model: MPTModel;
    let decoder: RecordedDecoder;
    const vocab = 40;
    beforeAll(async () => {
      model = tinyModel();
      decoder = await RecordedDecoder.create(model);
      return () => {
        decoder.dispose();
        model.dispose();
      };
    });
    const draws = async (logits: Float32Array, choice: TokenChoice, n: number, from = 0) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await decoder.chooseFrom(logits, choice, from + i)).token);
      return out;
    };
    const row = (values: Record<number, number>, rest = -30) => {
      const l = new Float32Array(vocab).fill(rest);
      for (const [id, v] of Object.entries(values)) l[Number(id)] = v;
      return l;
    };

    it('takes the arg-max, the lowest id on ties, and top-k 1 picks the same', async () => {
      const random = Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 12.9898) * 4);
      const ties = row({ 7: 2, 3: 2, 30: 2, 1: 1.5 });
      for (const logits of [random, ties]) {
        const want = argMax(logits);
        expect((await decoder.chooseFrom(logits, { greedy: true })).token).toBe(want);
        expect(await draws(logits, { temperature: 1.5, topK: 1, seed: 9 }, 5)).toEqual([
          want,
          want,
          want,
          want,
          want,
        ]);
      }
      expect(argMax(ties)).toBe(3);
    });

    it('draws with the probabilities of the softmax at the temperature (600 draws)', async () => {
      const logits = row({ 0: Math.log(0.4), 11: Math.log(0.3), 22: Math.log(0.2), 33: Math.log(0.1) });
      for (const temperature of [1, 2]) {
        const n = 600;
        const counts = new Map<number, number>();
        for (const t of await draws(logits, { temperature, seed: 123 }, n))
          counts.set(t, (counts.get(t) ?? 0) + 1);
        const p = softmax(logits, temperature);
        for (const id of [0, 11, 22, 33]) {
          const expected = p[id]!;
          // 4.5 standard deviations of a binomial share: fails by chance about once in 10^5 runs per id.
          const tolerance = 4.5 * Math.sqrt((expected * (1 - expected)) / n);
          expect(Math.abs((counts.get(id) ?? 0) / n - expected), `id ${id} at T=${temperature}`).toBeLessThan(
            tolerance,
          );
        }
        expect([...counts.keys()].every((id) => [0, 11, 22, 33].includes(id))).toBe(true);
      }
    });

    it('keeps only the top k, lower ids first among equal logits', async () => {
      const logits = row({ 5: 3, 9: 2, 2: 2, 17: 2, 25: 1 });
      const seen = new Set(await draws(logits, { temperature: 1, topK: 3, seed: 4 }, 80));
      // The 3 largest: id 5, then of the three equal 2s the two lowest ids (2 and 9).
      expect([...seen].sort((a, b) => a - b)).toEqual([2, 5, 9]);
    });

    it('keeps the smallest nucleus whose probability reaches top-p, after top-k', async () => {
      const logits = row({ 4: Math.log(0.5), 8: Math.log(0.3), 12: Math.log(0.15), 16: Math.log(0.05) }, -60);
      // Cumulative 0.5 before id 8 (kept), 0.8 before id 12 (cut at 0.7, kept at 0.9).
      const nucleus = new Set(await draws(logits, { temperature: 1, topP: 0.7, seed: 1 }, 60));
      expect([...nucleus].sort((a, b) => a - b)).toEqual([4, 8]);
      const wider = new Set(await draws(logits, { temperature: 1, topP: 0.9, seed: 1 }, 100));
      expect([...wider].sort((a, b) => a - b)).toEqual([4, 8, 12]);
      // Top-k 2 first renormalizes {4, 8} to 0.625 and 0.375: top-p 0.6 keeps id 4 alone, 0.7 keeps both.
      const one = new Set(await draws(logits, { temperature: 1, topK: 2, topP: 0.6, seed: 2 }, 30));
      expect([...one]).toEqual([4]);
      const both = new Set(await draws(logits, { temperature: 1, topK: 2, topP: 0.7, seed: 2 }, 60));
      expect([...both].sort((a, b) => a - b)).toEqual([4, 8]);
    });

    it("draws the host sampler's token for the same logits, seed and counter", async () => {
      const choices: TokenChoice[] = [
        { temperature: 1, seed: 3 },
        { temperature: 0.7, topK: 5, seed: 11 },
        { temperature: 1.3, topP: 0.8, seed: 0xfffffff0 },
        { temperature: 0.9, topK: 12, topP: 0.9, seed: 7 },
        { temperature: 2, topK: 40, topP: 0.5, seed: 8 },
      ];
      let compared = 0;
      for (let t = 0; t < 4; t++) {
        const logits = Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 7.13 + t * 3.1) * (2 + t));
        if (t === 3) logits.fill(1.5, 10, 20); // equal logits: the lower id first
        for (const choice of choices) {
          const { temperature, topK, topP, seed } = choice as Extract<TokenChoice, { temperature: number }>;
          const options = { temperature, topK, topP };
          const random = new SeededRandom(seed ?? 0);
          const reference = new SeededRandom(seed ?? 0);
          for (let counter = 0; counter < 10; counter++) {
            const host = chooseToken(logits.slice(), options, random, []);
            expect(sampleToken(logits.slice(), options, reference)).toBe(host);
            const device = (await decoder.chooseFrom(logits, choice, counter)).token;
            expect(device, `${JSON.stringify(choice)} logits ${t} counter ${counter}`).toBe(host);
            compared++;
          }
        }
      }
      expect(compared).toBe(200);
    });

    it('reproduces a seeded sequence and changes with the seed', async () => {
      const logits = Float32Array.from({ length: vocab }, (_, i) => Math.cos(i) * 0.5);
      const a = await draws(logits, { temperature: 1, seed: 42 }, 12);
      expect(await draws(logits, { temperature: 1, seed: 42 }, 12)).toEqual(a);
      expect(await draws(logits, { temperature: 1, seed: 43 }, 12)).not.toEqual(a);
      expect(new Set(a).size).toBeGreaterThan(3);
    });
  });

  it('samples a whole continuation reproducibly, each token within the top-k of its logits', async () => {
    const model = tinyModel();
    const choice: TokenChoice = { temperature: 2, topK: 6, seed: 77 };
    const a = await recorded(model, prompt, 8, choice);
    const b = await recorded(model, prompt, 8, choice);
    expect(b.map((o) => o.token)).toEqual(a.map((o) => o.token));
    const reference = await tfjsLogits(
      model,
      prompt,
      a.slice(0, -1).map((o) => o.token),
    );
    a.forEach((o, i) => {
      const ref = reference[i]!;
      expect(relativeL2(o.logits!, ref)).toBeLessThan(1e-5);
      const rank = Array.from(ref).filter((v) => v > ref[o.token]!).length;
      expect(rank, `step ${i}`).toBeLessThan(6);
    });
    const other = await recorded(model, prompt, 8, { ...choice, seed: 78 });
    expect(other.map((o) => o.token)).not.toEqual(a.map((o) => o.token));
    model.dispose();
  });

  describe('errors', () => {
    it('rejects a prompt longer than max_seq_len and a step past it', async () => {
      const model = tinyModel();
      const decoder = await RecordedDecoder.create(model);
      await expect(decoder.prefill(new Array(17).fill(1), { greedy: true })).rejects.toThrow(
        'the prompt holds 17 tokens, more than max_seq_len 16',
      );
      await expect(decoder.prefill([], { greedy: true })).rejects.toThrow('at least one token');
      await decoder.prefill(new Array(15).fill(1), { greedy: true });
      await decoder.step({ greedy: true });
      expect(() => decoder.step({ greedy: true })).toThrow('already holds max_seq_len 16 positions');
      decoder.dispose();
      model.dispose();
    });

    it('rejects bad sampling options, logits of the wrong length and a step before prefill', async () => {
      const model = tinyModel();
      const decoder = await RecordedDecoder.create(model);
      expect(() => decoder.step({ greedy: true })).toThrow('call prefill before step');
      expect(() => decoder.chooseFrom(new Float32Array(40), { temperature: 0 })).toThrow(
        'temperature must be > 0 when sampling, got 0',
      );
      expect(() => decoder.chooseFrom(new Float32Array(40), { temperature: 1, topP: 1.5 })).toThrow(
        'topP must be in (0, 1], got 1.5',
      );
      expect(() => decoder.chooseFrom(new Float32Array(40), { temperature: 1, topK: -1 })).toThrow('topK');
      expect(() => decoder.chooseFrom(new Float32Array(39), { greedy: true })).toThrow(
        'expected 40 logits (the vocabulary), got 39',
      );
      decoder.dispose();
      expect(() => decoder.chooseFrom(new Float32Array(40), { greedy: true })).toThrow(RecordedDecodeError);
      model.dispose();
    });

    it('rejects a disposed model, f16 copies of a quantized one and another backend', async () => {
      const model = tinyModel();
      const decoder = await RecordedDecoder.create(model);
      model.dispose();
      await expect(decoder.prefill(prompt, { greedy: true })).rejects.toThrow('was disposed');
      decoder.dispose();
      await expect(RecordedDecoder.create(model)).rejects.toThrow('the model is disposed');
      const int8 = tinyModel({}, { quantize: 'int8' });
      // An int8 model decodes through its own int8 weights (int8-weights.test.ts); f16 copies of them are refused.
      await expect(RecordedDecoder.create(int8, { weights: 'f16' })).rejects.toThrow(
        'this model is int8-quantized: its recorded step reads its int8 weights',
      );
      int8.dispose();
      await selectBackend('cpu', { log: false });
      const onCpu = tinyModel();
      await expect(RecordedDecoder.create(onCpu)).rejects.toThrow(
        'the recorded decode step runs on the webgpu backend, but the active backend is "cpu"',
      );
      onCpu.dispose();
      await selectBackend('webgpu', { log: false });
    });
  });
});
