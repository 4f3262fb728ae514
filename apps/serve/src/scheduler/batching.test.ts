import { relativeL2 } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGeneration } from '../commands/generate.js';
import { Generation, type GenerationParams } from '../generation/generation.js';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { fixture } from '../testing/fixture.js';
import { Scheduler } from './scheduler.js';

const fx = fixture();

const greedy = (maxNewTokens: number, stopStrings: string[] = []): GenerationParams => ({
  temperature: 0,
  topK: 0,
  topP: 1,
  maxNewTokens,
  stopStrings,
  stopIds: [],
});

describe.skipIf(!fx)('batched prefill and continuous batching (fixture model)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', tokenizer: fx!.tokenizer, log: () => {} });
  });
  afterAll(() => model?.engine.dispose());

  const maxLen = () => model.engine.info.maxSeqLen;
  /** Six prompts of 2 to 12 tokens. */
  const prompts = () => {
    const [a, b] = fx!.expected.input_ids;
    return [
      a!.slice(0, 12),
      b!.slice(3, 5),
      a!.slice(20, 27),
      b!.slice(0, 9),
      a!.slice(5, 8),
      b!.slice(12, 16),
    ];
  };
  async function solo(prompt: readonly number[], params: GenerationParams): Promise<Generation> {
    const g = new Generation(prompt, params, maxLen(), model.tokenizer);
    await runGeneration(model.engine, g);
    return g;
  }

  it('prefillMany gives each prompt the logits and the cache of its own prefill', async () => {
    const engine = model.engine;
    const ps = prompts().slice(0, 4);
    const before = tf.memory().numTensors;
    const many = await engine.prefillMany(ps);
    expect(many).toHaveLength(4);
    for (const [i, p] of ps.entries()) {
      const one = await engine.prefill(p);
      expect(many[i]!.sequence.length).toBe(p.length);
      expect(relativeL2(many[i]!.logits, one.logits)).toBeLessThan(1e-5);
      // The next step from either cache gives the same logits.
      const [fromMany] = await engine.decode([many[i]!.sequence], [7]);
      const [fromOne] = await engine.decode([one.sequence], [7]);
      expect(relativeL2(fromMany!, fromOne!)).toBeLessThan(1e-5);
      engine.release(one.sequence);
    }
    for (const { sequence } of many) engine.release(sequence);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('prefillMany refuses a bad prompt and keeps nothing', async () => {
    const before = tf.memory().numTensors;
    await expect(
      model.engine.prefillMany([
        [1, 2, 3],
        [4, 60000],
      ]),
    ).rejects.toThrow('60000');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('streams joining and leaving between steps give each one the greedy text it has alone', async () => {
    const limits = [9, 2, 6, 11, 4, 7];
    const want = [];
    for (const [i, p] of prompts().entries()) want.push((await solo(p, greedy(limits[i]!))).ids);

    const scheduler = new Scheduler(model.engine, { maxBatch: 3, maxQueue: 8 });
    // Two arrive at once, two more after the first one's first step, the rest after its third.
    const late: Promise<void>[] = [];
    const gens: Generation[] = prompts().map(
      (p, i) =>
        new Generation(p, greedy(limits[i]!), maxLen(), model.tokenizer, {
          onToken: (g) => {
            if (i !== 0) return;
            if (g.ids.length === 1) late.push(scheduler.submit(gens.slice(2, 4)));
            if (g.ids.length === 3) late.push(scheduler.submit(gens.slice(4)));
          },
        }),
    );
    await scheduler.submit(gens.slice(0, 2));
    await Promise.all(late);
    expect(late).toHaveLength(2);
    expect(gens.map((g) => g.ids)).toEqual(want);
    expect(gens.map((g) => g.finishReason)).toEqual(Array(6).fill('length'));
  });

  it('a stop string ends only its own stream', async () => {
    const ps = prompts().slice(0, 3);
    const alone = await solo(ps[0]!, greedy(12));
    // A stop string made of the text of its 5th and 6th tokens (found at the earliest place it occurs).
    const tail = model.tokenizer!.decode(alone.ids.slice(0, 6));
    const head = model.tokenizer!.decode(alone.ids.slice(0, 4));
    const stop = tail.slice(head.length).trim() || tail.slice(head.length);
    expect(stop.length).toBeGreaterThan(0);
    const others = [await solo(ps[1]!, greedy(12)), await solo(ps[2]!, greedy(12))];

    const scheduler = new Scheduler(model.engine, { maxBatch: 3, maxQueue: 0 });
    const gens = [
      new Generation(ps[0]!, greedy(12, [stop]), maxLen(), model.tokenizer),
      new Generation(ps[1]!, greedy(12), maxLen(), model.tokenizer),
      new Generation(ps[2]!, greedy(12), maxLen(), model.tokenizer),
    ];
    await scheduler.submit(gens);
    expect(gens[0]!.finishReason).toBe('stop_string');
    expect(gens[0]!.text).toBe(alone.text.slice(0, alone.text.indexOf(stop)));
    expect(gens[0]!.ids.length).toBeLessThan(12);
    for (const [i, g] of gens.slice(1).entries()) {
      expect(g.finishReason).toBe('length');
      expect(g.ids).toEqual(others[i]!.ids);
      expect(g.text).toBe(others[i]!.text);
    }
  });

  it('admits together only as many prompts as the batched prefill budget holds', async () => {
    const engine = model.engine;
    const groups: number[] = [];
    const original = engine.prefillMany;
    engine.prefillMany = (prompts) => {
      groups.push(prompts.length);
      return original.call(engine, prompts);
    };
    try {
      const row = fx?.expected.input_ids[0] ?? [];
      // 12 prompts of 100 tokens: 10 fit 1024 padded positions, the other 2 go in a second pass.
      const long = Array.from({ length: 12 }, (_, i) =>
        Array.from({ length: 100 }, (_, j) => row[(i + j) % row.length]!),
      );
      const scheduler = new Scheduler(engine, { maxBatch: 12, maxQueue: 0 });
      const gens = long.map((p) => new Generation(p, greedy(2), maxLen(), undefined));
      await scheduler.submit(gens);
      expect(groups).toEqual([10, 2]);
      expect(gens.map((g) => g.finishReason)).toEqual(Array(12).fill('length'));
      engine.prefillMany = original;
      expect(gens[11]!.ids).toEqual((await solo(long[11]!, greedy(2))).ids);
    } finally {
      engine.prefillMany = original;
    }
  });

  it('a bad prompt admitted with others fails alone; the others run as they would alone', async () => {
    const ps = prompts().slice(0, 2);
    const want = [(await solo(ps[0]!, greedy(4))).ids, (await solo(ps[1]!, greedy(4))).ids];
    const scheduler = new Scheduler(model.engine, { maxBatch: 3, maxQueue: 0 });
    const gens = [
      new Generation(ps[0]!, greedy(4), maxLen(), undefined),
      new Generation([5, 60000, 7], greedy(4), maxLen(), undefined),
      new Generation(ps[1]!, greedy(4), maxLen(), undefined),
    ];
    await scheduler.submit(gens);
    expect(gens[1]!.finishReason).toBe('error');
    expect(gens[1]!.error?.message).toContain('60000');
    expect([gens[0]!.ids, gens[2]!.ids]).toEqual(want);
  });
});
