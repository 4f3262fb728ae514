import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import { TINY_VOCAB_SIZE, writeTinyRun, writeTinyTokenizer } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { loadTrainConfig } from './config/load.js';
import { readMetrics } from './metrics/metrics-log.js';
import { train } from './trainer.js';

async function trainQuietly(configPath: string, runDir: string, overrides: string[]) {
  const { config } = loadTrainConfig(configPath, overrides);
  await train({ config, runDir, backend: 'wasm', log: () => {} });
  return readMetrics(join(runDir, 'metrics.jsonl')).filter((r) => 'loss' in r) as {
    step: number;
    loss: number;
    grad_norm: number;
  }[];
}

describe('train() learns (tiny MPT, wasm)', () => {
  it('a 1-layer model memorizes a tiny corpus (loss under 0.1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-memorize-'));
    writeTinyTokenizer(join(dir, 'tokenizer.json'));
    // Two short documents; every token's successor is fixed by the token itself or the one before.
    mkdirSync(join(dir, 'data/train'), { recursive: true });
    const docs = ['ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789.,;:!?-+*/=#@%&'];
    writeFileSync(
      join(dir, 'data/train/data.jsonl'),
      `${docs.map((text) => JSON.stringify({ text })).join('\n')}\n`,
    );
    writeFileSync(
      join(dir, 'config.yaml'),
      `
seed: 3
model:
  name: mpt_causal_lm
  d_model: 32
  n_heads: 2
  n_layers: 1
  expansion_ratio: 4
  max_seq_len: 16
  vocab_size: ${TINY_VOCAB_SIZE}
  no_bias: true
  attn_config: { alibi: true }
tokenizer: { name: ${join(dir, 'tokenizer.json')} }
train_loader:
  name: text
  dataset: { local: ${join(dir, 'data')}, split: train, max_seq_len: 16, shuffle: true, shuffle_seed: 5 }
optimizer: { name: decoupled_adamw, lr: 1.0e-2, betas: [0.9, 0.99], eps: 1.0e-8, weight_decay: 0 }
scheduler: { name: constant_with_warmup, t_warmup: 0ba }
max_duration: 80ba
global_train_batch_size: 8
save_interval: 1000ba
eval_interval: 1000ba
`,
    );
    const steps = await trainQuietly(join(dir, 'config.yaml'), join(dir, 'run'), []);
    expect(steps).toHaveLength(80);
    expect(steps[0]!.loss).toBeGreaterThan(4);
    const last = steps.slice(-5).map((s) => s.loss);
    expect(Math.max(...last)).toBeLessThan(0.1);
  }, 30_000);

  it('gradient accumulation: 4 microbatches of 2 take the same step as 1 of 8', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-accum-'));
    const configPath = writeTinyRun(dir);
    const common = [
      'max_duration=1ba',
      'global_train_batch_size=8',
      'scheduler={name: constant_with_warmup, t_warmup: 0ba}',
      'optimizer.lr=1.0e-3',
      'save_interval=1000ba',
      'eval_interval=1000ba',
    ];
    const whole = await trainQuietly(configPath, join(dir, 'whole'), [
      ...common,
      'device_train_microbatch_size=8',
    ]);
    const micro = await trainQuietly(configPath, join(dir, 'micro'), [
      ...common,
      'device_train_microbatch_size=2',
    ]);
    expect(whole).toHaveLength(1);
    expect(micro).toHaveLength(1);
    expect(Math.abs(micro[0]!.loss - whole[0]!.loss)).toBeLessThan(1e-5);
    expect(Math.abs(micro[0]!.grad_norm - whole[0]!.grad_norm)).toBeLessThan(1e-5);
    const a = await loadCheckpoint(join(dir, 'whole/export'));
    const b = await loadCheckpoint(join(dir, 'micro/export'));
    // The step moved the weights (from the seeded init both runs start at) by far more than they differ.
    const { config } = loadTrainConfig(configPath, common);
    const initModel = MPTModel.init(parseMptConfig(config.model.mptConfig), config.seed);
    const init = { stateDict: await initModel.toStateDict() };
    initModel.dispose();
    let maxDiff = 0;
    let moved = 0;
    for (const [name, t] of a.stateDict) {
      const x = t.data as Float32Array;
      const y = b.stateDict.get(name)!.data as Float32Array;
      const x0 = init.stateDict.get(name)!.data as Float32Array;
      for (let i = 0; i < x.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
        moved = Math.max(moved, Math.abs(x[i]! - x0[i]!));
      }
    }
    expect(maxDiff).toBeLessThan(1e-5);
    expect(moved).toBeGreaterThan(5e-4);
  }, 30_000);
});
