import type { Optimizer } from './optimizer.js';
import { type OptimizerConfig, optimizers } from './registry.js';

/** The optimizer the config's `optimizer.name` registered. */
export function buildOptimizer(cfg: OptimizerConfig): Optimizer {
  return optimizers.get(cfg.name).build(cfg);
}
