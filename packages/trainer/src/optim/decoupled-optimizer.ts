import type { Optimizer, OptimizerState, ParamWithGrad } from './optimizer.js';
import { SlotStore } from './slots.js';

/**
 * What Composer's decoupled optimizers share: per-parameter slots, the step counter, checkpointable state, and the
 * decoupled weight decay, which follows the schedule (`lr / initial_lr`) rather than being scaled by lr.
 */
export abstract class DecoupledOptimizer implements Optimizer {
  abstract readonly name: string;
  readonly initialLr: number;
  protected readonly weightDecay: number;
  protected readonly slots: SlotStore;
  protected t = 0;

  constructor(lr: number, weightDecay: number, slotNames: readonly string[]) {
    this.initialLr = lr;
    this.weightDecay = weightDecay;
    this.slots = new SlotStore(slotNames);
  }

  abstract step(entries: readonly ParamWithGrad[], lr: number): void;

  /** `p *= decayFactor(lr)` before the update: `1 - (lr / initial_lr) * weight_decay`. */
  protected decayFactor(lr: number): number {
    if (this.weightDecay === 0) return 1;
    return 1 - (this.initialLr ? lr / this.initialLr : 1) * this.weightDecay;
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
