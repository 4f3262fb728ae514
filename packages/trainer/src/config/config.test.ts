import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DATASET_KEYS,
  MixerConfigError,
  mixerConfig,
  parseTrainLoader,
  STREAM_KEYS,
} from '@mptjs/data-mixer';
import { parseMptConfig } from '@mptjs/mpt-model';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { TrainConfigError } from './errors.js';
import { formatResolvedConfig, loadTrainConfig, parseTrainConfig } from './index.js';

// The shape of llm-foundry's scripts/train/yamls/pretrain/mpt-1b.yaml.
const MPT_1B = `
variables:
  data_local: ./my-copy-c4
  data_remote:
  max_seq_len: 2048
  global_seed: 17
  run_name: mpt-1b-test

max_seq_len: \${variables.max_seq_len}
run_name: \${variables.run_name}

model:
  name: mpt_causal_lm
  init_device: meta
  d_model: 2048
  n_heads: 16
  n_layers: 24
  expansion_ratio: 4
  max_seq_len: \${variables.max_seq_len}
  vocab_size: 50368
  no_bias: true
  attn_config:
    attn_impl: torch
    alibi: true
    qk_ln: true

tokenizer:
  name: EleutherAI/gpt-neox-20b
  kwargs:
    model_max_length: \${variables.max_seq_len}

train_loader:
  name: text
  dataset:
    local: \${variables.data_local}
    remote: \${variables.data_remote}
    split: train
    shuffle: true
    max_seq_len: \${variables.max_seq_len}
    shuffle_seed: \${variables.global_seed}
    streams:
      c4:
        local: data/c4
        proportion: 0.15
      cc:
        local: data/cc
        proportion: 0.67
  drop_last: true
  num_workers: 8

eval_loader:
  name: text
  dataset:
    local: \${variables.data_local}
    split: val_small
    shuffle: false
    max_seq_len: \${variables.max_seq_len}
  drop_last: false
  num_workers: 8

scheduler:
  name: cosine_with_warmup
  t_warmup: 100ba
  alpha_f: 0.1

optimizer:
  name: decoupled_adamw
  lr: 2.0e-4
  betas:
  - 0.9
  - 0.95
  eps: 1.0e-08
  weight_decay: 0.0

algorithms:
  gradient_clipping:
    clipping_type: norm
    clipping_threshold: 1.0

max_duration: 24800ba
eval_interval: 2000ba
eval_first: false
eval_subset_num_batches: -1
global_train_batch_size: 512

seed: \${variables.global_seed}
device_eval_batch_size: 16
device_train_microbatch_size: auto
precision: amp_bf16

fsdp_config:
  sharding_strategy: FULL_SHARD
  mixed_precision: PURE
  activation_checkpointing: false
  activation_checkpointing_reentrant: false
  activation_cpu_offload: false
  limit_all_gathers: true

progress_bar: false
log_to_console: true
console_log_interval: 1ba

callbacks:
  speed_monitor:
    window_size: 10
  lr_monitor: {}
  memory_monitor: {}
  runtime_estimator: {}
`;

describe('llm-foundry YAML', () => {
  it('parses the mpt-1b pretraining config with interpolation and defaults', () => {
    const { config, resolved } = parseTrainConfig(MPT_1B);
    expect(config.runName).toBe('mpt-1b-test');
    expect(config.seed).toBe(17);
    expect(config.trainLoader.dataset.maxSeqLen).toBe(2048);
    expect(config.trainLoader.dataset.shuffleSeed).toBe(17);
    expect(config.trainLoader.dataset.streams.map((s) => [s.name, s.proportion])).toEqual([
      ['c4', 0.15],
      ['cc', 0.67],
    ]);
    expect(config.evalLoader?.dataset.split).toBe('val_small');
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
    expect(config.scheduler.tMax).toEqual({ value: 1, unit: 'dur' });
    expect(config.maxDuration).toEqual({ value: 24800, unit: 'ba' });
    expect(config.deviceTrainMicrobatchSize).toBe('auto');
    expect(config.gradientClipping).toEqual({ clippingType: 'norm', clippingThreshold: 1 });
    expect(config.fsdpConfig?.['sharding_strategy']).toBe('FULL_SHARD');
    expect(config.tokenizer).toEqual({ name: 'EleutherAI/gpt-neox-20b', modelMaxLength: 2048 });
    // Interpolation keeps the referenced value's type.
    expect((resolved['model'] as Record<string, unknown>)['max_seq_len']).toBe(2048);
    // The printed config is the resolved one, and reads back to the same thing.
    const printed = formatResolvedConfig(resolved);
    expect(printed).not.toContain('${');
    expect(parseYaml(printed)).toEqual(resolved);
  });

  it('hands the model section to mpt-model as an llm-foundry mpt config', () => {
    const { config } = parseTrainConfig(MPT_1B);
    const mpt = parseMptConfig(config.model.mptConfig);
    expect(mpt).toMatchObject({
      modelType: 'mpt',
      dModel: 2048,
      nLayers: 24,
      alibi: true,
      qkLn: true,
      noBias: true,
      vocabSize: 50368,
    });
  });

  it('applies --set overrides as YAML scalars before interpolation', () => {
    const { config } = parseTrainConfig(MPT_1B, [
      'optimizer.lr=1e-3',
      'variables.max_seq_len=128',
      'device_train_microbatch_size=4',
      'eval_first=true',
      'optimizer.name=decoupled_lionw',
      'optimizer.eps=null',
    ]);
    expect(config.optimizer.lr).toBe(1e-3);
    expect(config.optimizer.name).toBe('decoupled_lionw');
    expect(config.trainLoader.dataset.maxSeqLen).toBe(128);
    expect(config.deviceTrainMicrobatchSize).toBe(4);
    expect(config.evalFirst).toBe(true);
  });

  it('defaults the loader like the data mixer does: stored order, shuffle_seed 9176', () => {
    const { config } = parseTrainConfig(MPT_1B, [
      'train_loader.dataset.shuffle_seed=null',
      'train_loader.dataset.shuffle=null',
    ]);
    expect(config.trainLoader.dataset.shuffleSeed).toBe(9176);
    expect(config.trainLoader.dataset.shuffle).toBe(false);
  });

  it('accepts every dataset and stream key the data mixer documents, checking the ones it reads', () => {
    const { config } = parseTrainConfig(MPT_1B, [
      'train_loader.dataset.on_bad_record=skip',
      'train_loader.dataset.text_field=body',
      'train_loader.dataset.shuffle_block_size=64',
      'train_loader.dataset.streams.c4.text_field=content',
      'train_loader.dataset.allow_unsafe_types=false',
      'train_loader.dataset.epoch_size=1000',
      'eval_loader.dataset.on_bad_record=fail',
    ]);
    expect(config.trainLoader.dataset.onBadRecord).toBe('skip');
    expect(config.trainLoader.dataset.textField).toBe('body');
    expect(config.trainLoader.dataset.streams.find((s) => s.name === 'c4')!.textField).toBe('content');
    expect(config.evalLoader!.dataset.onBadRecord).toBe('fail');
    for (const key of DATASET_KEYS) {
      expect(() => parseTrainConfig(MPT_1B, [`train_loader.dataset.${key}=null`]), key).not.toThrow();
    }
    for (const key of STREAM_KEYS) {
      if (key === 'local') continue;
      // Proportions go on every stream or none (the mixer's rule, checked at load): null both streams' at once.
      const streams = key === 'proportion' ? ['c4', 'cc'] : ['c4'];
      expect(
        () =>
          parseTrainConfig(
            MPT_1B,
            streams.map((s) => `train_loader.dataset.streams.${s}.${key}=null`),
          ),
        key,
      ).not.toThrow();
    }
    const preset = parseTrainConfig(MPT_1B, [
      'train_loader.dataset.streams=null',
      'train_loader.dataset.preset=redpajama',
      'train_loader.dataset.root=/data/rp',
    ]).config;
    expect(preset.trainLoader.dataset.preset).toEqual({ name: 'redpajama', root: '/data/rp' });
    expect(() => parseTrainConfig(MPT_1B, ['train_loader.dataset.on_bad_record=ignore'])).toThrow(
      'config key "train_loader.dataset.on_bad_record" must be one of "fail", "skip", got "ignore"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['train_loader.dataset.preset=redpajama'])).toThrow(
      'config key "train_loader.dataset.preset" needs "train_loader.dataset.root"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['train_loader.dataset.shuffle_block_size=0'])).toThrow(
      'config key "train_loader.dataset.shuffle_block_size" must be an integer >= 1, got 0',
    );
  });

  it("validates loader datasets once, at load, by the data mixer's rules in this config's words", () => {
    const refuses = (overrides: string[], message: string) => {
      const err = (() => {
        try {
          parseTrainConfig(MPT_1B, overrides);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, overrides.join(' ')).toBeInstanceOf(TrainConfigError);
      expect((err as Error).message).toBe(message);
      expect((err as Error).cause).toBeInstanceOf(MixerConfigError);
    };
    // Weights of 0 used to pass here and fail only when the mixer opened.
    refuses(
      ['train_loader.dataset.streams.c4.proportion=0'],
      'config key "train_loader.dataset.streams.c4.proportion" must be a positive number, got 0',
    );
    refuses(
      ['train_loader.dataset.streams.c4.proportion=null', 'train_loader.dataset.streams.c4.repeat=0'],
      'config key "train_loader.dataset.streams.c4.repeat" must be a positive number, got 0',
    );
    refuses(
      ['train_loader.dataset.streams.c4.proportion=null', 'train_loader.dataset.streams.c4.choose=0'],
      'config key "train_loader.dataset.streams.c4.choose" must be an integer >= 1, got 0',
    );
    refuses(
      ['train_loader.dataset.streams.c4.proportion=null'],
      'config key "train_loader.dataset.streams": proportion given for some streams but not for c4',
    );
    refuses(
      ['train_loader.dataset.streams.c4.repeat=2'],
      'config key "train_loader.dataset.streams.c4": give only one of proportion, repeat, choose (got proportion, repeat)',
    );
    refuses(['train_loader.dataset.streams={}'], 'config key "train_loader.dataset.streams" is empty');
    refuses(
      ['train_loader.dataset.streams.c4.local=""'],
      'config key "train_loader.dataset.streams.c4.local" must be a directory path, got ""',
    );
    refuses(
      ['train_loader.dataset.streams.c4.split=3'],
      'config key "train_loader.dataset.streams.c4.split" must be a string, got 3',
    );
    refuses(
      ['train_loader.dataset.streams.c4=[1]'],
      'config key "train_loader.dataset.streams.c4" must be a section (a mapping), got [1]',
    );
    refuses(['train_loader.dataset=null'], 'config key "train_loader.dataset" is required');
    // eval_loader is read by the same rules, and its errors name eval_loader.
    refuses(['eval_loader.dataset.shufle=true'], 'unknown config key "eval_loader.dataset.shufle"');
    refuses(
      ['eval_loader.dataset.shuffle=1'],
      'config key "eval_loader.dataset.shuffle" must be true or false, got 1',
    );
    // A remote alone used to pass here; nothing is downloaded, so the mixer needs local data.
    refuses(
      ['eval_loader.dataset.local=null', 'eval_loader.dataset.remote=s3://bucket/c4'],
      'config key "eval_loader.dataset" needs "streams", "local" or "preset"',
    );
    refuses(
      ['train_loader.dataset.root=/data/rp'],
      'config key "train_loader.dataset.root" is only used with "train_loader.dataset.preset"',
    );
    refuses(
      ['train_loader.dataset.preset=pile', 'train_loader.dataset.root=/data/pile'],
      'config key "train_loader.dataset.preset" must be one of "redpajama", got "pile"',
    );
  });

  it('opens the mixer on what the data mixer parses from the same section', () => {
    const { config, resolved } = parseTrainConfig(MPT_1B, ['train_loader.dataset.text_field=body']);
    expect(mixerConfig(config.trainLoader.dataset)).toEqual(parseTrainLoader(resolved['train_loader'], 2048));
    expect(mixerConfig(config.evalLoader!.dataset)).toEqual(
      parseTrainLoader(resolved['eval_loader'], 2048, 'eval_loader'),
    );
    expect(mixerConfig(config.evalLoader!.dataset).streams).toEqual([
      { name: 'default', local: './my-copy-c4', split: 'val_small' },
    ]);
  });

  it('refuses --set through __proto__, which would otherwise change Object.prototype', () => {
    expect(() => parseTrainConfig(MPT_1B, ['__proto__.polluted=1'])).toThrow(
      'override "__proto__.polluted=1": "__proto__" is not a config key',
    );
    expect(() => parseTrainConfig(MPT_1B, ['model.__proto__.polluted=1'])).toThrow(TrainConfigError);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // Inherited members are not keys either.
    expect(() => parseTrainConfig(MPT_1B, [`run_name=\${constructor}`])).toThrow(
      `config key "run_name": interpolation "\${constructor}" refers to a key that does not exist`,
    );
  });

  it('refuses an unresolved YAML tag instead of reading it as a string', () => {
    expect(() => parseTrainConfig(MPT_1B, ['run_name=!foo bar'])).toThrow(
      'override "run_name=!foo bar": value is not valid YAML (Unresolved tag: !foo',
    );
    expect(() => parseTrainConfig(`${MPT_1B}\nmetadata: !python/object {a: 1}\n`)).toThrow(
      'config: invalid YAML: Unresolved tag: !python/object',
    );
  });

  it('refuses a YAML alias inside its own anchor instead of overflowing the stack', () => {
    expect(() =>
      parseTrainConfig(`${MPT_1B}
metadata: &loop {again: *loop}
`),
    ).toThrow('config key "metadata.again" contains itself (a YAML alias inside its own anchor)');
    expect(() => parseTrainConfig(MPT_1B, ['max_duration=&a [*a]'])).toThrow(
      'config key "max_duration[0]" contains itself',
    );
  });

  it('names the full path of an unknown key', () => {
    expect(() => parseTrainConfig(MPT_1B, ['optimizer.betaz=1'])).toThrow(
      'unknown config key "optimizer.betaz"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['model.attn_config.alibi_bias=2'])).toThrow(
      'unknown config key "model.attn_config.alibi_bias"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['train_loader.dataset.streams.c4.proportoin=1'])).toThrow(
      'unknown config key "train_loader.dataset.streams.c4.proportoin"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['algorithms.alibi={}'])).toThrow(
      'unknown config key "algorithms.alibi"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['max_durations=1ba'])).toThrow(
      'unknown config key "max_durations"',
    );
  });

  it('rejects bad values with the key and the value', () => {
    expect(() => parseTrainConfig(MPT_1B, ['max_duration=10ep'])).toThrow(
      'config key "max_duration" must be a duration like "100ba", "1000tok", "64sp" or "0.5dur", got "10ep"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['optimizer.name=adam'])).toThrow(
      'config key "optimizer.name" must be one of',
    );
    expect(() => parseTrainConfig(MPT_1B, ['optimizer.betas=[0.9]'])).toThrow(
      'config key "optimizer.betas" must be a list of two numbers',
    );
    expect(() => parseTrainConfig(MPT_1B, ['device_train_microbatch_size=0'])).toThrow(
      'config key "device_train_microbatch_size" must be an integer >= 1 or "auto", got 0',
    );
    expect(() => parseTrainConfig(MPT_1B, ['device_train_microbatch_size=1024'])).toThrow(
      'exceeds "global_train_batch_size"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['scheduler.t_warmup=null'])).toThrow(
      'config key "scheduler.t_warmup" is required',
    );
    expect(() => parseTrainConfig(MPT_1B, ['optimizer.lr=fast'])).toThrow(
      'config key "optimizer.lr" must be a positive number, got "fast"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['fsdp_config.sharding_strategy=HYBRID'])).toThrow(
      'config key "fsdp_config.sharding_strategy" must be one of "FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", got "HYBRID"',
    );
    expect(() => parseTrainConfig(MPT_1B, ['bad-override'])).toThrow(
      'override "bad-override" must look like key.path=value',
    );
  });

  it('reports dangling and cyclic interpolations', () => {
    expect(() => parseTrainConfig(MPT_1B, [`run_name=\${variables.nope}`])).toThrow(
      `config key "run_name": interpolation "\${variables.nope}" refers to a key that does not exist`,
    );
    expect(() => parseTrainConfig(`a: \${b}\nb: \${a}\n`)).toThrow('interpolation cycle');
  });

  it('resolves a bare name from the top level, then from variables, and splices into strings', () => {
    const { config } = parseTrainConfig(MPT_1B, [
      `run_name=run-\${global_seed}-\${max_seq_len}`,
      'variables.global_seed=5',
    ]);
    expect(config.runName).toBe('run-5-2048');
  });

  it('loads from a file and reports unreadable files and bad YAML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-config-'));
    const path = join(dir, 'c.yaml');
    writeFileSync(path, MPT_1B);
    expect(loadTrainConfig(path, ['seed=3']).config.seed).toBe(3);
    expect(() => loadTrainConfig(join(dir, 'missing.yaml'))).toThrow(/cannot read config .*missing\.yaml/);
    writeFileSync(path, 'a: [1, 2');
    expect(() => loadTrainConfig(path)).toThrow(/invalid YAML/);
  });
});
