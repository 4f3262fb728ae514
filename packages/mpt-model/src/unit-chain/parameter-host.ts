import type * as tf from '@tensorflow/tfjs-core';
import type { UnitHooks } from './unit.js';

/**
 * What the training loop needs from whoever holds the parameters: the unit hooks, the gradients accumulated over
 * a batch, and the tensors the optimizer updates. `LocalParameters` is the single-device host; an FSDP host
 * returns flat local shards from both `takeGradients` and `optimizerParameters`, under the same names, and
 * all-reduces the squared gradient norm in `globalSumOfSquares`.
 */
export interface ParameterHost<C = unknown> extends UnitHooks<C> {
  takeGradients(): Map<string, tf.Tensor>;
  optimizerParameters(): ReadonlyMap<string, tf.Variable>;
  /** Sum of squares of the gradients over all ranks, given this rank's share. */
  globalSumOfSquares?(local: number): Promise<number>;
}
