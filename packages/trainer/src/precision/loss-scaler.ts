/**
 * Dynamic loss scaling for f16 GEMMs (torch.cuda.amp.GradScaler's rule): the loss gradient is multiplied by
 * `scale` so that small gradients survive f16's range, gradients are divided by it before clipping and the
 * optimizer, and a step whose gradients overflowed is skipped while the scale backs off. After `growthInterval`
 * good steps in a row the scale grows again.
 */
export interface LossScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

/** What a checkpoint keeps, so a resumed run continues with the same scale. */
export interface LossScalerState {
  scale: number;
  goodSteps: number;
}

export class DynamicLossScaler {
  scale: number;
  goodSteps = 0;
  private readonly growthFactor: number;
  private readonly backoffFactor: number;
  private readonly growthInterval: number;

  constructor(options: LossScalerOptions = {}) {
    this.scale = options.initScale ?? 2 ** 16;
    this.growthFactor = options.growthFactor ?? 2;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    if (!(this.scale > 0) || !Number.isFinite(this.scale))
      throw new RangeError(`loss scale must be a positive finite number, got ${this.scale}`);
    if (!(this.growthFactor > 1)) throw new RangeError(`growth factor must be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1))
      throw new RangeError(`backoff factor must be in (0, 1), got ${this.backoffFactor}`);
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval >= 1))
      throw new RangeError(`growth interval must be a positive integer, got ${this.growthInterval}`);
  }

  /**
   * Records a step whose (scaled) gradients were `finite` or not. Returns whether the step may be applied; an
   * overflowed one is skipped and the scale backs off.
   */
  update(finite: boolean): boolean {
    if (!finite) {
      this.scale *= this.backoffFactor;
      this.goodSteps = 0;
      return false;
    }
    this.goodSteps++;
    if (this.goodSteps >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.goodSteps = 0;
    }
    return true;
  }

  state(): LossScalerState {
    return { scale: this.scale, goodSteps: this.goodSteps };
  }

  load(state: LossScalerState): void {
    if (!(state.scale > 0) || !Number.isFinite(state.scale) || !(state.goodSteps >= 0))
      throw new RangeError(`checkpoint loss scaler state is invalid: ${JSON.stringify(state)}`);
    this.scale = state.scale;
    this.goodSteps = state.goodSteps;
  }
}
