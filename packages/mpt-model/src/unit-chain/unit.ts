// The unit-chain contract: a model is a chain of pure units, and whoever holds the parameters (one device's
// Variables, or FSDP's shards) supplies each unit's parameters and takes its gradients through the hooks.
import type * as tf from '@tensorflow/tfjs-core';

/** Parameter name -> tensor, as one unit sees them (local Variables, or FSDP's gathered full tensors). */
export type ParamMap = ReadonlyMap<string, tf.Tensor>;

/** What a parameter holder needs to know of a unit: its name and the parameters it reads. */
export interface UnitDescriptor {
  readonly name: string;
  /** The parameters `forward` reads, by name. Tied weights appear in several units. */
  readonly paramNames: readonly string[];
}

/**
 * One link of the model chain: a pure function `(params, input) -> output`. In a training chain the last unit
 * returns the scalar loss. `C` is per-microbatch context the units may read (the targets, the attention context).
 */
export interface ChainUnit<C = unknown> extends UnitDescriptor {
  /** False for the first unit, whose input (token ids) has no gradient. */
  readonly inputIsDifferentiable: boolean;
  forward(params: ParamMap, input: tf.Tensor, ctx: C): tf.Tensor;
}

export type UnitPhase = 'forward' | 'recompute' | 'eval';

/**
 * Where a unit's parameters come from and where its gradients go. Single-device training reads Variables and
 * accumulates gradients locally (`LocalParameters`); FSDP all-gathers a unit's shards in `beforeUnitForward`,
 * frees them in `afterUnitForward`, and reduce-scatters in `afterUnitBackward`.
 */
export interface UnitHooks<C = unknown> {
  beforeUnitForward(unit: ChainUnit<C>, phase: UnitPhase): ParamMap | Promise<ParamMap>;
  /** Called once the unit no longer needs `params` (after its forward, or after its backward for `recompute`). */
  afterUnitForward?(unit: ChainUnit<C>, phase: UnitPhase, params: ParamMap): void | Promise<void>;
  /** Receives the unit's parameter gradients and owns them from here on (dispose or keep). */
  afterUnitBackward(unit: ChainUnit<C>, gradients: Map<string, tf.Tensor>): void | Promise<void>;
}

/** A lookup into `params` that names the unit and the parameter when one is missing. */
export function paramLookup(params: ParamMap, unit: string): (name: string) => tf.Tensor {
  return (name) => {
    const t = params.get(name);
    if (!t) throw new Error(`unit "${unit}" needs parameter "${name}", which was not provided`);
    return t;
  };
}
