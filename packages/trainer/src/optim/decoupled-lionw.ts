import * as tf from '@tensorflow/tfjs-core';
import { DecoupledOptimizer } from './decoupled-optimizer.js';
import type { ParamWithGrad } from './optimizer.js';

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
export class DecoupledLionW extends DecoupledOptimizer {
  readonly name = 'decoupled_lionw';
  private readonly beta1: number;
  private readonly beta2: number;

  constructor(opts: DecoupledLionWOptions) {
    super(opts.lr, opts.weightDecay ?? 0, ['exp_avg']);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.99];
  }

  step(entries: readonly ParamWithGrad[], lr: number): void {
    this.t += 1;
    const { beta1: b1, beta2: b2 } = this;
    const decay = this.decayFactor(lr);
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
}
