/**
 * The fused attention backward for mixed-precision training: the float32 backward's inputs, uniforms, row
 * statistics (`FlashAttentionRowStatsProgram`: lse and `D = rowsum(dO * O)`) and outputs, with every product on
 * f16 operands and f32 sums. Probabilities are recomputed in f32 from the scores and the saved log-sum-exps;
 * only P and `dS = P * (dP - D)` are rounded to f16 on their way into a product.
 * - `F16FlashAttentionDqProgram`: a block of `subgroups * M` query rows, over key tiles: `S = Q K^T`,
 *   `dP = dO V^T`, then `dQ += dS K`; dQ is scaled on the way out.
 * - `F16FlashAttentionDkDvProgram`: a block of `subgroups * M` key rows, over query tiles: `S^T = K Q^T`,
 *   `dP^T = V dO^T`, then `dV += P^T dO` and `dK += dS^T Q`; dK is scaled on the way out.
 * The engines, staging and products are the forward's (`f16-tiles.ts`): the matrix engine holds the block's own
 * rows (Q and dO, or K and V) in left matrices, staged once through the other operands' tiles.
 */
import type { WebGpuProgramLike } from '@mptjs/kernels';
import { layoutName, SCALAR_LANES } from '@mptjs/kernels';
import { type AttentionLayout, headsShape, rowAt, shapeLets } from './blocked-program.js';
import {
  type FlashEngineConfig,
  type FlashTile,
  flashTileName,
  paddedHeadDim,
} from './f16-flash-attention-program.js';
import { F16TileCode } from './f16-tiles.js';

abstract class F16FlashBackwardProgram implements WebGpuProgramLike {
  readonly variableNames = ['Q', 'K', 'V', 'Dy', 'RowStats', 'Slopes', 'KeyMask'];
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
   * `rowShape` is the `[B, H, T, Dh]` whose T rows the blocks own (Q's for dQ, K's for dK/dV); `layout` is how
   * the tensors lie in memory.
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
    this.layout = layout;
    const lanes = config.engine === 'scalar' ? SCALAR_LANES : config.lanes;
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

  /** WGSL, at the top of main: the shapes, the block, the thread's subgroup, lane, row in the block and part. */
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
}

/** `dQ [B, H, Tq, Dh]`, one workgroup per (batch*head, block of query rows). */
export class F16FlashAttentionDqProgram extends F16FlashBackwardProgram {
  /** `queryShape` is Q's in `layout`. */
  constructor(
    queryShape: readonly number[],
    config: FlashEngineConfig,
    tile: FlashTile,
    layout: AttentionLayout = 'heads',
  ) {
    super('mptF16FlashDq', headsShape(queryShape, layout), [...queryShape], config, tile, layout);
  }

  getUserCode(): string {
    const c = this.code;
    const { rows, dhp, ds, ps, bt, threads, rowLanes } = this.dims;
    const dh = this.dh;
    const stage = this.stageRows;
    const own = c.matrix
      ? `${stage('Q', this.qRows, 'first', 'tq', rows, 'kvTile', '0')}
        ${stage('Dy', this.qRows, 'first', 'tq', rows, 'kvTile', `${bt * ds}`)}
        workgroupBarrier();
        ${c.holdLeft('q', { ptr: 'kvTile', base: `sgRow * ${ds}`, stride: ds, major: 'row', f16: true }, dhp)}
        ${c.holdLeft('dy', { ptr: 'kvTile', base: `${bt * ds} + sgRow * ${ds}`, stride: ds, major: 'row', f16: true }, dhp)}
        workgroupBarrier();`
      : `${stage('Q', this.qRows, 'first', 'tq', rows, 'qTile', '0')}
        ${stage('Dy', this.qRows, 'first', 'tq', rows, 'dyTile', '0')}`;
    const half = (ptr: string, base: string, stride: number, major: 'row' | 'col') => ({
      ptr,
      base,
      stride,
      major,
      f16: true,
    });
    const scores = c.product({
      cols: bt,
      depth: dhp,
      left: half('qTile', `sgRow * ${ds}`, ds, 'row'),
      heldLeft: 'q',
      right: half('kvTile', '0', ds, 'col'),
      out: { ptr: 'sTile', base: `sgRow * ${bt}`, stride: bt },
      accumulate: false,
    });
    const dp = c.product({
      cols: bt,
      depth: dhp,
      left: half('dyTile', `sgRow * ${ds}`, ds, 'row'),
      heldLeft: 'dy',
      right: half('kvTile', `${bt * ds}`, ds, 'col'),
      out: { ptr: 'dpTile', base: `sgRow * ${bt}`, stride: bt },
      accumulate: false,
    });
    const dq = c.product({
      cols: dhp,
      depth: bt,
      left: half('pTile', `sgRow * ${ps}`, ps, 'row'),
      right: half('kvTile', '0', ds, 'row'),
      out: { ptr: 'oTile', base: `sgRow * ${dhp}`, stride: dhp },
      accumulate: true,
    });
    return `
      ${c.header()}
      var<workgroup> kvTile : array<${c.elem}, ${2 * bt * ds}>;
      var<workgroup> sTile : array<f32, ${rows * bt}>;
      var<workgroup> dpTile : array<f32, ${rows * bt}>;
      var<workgroup> pTile : array<${c.elem}, ${rows * ps}>;
      var<workgroup> oTile : array<f32, ${rows * dhp}>;
      ${c.matrix ? '' : `var<workgroup> qTile : array<f32, ${rows * ds}>;\n      var<workgroup> dyTile : array<f32, ${rows * ds}>;`}
      var<workgroup> maskTile : array<f32, ${Math.ceil(bt / 4) * 4}>;
      var<workgroup> keyEndShared : array<i32, 4>;

      fn main(index : i32) {${this.indices()}
        let row = first + rowLocal;
        let qPos = uniforms.queryOffset + row;
        let r = bh * tq + min(row, tq - 1);
        let lse = RowStats[2 * r];
        let delta = RowStats[2 * r + 1];
        // Under the causal mask no query of this block sees past its last row's position.
        if (localIndex == 0u) {
          var end = tk;
          if (uniforms.causal != 0) {
            end = min(tk, uniforms.queryOffset + min(first + ${rows}, tq));
          }
          keyEndShared[0] = end;
        }
        let keyEnd = workgroupUniformLoad(&keyEndShared)[0];
        for (var e = i32(localIndex); e < ${rows * dhp}; e += ${threads}) {
          oTile[e] = 0.0;
        }
        ${own}
        for (var t0 = 0; t0 < keyEnd; t0 += ${bt}) {
          ${stage('K', this.kRows, 't0', 'tk', bt, 'kvTile', '0')}
          ${stage('V', this.kRows, 't0', 'tk', bt, 'kvTile', `${bt * ds}`)}
          for (var e = i32(localIndex); e < ${bt}; e += ${threads}) {
            var m = 0.0;
            if (t0 + e < tk) {
              m = KeyMask[b * tk + t0 + e];
            }
            maskTile[e] = m;
          }
          workgroupBarrier();
          ${scores}
          ${dp}
          workgroupBarrier();
          for (var c = part; c < ${bt / 4}; c += ${rowLanes}) {
            for (var i = 0; i < 4; i++) {
              let j = 4 * c + i;
              let key = t0 + j;
              var ds = 0.0;
              if (row < tq && key < keyEnd && maskTile[j] != 0.0 && (uniforms.causal == 0 || key <= qPos)) {
                let s = sTile[rowLocal * ${bt} + j] * uniforms.scale + slope * f32(key - qPos);
                ds = exp(s - lse) * (dpTile[rowLocal * ${bt} + j] - delta);
              }
              pTile[rowLocal * ${ps} + j] = ${c.toHalf('ds')};
            }
          }
          workgroupBarrier();
          ${dq}
          workgroupBarrier();
        }
        workgroupBarrier();
        if (row < tq) {
          for (var d = part; d < ${dh}; d += ${rowLanes}) {
            result[${this.qRows('row')} * ${dh} + d] = oTile[rowLocal * ${dhp} + d] * uniforms.scale;
          }
        }
      }
    `;
  }
}

/** dK then dV, flat (`2 * B*H*Tk*Dh` floats), one workgroup per (batch*head, block of key rows). */
export class F16FlashAttentionDkDvProgram extends F16FlashBackwardProgram {
  /** `keyShape` is K's in `layout`. */
  constructor(
    keyShape: readonly number[],
    config: FlashEngineConfig,
    tile: FlashTile,
    layout: AttentionLayout = 'heads',
  ) {
    const [b, h, tk, dh] = headsShape(keyShape, layout);
    super('mptF16FlashDkDv', [b, h, tk, dh], [2 * b * h * tk * dh], config, tile, layout);
  }

  getUserCode(): string {
    const c = this.code;
    const { rows, dhp, ds, ps, bt, threads, rowLanes } = this.dims;
    const dh = this.dh;
    const stage = this.stageRows;
    const half = (ptr: string, base: string, stride: number, major: 'row' | 'col') => ({
      ptr,
      base,
      stride,
      major,
      f16: true,
    });
    const own = c.matrix
      ? `${stage('K', this.kRows, 'first', 'tk', rows, 'qdTile', '0')}
        ${stage('V', this.kRows, 'first', 'tk', rows, 'qdTile', `${bt * ds}`)}
        workgroupBarrier();
        ${c.holdLeft('k', half('qdTile', `sgRow * ${ds}`, ds, 'row'), dhp)}
        ${c.holdLeft('v', half('qdTile', `${bt * ds} + sgRow * ${ds}`, ds, 'row'), dhp)}
        workgroupBarrier();`
      : `${stage('K', this.kRows, 'first', 'tk', rows, 'kTile', '0')}
        ${stage('V', this.kRows, 'first', 'tk', rows, 'vTile', '0')}`;
    const scores = c.product({
      cols: bt,
      depth: dhp,
      left: half('kTile', `sgRow * ${ds}`, ds, 'row'),
      heldLeft: 'k',
      right: half('qdTile', '0', ds, 'col'),
      out: { ptr: 'sTile', base: `sgRow * ${bt}`, stride: bt },
      accumulate: false,
    });
    const dp = c.product({
      cols: bt,
      depth: dhp,
      left: half('vTile', `sgRow * ${ds}`, ds, 'row'),
      heldLeft: 'v',
      right: half('qdTile', `${bt * ds}`, ds, 'col'),
      out: { ptr: 'dpTile', base: `sgRow * ${bt}`, stride: bt },
      accumulate: false,
    });
    const dv = c.product({
      cols: dhp,
      depth: bt,
      left: half('pTile', `sgRow * ${ps}`, ps, 'row'),
      right: half('qdTile', `${bt * ds}`, ds, 'row'),
      out: { ptr: 'dvTile', base: `sgRow * ${dhp}`, stride: dhp },
      accumulate: true,
    });
    const dk = c.product({
      cols: dhp,
      depth: bt,
      left: half('dsTile', `sgRow * ${ps}`, ps, 'row'),
      right: half('qdTile', '0', ds, 'row'),
      out: { ptr: 'dkTile', base: `sgRow * ${dhp}`, stride: dhp },
      accumulate: true,
    });
    return `
      ${c.header()}
      var<workgroup> qdTile : array<${c.elem}, ${2 * bt * ds}>;
      var<workgroup> sTile : array<f32, ${rows * bt}>;
      var<workgroup> dpTile : array<f32, ${rows * bt}>;
      var<workgroup> pTile : array<${c.elem}, ${rows * ps}>;
      var<workgroup> dsTile : array<${c.elem}, ${rows * ps}>;
      var<workgroup> dkTile : array<f32, ${rows * dhp}>;
      var<workgroup> dvTile : array<f32, ${rows * dhp}>;
      ${c.matrix ? '' : `var<workgroup> kTile : array<f32, ${rows * ds}>;\n      var<workgroup> vTile : array<f32, ${rows * ds}>;`}
      var<workgroup> statsTile : array<f32, ${2 * bt}>;
      var<workgroup> queryStartShared : array<i32, 4>;

      fn main(index : i32) {${this.indices()}
        let key = first + rowLocal;
        // A padding key gets no probability from any query, hence zero gradients.
        let keyVisible = key < tk && KeyMask[b * tk + min(key, tk - 1)] != 0.0;
        // Under the causal mask the queries before this block's first key see none of its keys.
        if (localIndex == 0u) {
          var start = 0;
          if (uniforms.causal != 0) {
            start = clamp(first - uniforms.queryOffset, 0, tq);
          }
          queryStartShared[0] = start;
        }
        let queryStart = workgroupUniformLoad(&queryStartShared)[0];
        for (var e = i32(localIndex); e < ${rows * dhp}; e += ${threads}) {
          dkTile[e] = 0.0;
          dvTile[e] = 0.0;
        }
        ${own}
        for (var t0 = queryStart; t0 < tq; t0 += ${bt}) {
          ${stage('Q', this.qRows, 't0', 'tq', bt, 'qdTile', '0')}
          ${stage('Dy', this.qRows, 't0', 'tq', bt, 'qdTile', `${bt * ds}`)}
          for (var e = i32(localIndex); e < ${2 * bt}; e += ${threads}) {
            var value = 0.0;
            if (t0 + e / 2 < tq) {
              value = RowStats[2 * (bh * tq + t0) + e];
            }
            statsTile[e] = value;
          }
          workgroupBarrier();
          ${scores}
          ${dp}
          workgroupBarrier();
          for (var c = part; c < ${bt / 4}; c += ${rowLanes}) {
            for (var i = 0; i < 4; i++) {
              let j = 4 * c + i;
              let qPos = uniforms.queryOffset + t0 + j;
              var p = 0.0;
              var ds = 0.0;
              if (keyVisible && t0 + j < tq && (uniforms.causal == 0 || key <= qPos)) {
                let s = sTile[rowLocal * ${bt} + j] * uniforms.scale + slope * f32(key - qPos);
                p = exp(s - statsTile[2 * j]);
                ds = p * (dpTile[rowLocal * ${bt} + j] - statsTile[2 * j + 1]);
              }
              pTile[rowLocal * ${ps} + j] = ${c.toHalf('p')};
              dsTile[rowLocal * ${ps} + j] = ${c.toHalf('ds')};
            }
          }
          workgroupBarrier();
          ${dv}
          ${dk}
          workgroupBarrier();
        }
        workgroupBarrier();
        if (key < tk) {
          let out = ${this.kRows('key')} * ${dh};
          let dvOffset = uniforms.kShape[0] * heads * tk * ${dh};
          for (var d = part; d < ${dh}; d += ${rowLanes}) {
            result[out + d] = dkTile[rowLocal * ${dhp} + d] * uniforms.scale;
            result[dvOffset + out + d] = dvTile[rowLocal * ${dhp} + d];
          }
        }
      }
    `;
  }
}
