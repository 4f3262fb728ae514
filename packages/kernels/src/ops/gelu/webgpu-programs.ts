/**
 * A linear layer followed by the exact GELU as WGSL programs on `X [M, K]` (float32, contiguous):
 * - `MatMulGeluProgram`: `X W^T (+ b)` with `W` as `[N, K]` (`outIn`) or `[K, N]` (`inOut`), in 64x64 output
 *   tiles (256 threads, 4x4 outputs each, 16-deep slices of X and W staged in workgroup memory); its epilogue
 *   adds the bias and writes either `gelu(z)` or the pre-activation `z` itself;
 * - `GeluProgram`: one thread per element, `gelu(z)`;
 * - `GeluGradProgram`: one thread per element, `dy * gelu'(z)` with `gelu'(z) = Phi(z) + z phi(z)`.
 * Phi comes from erfc with a fractional error under 1.2e-7 everywhere, and for z < 0 from erfc directly rather
 * than `1 + erf`, which in f32 loses every digit of GELU's negative tail to cancellation.
 */

import type { WebGpuProgramLike } from '../../webgpu/program-like.js';
import { ELEMENTWISE_WORKGROUP, elementwiseDispatch } from '../../webgpu/row-program.js';

/** Output rows and columns of one matmul workgroup, and the depth of one staged slice of K. */
export const MATMUL_TILE = 64;
const TILE_K = 16;
/** Threads per matmul workgroup: one per 4x4 block of the 64x64 tile. */
const MATMUL_THREADS = (MATMUL_TILE / 4) ** 2;

export type WeightLayout = 'outIn' | 'inOut';

/** What the matmul epilogue writes: the activation, or the pre-activation a backward pass needs. */
export type MatMulGeluOutput = 'gelu' | 'pre';

/**
 * WGSL: `normalCdf(z)` (Phi) and `gelu(z)`, `geluGrad(z)` in f32. erfc(x) = t exp(-x^2 + P(t)) with
 * t = 1 / (1 + x/2) and a degree-9 polynomial P (a Chebyshev fit, fractional error < 1.2e-7 for x >= 0).
 */
export const GELU_SNIPPET = `
      fn erfcNonNegative(x : f32) -> f32 {
        let t = 1.0 / (1.0 + 0.5 * x);
        let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
          t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        return t * exp(-x * x + p);
      }

      fn normalCdf(z : f32) -> f32 {
        let tail = 0.5 * erfcNonNegative(abs(z) * ${Math.SQRT1_2});
        return select(1.0 - tail, tail, z < 0.0);
      }

      fn gelu(z : f32) -> f32 {
        return z * normalCdf(z);
      }

      fn geluGrad(z : f32) -> f32 {
        // phi(z) = exp(-z^2 / 2) / sqrt(2 pi)
        return normalCdf(z) + z * exp(-0.5 * z * z) * ${1 / Math.sqrt(2 * Math.PI)};
      }
`;

export class MatMulGeluProgram implements WebGpuProgramLike {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [MATMUL_THREADS, 1, 1];
  private readonly layout: WeightLayout;
  private readonly hasBias: boolean;
  private readonly output: MatMulGeluOutput;

  constructor(
    rows: number,
    outFeatures: number,
    layout: WeightLayout,
    hasBias: boolean,
    output: MatMulGeluOutput,
  ) {
    this.layout = layout;
    this.hasBias = hasBias;
    this.output = output;
    this.variableNames = hasBias ? ['X', 'W', 'Bias'] : ['X', 'W'];
    this.outputShape = [rows, outFeatures];
    const tiles = Math.ceil(rows / MATMUL_TILE) * Math.ceil(outFeatures / MATMUL_TILE);
    // One flat row of workgroups; tfjs folds it into 2D/3D past 65535 and main() unfolds it.
    this.dispatch = [Math.max(1, tiles), 1, 1];
    this.shaderKey = `mptMatMulGelu_${layout}_${hasBias ? 'bias' : 'nobias'}_${output}`;
  }

  /** WGSL that stages W's slice `[k0, k0 + 16)` of the tile's columns as `tileW[k][n]`, zero past the edges. */
  private loadWeightSlice(): string {
    // Consecutive threads read consecutive addresses of W in either layout.
    const coords =
      this.layout === 'outIn'
        ? 'let k = e & 15; let n = e >> 4u; let gk = k0 + k; let gn = col0 + n; let at = gn * K + gk;'
        : 'let n = e & 63; let k = e >> 6u; let gk = k0 + k; let gn = col0 + n; let at = gk * N + gn;';
    return `
          for (var i = 0; i < ${(TILE_K * MATMUL_TILE) / MATMUL_THREADS}; i++) {
            let e = lane + i * ${MATMUL_THREADS};
            ${coords}
            var v = 0.0;
            if (gk < K && gn < N) {
              v = W[at];
            }
            tileW[k * ${MATMUL_TILE} + n] = v;
          }`;
  }

  getUserCode(): string {
    const activate = this.output === 'gelu' ? 'gelu(v)' : 'v';
    return `
      ${GELU_SNIPPET}

      var<workgroup> tileX : array<f32, ${MATMUL_TILE * TILE_K}>;
      var<workgroup> tileW : array<f32, ${TILE_K * MATMUL_TILE}>;

      fn main(index : i32) {
        let M = uniforms.xShape[0];
        let K = uniforms.xShape[1];
        let N = uniforms.outShape[1];
        let tilesN = (N + ${MATMUL_TILE - 1}) / ${MATMUL_TILE};
        let tiles = ((M + ${MATMUL_TILE - 1}) / ${MATMUL_TILE}) * tilesN;
        let flat = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x +
          workgroupId.x);
        // Workgroups past the last tile (from a folded dispatch) redo the last one and write nothing: the
        // barriers below must be reached by every thread, so nobody returns early.
        let tile = min(flat, tiles - 1);
        let row0 = (tile / tilesN) * ${MATMUL_TILE};
        let col0 = (tile % tilesN) * ${MATMUL_TILE};
        let lane = i32(localIndex);
        let tx = lane & 15;
        let ty = lane >> 4u;
        var acc : array<vec4<f32>, 4>;
        for (var k0 = 0; k0 < K; k0 += ${TILE_K}) {
          for (var i = 0; i < ${(MATMUL_TILE * TILE_K) / MATMUL_THREADS}; i++) {
            let e = lane + i * ${MATMUL_THREADS};
            let r = e >> 4u;
            let gr = row0 + r;
            let gk = k0 + (e & 15);
            var v = 0.0;
            if (gr < M && gk < K) {
              v = X[gr * K + gk];
            }
            tileX[e] = v;
          }
          ${this.loadWeightSlice()}
          workgroupBarrier();
          for (var k = 0; k < ${TILE_K}; k++) {
            let wBase = k * ${MATMUL_TILE} + tx * 4;
            let w = vec4<f32>(tileW[wBase], tileW[wBase + 1], tileW[wBase + 2], tileW[wBase + 3]);
            for (var r = 0; r < 4; r++) {
              acc[r] += tileX[(ty * 4 + r) * ${TILE_K} + k] * w;
            }
          }
          workgroupBarrier();
        }
        if (flat < tiles) {
          for (var r = 0; r < 4; r++) {
            let row = row0 + ty * 4 + r;
            for (var c = 0; c < 4; c++) {
              let col = col0 + tx * 4 + c;
              if (row < M && col < N) {
                let v = acc[r][c]${this.hasBias ? ' + Bias[col]' : ''};
                result[row * N + col] = ${activate};
              }
            }
          }
        }
      }
    `;
  }
}

/** One thread per element of `Z`: `gelu(z)`, or with `Dy`, the gradient `dy * gelu'(z)`. */
abstract class GeluElementwiseProgram implements WebGpuProgramLike {
  abstract readonly variableNames: string[];
  readonly outputShape: number[];
  abstract readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ELEMENTWISE_WORKGROUP, 1, 1];
  readonly size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatch = elementwiseDispatch(shape.reduce((a, b) => a * b, 1));
  }

  protected abstract value(): string;

  getUserCode(): string {
    return `
      ${GELU_SNIPPET}

      fn main(index : i32) {
        if (index < uniforms.size) {
          setOutputAtIndex(index, ${this.value()});
        }
      }
    `;
  }
}

export class GeluProgram extends GeluElementwiseProgram {
  readonly variableNames = ['Z'];
  readonly shaderKey = 'mptGelu';

  protected value(): string {
    return 'gelu(Z[index])';
  }
}

export class GeluGradProgram extends GeluElementwiseProgram {
  readonly variableNames = ['Z', 'Dy'];
  readonly shaderKey = 'mptGeluGrad';

  protected value(): string {
    return 'Dy[index] * geluGrad(Z[index])';
  }
}
