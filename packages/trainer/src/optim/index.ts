export { buildOptimizer } from './build.js';
export { clipByGlobalNorm, gradientCoefficient, gradSumOfSquares, unscaleAndClip } from './clip.js';
export { DecoupledAdamW, type DecoupledAdamWOptions } from './decoupled-adamw.js';
export { DecoupledLionW, type DecoupledLionWOptions } from './decoupled-lionw.js';
export type { Optimizer, OptimizerState, ParamWithGrad } from './optimizer.js';
export {
  type DecoupledOptimizerConfig,
  type OptimizerConfig,
  type OptimizerEntry,
  optimizerEntry,
  optimizers,
} from './registry.js';
