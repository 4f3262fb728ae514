/**
 * What the f16 attention programs (the forward, the backward's dQ and dK/dV) share: a workgroup owns a block of
 * `subgroups * M` rows of one batch*head (query rows, or key rows for dK/dV) and walks tiles of the other side's
 * rows. This module holds the engine and tile settings, the program's dispatch and key, and the WGSL pieces
 * around the products: the prologue, the block's own rows, staged tiles, scores and weighted sums.
 */

import type { WebGpuProgramLike } from '@mptjs/kernels';
import { type GemmEngine, type GemmLayout, layoutName, type MatrixShape, SCALAR_LANES } from '@mptjs/kernels';
import { type AttentionLayout, rowAt, shapeLets } from './blocked-program.js';
import { F16TileCode, type TileOperand } from './f16-tiles.js';

/** How the engine runs on the device: the f16 GEMM's settled plan supplies all of it. */
export interface FlashEngineConfig {
  engine: GemmEngine;
  shape: MatrixShape;
  /** Threads per subgroup (the scalar engine's logical groups have `SCALAR_LANES`). */
  lanes: number;
  /** The subgroup-matrix spelling and offset units that passed the GEMM's self-check on this device. */
  layout: GemmLayout;
}

/** How a workgroup tiles queries and keys. */
export interface FlashTile {
  /** Subgroups per workgroup, each owning `M` query rows. */
  subgroups: number;
  /** Keys per staged tile: a multiple of the matrices' N and K and of 4. */
  keys: number;
  /** f16 elements added to each staged row (a multiple of 8: keeps rows 16-byte aligned), against bank conflicts. */
  pad: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** What staged rows and key tiles come in multiples of: the matrices' N and K, and 4 (whole words). */
export function flashUnit(shape: MatrixShape): number {
  return [shape.N, shape.K, 4].reduce((a, b) => (a * b) / gcd(a, b), 1);
}

/** The staged head dim: `dh` zero-padded to a multiple of the matrices' N and K (and of 4, for whole words). */
export function paddedHeadDim(dh: number, shape: MatrixShape): number {
  const unit = flashUnit(shape);
  return Math.ceil(dh / unit) * unit;
}

export function flashLanes(config: FlashEngineConfig): number {
  return config.engine === 'scalar' ? SCALAR_LANES : config.lanes;
}

export function flashTileName(tile: FlashTile): string {
  return `${tile.subgroups}x${tile.keys}p${tile.pad}`;
}

/** An f16 operand tile (as the tiles hold it: f16 on the matrix engine, f16-rounded f32 on the scalar one). */
export function halfTile(ptr: string, base: string, stride: number, major: 'row' | 'col'): TileOperand {
  return { ptr, base, stride, major, f16: true };
}

/** A program over blocks of `subgroups * M` rows, one workgroup per (block, batch*head). */
export abstract class F16FlashBlockProgram implements WebGpuProgramLike {
  abstract readonly variableNames: string[];
  readonly uniforms = 'scale : f32, queryOffset : i32, causal : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  protected readonly config: FlashEngineConfig;
  protected readonly tile: FlashTile;
  protected readonly dh: number;
  protected readonly code: F16TileCode;
  protected readonly layout: AttentionLayout;

  /**
   * `rowShape` is the `[B, H, T, Dh]` whose T rows the blocks own (Q's, or K's for dK/dV); `layout` is how the
   * tensors lie in memory.
   */
  constructor(
    name: string,
    rowShape: readonly number[],
    outputShape: number[],
    config: FlashEngineConfig,
    tile: FlashTile,
    layout: AttentionLayout,
  ) {
    const [b, h, t, dh] = rowShape as [number, number, number, number];
    const lanes = flashLanes(config);
    this.layout = layout;
    this.config = config;
    this.tile = tile;
    this.dh = dh;
    this.code = new F16TileCode(config, lanes);
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.workgroupSize = [tile.subgroups * lanes, 1, 1];
    this.dispatch = [Math.ceil(t / (tile.subgroups * config.shape.M)), b * h, 1];
    const { M, N, K } = config.shape;
    this.shaderKey =
      `${name}_${config.engine}_${M}x${N}x${K}_${lanes}_${dh}_${flashTileName(tile)}_` +
      layoutName(config.layout).replace(/\//g, '_') +
      (layout === 'rows' ? '_rows' : '');
  }

  abstract getUserCode(): string;

  /**
   * The block's rows, the padded head dim `dhp`, the strides of staged rows (`ds`) and of weight rows (`ps`), the
   * staged tile's rows `bt`, and the threads (`rowLanes` per row of the block).
   */
  protected get dims() {
    const { M } = this.config.shape;
    const rows = this.tile.subgroups * M;
    const dhp = paddedHeadDim(this.dh, this.config.shape);
    const threads = this.workgroupSize[0];
    return {
      M,
      rows,
      dhp,
      ds: dhp + this.tile.pad,
      ps: this.tile.keys + this.tile.pad,
      bt: this.tile.keys,
      threads,
      rowLanes: threads / rows,
      lanes: this.code.lanes,
    };
  }

  /** WGSL: the memory row of query position `j`. */
  protected qRows = (j: string): string => rowAt(this.layout, j, 'tq');

  /** WGSL: the memory row of key position `j`. */
  protected kRows = (j: string): string => rowAt(this.layout, j, 'tk');

  /** WGSL staging `n` rows of `source` (from row `firstRow` of `count`) as f16 into `target` at offset `at`. */
  protected stageRows = (
    source: string,
    rowOf: (j: string) => string,
    firstRow: string,
    count: string,
    n: number,
    target: string,
    at: string,
  ): string => {
    const { dhp, ds, threads } = this.dims;
    return this.code.stage({
      source,
      rowOf,
      first: firstRow,
      count,
      rows: n,
      dh: this.dh,
      cols: dhp,
      target,
      at,
      stride: ds,
      threads,
    });
  };

  /** WGSL staging `n` rows of each of two sources into `target`, the second `bt` rows after the first. */
  protected stagePair(
    sources: [string, string],
    rowOf: (j: string) => string,
    firstRow: string,
    count: string,
    n: number,
    target: string,
  ): string {
    const { bt, ds } = this.dims;
    return `${this.stageRows(sources[0], rowOf, firstRow, count, n, target, '0')}
          ${this.stageRows(sources[1], rowOf, firstRow, count, n, target, `${bt * ds}`)}`;
  }

  /**
   * WGSL declaring the workgroup arrays, those the matrices use first (drivers place workgroup variables in
   * order, and Vulkan's cooperative-matrix loads and stores need 16-byte aligned pointers): the staged tile of
   * `2 * bt` rows, f32 score tiles, weight tiles (as the tiles hold f16), f32 accumulators, then the scalar
   * engine's tiles of the block's own rows (`${name}Tile`).
   */
  protected tiles(t: {
    staged: string;
    scores: string[];
    weights: string[];
    sums: string[];
    own: string[];
  }): string {
    const c = this.code;
    const { rows, dhp, ds, ps, bt } = this.dims;
    const decl = (name: string, elem: string, length: number) =>
      `var<workgroup> ${name} : array<${elem}, ${length}>;`;
    return [
      decl(t.staged, c.elem, 2 * bt * ds),
      ...t.scores.map((name) => decl(name, 'f32', rows * bt)),
      ...t.weights.map((name) => decl(name, c.elem, rows * ps)),
      ...t.sums.map((name) => decl(name, 'f32', rows * dhp)),
      ...(c.matrix ? [] : t.own.map((name) => decl(`${name}Tile`, 'f32', rows * ds))),
    ].join('\n      ');
  }

  /** WGSL, at the top of main: the shapes, the block, the thread's subgroup, lane, row in the block and part. */
  protected indices(): string {
    const { M, rows, lanes, rowLanes } = this.dims;
    return `${shapeLets(this.layout)}
        let bh = i32(workgroupId.y);
        let b = bh / heads;
        let h = bh % heads;
        let first = i32(workgroupId.x) * ${rows};
        let sg = i32(localIndex) / ${lanes};
        let lane = i32(localIndex) % ${lanes};
        let sgRow = sg * ${M};
        let rowLocal = i32(localIndex) / ${rowLanes};
        let part = i32(localIndex) % ${rowLanes};
        let slope = Slopes[h];`;
  }

  /** WGSL zeroing the f32 accumulators. */
  protected zero(sums: string[]): string {
    const { rows, dhp, threads } = this.dims;
    return `for (var e = i32(localIndex); e < ${rows * dhp}; e += ${threads}) {
          ${sums.map((name) => `${name}[e] = 0.0;`).join('\n          ')}
        }`;
  }

  /**
   * WGSL: the block's own rows (`first …` of `count`) of each source, held for the whole pass: the matrix engine
   * stages them through the staged tile `staged` once and keeps them in left matrices `${name}${i}`, the scalar
   * engine keeps them staged in `${name}Tile`.
   */
  protected ownRows(
    parts: { source: string; name: string }[],
    rowOf: (j: string) => string,
    count: string,
    staged: string,
  ): string {
    const c = this.code;
    const { rows, dhp, ds, bt } = this.dims;
    if (!c.matrix) {
      return parts
        .map((p) => this.stageRows(p.source, rowOf, 'first', count, rows, `${p.name}Tile`, '0'))
        .join('\n        ');
    }
    const at = (i: number) => `${i * bt * ds}`;
    return `${parts.map((p, i) => this.stageRows(p.source, rowOf, 'first', count, rows, staged, at(i))).join('\n        ')}
        workgroupBarrier();
        ${parts.map((p, i) => c.holdLeft(p.name, halfTile(staged, `${i === 0 ? '' : `${at(i)} + `}sgRow * ${ds}`, ds, 'row'), dhp)).join('\n        ')}
        workgroupBarrier();`;
  }

  /**
   * WGSL: the subgroup's rows of the block's own `name` rows times the transposed staged rows at `at` into the
   * f32 tile `out` (the staged tile's rows are the transpose's columns, so it loads column-major).
   */
  protected ownTimesStagedT(name: string, staged: string, at: string, out: string): string {
    const { ds, dhp, bt } = this.dims;
    return this.code.product({
      cols: bt,
      depth: dhp,
      left: halfTile(`${name}Tile`, `sgRow * ${ds}`, ds, 'row'),
      heldLeft: name,
      right: halfTile(staged, at, ds, 'col'),
      out: { ptr: out, base: `sgRow * ${bt}`, stride: bt },
      accumulate: false,
    });
  }

  /** WGSL: adds the subgroup's rows of `weights` times the staged rows at `at` to the accumulator `sum`. */
  protected addWeightsTimesStaged(weights: string, staged: string, at: string, sum: string): string {
    const { ds, dhp, ps, bt } = this.dims;
    return this.code.product({
      cols: dhp,
      depth: bt,
      left: halfTile(weights, `sgRow * ${ps}`, ps, 'row'),
      right: halfTile(staged, at, ds, 'row'),
      out: { ptr: sum, base: `sgRow * ${dhp}`, stride: dhp },
      accumulate: true,
    });
  }

  /** WGSL: the scaled score with ALiBi of the block's row and column `j` of the score tile, at key `key`. */
  protected score(j: string, key: string): string {
    return `sTile[rowLocal * ${this.dims.bt} + ${j}] * uniforms.scale + slope * f32(${key} - qPos)`;
  }

  /** The query blocks' declarations of `maskTile` (the key tile's mask) and `keyEnd`. */
  protected keyTiles(): string {
    return `var<workgroup> maskTile : array<f32, ${Math.ceil(this.dims.bt / 4) * 4}>;
      var<workgroup> keyEndShared : array<i32, 4>;`;
  }

  /** WGSL, for a query block: `keyEnd`, past which (under the causal mask) no query of the block sees. */
  protected keyEnd(): string {
    return `// Under the causal mask no query of this block sees past its last row's position.
        if (localIndex == 0u) {
          var end = tk;
          if (uniforms.causal != 0) {
            end = min(tk, uniforms.queryOffset + min(first + ${this.dims.rows}, tq));
          }
          keyEndShared[0] = end;
        }
        let keyEnd = workgroupUniformLoad(&keyEndShared)[0];`;
  }

  /** WGSL, for a query block: stages the K and V rows of the tile from key `t0` into `kvTile`, and their mask. */
  protected stageKeys(): string {
    const { bt, threads } = this.dims;
    return `${this.stagePair(['K', 'V'], this.kRows, 't0', 'tk', bt, 'kvTile')}
          for (var e = i32(localIndex); e < ${bt}; e += ${threads}) {
            var m = 0.0;
            if (t0 + e < tk) {
              m = KeyMask[b * tk + t0 + e];
            }
            maskTile[e] = m;
          }`;
  }
}
