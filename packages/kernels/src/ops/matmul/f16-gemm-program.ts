/**
 * The tiled GEMM behind mixed-precision training on WebGPU: `C[b] = op(A[b]) op(B[b])` for float32 tensors in
 * global memory, with each K step's tiles of A and B rounded to f16 in workgroup memory and products summed in
 * f32. Two engines share the tiling, the loads (transposes, batch broadcast, bounds) and the stores:
 * - `matrix`: the GPU's matrix units through Dawn's subgroup matrices (`f16 x f16 -> f32`); each subgroup owns
 *   `tm x tn` result matrices of the device's `M x N` shape;
 * - `scalar`: the same tiles in f32 workgroup memory holding f16-rounded values, and scalar multiply-adds, for
 *   devices without f16 matrices (and so the tiling and indexing are tested on any WebGPU, SwiftShader included).
 */
import type { WebGpuProgramLike } from '../../webgpu/program-like.js';

/** How a workgroup tiles the output and walks K. */
export interface GemmTile {
  /** Subgroups down and across the workgroup's block. */
  sgRows: number;
  sgCols: number;
  /** Result matrices down and across each subgroup's part. */
  tm: number;
  tn: number;
  /** Columns of A (rows of B) staged per step: a multiple of the matrices' K. */
  bk: number;
  /** 2: the next step's tiles are staged while this one's are multiplied (one barrier a step); 1: in turn. */
  stages: 1 | 2;
  /** f16 elements added to each staged row, against bank conflicts. */
  pad: number;
}

export type GemmEngine = 'matrix' | 'scalar';

/** How tiles sit in workgroup memory and how results leave (settled per device by the self-check). */
export interface GemmLayout {
  /**
   * `direct`: a block inside the output with 16-byte aligned rows stores its matrices straight to the output
   * buffer; `staged`: every result matrix goes through workgroup memory and is written element by element.
   */
  store: 'direct' | 'staged';
  /** B's tile as `[bk][blockN]` loaded row-major (`row`), or as `[blockN][bk]` loaded column-major (`col`). */
  bMajor: 'row' | 'col';
  /**
   * How loads and stores name their majorness: `legacy` passes `col_major` as a bool argument (every Dawn
   * version knows it), `templated` as a template argument (current Dawn's spelling).
   */
  spelling?: 'legacy' | 'templated';
  /** f16 elements one unit of an operand load's offset and stride stands for (2: counted in 4-byte words). */
  f16Unit?: 1 | 2;
  /** Each K step's matrix loads and multiplies written out at each offset instead of looped over. */
  unrolled?: boolean;
}

/**
 * Layouts in order of preference: fewer passes through workgroup memory first, each in the spelling every Dawn
 * knows, then in current Dawn's (whose offsets for 16-bit matrices are tried in elements and in words, as the
 * int8 matrices needed words there).
 */
export const GEMM_LAYOUTS: readonly GemmLayout[] = [
  ...(['row', 'col'] as const).flatMap((bMajor) =>
    [false, true].flatMap((unrolled) =>
      (['direct', 'staged'] as const).map((store) => ({
        store,
        bMajor,
        spelling: 'legacy' as const,
        unrolled,
      })),
    ),
  ),
  ...([1, 2] as const).flatMap((f16Unit) =>
    (['row', 'col'] as const).flatMap((bMajor) =>
      (['direct', 'staged'] as const).map((store) => ({
        store,
        bMajor,
        spelling: 'templated' as const,
        f16Unit,
      })),
    ),
  ),
];

export function layoutName(l: GemmLayout): string {
  return (
    `${l.store}/b-${l.bMajor}${l.spelling === 'templated' ? `/templated-${l.f16Unit ?? 1}` : ''}` +
    `${l.unrolled ? '/unrolled' : ''}`
  );
}

/** A subgroup-matrix load in the layout's spelling. */
function matrixLoad(
  layout: GemmLayout,
  type: string,
  ptr: string,
  offset: string,
  major: 'row' | 'col',
  stride: number,
) {
  const unit = layout.f16Unit ?? 1;
  const at = unit === 1 ? `u32(${offset})` : `u32(${offset}) / ${unit}u`;
  const step = `${stride / unit}u`;
  return layout.spelling === 'templated'
    ? `subgroupMatrixLoad<${type}, ${major}_major>(&${ptr}, ${at}, ${step})`
    : `subgroupMatrixLoad<${type}>(&${ptr}, ${at}, ${major === 'col'}, ${step})`;
}

/** A row-major subgroup-matrix store in the layout's spelling. */
function matrixStore(layout: GemmLayout, ptr: string, offset: string, value: string, stride: string) {
  return layout.spelling === 'templated'
    ? `subgroupMatrixStore<row_major>(&${ptr}, ${offset}, ${value}, ${stride});`
    : `subgroupMatrixStore(&${ptr}, ${offset}, ${value}, false, ${stride});`;
}

/** Row length and size of one stage of B's tile in workgroup memory. */
function bTileDims(tile: GemmTile, blockN: number, layout: GemmLayout): { stride: number; size: number } {
  return layout.bMajor === 'row'
    ? { stride: blockN + tile.pad, size: tile.bk * (blockN + tile.pad) }
    : { stride: tile.bk + tile.pad, size: blockN * (tile.bk + tile.pad) };
}

/** The matrix shape one subgroup multiplies (Dawn's `M x N x K`). */
export interface MatrixShape {
  M: number;
  N: number;
  K: number;
}

export interface GemmProblem {
  /** Output batches; A or B may have one batch, broadcast over all. */
  batch: number;
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
}

/** Threads per logical subgroup of the scalar engine (it uses no subgroup operations). */
export const SCALAR_LANES = 32;

export function tileName(t: GemmTile): string {
  return `${t.sgRows}x${t.sgCols}x${t.tm}x${t.tn}x${t.bk}s${t.stages}p${t.pad}`;
}

/** Parses `tileName`'s format (as `MPTJS_F16_GEMM_TILE` takes it): `2x2x4x2x32s2p8`; stages and pad optional. */
export function parseTile(text: string): GemmTile {
  const match = /^(\d+)x(\d+)x(\d+)x(\d+)x(\d+)(?:s([12]))?(?:p(\d+))?$/.exec(text.trim());
  if (!match) {
    throw new RangeError(
      `GEMM tile "${text}" is not sgRows x sgCols x tm x tn x bk [s<stages>] [p<pad>], e.g. 2x2x4x2x32s2p8`,
    );
  }
  const [sgRows, sgCols, tm, tn, bk, stages, pad] = match
    .slice(1)
    .map((v) => (v === undefined ? NaN : Number(v)));
  return {
    sgRows: sgRows!,
    sgCols: sgCols!,
    tm: tm!,
    tn: tn!,
    bk: bk!,
    stages: (Number.isNaN(stages) ? 2 : stages) as 1 | 2,
    pad: Number.isNaN(pad) ? 8 : pad!,
  };
}

export function blockShape(tile: GemmTile, shape: MatrixShape): { blockM: number; blockN: number } {
  return { blockM: tile.sgRows * tile.tm * shape.M, blockN: tile.sgCols * tile.tn * shape.N };
}

/** Bytes of workgroup memory a program with this tile uses. */
export function workgroupBytes(
  tile: GemmTile,
  shape: MatrixShape,
  engine: GemmEngine,
  layout: GemmLayout = GEMM_LAYOUTS[0]!,
): number {
  const { blockM, blockN } = blockShape(tile, shape);
  const element = engine === 'matrix' ? 2 : 4;
  const staged =
    tile.stages * (blockM * (tile.bk + tile.pad) + bTileDims(tile, blockN, layout).size) * element;
  // The matrix engine's scratch result matrices, and its edge flag with the compiler's alignment.
  const scratch = engine === 'matrix' ? tile.sgRows * tile.sgCols * shape.M * shape.N * 4 + 16 : 0;
  return staged + scratch;
}

/** Why a tile can't run with this matrix shape and subgroup size, or null. */
export function tileProblem(
  tile: GemmTile,
  shape: MatrixShape,
  engine: GemmEngine,
  lanes: number,
  maxWorkgroupBytes: number,
  maxInvocations: number,
  layout: GemmLayout = GEMM_LAYOUTS[0]!,
): string | null {
  const counts = [tile.sgRows, tile.sgCols, tile.tm, tile.tn, tile.bk];
  if (!counts.every((v) => Number.isInteger(v) && v > 0))
    return 'every tile count must be a positive integer';
  if (tile.bk % shape.K !== 0) return `bk ${tile.bk} is not a multiple of the matrices' K ${shape.K}`;
  if (!Number.isInteger(tile.pad) || tile.pad < 0 || tile.pad % 8 !== 0) return 'pad must be a multiple of 8';
  const threads = tile.sgRows * tile.sgCols * lanes;
  if (threads > maxInvocations) return `${threads} threads, more than the device's ${maxInvocations}`;
  if (engine === 'scalar' && (shape.M * shape.N * tile.tm * tile.tn) % lanes !== 0)
    return `a subgroup's ${tile.tm * shape.M}x${tile.tn * shape.N} part does not split over ${lanes} lanes`;
  const bytes = workgroupBytes(tile, shape, engine, layout);
  if (bytes > maxWorkgroupBytes)
    return `${bytes} bytes of workgroup memory, more than the device's ${maxWorkgroupBytes}`;
  return null;
}

/** WGSL: a loop staging a `rows x cols` tile, each thread 4 elements along `vecAxis` (coordinates `r`, `c`). */
function stageLoop(o: {
  rows: number;
  cols: number;
  vecAxis: 'r' | 'c';
  fastAxis: 'r' | 'c';
  threads: number;
  inBounds: string;
  source: string;
  target: string;
  convert: string;
}): string {
  const vecDim = o.vecAxis === 'r' ? o.rows : o.cols;
  const otherDim = o.vecAxis === 'r' ? o.cols : o.rows;
  const other = o.vecAxis === 'r' ? 'c' : 'r';
  // Threads step along the vector axis (4 at a time) when that is the operand's contiguous one, else across.
  const coords =
    o.fastAxis === o.vecAxis
      ? `let v0 = (q % ${vecDim / 4}) * 4; let o = q / ${vecDim / 4};`
      : `let o = q % ${otherDim}; let v0 = (q / ${otherDim}) * 4;`;
  const elements = [0, 1, 2, 3].map(
    (j) => `{
            let ${o.vecAxis} = v0 + ${j};
            let ${other} = o;
            var v = 0.0;
            if (${o.inBounds}) {
              v = ${o.source};
            }
            ${o.target} = ${o.convert};
          }`,
  );
  return `for (var q = i32(localIndex); q < ${(o.rows * o.cols) / 4}; q += ${o.threads}) {
          ${coords}
          ${elements.join('\n          ')}
        }`;
}

/**
 * One launch: workgroups over (column blocks, row blocks, batches). A and B come in as rank-3 tensors
 * (`[batchA, rows, cols]` as stored, i.e. `[.., k, m]` when `transposeA`).
 */
export class F16GemmProgram implements WebGpuProgramLike {
  readonly variableNames = ['A', 'B'];
  readonly uniforms = '';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0, 1, 2] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  private readonly problem: GemmProblem;
  private readonly tile: GemmTile;
  private readonly shape: MatrixShape;
  private readonly engine: GemmEngine;
  private readonly lanes: number;
  private readonly layout: GemmLayout;

  constructor(
    problem: GemmProblem,
    tile: GemmTile,
    shape: MatrixShape,
    engine: GemmEngine,
    lanes: number,
    layout: GemmLayout = GEMM_LAYOUTS[0]!,
  ) {
    this.problem = problem;
    this.layout = layout;
    this.tile = tile;
    this.shape = shape;
    this.engine = engine;
    this.lanes = engine === 'scalar' ? SCALAR_LANES : lanes;
    const { blockM, blockN } = blockShape(tile, shape);
    this.outputShape = [problem.batch, problem.m, problem.n];
    this.workgroupSize = [tile.sgRows * tile.sgCols * this.lanes, 1, 1];
    this.dispatch = [Math.ceil(problem.n / blockN), Math.ceil(problem.m / blockM), problem.batch];
    this.shaderKey =
      `mptF16Gemm_${engine}_${tileName(tile)}_${shape.M}x${shape.N}x${shape.K}_${this.lanes}_` +
      `${problem.transposeA ? 'T' : 'N'}${problem.transposeB ? 'T' : 'N'}_${layoutName(layout).replace(/\//g, '_')}`;
  }

  getUserCode(): string {
    const tile = this.tile;
    const shape = this.shape;
    const engine = this.engine;
    const { M, N } = shape;
    const { blockM, blockN } = blockShape(tile, shape);
    const { transposeA, transposeB } = this.problem;
    const threads = this.workgroupSize[0];
    const aStride = tile.bk + tile.pad;
    const { stride: bStride, size: bStage } = bTileDims(tile, blockN, this.layout);
    const aStage = blockM * aStride;
    const matrix = engine === 'matrix';
    const elem = matrix ? 'f16' : 'f32';
    const toTile = matrix ? 'f16(v)' : 'roundToF16(v)';
    const bCol = this.layout.bMajor === 'col';
    // Each thread writes 4 neighbouring tile elements (whole 32-bit words of f16: writes of 16-bit neighbours
    // from different threads are not reliable on every driver), and consecutive threads read consecutive
    // addresses of the operand as stored.
    const aLoop = stageLoop({
      rows: blockM,
      cols: tile.bk,
      vecAxis: 'c',
      fastAxis: transposeA ? 'r' : 'c',
      threads,
      inBounds: 'row0 + r < m && k0 + c < k',
      source: transposeA ? 'A[aBase + (k0 + c) * m + row0 + r]' : 'A[aBase + (row0 + r) * k + k0 + c]',
      target: `aTile[stage * ${aStage} + r * ${aStride} + c]`,
      convert: toTile,
    });
    const bLoop = stageLoop({
      rows: tile.bk,
      cols: blockN,
      vecAxis: bCol ? 'r' : 'c',
      fastAxis: transposeB ? 'r' : 'c',
      threads,
      inBounds: 'col0 + c < n && k0 + r < k',
      source: transposeB ? 'B[bBase + (col0 + c) * k + k0 + r]' : 'B[bBase + (k0 + r) * n + col0 + c]',
      target: `bTile[stage * ${bStage} + ${bCol ? `c * ${bStride} + r` : `r * ${bStride} + c`}]`,
      convert: toTile,
    });
    const loadTiles = `
      fn loadTiles(stage : i32, k0 : i32, aBase : i32, bBase : i32, m : i32, n : i32, k : i32, row0 : i32,
          col0 : i32) {
        ${aLoop}
        ${bLoop}
      }`;
    const body = matrix
      ? this.matrixBody(aStride, bStride, aStage, bStage)
      : this.scalarBody(aStride, bStride, aStage, bStage);
    const header = matrix
      ? `enable f16;
      enable chromium_experimental_subgroup_matrix;
      diagnostic(off, chromium.subgroup_matrix_uniformity);`
      : `fn roundToF16(v : f32) -> f32 {
        // Past f16's range the conversion overflows to infinity (pack2x16float leaves it undefined).
        if (abs(v) >= 65520.0) {
          return v * 3.0e38;
        }
        return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
      }`;
    const step = tile.stages === 2 ? 'let cur = t % 2;' : 'let cur = 0;';
    const prefetch =
      tile.stages === 2
        ? `if (t + 1 < steps) {
            loadTiles(1 - cur, (t + 1) * ${tile.bk}, aBase, bBase, m, n, k, row0, col0);
          }`
        : '';
    const refill =
      tile.stages === 1
        ? `if (t + 1 < steps) {
            loadTiles(0, (t + 1) * ${tile.bk}, aBase, bBase, m, n, k, row0, col0);
            workgroupBarrier();
          }`
        : '';
    // Vulkan's cooperative-matrix loads and stores need 16-byte aligned pointers and strides (misalignment is
    // undefined, not an error): the tiles come first (drivers place workgroup variables in order), every array's
    // byte size is a multiple of 16, the edge flag takes 16 bytes, and pads and K offsets are multiples of 8 halves.
    const trailing = matrix
      ? `var<workgroup> scratch : array<f32, ${tile.sgRows * tile.sgCols * M * N}>;
      var<workgroup> edgeBlock : array<i32, 4>;`
      : '';
    return `
      ${header}
      var<workgroup> aTile : array<${elem}, ${tile.stages * aStage}>;
      var<workgroup> bTile : array<${elem}, ${tile.stages * bStage}>;
      ${trailing}
      ${loadTiles}
      fn main(index : i32) {
        let batch = i32(workgroupId.z);
        let m = uniforms.outShape[1];
        let n = uniforms.outShape[2];
        let k = uniforms.aShape[${transposeA ? 1 : 2}];
        let aBase = select(batch, 0, uniforms.aShape[0] == 1) * uniforms.aShape[1] * uniforms.aShape[2];
        let bBase = select(batch, 0, uniforms.bShape[0] == 1) * uniforms.bShape[1] * uniforms.bShape[2];
        let outBase = batch * m * n;
        let row0 = i32(workgroupId.y) * ${blockM};
        let col0 = i32(workgroupId.x) * ${blockN};
        let sg = i32(localIndex) / ${this.lanes};
        let lane = i32(localIndex) % ${this.lanes};
        let sgRow = (sg / ${tile.sgCols}) * ${tile.tm * M};
        let sgCol = (sg % ${tile.sgCols}) * ${tile.tn * N};
        let steps = (k + ${tile.bk - 1}) / ${tile.bk};
        ${body.declare}
        loadTiles(0, 0, aBase, bBase, m, n, k, row0, col0);
        workgroupBarrier();
        for (var t = 0; t < steps; t++) {
          ${step}
          ${prefetch}
          ${body.multiply}
          workgroupBarrier();
          ${refill}
        }
        ${body.store}
      }
    `;
  }

  private matrixBody(aStride: number, bStride: number, aStage: number, bStage: number) {
    const { tile } = this;
    const { M, N, K } = this.shape;
    const { blockM, blockN } = blockShape(tile, this.shape);
    const declare: string[] = [];
    const loads: string[] = [];
    const mma: string[] = [];
    const direct: string[] = [];
    const staged: string[] = [];
    const layout = this.layout;
    for (let i = 0; i < tile.tm; i++) {
      const type = `subgroup_matrix_left<f16, ${K}, ${M}>`;
      const at = `cur * ${aStage} + (sgRow + ${i * M}) * ${aStride} + kk`;
      loads.push(`let a${i} = ${matrixLoad(layout, type, 'aTile', at, 'row', aStride)};`);
    }
    for (let j = 0; j < tile.tn; j++) {
      const at =
        this.layout.bMajor === 'row'
          ? `kk * ${bStride} + sgCol + ${j * N}`
          : `(sgCol + ${j * N}) * ${bStride} + kk`;
      const type = `subgroup_matrix_right<f16, ${N}, ${K}>`;
      loads.push(
        `let b${j} = ${matrixLoad(layout, type, 'bTile', `cur * ${bStage} + ${at}`, layout.bMajor, bStride)};`,
      );
    }
    for (let i = 0; i < tile.tm; i++) {
      for (let j = 0; j < tile.tn; j++) {
        const acc = `acc${i}_${j}`;
        declare.push(`var ${acc} : subgroup_matrix_result<f32, ${N}, ${M}>;`);
        mma.push(`${acc} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, ${acc});`);
        const at = `u32(outBase + (row0 + sgRow + ${i * M}) * n + col0 + sgCol + ${j * N})`;
        direct.push(matrixStore(layout, 'result', at, acc, 'u32(n)'));
        // A block past the matrix's edge goes through workgroup memory, a result matrix at a time, and only
        // the elements inside are written.
        staged.push(`${matrixStore(layout, 'scratch', `u32(sg * ${M * N})`, acc, `${N}u`)}
          workgroupBarrier();
          for (var e = lane; e < ${M * N}; e += ${this.lanes}) {
            let r = row0 + sgRow + ${i * M} + e / ${N};
            let c = col0 + sgCol + ${j * N} + e % ${N};
            if (r < m && c < n) {
              result[outBase + r * n + c] = scratch[sg * ${M * N} + e];
            }
          }
          workgroupBarrier();`);
      }
    }
    return {
      declare: declare.join('\n        '),
      multiply: layout.unrolled
        ? Array.from(
            { length: tile.bk / K },
            (_, step) =>
              `{
            let kk = ${step * K};
            ${loads.join('\n            ')}
            ${mma.join('\n            ')}
          }`,
          ).join('\n          ')
        : `for (var kk = 0; kk < ${tile.bk}; kk += ${K}) {
            ${loads.join('\n            ')}
            ${mma.join('\n            ')}
          }`,
      // Uniformity analysis takes workgroupId (a private copy in tfjs's shaders) as non-uniform, and the edge
      // path has barriers: the block's edge test reaches every thread through a workgroup-uniform load.
      store: `if (localIndex == 0u) {
          edgeBlock[0] = select(1, 0, ${this.layout.store === 'direct'} && n % 4 == 0 && row0 + ${blockM} <= m &&
            col0 + ${blockN} <= n);
        }
        if (workgroupUniformLoad(&edgeBlock)[0] == 0) {
          ${direct.join('\n          ')}
        } else {
          ${staged.join('\n          ')}
        }`,
    };
  }

  private scalarBody(aStride: number, bStride: number, aStage: number, bStage: number) {
    const { tile } = this;
    const { M, N } = this.shape;
    const partCols = tile.tn * N;
    const bCol = `sgCol + e % ${partCols}`;
    const bAt = this.layout.bMajor === 'row' ? `kk * ${bStride} + ${bCol}` : `(${bCol}) * ${bStride} + kk`;
    const perLane = (tile.tm * M * partCols) / this.lanes;
    return {
      declare: `var acc : array<f32, ${perLane}>;`,
      multiply: `for (var kk = 0; kk < ${tile.bk}; kk++) {
            for (var s = 0; s < ${perLane}; s++) {
              let e = lane + s * ${this.lanes};
              let a = aTile[cur * ${aStage} + (sgRow + e / ${partCols}) * ${aStride} + kk];
              let b = bTile[cur * ${bStage} + ${bAt}];
              acc[s] = fma(a, b, acc[s]);
            }
          }`,
      store: `for (var s = 0; s < ${perLane}; s++) {
          let e = lane + s * ${this.lanes};
          let r = row0 + sgRow + e / ${partCols};
          let c = col0 + sgCol + e % ${partCols};
          if (r < m && c < n) {
            result[outBase + r * n + c] = acc[s];
          }
        }`,
    };
  }
}
