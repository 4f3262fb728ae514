// The registries behind the config schema: a section's `name` picks an entry, the entry validates the rest of the
// section and builds the thing, and a new optimizer or schedule is one `register` call.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@mptjs/kernels';
import { writeTinyRun } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loaders } from '../data/loaders.js';
import { buildOptimizer } from '../optim/build.js';
import type { Optimizer, OptimizerState, ParamWithGrad } from '../optim/optimizer.js';
import { type OptimizerConfig, optimizerEntry, optimizers } from '../optim/registry.js';
import { schedulers } from '../schedule/registry.js';
import { scheduleMultiplier } from '../schedule/schedulers.js';
import { TrainConfigError } from './errors.js';
import { parseTrainConfig } from './load.js';
import { Registry } from './registry.js';
import { positive } from './section.js';

const yaml = readFileSync(writeTinyRun(mkdtempSync(join(tmpdir(), 'mptjs-registry-'))), 'utf8');

describe('Registry', () => {
  it('keeps entries in registration order, refuses a name twice and names the registered ones', () => {
    const r = new Registry<number>('widget').register('a', 1).register('b', 2);
    expect(r.names()).toEqual(['a', 'b']);
    expect(r.get('b')).toBe(2);
    expect(r.has('c')).toBe(false);
    expect(() => r.register('a', 3)).toThrow('widget "a" is already registered');
    expect(() => r.get('c')).toThrow(TrainConfigError);
    expect(() => r.get('c')).toThrow('no widget named "c" (registered: a, b)');
  });

  it('holds the optimizers, schedulers and data loaders the config can name', () => {
    expect(optimizers.names()).toEqual(['decoupled_adamw', 'decoupled_lionw']);
    expect(schedulers.names()).toEqual([
      'cosine_with_warmup',
      'linear_decay_with_warmup',
      'constant_with_warmup',
    ]);
    expect(loaders.names()).toEqual(['text']);
  });
});

describe('config sections chosen by name', () => {
  it('lists the registered names when a section names an unknown one', () => {
    expect(() => parseTrainConfig(yaml, ['optimizer.name=adam'])).toThrow(
      'config key "optimizer.name" must be one of "decoupled_adamw", "decoupled_lionw", got "adam"',
    );
    expect(() => parseTrainConfig(yaml, ['scheduler.name=step'])).toThrow(
      'config key "scheduler.name" must be one of "cosine_with_warmup", "linear_decay_with_warmup", "constant_with_warmup", got "step"',
    );
    expect(() => parseTrainConfig(yaml, ['train_loader.name=finetuning'])).toThrow(
      'config key "train_loader.name" must be one of "text", got "finetuning"',
    );
    expect(() => parseTrainConfig(yaml, ['optimizer.name=null'])).toThrow(
      'config key "optimizer.name" is required',
    );
  });

  it("validates each section with its entry's keys: what one optimizer takes another refuses", () => {
    expect(() => parseTrainConfig(yaml, ['optimizer.name=decoupled_lionw', 'optimizer.eps=1e-6'])).toThrow(
      'config key "optimizer.eps" does not apply to decoupled_lionw',
    );
    expect(() =>
      parseTrainConfig(yaml, ['scheduler.name=constant_with_warmup', 'scheduler.alpha=0.5']),
    ).not.toThrow();
    expect(() =>
      parseTrainConfig(yaml, ['scheduler.name=cosine_with_warmup', 'scheduler.alpha=0.5']),
    ).toThrow('unknown config key "scheduler.alpha"');
    expect(parseTrainConfig(yaml, ['train_loader.name=null']).config.trainLoader.name).toBe('text');
    // The text loader's streams are the data mixer's StreamConfig: each needs its local directory.
    expect(() => parseTrainConfig(yaml, ['train_loader.dataset.streams.web.local=null'])).toThrow(
      'config key "train_loader.dataset.streams.web.local" is required',
    );
  });

  it('takes a new optimizer from one registry entry: its keys validated, built by name', async () => {
    interface SgdConfig extends OptimizerConfig {
      momentum: number;
    }
    /** Plain SGD, p -= lr g: enough to show the entry is what the trainer builds. */
    class Sgd implements Optimizer {
      readonly name = 'sgd';
      constructor(readonly initialLr: number) {}
      step(entries: readonly ParamWithGrad[], lr: number): void {
        for (const e of entries) e.param.assign(tf.tidy(() => tf.sub(e.param, tf.mul(e.grad, lr))));
        this.steps++;
      }
      private steps = 0;
      async state(): Promise<OptimizerState> {
        return { name: this.name, step: this.steps, slots: {} };
      }
      loadState(): void {}
      dispose(): void {}
    }
    optimizers.register(
      'sgd',
      optimizerEntry<SgdConfig>({
        read: (s, name) => ({
          name,
          lr: s.num('lr', positive, 'a positive number') ?? 0.1,
          momentum: s.num('momentum') ?? 0,
        }),
        build: (cfg) => new Sgd(cfg.lr),
      }),
    );
    const { config } = parseTrainConfig(yaml, ['optimizer={name: sgd, lr: 0.5, momentum: 0}']);
    expect(config.optimizer).toEqual({ name: 'sgd', lr: 0.5, momentum: 0 });
    expect(() => parseTrainConfig(yaml, ['optimizer={name: sgd, betas: [0.9, 0.95]}'])).toThrow(
      'unknown config key "optimizer.betas"',
    );
    expect(() => parseTrainConfig(yaml, ['optimizer.name=adam'])).toThrow(
      'must be one of "decoupled_adamw", "decoupled_lionw", "sgd", got "adam"',
    );
    await selectBackend('cpu', { log: false });
    const opt = buildOptimizer(config.optimizer);
    expect(opt).toBeInstanceOf(Sgd);
    const param = tf.variable(tf.tensor1d([1, 2]));
    opt.step([{ name: 'w', param, grad: tf.tensor1d([2, -2]) }], 0.25);
    expect(Array.from(await param.data())).toEqual([0.5, 2.5]);
    expect((await opt.state()).step).toBe(1);
    param.dispose();
  });

  it('takes a new schedule from one registry entry', () => {
    schedulers.register('linear_warmup_then_half', {
      read: (s, name) => ({
        name,
        tWarmup: s.required('t_warmup', (sec, k) => sec.duration(k)),
        tMax: { value: 1, unit: 'dur' },
        alphaF: 0.5,
        alphaI: 1,
      }),
      decay: (cfg) => cfg.alphaF,
    });
    const { config } = parseTrainConfig(yaml, ['scheduler={name: linear_warmup_then_half, t_warmup: 2ba}']);
    const geometry = { batchSize: 4, seqLen: 32 };
    const at = (batches: number) => ({ batches, samples: 4 * batches, tokens: 128 * batches });
    expect(scheduleMultiplier(config.scheduler, at(1), config.maxDuration, geometry)).toBe(0.5);
    expect(scheduleMultiplier(config.scheduler, at(3), config.maxDuration, geometry)).toBe(0.5);
    expect(() =>
      parseTrainConfig(yaml, ['scheduler={name: linear_warmup_then_half, t_warmup: 2ba, alpha_f: 0}']),
    ).toThrow('unknown config key "scheduler.alpha_f"');
  });
});
