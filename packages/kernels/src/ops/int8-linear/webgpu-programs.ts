/**
 * WGSL programs for int8 weights (`Int8Weight`: `[n, rowBytes]` int8 rows packed into int32 words, and a
 * float32 scale per row) on tfjs-backend-webgpu:
 * - `Int8RowsProgram`: `x [m, k] @ (Wq * scale)^T` for a few rows of x (decode): one workgroup per output
 *   feature reads that weight row once, a quarter of the float32 bytes;
 * - `Int8DequantizeProgram`: the float32 `[n, k]` weight, for many rows of x on the plain float matmul;
 * - `QuantizeRowsProgram` + `Int8SubgroupMatmulProgram`: x quantized per row to int8 (symmetric, max|x| / 127)
 *   and multiplied by the int8 weight on the GPU's int8 matrix units through Dawn's subgroup matrices
 *   (`chromium-experimental-subgroup-matrix`), int32 sums scaled back to float32.
 */
import type { WebGpuProgramLike } from '../../webgpu/program-like.js';

/** WGSL: int8 lane `j` (0..3) of a packed word, sign-extended. */
const UNPACK_SNIPPET = `
      fn unpackInt8(word : i32) -> vec4<f32> {
        return vec4<f32>(f32((word << 24u) >> 24u), f32((word << 16u) >> 24u), f32((word << 8u) >> 24u),
          f32(word >> 24u));
      }
      fn flatWorkgroup() -> i32 {
        return i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x +
          workgroupId.x);
      }
`;

/** WGSL: `reduce(value)` over the workgroup into every thread (`op` is `+` or `max`); contains barriers. */
function reduceSnippet(wg: number, combine: (a: string, b: string) => string): string {
  return `
      var<workgroup> partial : array<f32, ${wg}>;
      fn reduce(value : f32) -> f32 {
        let lane = i32(localIndex);
        partial[lane] = value;
        workgroupBarrier();
        for (var stride = ${wg / 2}; stride > 0; stride = stride / 2) {
          if (lane < stride) {
            partial[lane] = ${combine('partial[lane]', 'partial[lane + stride]')};
          }
          workgroupBarrier();
        }
        let total = partial[0];
        workgroupBarrier();
        return total;
      }
`;
}

/** Most rows of x the row program takes: it keeps one running sum per row in registers. */
export const INT8_ROWS_MAX = 16;

const ROWS_WG = 64;

/** `[m, n]` = `x [m, k]` times the int8 weight's rows, for `m <= INT8_ROWS_MAX`. */
export class Int8RowsProgram implements WebGpuProgramLike {
  readonly variableNames = ['x', 'packed', 'scales'];
  readonly uniforms = 'rowWords : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ROWS_WG, 1, 1];
  private readonly m: number;
  private readonly vec4: boolean;

  constructor(m: number, n: number, k: number) {
    if (m < 1 || m > INT8_ROWS_MAX)
      throw new RangeError(`Int8RowsProgram takes 1..${INT8_ROWS_MAX} rows, got ${m}`);
    this.m = m;
    this.vec4 = k % 4 === 0;
    this.outputShape = [m, n];
    this.dispatch = [n, 1, 1];
    this.shaderKey = `mptInt8Rows_${m}_${this.vec4}`;
  }

  getUserCode(): string {
    const load = this.vec4
      ? 'let xv = vec4<f32>(x[xb], x[xb + 1], x[xb + 2], x[xb + 3]);'
      : `var xv = vec4<f32>(0.0);
            for (var j = 0; j < 4; j++) {
              if (c + j < k) { xv[j] = x[xb + j]; }
            }`;
    return `
      ${UNPACK_SNIPPET}
      ${reduceSnippet(ROWS_WG, (a, b) => `${a} + ${b}`)}
      const M = ${this.m};
      fn main(index : i32) {
        let n = uniforms.outShape[1];
        let k = uniforms.xShape[1];
        let row = flatWorkgroup();
        let safeRow = min(row, n - 1);
        let wBase = safeRow * uniforms.rowWords;
        let words = (k + 3) / 4;
        var acc : array<f32, M>;
        for (var w = i32(localIndex); w < words; w += ${ROWS_WG}) {
          let q = unpackInt8(packed[wBase + w]);
          let c = w * 4;
          for (var r = 0; r < M; r++) {
            let xb = r * k + c;
            ${load}
            acc[r] += dot(q, xv);
          }
        }
        let scale = scales[safeRow];
        for (var r = 0; r < M; r++) {
          let total = reduce(acc[r]);
          if (localIndex == 0u && row < n) {
            result[r * n + row] = total * scale;
          }
        }
      }
    `;
  }
}

const ELEMENT_WG = 64;

/** The float32 `[n, k]` weight `q * scale`, one thread per element. */
export class Int8DequantizeProgram implements WebGpuProgramLike {
  readonly variableNames = ['packed', 'scales'];
  readonly uniforms = 'rowWords : i32,';
  readonly outputShape: number[];
  readonly shaderKey = 'mptInt8Dequantize';
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [ELEMENT_WG, 1, 1];
  readonly size = true;

  constructor(n: number, k: number) {
    this.outputShape = [n, k];
    this.dispatch = [Math.ceil((n * k) / ELEMENT_WG), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index >= uniforms.size) {
          return;
        }
        let k = uniforms.outShape[1];
        let row = index / k;
        let c = index - row * k;
        let word = packed[row * uniforms.rowWords + c / 4];
        let shift = u32(24 - 8 * (c % 4));
        result[index] = f32((word << shift) >> 24u) * scales[row];
      }
    `;
  }
}

/** Bytes per quantized activation row: `k` rounded up to the subgroup matrices' K step (zeros after `k`). */
export function activationRowBytes(k: number, kStep: number): number {
  return Math.ceil(k / kStep) * kStep;
}

const QUANTIZE_WG = 64;

/**
 * Rows of x `[m, k]` as int8 for the subgroup matmul: int32 output of `m * rowBytes / 4` packed words (rows
 * zero-padded to `rowBytes`), then the `m` row scales as float32 bits.
 */
export class QuantizeRowsProgram implements WebGpuProgramLike {
  readonly variableNames = ['x'];
  readonly uniforms = 'rowWords : i32,';
  readonly outputShape: number[];
  readonly shaderKey = 'mptQuantizeRows';
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [QUANTIZE_WG, 1, 1];

  constructor(m: number, rowBytes: number) {
    this.outputShape = [m * (rowBytes / 4) + m];
    this.dispatch = [m, 1, 1];
  }

  getUserCode(): string {
    return `
      ${UNPACK_SNIPPET}
      ${reduceSnippet(QUANTIZE_WG, (a, b) => `max(${a}, ${b})`)}
      fn quantize(v : f32, inv : f32) -> i32 {
        return i32(clamp(round(v * inv), -127.0, 127.0)) & 255;
      }
      fn main(index : i32) {
        let m = uniforms.xShape[0];
        let k = uniforms.xShape[1];
        let row = flatWorkgroup();
        let safeRow = min(row, m - 1);
        let base = safeRow * k;
        var peak = 0.0;
        for (var c = i32(localIndex); c < k; c += ${QUANTIZE_WG}) {
          peak = max(peak, abs(x[base + c]));
        }
        peak = reduce(peak);
        if (row >= m) {
          return;
        }
        let scale = peak / 127.0;
        let inv = select(0.0, 127.0 / peak, peak > 0.0);
        for (var w = i32(localIndex); w < uniforms.rowWords; w += ${QUANTIZE_WG}) {
          var word = 0;
          for (var j = 0; j < 4; j++) {
            let c = w * 4 + j;
            if (c < k) {
              word = word | (quantize(x[base + c], inv) << u32(8 * j));
            }
          }
          result[row * uniforms.rowWords + w] = word;
        }
        if (localIndex == 0u) {
          result[m * uniforms.rowWords + row] = bitcast<i32>(scale);
        }
      }
    `;
  }
}

/** The block one workgroup computes: 2 x 2 subgroups, each 2 x 2 result matrices of `M x N`. */
const SG_GRID = 2;
const TILES = 2;

/** How the int8 subgroup matmul reads its operands (settled per device by `settleInt8MatrixPlan`). */
export interface Int8MatmulLayout {
  /** `true`: each K step is staged in workgroup memory first; `false`: loads come straight from storage. */
  staged: boolean;
  /** The bytes one unit of a subgroup-matrix load's offset and stride stands for (1: bytes, 4: words). */
  offsetUnit: 1 | 4;
  /**
   * `true`: the loads and stores name their majorness as a template argument (`subgroupMatrixLoad<T, row_major>`),
   * the form current Dawn expects; `false`: the older `col_major: bool` argument, which it still compiles but
   * warns about as deprecated, and which older Dawn versions know only.
   */
  templated?: boolean;
}

/** A subgroup-matrix load in either spelling (see `Int8MatmulLayout.templated`). */
function matrixLoad(
  type: string,
  ptr: string,
  offset: string,
  colMajor: boolean,
  stride: string,
  templated: boolean,
) {
  return templated
    ? `subgroupMatrixLoad<${type}, ${colMajor ? 'col_major' : 'row_major'}>(&${ptr}, ${offset}, ${stride})`
    : `subgroupMatrixLoad<${type}>(&${ptr}, ${offset}, ${colMajor}, ${stride})`;
}

/**
 * `[m, n]` float32 = (int8 x rows) @ (int8 weight rows)^T, scaled by both row scales. `xq` is
 * `QuantizeRowsProgram`'s output. One workgroup of 4 subgroups computes a `(4 M) x (4 N)` block; every K step
 * loads int8 matrices (x row-major, the weight as a column-major right matrix) either straight from the storage
 * buffers or from a copy of the step's rows staged in workgroup memory, and the int32 sums go through workgroup
 * memory to be scaled and bounds-checked.
 */
export class Int8SubgroupMatmulProgram implements WebGpuProgramLike {
  readonly variableNames = ['xq', 'packed', 'scales'];
  readonly uniforms = 'xRowBytes : i32, wRowBytes : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  private readonly cfg: { M: number; N: number; K: number };
  private readonly subgroupSize: number;
  private readonly layout: Int8MatmulLayout;

  constructor(
    m: number,
    n: number,
    cfg: { M: number; N: number; K: number },
    subgroupSize: number,
    layout: Int8MatmulLayout,
  ) {
    this.cfg = cfg;
    this.subgroupSize = subgroupSize;
    this.layout = layout;
    this.outputShape = [m, n];
    const blockM = SG_GRID * TILES * cfg.M;
    const blockN = SG_GRID * TILES * cfg.N;
    this.workgroupSize = [SG_GRID * SG_GRID * subgroupSize, 1, 1];
    this.dispatch = [Math.ceil(n / blockN), Math.ceil(m / blockM), 1];
    this.shaderKey =
      `mptInt8SubgroupMatmul_${cfg.M}_${cfg.N}_${cfg.K}_${subgroupSize}_` +
      `${layout.staged ? 'staged' : 'direct'}_${layout.offsetUnit}${layout.templated ? '_templated' : ''}`;
  }

  getUserCode(): string {
    const { M, N, K } = this.cfg;
    const blockM = SG_GRID * TILES * M;
    const blockN = SG_GRID * TILES * N;
    const { staged, offsetUnit: u } = this.layout;
    const templated = this.layout.templated === true;
    const threads = this.workgroupSize[0];
    const kWords = K / 4;
    // A operands are x rows (left matrices), B operands weight rows (right, read column-major).
    const operand = (side: 'a' | 'b', t: number) => {
      const [rows, rowBytes, tile, buffer, base, size] =
        side === 'a'
          ? ['sgRow', 'uniforms.xRowBytes', 'xTile', 'xq', 'row0', M]
          : ['sgCol', 'uniforms.wRowBytes', 'wTile', 'packed', 'col0', N];
      const offset = staged
        ? `(${rows} + ${t * size}) * ${K / u}`
        : `((${base} + ${rows} + ${t * size}) * ${rowBytes} + k0) / ${u}`;
      const stride = staged ? `${K / u}` : `${rowBytes} / ${u}`;
      const type =
        side === 'a' ? `subgroup_matrix_left<i8, ${K}, ${M}>` : `subgroup_matrix_right<i8, ${N}, ${K}>`;
      const load = matrixLoad(
        type,
        staged ? tile : buffer,
        `u32(${offset})`,
        side === 'b',
        `u32(${stride})`,
        templated,
      );
      return `let ${side}${t} = ${load};`;
    };
    const loads: string[] = [];
    for (const side of ['a', 'b'] as const) for (let t = 0; t < TILES; t++) loads.push(operand(side, t));
    const decls: string[] = [];
    const mma: string[] = [];
    const stores: string[] = [];
    for (let i = 0; i < TILES; i++) {
      for (let j = 0; j < TILES; j++) {
        decls.push(`var acc${i}${j} : subgroup_matrix_result<i32, ${N}, ${M}>;`);
        mma.push(`acc${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc${i}${j});`);
        const at = `u32((sgRow + ${i * M}) * ${blockN} + sgCol + ${j * N})`;
        stores.push(
          templated
            ? `subgroupMatrixStore<row_major>(&block, ${at}, acc${i}${j}, ${blockN}u);`
            : `subgroupMatrixStore(&block, ${at}, acc${i}${j}, false, ${blockN}u);`,
        );
      }
    }
    // Staged: the K step's bytes of the block's x rows and weight rows, zero outside the matrices and past
    // each weight row's padded length (x rows are padded to whole K steps by QuantizeRowsProgram).
    const stage = staged
      ? `
          for (var e = i32(localIndex); e < ${blockM * kWords}; e += ${threads}) {
            let r = row0 + e / ${kWords};
            var word = 0;
            if (r < m) {
              word = xq[r * (uniforms.xRowBytes / 4) + k0 / 4 + e % ${kWords}];
            }
            xTile[e] = word;
          }
          for (var e = i32(localIndex); e < ${blockN * kWords}; e += ${threads}) {
            let c = col0 + e / ${kWords};
            let w = k0 / 4 + e % ${kWords};
            var word = 0;
            if (c < n && w < uniforms.wRowBytes / 4) {
              word = packed[c * (uniforms.wRowBytes / 4) + w];
            }
            wTile[e] = word;
          }
          workgroupBarrier();`
      : '';
    // Offsets and strides derive from the subgroup's index, uniform per subgroup but not per workgroup, which
    // is all the uniformity analysis can prove: the subgroup-matrix uniformity diagnostic is off.
    return `
      enable chromium_experimental_subgroup_matrix;
      diagnostic(off, chromium.subgroup_matrix_uniformity);
      var<workgroup> block : array<i32, ${blockM * blockN}>;
      ${staged ? `var<workgroup> xTile : array<i32, ${blockM * kWords}>;\n      var<workgroup> wTile : array<i32, ${blockN * kWords}>;` : ''}
      fn main(index : i32) {
        let m = uniforms.outShape[0];
        let n = uniforms.outShape[1];
        let row0 = i32(workgroupId.y) * ${blockM};
        let col0 = i32(workgroupId.x) * ${blockN};
        let sg = i32(localIndex) / ${this.subgroupSize};
        let sgRow = (sg / ${SG_GRID}) * ${TILES * M};
        let sgCol = (sg % ${SG_GRID}) * ${TILES * N};
        ${decls.join('\n        ')}
        for (var k0 = 0; k0 < uniforms.xRowBytes; k0 += ${K}) {${stage}
          ${loads.join('\n          ')}
          ${mma.join('\n          ')}${staged ? '\n          workgroupBarrier();' : ''}
        }
        ${stores.join('\n        ')}
        workgroupBarrier();
        let scaleBase = m * (uniforms.xRowBytes / 4);
        for (var e = i32(localIndex); e < ${blockM * blockN}; e += ${threads}) {
          let r = row0 + e / ${blockN};
          let c = col0 + e % ${blockN};
          if (r < m && c < n) {
            let xs = bitcast<f32>(xq[scaleBase + r]);
            result[r * n + c] = f32(block[e]) * xs * scales[c];
          }
        }
      }
    `;
  }
}
