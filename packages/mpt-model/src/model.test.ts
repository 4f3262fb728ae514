import { selectBackend } from '@mptjs/kernels';
import { relativeL2 } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initStateDict, initStd } from './init.js';
import { MPTModel } from './model.js';
import { expectedParameterShapes } from './state-dict.js';
import { tinyConfig } from './testing/tiny-config.js';

beforeAll(async () => {
  await selectBackend('cpu', { log: false });
});

describe('MPTModel.fromStateDict', () => {
  it('names a missing tensor, a misshapen one (with both shapes) and an unexpected one', () => {
    const config = tinyConfig();
    const sd = initStateDict(config, 1);
    sd.delete('transformer.blocks.1.attn.k_ln.weight');
    sd.set('transformer.blocks.0.ffn.up_proj.weight', { shape: [96, 25], data: new Float32Array(96 * 25) });
    sd.set('transformer.blocks.0.attn.Wqkv.bias', { shape: [72], data: new Float32Array(72) });
    let message = '';
    try {
      MPTModel.fromStateDict(config, sd);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('missing tensor "transformer.blocks.1.attn.k_ln.weight" (expected shape [24])');
    expect(message).toContain(
      'tensor "transformer.blocks.0.ffn.up_proj.weight" has shape [96, 25], expected [96, 24]',
    );
    expect(message).toContain('unexpected tensor "transformer.blocks.0.attn.Wqkv.bias" for this config');
  });

  it('round-trips its parameters through toStateDict', async () => {
    const config = tinyConfig({ noBias: false });
    const sd = initStateDict(config, 3);
    const model = MPTModel.fromStateDict(config, sd);
    const back = await model.toStateDict();
    expect([...back.keys()]).toEqual([...expectedParameterShapes(config).keys()]);
    for (const [name, t] of sd) expect(Array.from(back.get(name)!.data)).toEqual(Array.from(t.data));
    model.dispose();
  });
});

describe('linearLayout inOut', () => {
  it('stores block matrices as [in, out], gives the same logits, and exports torch shapes', async () => {
    const config = tinyConfig({ noBias: false });
    const sd = initStateDict(config, 5);
    const torch = MPTModel.fromStateDict(config, sd);
    const inOut = MPTModel.fromStateDict(config, sd, { linearLayout: 'inOut' });
    expect(inOut.params.get('transformer.blocks.0.ffn.up_proj.weight')!.shape).toEqual([24, 96]);
    expect(inOut.params.get('transformer.wte.weight')!.shape).toEqual([40, 24]);
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend, { log: false });
      const a = torch.forward([[1, 2, 3, 4, 5]]);
      const b = inOut.forward([[1, 2, 3, 4, 5]]);
      expect(relativeL2(b.dataSync(), a.dataSync())).toBeLessThan(1e-6);
      tf.dispose([a, b]);
    }
    await selectBackend('cpu', { log: false });
    const back = await inOut.toStateDict();
    for (const [name, t] of sd) {
      expect(back.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(back.get(name)!.data)).toEqual(Array.from(t.data));
    }
    torch.dispose();
    inOut.dispose();
  });
});

describe('initialization (llm-foundry kaiming_normal_)', () => {
  it('draws N(0, 2/fan_in), divides residual projections by sqrt(2 n_layers), sets norms to 1 and biases to 0', () => {
    const config = tinyConfig({ dModel: 64, nHeads: 4, nLayers: 3, vocabSize: 500, noBias: false });
    const sd = initStateDict(config, 7);
    const std = (name: string) => {
      const d = sd.get(name)!.data;
      const mean = d.reduce((a, b) => a + b, 0) / d.length;
      return Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
    };
    const kaiming = Math.sqrt(2 / 64);
    expect(std('transformer.wte.weight') / kaiming).toBeCloseTo(1, 1);
    expect(std('transformer.blocks.0.attn.Wqkv.weight') / kaiming).toBeCloseTo(1, 1);
    expect(
      std('transformer.blocks.2.ffn.down_proj.weight') / (Math.sqrt(2 / 256) / Math.sqrt(6)),
    ).toBeCloseTo(1, 1);
    expect(std('transformer.blocks.1.attn.out_proj.weight') / (kaiming / Math.sqrt(6))).toBeCloseTo(1, 1);
    expect(initStd(config, 'transformer.blocks.0.ffn.up_proj.weight', [256, 64])).toBeCloseTo(kaiming, 12);
    expect(sd.get('transformer.blocks.0.norm_1.weight')!.data.every((x) => x === 1)).toBe(true);
    expect(sd.get('transformer.blocks.0.attn.Wqkv.bias')!.data.every((x) => x === 0)).toBe(true);
    // Same seed, same numbers; another seed, other numbers.
    expect(initStateDict(config, 7).get('transformer.wte.weight')!.data).toEqual(
      sd.get('transformer.wte.weight')!.data,
    );
    expect(initStateDict(config, 8).get('transformer.wte.weight')!.data[0]).not.toBe(
      sd.get('transformer.wte.weight')!.data[0],
    );
  });
});

describe('forward, loss and the unit chain', () => {
  it('runs the units one at a time to the same logits as forward, for every config option', () => {
    const configs = [
      tinyConfig(),
      tinyConfig({ noBias: false, clipQkv: 0.5, softmaxScale: 0.3, logitScale: 0.125, layerNormEps: 1e-3 }),
      tinyConfig({ alibi: false, learnedPosEmb: true, qkLn: false, modelType: 'mosaic_gpt' }),
    ];
    for (const config of configs) {
      const model = MPTModel.init(config, 11);
      const ids = [
        [1, 5, 9, 2, 7, 3],
        [4, 4, 0, 39, 12, 8],
      ];
      const logits = model.forward(ids);
      expect(logits.shape).toEqual([2, 6, config.vocabSize]);
      const ctx = { slopes: model.slopes, pastLength: 0, keyMask: null };
      const chained = tf.tidy(() => {
        let x: tf.Tensor = tf.tensor2d(ids, [2, 6], 'int32');
        for (const unit of model.units()) x = unit.forward(model.params, x, ctx);
        return x;
      });
      expect(relativeL2(chained.dataSync(), logits.dataSync())).toBe(0);
      tf.dispose([logits, chained]);
      model.dispose();
    }
  });

  it('lists each parameter in exactly one unit except the tied embedding (embed and head)', () => {
    const config = tinyConfig({ noBias: false });
    const model = MPTModel.init(config, 1);
    const listed = model.units().flatMap((u) => u.paramNames);
    const counts = new Map<string, number>();
    for (const n of listed) counts.set(n, (counts.get(n) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual([...model.params.keys()].sort());
    expect([...counts].filter(([, c]) => c > 1)).toEqual([['transformer.wte.weight', 2]]);
    model.dispose();
  });

  it('is causal: changing a later token leaves earlier logits unchanged', () => {
    const model = MPTModel.init(tinyConfig(), 2);
    const a = model.forward([[1, 2, 3, 4, 5]]);
    const b = model.forward([[1, 2, 3, 9, 9]]);
    const first3 = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [1, 3, 40]).dataSync();
    expect(relativeL2(first3(b), first3(a))).toBe(0);
    expect(relativeL2(b.dataSync(), a.dataSync())).toBeGreaterThan(1e-3);
    tf.dispose([a, b]);
    model.dispose();
  });

  it('computes mean cross-entropy ignoring -100, equal to a host computation from the logits', () => {
    const model = MPTModel.init(tinyConfig(), 4);
    const ids = [[3, 1, 4, 1, 5]];
    const targets = [[1, 4, -100, 5, 9]];
    const logits = model.forward(ids).arraySync()[0]!;
    let sum = 0;
    let n = 0;
    targets[0]!.forEach((t, i) => {
      if (t === -100) return;
      const row = logits[i]!;
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
      sum += lse - row[t]!;
      n++;
    });
    const loss = model.loss(ids, targets);
    expect(loss.dataSync()[0]).toBeCloseTo(sum / n, 5);
    loss.dispose();
    expect(() => model.loss(ids, [[1, 2, 3]])).toThrow(
      'targets [1,3] must match logits [1,5,40] without the vocab axis',
    );
    expect(() => model.forward([[1, 40]])).toThrow('token id 40 at [0, 1] is outside the vocabulary [0, 40)');
    model.dispose();
  });
});

describe('incremental decoding', () => {
  it('matches full recompute, frees what it does not keep, and stays flat in tensor count over many steps', () => {
    const model = MPTModel.init(tinyConfig({ maxSeqLen: 128 }), 5);
    const prompt = [[7, 3, 9, 1]];
    const tokens = [...prompt[0]!];
    const cache = model.newCache();
    const first = model.prefill(prompt, cache);
    first.dispose();
    const counts: number[] = [];
    for (let step = 0; step < 60; step++) {
      const next = (step * 7) % 40;
      tokens.push(next);
      const logits = model.decodeStep([next], cache);
      if (step === 59) {
        const full = model.forward([tokens]);
        const last = tf.slice(full, [0, tokens.length - 1, 0], [1, 1, 40]);
        expect(relativeL2(logits.dataSync(), last.dataSync())).toBeLessThan(1e-5);
        tf.dispose([full, last]);
      }
      logits.dispose();
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(cache.length).toBe(64);
    cache.dispose();
    model.dispose();
  });

  it('decodes a left-padded batch of different-length prompts like each prompt alone', () => {
    const model = MPTModel.init(tinyConfig(), 6);
    const short = [5, 6];
    const long = [1, 2, 3, 4];
    const cache = model.newCache();
    const mask = tf.tensor2d([
      [0, 0, 1, 1],
      [1, 1, 1, 1],
    ]);
    const batch = model.prefill([[0, 0, ...short], long], cache, mask);
    const stepBatch = model.decodeStep([8, 9], cache);
    [short, long].forEach((p, i) => {
      const alone = model.newCache();
      const a = model.prefill([p], alone);
      const b = model.decodeStep([[8, 9][i]!], alone);
      expect(relativeL2(tf.slice(batch, [i, 0], [1, 40]).dataSync(), a.dataSync())).toBeLessThan(1e-5);
      expect(relativeL2(tf.slice(stepBatch, [i, 0], [1, 40]).dataSync(), b.dataSync())).toBeLessThan(1e-5);
      alone.dispose();
    });
    expect(() => model.decodeStep([1], cache)).toThrow('the cache holds a batch of 2 sequences, got 1');
    cache.dispose();
    model.dispose();
  });

  it('refuses to run past max_seq_len', () => {
    const model = MPTModel.init(tinyConfig({ maxSeqLen: 4 }), 1);
    const cache = model.newCache();
    model.prefill([[1, 2, 3, 4]], cache).dispose();
    expect(() => model.decodeStep([5], cache)).toThrow('sequence length 5 exceeds max_seq_len 4');
    cache.dispose();
    model.dispose();
  });
});

describe('memory', () => {
  it('holds each parameter once', () => {
    const before = tf.memory().numBytes;
    const config = tinyConfig();
    const model = MPTModel.init(config, 1);
    const paramBytes = [...expectedParameterShapes(config).values()].reduce(
      (a, s) => a + 4 * s.reduce((x, y) => x * y, 1),
      0,
    );
    expect(tf.memory().numBytes - before).toBe(paramBytes);
    expect(model.numParameters * 4).toBe(paramBytes);
    model.dispose();
    expect(tf.memory().numBytes).toBe(before);
  });
});
