import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState, ParamWithGrad } from './optimizer.js';
import { SlotStore } from './slots.js';

export interface DecoupledLionWOptions {
  lr: number;
  betas?: [number, number];
  weightDecay?: number;
}

/**
 * Composer/llm-foundry's DecoupledLionW. For each parameter p with gradient g and momentum m:
 *   p *= 1 - (lr / initial_lr) * weight_decay
 *   p -= lr * sign(b1 m + (1 - b1) g)
 *   m = b2 m + (1 - b2) g
 */
export class DecoupledLionW implements Optimizer {
  readonly name = 'decoupled_lionw';
  readonly initialLr: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly weightDecay: number;
  private readonly slots = new SlotStore(['exp_avg']);
  private t = 0;

  constructor(opts: DecoupledLionWOptions) {
    this.initialLr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.99];
    this.weightDecay = opts.weightDecay ?? 0;
  }

  step(entries: readonly ParamWithGrad[], lr: number): void {
    this.t += 1;
    const { beta1: b1, beta2: b2 } = this;
    const decay =
      this.weightDecay !== 0 ? 1 - (this.initialLr ? lr / this.initialLr : 1) * this.weightDecay : 1;
    for (const { name, param, grad } of entries) {
      const m = this.slots.get(name, param).get('exp_avg')!;
      tf.tidy(() => {
        const g = tf.reshape(grad, param.shape);
        const update = tf.sign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        const decayed = decay === 1 ? param : tf.mul(param, decay);
        param.assign(tf.sub(decayed, tf.mul(update, lr)));
        m.assign(tf.add(tf.mul(m, b2), tf.mul(g, 1 - b2)));
      });
    }
  }

  async state(): Promise<OptimizerState> {
    return { name: this.name, step: this.t, slots: await this.slots.toHost() };
  }

  loadState(state: OptimizerState): void {
    if (state.name !== this.name) throw new Error(`cannot load ${state.name} state into ${this.name}`);
    this.t = state.step;
    this.slots.load(state.slots);
  }

  dispose(): void {
    this.slots.dispose();
  }
}
