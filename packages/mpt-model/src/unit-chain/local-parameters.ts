import * as tf from '@tensorflow/tfjs-core';
import type { ParameterHost } from './parameter-host.js';
import type { ChainUnit, ParamMap } from './unit.js';

/**
 * Single-device parameter host: every unit reads the model's Variables, and gradients are summed per name across
 * units (tied embeddings) and across microbatches until `takeGradients`.
 */
export class LocalParameters implements ParameterHost<unknown> {
  private readonly grads = new Map<string, tf.Tensor>();

  constructor(readonly variables: ReadonlyMap<string, tf.Variable>) {}

  beforeUnitForward(unit: ChainUnit<unknown>): ParamMap {
    for (const n of unit.paramNames) {
      if (!this.variables.has(n))
        throw new Error(`unit "${unit.name}" needs parameter "${n}", which the model lacks`);
    }
    return this.variables;
  }

  afterUnitBackward(_unit: ChainUnit<unknown>, gradients: Map<string, tf.Tensor>): void {
    for (const [name, g] of gradients) {
      const prev = this.grads.get(name);
      if (prev) {
        this.grads.set(name, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else {
        this.grads.set(name, g);
      }
    }
  }

  optimizerParameters(): ReadonlyMap<string, tf.Variable> {
    return this.variables;
  }

  /** The accumulated gradients (ownership passes to the caller); the accumulator starts empty again. */
  takeGradients(): Map<string, tf.Tensor> {
    const out = new Map(this.grads);
    this.grads.clear();
    return out;
  }
}
