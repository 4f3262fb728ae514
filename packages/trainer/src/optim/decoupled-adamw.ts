import {
  adamwKernelAvailable,
  adamwUpdateSimd,
  adamwUpdateWebGpu,
  adamwWebGpuAvailable,
} from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { DecoupledOptimizer } from './decoupled-optimizer.js';
import type { ParamWithGrad } from './optimizer.js';

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
export class DecoupledAdamW extends DecoupledOptimizer {
  readonly name = 'decoupled_adamw';
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;

  constructor(opts: DecoupledAdamWOptions) {
    super(opts.lr, opts.weightDecay ?? 1e-5, ['exp_avg', 'exp_avg_sq']);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.95];
    this.eps = opts.eps ?? 1e-8;
  }

  /** On webgpu the scale rides along in the moment programs; elsewhere each gradient is multiplied first. */
  readonly scalesGradients = true;

  step(entries: readonly ParamWithGrad[], lr: number, gradScale = 1): void {
    this.t += 1;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const decay = this.decayFactor(lr);
    // On wasm one SIMD pass per tensor does the whole update (same floats as the ops below); on webgpu three
    // dispatches (both moments in place, then the parameter) instead of the ops' thirteen.
    const fused = adamwKernelAvailable();
    const onWebGpu = !fused && adamwWebGpuAvailable();
    for (const { name, param, grad } of entries) {
      const s = this.slots.get(name, param);
      const m = s.get('exp_avg')!;
      const v = s.get('exp_avg_sq')!;
      const float = [param, grad, m, v].every((t) => t.dtype === 'float32');
      const step = { beta1: b1, beta2: b2, sqrtBc2: Math.sqrt(bc2), eps, stepSize: lr / bc1, decay };
      if (onWebGpu && float && param.size > 0) {
        const p1 = adamwUpdateWebGpu(param, grad, m, v, step, gradScale);
        param.assign(p1);
        p1.dispose();
        continue;
      }
      const scaled = (g: tf.Tensor) => (gradScale === 1 ? g : tf.mul(g, gradScale));
      if (fused && float && param.size > 0) {
        tf.tidy(() => {
          const [p1, m1, v1] = adamwUpdateSimd(param, tf.reshape(scaled(grad), param.shape), m, v, step);
          param.assign(p1);
          m.assign(m1);
          v.assign(v1);
        });
        continue;
      }
      tf.tidy(() => {
        const g = tf.reshape(scaled(grad), param.shape);
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
}
