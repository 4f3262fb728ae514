import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectedParameterShapes, parseMptConfig } from '@mptjs/mpt-model';
import { convertDuration, loadTrainConfig } from '@mptjs/trainer';
import { describe, expect, it } from 'vitest';

const YAMLS = join(dirname(fileURLToPath(import.meta.url)), '../../yamls');
const PATHS = ['variables.data_local=/data/here', 'variables.tokenizer=/models/neox/tokenizer.json'];

function parameterCount(mpt: Parameters<typeof parseMptConfig>[0]): number {
  let n = 0;
  for (const shape of expectedParameterShapes(parseMptConfig(mpt)).values())
    n += shape.reduce((a, b) => a * b, 1);
  return n;
}

describe('config presets (apps/train/yamls)', () => {
  const presets = readdirSync(YAMLS).filter((f) => f.endsWith('.yaml'));

  it('holds the 1b and 125m presets, and not a copy of the demo', () => {
    expect(presets.sort()).toEqual(['mpt-125m.yaml', 'mpt-1b-redpajama-200b.yaml']);
  });

  it.each(presets)('%s parses, validates and takes the path overrides', (file) => {
    const { config } = loadTrainConfig(join(YAMLS, file), PATHS);
    expect(config.tokenizer.name).toBe('/models/neox/tokenizer.json');
    const locals = [
      config.trainLoader.dataset.local,
      ...config.trainLoader.dataset.streams.map((s) => s.local),
      config.evalLoader?.dataset.local,
    ].filter((l) => l !== undefined);
    expect(locals.length).toBeGreaterThan(0);
    for (const l of locals) expect(l).toMatch(/^\/data\/here(\/|$)/);
    expect(() => parseMptConfig(config.model.mptConfig)).not.toThrow();
    expect(config.globalTrainBatchSize % (config.deviceTrainMicrobatchSize as number)).toBe(0);
  });

  it('mpt-1b-redpajama-200b is the real shape, mix and recipe (1,311,442,944 parameters)', () => {
    const { config } = loadTrainConfig(join(YAMLS, 'mpt-1b-redpajama-200b.yaml'), PATHS);
    const m = config.model.mptConfig as Record<string, unknown>;
    expect(m).toMatchObject({
      d_model: 2048,
      n_heads: 16,
      n_layers: 24,
      expansion_ratio: 4,
      max_seq_len: 2048,
      vocab_size: 50432,
      no_bias: true,
      attn_config: { alibi: true, qk_ln: true },
    });
    expect(parameterCount(config.model.mptConfig)).toBe(1_311_442_944);
    expect(
      Object.fromEntries(config.trainLoader.dataset.streams.map((s) => [s.name, [s.proportion, s.local]])),
    ).toEqual({
      common_crawl: [0.67, '/data/here/common_crawl'],
      c4: [0.15, '/data/here/c4'],
      github: [0.045, '/data/here/github'],
      wikipedia: [0.045, '/data/here/wikipedia'],
      books: [0.045, '/data/here/books'],
      arxiv: [0.025, '/data/here/arxiv'],
      stackexchange: [0.02, '/data/here/stackexchange'],
    });
    expect(config.globalTrainBatchSize).toBe(2200);
    expect(config.optimizer).toEqual({
      name: 'decoupled_adamw',
      lr: 2e-4,
      betas: [0.9, 0.95],
      eps: 1e-8,
      weightDecay: 0,
    });
    expect(config.scheduler).toMatchObject({
      name: 'cosine_with_warmup',
      tWarmup: { value: 100, unit: 'ba' },
      alphaF: 0.1,
    });
    expect(config.gradientClipping).toEqual({ clippingType: 'norm', clippingThreshold: 1 });
    expect(config.fsdpConfig?.['sharding_strategy']).toBe('FULL_SHARD');
    expect(config.maxDuration).toEqual({ value: 200e9, unit: 'tok' });
    const geometry = { batchSize: 2200, seqLen: 2048 };
    expect(Math.round(convertDuration(config.maxDuration, 'ba', config.maxDuration, geometry))).toBe(44389);
  });

  it('mpt-125m is d_model 768, 12 heads, 12 layers', () => {
    const { config } = loadTrainConfig(join(YAMLS, 'mpt-125m.yaml'), PATHS);
    expect(config.model.mptConfig).toMatchObject({ d_model: 768, n_heads: 12, n_layers: 12 });
    expect(parameterCount(config.model.mptConfig)).toBe(125_311_488);
  });
});
