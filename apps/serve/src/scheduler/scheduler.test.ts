import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGeneration } from '../commands/generate.js';
import { EngineProbe } from '../engine/engine-probe.js';
import { Generation, type GenerationParams } from '../generation/generation.js';
import { type LoadedModel, loadModel } from '../model/load-model.js';
import { fixture } from '../testing/fixture.js';
import {
  EngineFailedError,
  QueueFullError,
  Scheduler,
  type SchedulerStats,
  ShuttingDownError,
  TooManySequencesError,
} from './scheduler.js';

const fx = fixture();

const greedy = (maxNewTokens: number): GenerationParams => ({
  temperature: 0,
  topK: 0,
  topP: 1,
  maxNewTokens,
  stopStrings: [],
  stopIds: [],
});

describe.skipIf(!fx)('Scheduler (continuous batching on the fixture model)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await loadModel(fx!.dir, { backend: 'wasm', log: () => {} });
  });
  afterAll(() => model?.engine.dispose());

  const maxLen = () => model.engine.info.maxSeqLen;
  const prompts = () => {
    const { greedy, input_ids } = fx!.expected;
    return [greedy.prompt, input_ids[1]!.slice(0, 3), input_ids[0]!.slice(10, 15)];
  };

  it('batched decoding of prompts of different lengths gives each one its solo greedy tokens', async () => {
    const limits = [10, 3, 8];
    const solo: number[][] = [];
    for (const [i, p] of prompts().entries()) {
      const g = new Generation(p, greedy(limits[i]!), maxLen(), undefined);
      await runGeneration(model.engine, g);
      solo.push(g.ids);
    }
    expect(solo[0]).toEqual(fx!.expected.greedy.continuation.slice(0, 10));

    const history: SchedulerStats[] = [];
    const scheduler = new Scheduler(
      model.engine,
      { maxBatch: 2, maxQueue: 8 },
      { onStats: (s) => history.push(s) },
    );
    const gens = prompts().map((p, i) => new Generation(p, greedy(limits[i]!), maxLen(), undefined));
    await scheduler.submit(gens);
    expect(gens.map((g) => g.ids)).toEqual(solo);
    expect(Math.max(...history.map((s) => s.running))).toBe(2);
    // The third sequence joined while the first was still decoding (continuous, not static, batching).
    const joined = history.findIndex((s) => s.waiting === 0 && s.running === 2);
    expect(joined).toBeGreaterThan(0);
    expect(scheduler.stats).toEqual({ waiting: 0, running: 0 });
  });

  it('an aborted sequence leaves at once and frees its slot for the next one', async () => {
    const scheduler = new Scheduler(model.engine, { maxBatch: 1, maxQueue: 4 });
    const controller = new AbortController();
    const long = new Generation(prompts()[0]!, greedy(100), maxLen(), undefined, {
      onDelta: (_d, g) => {
        if (g.ids.length === 2) controller.abort();
      },
    });
    const next = new Generation(prompts()[1]!, greedy(3), maxLen(), undefined);
    const a = scheduler.submit([long], controller.signal);
    const b = scheduler.submit([next]);
    await Promise.all([a, b]);
    expect(long.finishReason).toBe('abort');
    expect(long.ids).toHaveLength(2);
    expect(next.finishReason).toBe('length');
    expect(next.ids).toHaveLength(3);
  });

  it('leaves no tensors behind once every sequence has finished or been aborted', async () => {
    const before = tf.memory().numTensors;
    const scheduler = new Scheduler(model.engine, { maxBatch: 3, maxQueue: 16 });
    const controller = new AbortController();
    const rows = fx?.expected.input_ids ?? [];
    const gens = Array.from({ length: 7 }, (_, i) => {
      const prompt = (rows[i % 2] ?? []).slice(0, 2 + i);
      return new Generation(prompt, greedy(2 + (i % 4)), maxLen(), undefined, {
        onDelta: (_d, g) => {
          if (i === 4 && g.ids.length === 1) controller.abort();
        },
      });
    });
    await Promise.all([
      scheduler.submit(gens.slice(0, 4)),
      scheduler.submit(gens.slice(4), controller.signal),
    ]);
    expect(gens.map((g) => g.finishReason)).toEqual([
      'length',
      'length',
      'length',
      'length',
      'abort',
      'abort',
      'abort',
    ]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses work beyond the queue limit and after drain', async () => {
    const scheduler = new Scheduler(model.engine, { maxBatch: 1, maxQueue: 1 });
    const make = () => new Generation(prompts()[1]!, greedy(2), maxLen(), undefined);
    const first = scheduler.submit([make()]);
    const second = scheduler.submit([make()]);
    expect(() => scheduler.submit([make()])).toThrow(QueueFullError);
    await scheduler.drain();
    await Promise.all([first, second]);
    expect(() => scheduler.submit([make()])).toThrow(ShuttingDownError);
  });

  it('refuses a request that could never fit the batch and the queue', () => {
    const scheduler = new Scheduler(model.engine, { maxBatch: 2, maxQueue: 3 });
    expect(() => scheduler.checkCapacity(6)).toThrow(TooManySequencesError);
    expect(() => scheduler.checkCapacity(5)).not.toThrow();
  });

  it('after an engine error, a passing probe keeps it serving and a failing one stops it', async () => {
    // A token id past the embedding makes the real engine throw inside prefill.
    const bad = () => new Generation([60_000], greedy(2), maxLen(), undefined);
    const good = () => new Generation(prompts()[1]!, greedy(3), maxLen(), undefined);
    const probe = new EngineProbe(model.engine);
    const healthy = new Scheduler(model.engine, { maxBatch: 2, maxQueue: 4 }, { probe: () => probe.check() });
    const failed = bad();
    await healthy.submit([failed]);
    expect(failed.finishReason).toBe('error');
    expect(failed.error?.message).toContain('60000');
    expect(healthy.engineFailure).toBeUndefined();
    const after = good();
    await healthy.submit([after]);
    expect(after.ids).toHaveLength(3);

    const failures: Error[] = [];
    const broken = new Scheduler(
      model.engine,
      { maxBatch: 1, maxQueue: 4 },
      {
        probe: async () => {
          throw new Error('probe failed');
        },
        onEngineFailed: (e) => failures.push(e),
      },
    );
    const waiting = good();
    await Promise.all([broken.submit([bad()]), broken.submit([waiting])]);
    expect(waiting.finishReason).toBe('error');
    expect(waiting.error).toBeInstanceOf(EngineFailedError);
    expect(failures.map((e) => e.message)).toEqual(['probe failed']);
    expect(() => broken.submit([good()])).toThrow(EngineFailedError);
    expect(broken.stats).toEqual({ waiting: 0, running: 0 });
  });
});
