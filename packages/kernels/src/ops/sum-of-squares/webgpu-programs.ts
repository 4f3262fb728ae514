/**
 * `sum(x^2)` along the rows of `X [rows, width]` in one dispatch: one workgroup per row. The global gradient norm
 * of a training step takes one of these per gradient, where tfjs needs a square, then a row sum.
 */
import { RowProgram, rowPrologue, rowReductionSnippet, rowSum } from '../../webgpu/row-program.js';

export class RowSumsOfSquaresProgram extends RowProgram {
  readonly variableNames = ['X'];

  constructor(rows: number, width: number) {
    super('mptRowSumsOfSquares', rows, width, [rows]);
  }

  getUserCode(): string {
    return `
      ${rowReductionSnippet(this.workgroupSize[0], 'f32')}

      fn main(index : i32) {
        ${rowPrologue('x')}
        ${rowSum('total', 'x * x', 'let x = X[base + c];')}
        if (lane == 0 && row < rows) {
          result[row] = total;
        }
      }
    `;
  }
}
