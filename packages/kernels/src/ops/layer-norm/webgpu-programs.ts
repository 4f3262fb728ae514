/**
 * LayerNorm over the last axis as four WGSL programs on `X [rows, D]` (float32, contiguous):
 * - `LayerNormStatsProgram`: one workgroup per row, two-pass (mean, then the mean of squared deviations) in f32
 *   → `Stats [rows, 2]` = (mean, rstd) with rstd = 1 / sqrt(biased variance + eps), kept for the backward pass;
 * - `LayerNormApplyProgram`: one thread per element, `(x - mean) * rstd * weight (+ bias)`;
 * - `LayerNormGradInputProgram`: one workgroup per row, `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` with
 *   `g = dy * weight` (both means reduced in one pass);
 * - `LayerNormGradParamsProgram`: column sums over blocks of rows, `[1 or 2, D, blocks]` partials of
 *   `dweight = sum(dy * xhat)` (and `dbias = sum(dy)`), which a tfjs sum over the innermost axis finishes.
 */

import type { WebGpuProgramLike } from '../../webgpu/program-like.js';
import {
  ELEMENTWISE_WORKGROUP,
  elementsPerThread,
  elementwiseDispatch,
  RowProgram,
  rowPrologue,
  rowReductionSnippet,
  rowSum,
} from '../../webgpu/row-program.js';

/** Rows per block of the parameter-gradient column sums. */
export const PARAM_GRAD_BLOCK_ROWS = 64;

export class LayerNormStatsProgram extends RowProgram {
  readonly variableNames = ['X'];
  readonly uniforms = 'eps : f32,';

  constructor(rows: number, width: number) {
    super('mptLayerNormStats', rows, width, [rows, 2]);
  }

  getUserCode(): string {
    return `
      ${rowReductionSnippet(this.workgroupSize[0], 'f32')}

      fn main(index : i32) {
        ${rowPrologue('x')}
        ${rowSum('sum', 'X[base + c]')}
        let mean = sum / f32(width);
        ${rowSum('squares', 'centered * centered', 'let centered = X[base + c] - mean;')}
        let variance = squares / f32(width);
        if (lane == 0 && row < rows) {
          result[row * 2] = mean;
          result[row * 2 + 1] = inverseSqrt(variance + uniforms.eps);
        }
      }
    `;
  }
}

export class LayerNormApplyProgram implements WebGpuProgramLike {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ELEMENTWISE_WORKGROUP, 1, 1];
  readonly size = true;
  private readonly hasBias: boolean;
  private readonly perThread: number;

  constructor(rows: number, width: number, hasBias: boolean) {
    this.hasBias = hasBias;
    this.perThread = elementsPerThread(width);
    this.variableNames = hasBias ? ['X', 'Stats', 'Weight', 'Bias'] : ['X', 'Stats', 'Weight'];
    this.outputShape = [rows, width];
    this.dispatch = elementwiseDispatch((rows * width) / this.perThread);
    this.shaderKey = `mptLayerNormApply_${this.perThread}_${hasBias ? 'bias' : 'nobias'}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        let first = index * ${this.perThread};
        if (first < uniforms.size) {
          let width = uniforms.xShape[1];
          // Unsigned division: WGSL's signed one carries overflow checks.
          let row = i32(u32(first) / u32(width));
          let mean = Stats[row * 2];
          let rstd = Stats[row * 2 + 1];
          for (var k = 0; k < ${this.perThread}; k++) {
            let i = first + k;
            let col = i - row * width;
            setOutputAtIndex(i, (X[i] - mean) * rstd * Weight[col]${this.hasBias ? ' + Bias[col]' : ''});
          }
        }
      }
    `;
  }
}

export class LayerNormGradInputProgram extends RowProgram {
  readonly variableNames = ['X', 'Dy', 'Stats', 'Weight'];

  constructor(rows: number, width: number) {
    super('mptLayerNormGradInput', rows, width, [rows, width]);
  }

  getUserCode(): string {
    // g = dy * weight and xhat at column c, in both passes.
    const terms = 'let g = Dy[base + c] * Weight[c];\n          let xhat = (X[base + c] - mean) * rstd;';
    return `
      ${rowReductionSnippet(this.workgroupSize[0], 'vec2<f32>')}

      fn main(index : i32) {
        ${rowPrologue('x')}
        let mean = Stats[safeRow * 2];
        let rstd = Stats[safeRow * 2 + 1];
        ${rowSum('sums', 'vec2<f32>(g, g * xhat)', terms, 'vec2<f32>')}
        let means = sums / f32(width);
        if (row < rows) {
          for (var c = lane; c < width; c += WG) {
            ${terms}
            result[base + c] = rstd * (g - means.x - xhat * means.y);
          }
        }
      }
    `;
  }
}

export class LayerNormGradParamsProgram implements WebGpuProgramLike {
  readonly variableNames = ['X', 'Dy', 'Stats'];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ELEMENTWISE_WORKGROUP, 1, 1];
  private readonly hasBias: boolean;

  constructor(rows: number, width: number, hasBias: boolean) {
    this.hasBias = hasBias;
    const blocks = Math.max(1, Math.ceil(rows / PARAM_GRAD_BLOCK_ROWS));
    // Blocks last, so their sum is a reduction over the innermost axis (in tfjs, no transpose before it).
    this.outputShape = [hasBias ? 2 : 1, width, blocks];
    // One thread per (block, column): adjacent threads read adjacent columns of the same rows.
    this.dispatch = elementwiseDispatch(blocks * width);
    this.shaderKey = `mptLayerNormGradParams_${PARAM_GRAD_BLOCK_ROWS}_${hasBias ? 'bias' : 'nobias'}`;
  }

  getUserCode(): string {
    // Without a bias only the weight gradient is summed (and written as the block's one row).
    const bias = (code: string) => (this.hasBias ? code : '');
    return `
      fn main(index : i32) {
        let rows = uniforms.xShape[0];
        let width = uniforms.xShape[1];
        let blocks = uniforms.outShape[2];
        if (index < blocks * width) {
          let block = i32(u32(index) / u32(width));
          let col = index - block * width;
          let firstRow = block * ${PARAM_GRAD_BLOCK_ROWS};
          let endRow = min(rows, firstRow + ${PARAM_GRAD_BLOCK_ROWS});
          var gradWeight = 0.0;
          ${bias('var gradBias = 0.0;')}
          for (var r = firstRow; r < endRow; r++) {
            let dy = Dy[r * width + col];
            gradWeight += dy * (X[r * width + col] - Stats[r * 2]) * Stats[r * 2 + 1];
            ${bias('gradBias += dy;')}
          }
          result[col * blocks + block] = gradWeight;
          ${bias('result[(width + col) * blocks + block] = gradBias;')}
        }
      }
    `;
  }
}
