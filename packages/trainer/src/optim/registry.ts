import { TrainConfigError } from '../config/errors.js';
import { Registry } from '../config/registry.js';
import { nonNegative, positive, type Section, unitInterval } from '../config/section.js';
import { DecoupledAdamW } from './decoupled-adamw.js';
import { DecoupledLionW } from './decoupled-lionw.js';
import type { Optimizer } from './optimizer.js';

/** The `optimizer` section, validated by the entry its `name` chose; each entry adds its own keys. */
export interface OptimizerConfig {
  name: string;
  /** The peak learning rate (Composer's `initial_lr`); the schedule scales it each step. */
  lr: number;
}

/** Composer's decoupled AdamW and LionW (LionW ignores `eps`). */
export interface DecoupledOptimizerConfig extends OptimizerConfig {
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** One optimizer: reads its own keys of the `optimizer` section (not `name`) and builds the optimizer. */
export interface OptimizerEntry<C extends OptimizerConfig = OptimizerConfig> {
  read(s: Section, name: string): C;
  build(cfg: C): Optimizer;
}

/** An entry with its own config type, stored beside the others: the registry only hands it configs it read. */
export function optimizerEntry<C extends OptimizerConfig>(entry: OptimizerEntry<C>): OptimizerEntry {
  return entry as unknown as OptimizerEntry;
}

function readBetas(s: Section, fallback: [number, number]): [number, number] {
  const raw = s.raw('betas');
  if (raw === undefined) return fallback;
  if (
    !Array.isArray(raw) ||
    raw.length !== 2 ||
    !raw.every((b) => typeof b === 'number' && unitInterval(b))
  ) {
    s.fail('betas', 'a list of two numbers in [0, 1)');
  }
  return [raw[0] as number, raw[1] as number];
}

/** Composer's decoupled optimizers, with Composer's defaults. */
export const optimizers = new Registry<OptimizerEntry>('optimizer')
  .register(
    'decoupled_adamw',
    optimizerEntry<DecoupledOptimizerConfig>({
      read: (s, name) => ({
        name,
        lr: s.num('lr', positive, 'a positive number') ?? 1e-3,
        betas: readBetas(s, [0.9, 0.95]),
        eps: s.num('eps', positive, 'a positive number') ?? 1e-8,
        weightDecay: s.num('weight_decay', nonNegative, 'a number >= 0') ?? 1e-5,
      }),
      build: (cfg) =>
        new DecoupledAdamW({ lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weightDecay }),
    }),
  )
  .register(
    'decoupled_lionw',
    optimizerEntry<DecoupledOptimizerConfig>({
      read: (s, name) => {
        const cfg = {
          name,
          lr: s.num('lr', positive, 'a positive number') ?? 1e-4,
          betas: readBetas(s, [0.9, 0.99]),
          eps: s.num('eps', positive, 'a positive number') ?? 1e-8,
          weightDecay: s.num('weight_decay', nonNegative, 'a number >= 0') ?? 0,
        };
        if (s.has('eps'))
          throw new TrainConfigError(`config key "${s.key('eps')}" does not apply to decoupled_lionw`);
        return cfg;
      },
      build: (cfg) => new DecoupledLionW({ lr: cfg.lr, betas: cfg.betas, weightDecay: cfg.weightDecay }),
    }),
  );
