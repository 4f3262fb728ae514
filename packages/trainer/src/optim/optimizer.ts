import type { HostTensor } from '@mptjs/mpt-model';
import type * as tf from '@tensorflow/tfjs-core';

/** One parameter the optimizer updates: a whole tensor, or a flat local shard handed over by FSDP. */
export interface ParamWithGrad {
  /** Stable name; the optimizer's per-parameter state is keyed by it. */
  name: string;
  param: tf.Variable;
  grad: tf.Tensor;
}

/** Everything needed to continue optimizing exactly where a run stopped. */
export interface OptimizerState {
  name: string;
  /** Number of `step` calls made so far (Adam's bias correction uses it). */
  step: number;
  /** Per parameter name, its slots (`exp_avg`, `exp_avg_sq`). */
  slots: Record<string, Record<string, HostTensor>>;
}

export interface Optimizer {
  readonly name: string;
  /** The configured learning rate: Composer's `initial_lr`, the denominator of the decoupled decay factor. */
  readonly initialLr: number;
  /**
   * Whether `step` takes a `gradScale`: then the trainer hands it the gradients as they are, with the factor that
   * unscales and clips them, instead of multiplying every gradient first (a pass over all of them).
   */
  readonly scalesGradients?: boolean;
  /**
   * Applies one update with learning rate `lr` (already scheduled) to every entry, in place; with
   * `scalesGradients`, each gradient counts as `grad * gradScale` (default 1).
   */
  step(entries: readonly ParamWithGrad[], lr: number, gradScale?: number): void;
  state(): Promise<OptimizerState>;
  loadState(state: OptimizerState): void;
  dispose(): void;
}
