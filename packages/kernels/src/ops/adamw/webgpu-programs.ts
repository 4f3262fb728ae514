/**
 * Decoupled AdamW's per-tensor update as three WGSL programs, one thread per element, with `g` the gradient
 * times the step's gradient scale (unscaling and clipping, which would otherwise be a pass of their own):
 * - `AdamWMomentProgram('first')`: `m = m b1 + g (1 - b1)`, written in place over `m` (the program's output is
 *   the moment tensor itself, read back through `result`);
 * - `AdamWMomentProgram('second')`: `v = v b2 + g^2 (1 - b2)`, in place over `v`;
 * - `AdamWParamProgram`: `p' = p decay - m / (sqrt(v) / sqrtBc2 + eps) stepSize` into a new tensor.
 * The same operations in the same order as the tfjs-op update, in three dispatches instead of about thirteen.
 */
import type { WebGpuProgramLike } from '../../webgpu/program-like.js';
import { ELEMENTWISE_WORKGROUP, elementwiseDispatch } from '../../webgpu/row-program.js';

abstract class ElementwiseProgram implements WebGpuProgramLike {
  abstract readonly variableNames: string[];
  abstract readonly shaderKey: string;
  abstract readonly uniforms: string;
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ELEMENTWISE_WORKGROUP, 1, 1];
  readonly size = true;

  constructor(shape: readonly number[]) {
    this.outputShape = [...shape];
    this.dispatch = elementwiseDispatch(shape.reduce((a, b) => a * b, 1));
  }

  /** The new value of element `index` (WGSL expression). */
  protected abstract value(): string;

  /** WGSL helpers the value expression uses. */
  protected helpers(): string {
    return '';
  }

  getUserCode(): string {
    return `${this.helpers()}
      fn main(index : i32) {
        if (index < uniforms.size) {
          result[index] = ${this.value()};
        }
      }
    `;
  }
}

/** One moment of AdamW updated in place: the output is the moment tensor, its old value read from `result`. */
export class AdamWMomentProgram extends ElementwiseProgram {
  readonly variableNames = ['G'];
  readonly shaderKey: string;
  readonly uniforms = 'beta : f32, oneMinusBeta : f32, gradScale : f32,';

  constructor(
    shape: readonly number[],
    private readonly moment: 'first' | 'second',
  ) {
    super(shape);
    this.shaderKey = `mptAdamWMoment_${moment}`;
  }

  protected override helpers(): string {
    return this.moment === 'second' ? 'fn sq(x : f32) -> f32 { return x * x; }' : '';
  }

  protected value(): string {
    // The scaled gradient rounds to f32 first, as a separate multiply by the scale would.
    const g =
      this.moment === 'first' ? '(G[index] * uniforms.gradScale)' : 'sq(G[index] * uniforms.gradScale)';
    return `result[index] * uniforms.beta + ${g} * uniforms.oneMinusBeta`;
  }
}

/** The parameter after the step, from the updated moments (`P`, `M`, `V`), into a new tensor. */
export class AdamWParamProgram extends ElementwiseProgram {
  readonly variableNames = ['P', 'M', 'V'];
  readonly shaderKey = 'mptAdamWParam';
  readonly uniforms = 'sqrtBc2 : f32, eps : f32, stepSize : f32, decay : f32,';

  protected value(): string {
    return '(P[index] * uniforms.decay) - (M[index] / (sqrt(V[index]) / uniforms.sqrtBc2 + uniforms.eps)) * uniforms.stepSize';
  }
}
