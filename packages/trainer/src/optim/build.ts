import type { OptimizerConfig } from '../config/schema.js';
import { DecoupledAdamW } from './decoupled-adamw.js';
import { DecoupledLionW } from './decoupled-lionw.js';
import type { Optimizer } from './optimizer.js';

export function buildOptimizer(cfg: OptimizerConfig): Optimizer {
  if (cfg.name === 'decoupled_adamw') {
    return new DecoupledAdamW({ lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weightDecay });
  }
  return new DecoupledLionW({ lr: cfg.lr, betas: cfg.betas, weightDecay: cfg.weightDecay });
}
