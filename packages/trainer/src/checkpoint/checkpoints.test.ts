import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initStateDict, parseMptConfig } from '@mptjs/mpt-model';
import { describe, expect, it } from 'vitest';
import { MetricsLog, readMetrics } from '../metrics/metrics-log.js';
import type { TrainingCheckpoint } from './checkpoints.js';
import { loadLatestCheckpoint, pruneCheckpoints, saveTrainingCheckpoint } from './checkpoints.js';

const config = parseMptConfig({
  model_type: 'mpt',
  d_model: 16,
  n_heads: 2,
  n_layers: 1,
  max_seq_len: 8,
  vocab_size: 40,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true },
});

function checkpoint(batches: number): TrainingCheckpoint {
  const stateDict = initStateDict(config, batches);
  const w = stateDict.get('transformer.wte.weight')!;
  return {
    config,
    stateDict,
    optimizer: {
      name: 'decoupled_adamw',
      step: batches,
      slots: {
        'transformer.wte.weight': {
          exp_avg: { shape: w.shape, data: w.data.map((x) => x * 0.5) },
          exp_avg_sq: { shape: w.shape, data: w.data.map((x) => x * x) },
        },
      },
    },
    state: {
      version: 1,
      runName: 't',
      timestamp: { batches, samples: batches * 2, tokens: batches * 16 },
      data: { version: 1, sample: batches * 2, streams: { a: { file: 0, doc: 3 } } },
      rng: { seed: 5 },
      elapsedS: 1.5,
      worldSize: 1,
    },
  };
}

describe('training checkpoints', () => {
  it('round-trips model, optimizer slots and state exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-ckpt-'));
    expect(await loadLatestCheckpoint(dir)).toBeUndefined();
    const saved = checkpoint(3);
    expect(await saveTrainingCheckpoint(dir, saved)).toBe('ba00000003');
    const loaded = (await loadLatestCheckpoint(dir))!;
    expect(loaded.name).toBe('ba00000003');
    expect(loaded.state).toEqual(saved.state);
    expect(loaded.optimizer.name).toBe('decoupled_adamw');
    expect(loaded.optimizer.step).toBe(3);
    expect(loaded.optimizer.slots).toEqual(saved.optimizer.slots);
    for (const [name, t] of saved.stateDict!) expect(loaded.stateDict.get(name)!.data).toEqual(t.data);
  });

  it('ignores and removes what a crashed writer left, keeping the previous checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-ckpt-'));
    await saveTrainingCheckpoint(dir, checkpoint(2));
    // A writer killed mid-way leaves a half-filled temporary directory and a temp pointer file.
    mkdirSync(join(dir, '.tmp-ba00000004-999'));
    writeFileSync(join(dir, '.tmp-ba00000004-999/model.safetensors'), 'torn');
    writeFileSync(join(dir, '.latest.999.tmp'), 'ba000');
    const loaded = (await loadLatestCheckpoint(dir))!;
    expect(loaded.name).toBe('ba00000002');
    expect(readdirSync(dir).sort()).toEqual(['ba00000002', 'latest']);
  });

  it('prunes to the newest N, never the one latest names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-ckpt-'));
    for (const b of [1, 2, 3, 4]) await saveTrainingCheckpoint(dir, checkpoint(b));
    expect(await pruneCheckpoints(dir, -1)).toEqual([]);
    expect(await pruneCheckpoints(dir, 2)).toEqual(['ba00000001', 'ba00000002']);
    expect(readdirSync(dir).sort()).toEqual(['ba00000003', 'ba00000004', 'latest']);
    writeFileSync(join(dir, 'latest'), 'ba00000003\n');
    expect(await pruneCheckpoints(dir, 0)).toEqual(['ba00000004']);
    expect(existsSync(join(dir, 'ba00000003'))).toBe(true);
  });
});

describe('metrics log', () => {
  it('drops lines past the resumed step and lines torn by a crash', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-metrics-'));
    const log = new MetricsLog(join(dir, 'metrics.jsonl'));
    for (const step of [1, 2, 3, 4]) log.write({ step, loss: step });
    log.write({ step: 3, eval_loss: 1 });
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step": 5, "lo', { flag: 'a' });
    log.truncateAfter(3);
    expect(readMetrics(join(dir, 'metrics.jsonl'))).toEqual([
      { step: 1, loss: 1 },
      { step: 2, loss: 2 },
      { step: 3, loss: 3 },
      { step: 3, eval_loss: 1 },
    ]);
  });
});
