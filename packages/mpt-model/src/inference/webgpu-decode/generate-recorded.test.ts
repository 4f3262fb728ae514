// `generate` with `engine: 'recorded'` on the real webgpu backend (SwiftShader here): the same greedy tokens as
// the tfjs engine, stops, the max_seq_len limit, seeded sampling, and the errors of what it does not do.

import { selectBackend } from '@mptjs/kernels';
import { webgpuExpected } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { initStateDict } from '../../init.js';
import { MPTModel } from '../../model.js';
import { tinyConfig } from '../../testing/tiny-config.js';
import { generate } from '../generate.js';
import { disposeRecordedDecoder, recordedDecoderFor } from './generate-recorded.js';

const prompt = [3, 1, 4, 1, 5];

describe.runIf(webgpuExpected)('generate with the recorded engine', () => {
  let model: MPTModel;
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
    const config = tinyConfig({ maxSeqLen: 16 });
    model = MPTModel.fromStateDict(config, initStateDict(config, 11));
    return async () => {
      await disposeRecordedDecoder(model);
      model.dispose();
    };
  });

  it('gives the tfjs engine greedy tokens, up to max_seq_len', async () => {
    const tfjs = await generate(model, prompt, { maxNewTokens: 20, greedy: true });
    const streamed: number[] = [];
    const recorded = await generate(model, prompt, {
      maxNewTokens: 20,
      greedy: true,
      engine: 'recorded',
      onToken: (t) => streamed.push(t.token),
    });
    expect(recorded).toEqual(tfjs);
    expect(recorded.finishReason).toBe('max_seq_len');
    expect(recorded.tokens).toHaveLength(16 - prompt.length + 1);
    expect(streamed).toEqual(recorded.tokens);
    const short = await generate(model, prompt, { maxNewTokens: 3, engine: 'recorded' });
    expect(short).toEqual({ tokens: tfjs.tokens.slice(0, 3), finishReason: 'length' });
    expect(await generate(model, prompt, { maxNewTokens: 0, engine: 'recorded' })).toEqual({
      tokens: [],
      finishReason: 'length',
    });
  });

  it('decodes through f16 weights with recordedWeights, a decoder of its own beside the f32 one', async () => {
    const f32 = await generate(model, prompt, { maxNewTokens: 8, greedy: true, engine: 'recorded' });
    const f16 = await generate(model, prompt, {
      maxNewTokens: 8,
      greedy: true,
      engine: 'recorded',
      recordedWeights: 'f16',
    });
    // The first token comes from the float32 prefill; f16 rounding may flip a later near-tie, rarely.
    expect(f16.tokens[0]).toBe(f32.tokens[0]);
    expect(f16.tokens.filter((t, i) => t === f32.tokens[i]).length).toBeGreaterThanOrEqual(6);
    const [a, b] = await Promise.all([recordedDecoderFor(model), recordedDecoderFor(model, 'f16')]);
    expect(a).not.toBe(b);
    expect(a.weightStats.format).toBe('f32');
    expect(b.weightStats.format).toBe('f16');
    await expect(
      generate(model, prompt, { maxNewTokens: 2, engine: 'recorded', recordedWeights: 'f8' as 'f16' }),
    ).rejects.toThrow('weights must be "f32" or "f16", got "f8"');
    await expect(generate(model, prompt, { maxNewTokens: 2, recordedWeights: 'f16' })).rejects.toThrow(
      'recordedWeights applies to engine "recorded" only',
    );
  });

  it('stops at a stop token or a stop string, and the next sequence is unaffected by the queued step', async () => {
    const all = (await generate(model, prompt, { maxNewTokens: 8, engine: 'recorded' })).tokens;
    const stop = all[3]!;
    const at = all.indexOf(stop);
    const stopped = await generate(model, prompt, {
      maxNewTokens: 8,
      engine: 'recorded',
      stopTokenIds: [stop],
    });
    expect(stopped).toEqual({ tokens: all.slice(0, at + 1), finishReason: 'stop_token' });
    const decode = (ids: number[]) => ids.map((i) => `<${i}>`).join('');
    const byString = await generate(model, prompt, {
      maxNewTokens: 8,
      engine: 'recorded',
      decode,
      stopStrings: [`<${all[2]}>`],
    });
    expect(byString.finishReason).toBe('stop_string');
    expect(byString.text).toBe(decode(all.slice(0, all.indexOf(all[2]!))));
    expect((await generate(model, prompt, { maxNewTokens: 8, engine: 'recorded' })).tokens).toEqual(all);
  });

  it('samples reproducibly with a seed, the tokens the tfjs engine draws for it; top-k 1 is greedy', async () => {
    const options = {
      maxNewTokens: 8,
      temperature: 1.5,
      topK: 8,
      topP: 0.95,
      seed: 5,
      engine: 'recorded' as const,
    };
    const a = await generate(model, prompt, options);
    expect((await generate(model, prompt, options)).tokens).toEqual(a.tokens);
    expect((await generate(model, prompt, { ...options, engine: 'tfjs' })).tokens).toEqual(a.tokens);
    expect((await generate(model, prompt, { ...options, seed: 6 })).tokens).not.toEqual(a.tokens);
    const greedy = await generate(model, prompt, { maxNewTokens: 8, engine: 'recorded' });
    expect((await generate(model, prompt, { ...options, topK: 1 })).tokens).toEqual(greedy.tokens);
  });

  it('rejects a repetition penalty, an unknown engine, a long prompt and two sequences at once', async () => {
    await expect(
      generate(model, prompt, {
        maxNewTokens: 2,
        engine: 'recorded',
        temperature: 1,
        repetitionPenalty: 1.2,
      }),
    ).rejects.toThrow('the recorded engine has no repetition penalty');
    await expect(generate(model, prompt, { maxNewTokens: 2, engine: 'fast' as never })).rejects.toThrow(
      'engine must be "tfjs" or "recorded", got "fast"',
    );
    await expect(
      generate(model, new Array(17).fill(1), { maxNewTokens: 2, engine: 'recorded' }),
    ).rejects.toThrow('the prompt holds 17 tokens, more than max_seq_len 16');
    await recordedDecoderFor(model);
    const first = generate(model, prompt, { maxNewTokens: 4, engine: 'recorded' });
    await expect(generate(model, prompt, { maxNewTokens: 4, engine: 'recorded' })).rejects.toThrow(
      'decoding another sequence',
    );
    expect((await first).tokens).toHaveLength(4);
  });

  it('frees the decoder with the model', async () => {
    const config = tinyConfig({ maxSeqLen: 16 });
    const other = MPTModel.fromStateDict(config, initStateDict(config, 12));
    await generate(other, prompt, { maxNewTokens: 2, engine: 'recorded' });
    const decoder = await recordedDecoderFor(other);
    other.dispose();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(() => decoder.chooseFrom(new Float32Array(40), { greedy: true })).toThrow(
      'the recorded decoder is disposed',
    );
    await expect(generate(other, prompt, { maxNewTokens: 2, engine: 'recorded' })).rejects.toThrow(
      'the model is disposed',
    );
  });

  it('explains that it needs the webgpu backend', async () => {
    await selectBackend('cpu', { log: false });
    const config = tinyConfig({ maxSeqLen: 16 });
    const onCpu = MPTModel.fromStateDict(config, initStateDict(config, 11));
    await expect(generate(onCpu, prompt, { maxNewTokens: 2, engine: 'recorded' })).rejects.toThrow(
      'the recorded decode step runs on the webgpu backend, but the active backend is "cpu"',
    );
    onCpu.dispose();
    await selectBackend('webgpu', { log: false });
  });
});
