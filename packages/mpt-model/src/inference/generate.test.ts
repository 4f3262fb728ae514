import { selectBackend } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MPTModel } from '../model.js';
import { tinyConfig } from '../testing/tiny-config.js';
import type { GeneratedToken } from './decode-sequence.js';
import { generate, generateStream } from './generate.js';
import { logprobsOf } from './logprobs.js';

let model: MPTModel;
const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');

beforeAll(async () => {
  await selectBackend('cpu', { log: false });
  model = MPTModel.init(tinyConfig(), 9);
});
afterAll(() => model.dispose());

describe('generate', () => {
  it('greedy decoding equals repeated arg-max of full forward passes', async () => {
    const prompt = [3, 14, 15];
    const { tokens } = await generate(model, prompt, { maxNewTokens: 6 });
    const seq = [...prompt];
    for (let i = 0; i < 6; i++) {
      const logits = model.forward([seq]);
      const last = tf.tidy(() => tf.argMax(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, 40]), -1));
      seq.push(last.dataSync()[0]!);
      tf.dispose([logits, last]);
    }
    expect(tokens).toEqual(seq.slice(prompt.length));
  });

  it('samples reproducibly per seed and streams tokens as they come', async () => {
    const opts = { maxNewTokens: 8, temperature: 1.5, topK: 20, topP: 0.95, seed: 123 };
    const a = await generate(model, [1, 2], opts);
    const b = await generate(model, [1, 2], opts);
    expect(a.tokens).toEqual(b.tokens);
    const others = await Promise.all([1, 2, 3].map((seed) => generate(model, [1, 2], { ...opts, seed })));
    expect(others.some((o) => o.tokens.join() !== a.tokens.join())).toBe(true);
    const streamed: number[] = [];
    const stream = generateStream(model, [1, 2], opts);
    for await (const t of stream) {
      expect(t.index).toBe(streamed.length);
      streamed.push(t.token);
    }
    expect(streamed).toEqual(a.tokens);
  });

  it('stops on a stop token (kept) and on a stop string (text cut before it)', async () => {
    const free = await generate(model, [5], { maxNewTokens: 10, temperature: 1, seed: 4, decode });
    expect(free.finishReason).toBe('length');
    const stopId = free.tokens[3]!;
    const firstAt = free.tokens.indexOf(stopId);
    const byToken = await generate(model, [5], {
      maxNewTokens: 10,
      temperature: 1,
      seed: 4,
      stopTokenIds: [stopId],
    });
    expect(byToken.tokens).toEqual(free.tokens.slice(0, firstAt + 1));
    expect(byToken.finishReason).toBe('stop_token');
    const stop = free.text!.slice(4, 6);
    const at = free.text!.indexOf(stop);
    const byString = await generate(model, [5], {
      maxNewTokens: 10,
      temperature: 1,
      seed: 4,
      stopStrings: [stop],
      decode,
    });
    expect(byString.finishReason).toBe('stop_string');
    expect(byString.text).toBe(free.text!.slice(0, at));
  });

  it('leaves no tensors behind and validates its options', async () => {
    const before = tf.memory().numTensors;
    await generate(model, [1], { maxNewTokens: 20, temperature: 0.8, seed: 1 });
    expect(tf.memory().numTensors).toBe(before);
    await expect(generate(model, [], { maxNewTokens: 1 })).rejects.toThrow(
      'the prompt must hold at least one token',
    );
    await expect(generate(model, [1], { maxNewTokens: 1, stopStrings: ['x'] })).rejects.toThrow(
      'stopStrings need a decode function',
    );
    await expect(generate(model, [1], { maxNewTokens: -1 })).rejects.toThrow(
      'maxNewTokens must be a non-negative integer, got -1',
    );
    const short = MPTModel.init(tinyConfig({ maxSeqLen: 4 }), 1);
    const capped = await generate(short, [1, 2], { maxNewTokens: 10 });
    expect(capped).toMatchObject({ finishReason: 'max_seq_len' });
    expect(capped.tokens).toHaveLength(3);
    short.dispose();
  });

  it('reports logprobs of each token and its alternatives on request, with the same tokens', async () => {
    for (const opts of [{ maxNewTokens: 5 }, { maxNewTokens: 5, temperature: 0.9, seed: 2 }]) {
      const plain = await generate(model, [3, 4], opts);
      const streamed: GeneratedToken[] = [];
      const scored = await generate(model, [3, 4], {
        ...opts,
        logprobs: 2,
        onToken: (t) => streamed.push(t),
      });
      expect(scored.tokens).toEqual(plain.tokens);
      const seq = [3, 4];
      for (const t of streamed) {
        const logits = model.forward([seq]);
        const row = ((await logits.data()) as Float32Array).slice((seq.length - 1) * 40);
        logits.dispose();
        const want = logprobsOf(row, t.token, 2);
        expect(t.logprob).toBeCloseTo(want.logprob, 4);
        expect(t.top!.map((a) => a.id)).toEqual(want.top.map((a) => a.id));
        seq.push(t.token);
      }
    }
    await expect(generate(model, [1], { maxNewTokens: 1, logprobs: -1 })).rejects.toThrow(
      'logprobs must be a non-negative integer, got -1',
    );
    await expect(generate(model, [1], { maxNewTokens: 1, logprobs: 1, engine: 'recorded' })).rejects.toThrow(
      'the recorded engine chooses tokens on the device and has no logprobs',
    );
  });
});
