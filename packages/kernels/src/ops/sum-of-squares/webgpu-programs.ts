/**
 * `sum(x^2)` along the rows of `X [rows, width]` in one dispatch: one workgroup per row. The global gradient norm
 * of a training step takes one of these per gradient, where tfjs needs a square, then a row sum.
 */
import { RowProgram, rowReductionSnippet } from '../../webgpu/row-program.js';

export class RowSumsOfSquaresProgram extends RowProgram {
  readonly variableNames = ['X'];

  constructor(rows: number, width: number) {
    super('mptRowSumsOfSquares', rows, width, [rows]);
  }

  getUserCode(): string {
    return `
      ${rowReductionSnippet(this.workgroupSize[0], 'f32')}

      fn main(index : i32) {
        let rows = uniforms.xShape[0];
        let width = uniforms.xShape[1];
        let row = rowIndex();
        // Workgroups past the last row (from a folded dispatch) reduce the last row again and write nothing.
        let base = min(row, rows - 1) * width;
        let lane = i32(localIndex);
        var squares = 0.0;
        for (var c = lane; c < width; c += WG) {
          let x = X[base + c];
          squares += x * x;
        }
        let total = reduceSum(squares);
        if (lane == 0 && row < rows) {
          result[row] = total;
        }
      }
    `;
  }
}
