import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState, ParamWithGrad } from './optimizer.js';
import { SlotStore } from './slots.js';

export interface DecoupledAdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/**
 * Composer's DecoupledAdamW. Per step t (1-based), for each parameter p with gradient g:
 *   p *= 1 - (lr / initial_lr) * weight_decay          (decay follows the schedule, not scaled by lr)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
export class DecoupledAdamW implements Optimizer {
  readonly name = 'decoupled_adamw';
  readonly initialLr: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly slots = new SlotStore(['exp_avg', 'exp_avg_sq']);
  private t = 0;

  constructor(opts: DecoupledAdamWOptions) {
    this.initialLr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.95];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 1e-5;
  }

  step(entries: readonly ParamWithGrad[], lr: number): void {
    this.t += 1;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const decay =
      this.weightDecay !== 0 ? 1 - (this.initialLr ? lr / this.initialLr : 1) * this.weightDecay : 1;
    for (const { name, param, grad } of entries) {
      const s = this.slots.get(name, param);
      const m = s.get('exp_avg')!;
      const v = s.get('exp_avg_sq')!;
      tf.tidy(() => {
        const g = tf.reshape(grad, param.shape);
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), eps);
        const decayed = decay === 1 ? param : tf.mul(param, decay);
        param.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1)));
        m.assign(m1);
        v.assign(v1);
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
