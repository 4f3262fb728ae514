// The scheduler over the recorded engine on webgpu (SwiftShader here) against the tfjs engine on the same model:
// concurrent seeded sampled sequences get the same tokens, and only the sequences that need their logits on the
// host (logprobs, a repetition penalty) read them back.
import { selectBackend } from '@mptjs/kernels';
import { initStateDict, MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import { webgpuExpected } from '@mptjs/test-fixtures';
import { beforeAll, describe, expect, it } from 'vitest';
import { Generation, type GenerationParams } from '../generation/generation.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { MptEngine } from './mpt-engine.js';
import { RecordedEngine } from './recorded-engine.js';
import type { Engine } from './types.js';

const config = parseMptConfig({
  model_type: 'mpt',
  d_model: 32,
  n_heads: 4,
  n_layers: 2,
  expansion_ratio: 2,
  max_seq_len: 32,
  vocab_size: 300,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true, alibi_bias_max: 8 },
});

const base = { maxNewTokens: 9, stopStrings: [], stopIds: [] };
const requests: { prompt: number[]; params: GenerationParams; host: boolean }[] = [
  { prompt: [5, 9, 200], params: { ...base, temperature: 1.4, seed: 1 }, host: false },
  { prompt: [17], params: { ...base, temperature: 0.9, topK: 30, seed: 2 }, host: false },
  { prompt: [1, 2, 3, 4, 5], params: { ...base, temperature: 1, topP: 0.85, seed: 3 }, host: false },
  { prompt: [250, 7], params: { ...base, temperature: 0, maxNewTokens: 6 }, host: false },
  { prompt: [33, 44], params: { ...base, temperature: 1.2, topK: 50, topP: 0.9, seed: 4 }, host: false },
  { prompt: [8, 8], params: { ...base, temperature: 1, seed: 5, logprobs: 2 }, host: true },
  { prompt: [60], params: { ...base, temperature: 1.1, seed: 6, repetitionPenalty: 1.3 }, host: true },
];

/** Every request through a scheduler of 4 sequences at once on `engine`: some wait and join later. */
async function serveAll(engine: Engine): Promise<number[][]> {
  const scheduler = new Scheduler(engine, { maxBatch: 4, maxQueue: 8 });
  const generations = requests.map((r) => new Generation(r.prompt, r.params, config.maxSeqLen, undefined));
  await scheduler.submit(generations);
  return generations.map((g) => {
    expect(g.finishReason).toBe('length');
    return g.ids;
  });
}

describe.runIf(webgpuExpected)('RecordedEngine under the scheduler on webgpu', () => {
  beforeAll(async () => {
    await selectBackend('webgpu', { log: false });
  });

  it('gives seeded sampled sequences the tfjs engine tokens, reading back logits only for host sampling', async () => {
    const weights = initStateDict(config, 11);
    const tfjs = new MptEngine(MPTModel.fromStateDict(config, weights));
    const want = await serveAll(tfjs);
    tfjs.dispose();
    const recorded = await RecordedEngine.create(MPTModel.fromStateDict(config, weights), 4);
    const got = await serveAll(recorded);
    expect(got).toEqual(want);
    // Sampled: the continuations are not the greedy ones (the greedy request is the only one of its prompt).
    expect(new Set(got.flat()).size).toBeGreaterThan(20);
    // The first token comes from the prefill logits; each later one is a decode row.
    const hostRows = requests.filter((r) => r.host).reduce((n, r) => n + (r.params.maxNewTokens - 1), 0);
    const allRows = requests.reduce((n, r) => n + (r.params.maxNewTokens - 1), 0);
    expect(recorded.stepStats).toMatchObject({ rows: allRows, logitRows: hostRows });
    recorded.dispose();
  }, 600_000);
});
