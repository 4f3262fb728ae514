/**
 * Cross-entropy over `Logits [N, V]` (float32) against `Targets [N]` (int32) as two WGSL programs:
 * - `CrossEntropyForwardProgram`: one workgroup per row; each thread keeps a running max and a running sum of
 *   exponentials over its columns (online softmax), the workgroup merges the pairs, and the row's result is
 *   `[N, 2]` = (logsumexp, loss term) with loss term `lse - logit[target]`, 0 for an ignored row;
 * - `CrossEntropyGradProgram`: one thread per logit, `scale * (exp(logit - lse) - [col == target])` from the
 *   saved logsumexp, 0 on ignored rows; `scale` is the upstream gradient over the count of counted rows.
 * Neither writes a softmax. Target semantics follow the plain-ops loss: a target equal to `ignoreIndex` is
 * skipped, any other negative target means class 0, and a target >= V is counted with a zero term and gradient.
 */

import type { WebGpuProgramLike } from '../../webgpu/program-like.js';
import {
  ELEMENTWISE_WORKGROUP,
  elementsPerThread,
  elementwiseDispatch,
  RowProgram,
  rowPrologue,
  rowReductionSnippet,
} from '../../webgpu/row-program.js';

/** WGSL: the class a row's target selects, or -1 when the row contributes neither loss nor gradient. */
const TARGET_CLASS_SNIPPET = `
      fn targetClass(row : i32, vocab : i32) -> i32 {
        let given = Targets[row];
        if (given == uniforms.ignoreIndex) {
          return -1;
        }
        let cls = max(given, 0);
        if (cls >= vocab) {
          return -1;
        }
        return cls;
      }
`;

export class CrossEntropyForwardProgram extends RowProgram {
  readonly variableNames = ['Logits', 'Targets'];
  readonly uniforms = 'ignoreIndex : i32,';

  constructor(rows: number, vocab: number) {
    super('mptCrossEntropyForward', rows, vocab, [rows, 2]);
  }

  getUserCode(): string {
    return `
      ${rowReductionSnippet(this.workgroupSize[0], 'f32')}
      ${TARGET_CLASS_SNIPPET}
      var<workgroup> rowMax : array<f32, WG>;

      fn main(index : i32) {
        ${rowPrologue('logits', 'vocab')}
        // Online softmax: rescale the running sum whenever the running max grows.
        var runningMax = -3.402823e+38;
        var runningSum = 0.0;
        for (var c = lane; c < vocab; c += WG) {
          let x = Logits[base + c];
          if (x > runningMax) {
            runningSum = runningSum * exp(runningMax - x) + 1.0;
            runningMax = x;
          } else {
            runningSum += exp(x - runningMax);
          }
        }
        rowMax[lane] = runningMax;
        workgroupBarrier();
        for (var stride = WG / 2; stride > 0; stride = stride / 2) {
          if (lane < stride) {
            rowMax[lane] = max(rowMax[lane], rowMax[lane + stride]);
          }
          workgroupBarrier();
        }
        let m = rowMax[0];
        let total = reduceSum(runningSum * exp(runningMax - m));
        if (lane == 0 && row < rows) {
          let lse = m + log(total);
          let cls = targetClass(row, vocab);
          var term = 0.0;
          if (cls >= 0) {
            term = lse - Logits[base + cls];
          }
          result[row * 2] = lse;
          result[row * 2 + 1] = term;
        }
      }
    `;
  }
}

export class CrossEntropyGradProgram implements WebGpuProgramLike {
  readonly variableNames = ['Logits', 'Targets', 'Stats', 'Scale'];
  readonly uniforms = 'ignoreIndex : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ELEMENTWISE_WORKGROUP, 1, 1];
  readonly size = true;
  private readonly perThread: number;

  constructor(rows: number, vocab: number) {
    this.perThread = elementsPerThread(vocab);
    this.outputShape = [rows, vocab];
    this.dispatch = elementwiseDispatch((rows * vocab) / this.perThread);
    this.shaderKey = `mptCrossEntropyGrad_${this.perThread}`;
  }

  getUserCode(): string {
    return `
      ${TARGET_CLASS_SNIPPET}

      fn main(index : i32) {
        let first = index * ${this.perThread};
        if (first < uniforms.size) {
          let vocab = uniforms.logitsShape[1];
          // Unsigned division: WGSL's signed one carries overflow checks.
          let row = i32(u32(first) / u32(vocab));
          let cls = targetClass(row, vocab);
          let lse = Stats[row * 2];
          let scale = Scale[0];
          for (var k = 0; k < ${this.perThread}; k++) {
            let i = first + k;
            var grad = 0.0;
            if (cls >= 0) {
              grad = exp(Logits[i] - lse);
              if (i - row * vocab == cls) {
                grad -= 1.0;
              }
              grad *= scale;
            }
            setOutputAtIndex(i, grad);
          }
        }
      }
    `;
  }
}
