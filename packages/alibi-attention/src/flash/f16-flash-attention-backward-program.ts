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
import { type AttentionLayout, headsShape } from './blocked-program.js';
import { F16FlashBlockProgram, type FlashEngineConfig, type FlashTile } from './f16-flash-block.js';

/** `dQ [B, H, Tq, Dh]`, one workgroup per (batch*head, block of query rows). */
export class F16FlashAttentionDqProgram extends F16FlashBlockProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Dy', 'RowStats', 'Slopes', 'KeyMask'];

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
    const { dhp, ds, ps, bt, rowLanes } = this.dims;
    const dh = this.dh;
    const own = [
      { source: 'Q', name: 'q' },
      { source: 'Dy', name: 'dy' },
    ];
    return `
      ${c.header()}
      ${this.tiles({ staged: 'kvTile', scores: ['sTile', 'dpTile'], weights: ['pTile'], sums: ['oTile'], own: own.map((o) => o.name) })}
      ${this.keyTiles()}

      fn main(index : i32) {${this.indices()}
        let row = first + rowLocal;
        let qPos = uniforms.queryOffset + row;
        let r = bh * tq + min(row, tq - 1);
        let lse = RowStats[2 * r];
        let delta = RowStats[2 * r + 1];
        ${this.keyEnd()}
        ${this.zero(['oTile'])}
        ${this.ownRows(own, this.qRows, 'tq', 'kvTile')}
        for (var t0 = 0; t0 < keyEnd; t0 += ${bt}) {
          ${this.stageKeys()}
          workgroupBarrier();
          ${this.ownTimesStagedT('q', 'kvTile', '0', 'sTile')}
          ${this.ownTimesStagedT('dy', 'kvTile', `${bt * ds}`, 'dpTile')}
          workgroupBarrier();
          for (var c = part; c < ${bt / 4}; c += ${rowLanes}) {
            for (var i = 0; i < 4; i++) {
              let j = 4 * c + i;
              let key = t0 + j;
              var ds = 0.0;
              if (row < tq && key < keyEnd && maskTile[j] != 0.0 && (uniforms.causal == 0 || key <= qPos)) {
                let s = ${this.score('j', 'key')};
                ds = exp(s - lse) * (dpTile[rowLocal * ${bt} + j] - delta);
              }
              pTile[rowLocal * ${ps} + j] = ${c.toHalf('ds')};
            }
          }
          workgroupBarrier();
          ${this.addWeightsTimesStaged('pTile', 'kvTile', '0', 'oTile')}
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
export class F16FlashAttentionDkDvProgram extends F16FlashBlockProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Dy', 'RowStats', 'Slopes', 'KeyMask'];

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
    const { dhp, ds, ps, bt, threads, rowLanes } = this.dims;
    const dh = this.dh;
    const own = [
      { source: 'K', name: 'k' },
      { source: 'V', name: 'v' },
    ];
    return `
      ${c.header()}
      ${this.tiles({ staged: 'qdTile', scores: ['sTile', 'dpTile'], weights: ['pTile', 'dsTile'], sums: ['dkTile', 'dvTile'], own: own.map((o) => o.name) })}
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
        ${this.zero(['dkTile', 'dvTile'])}
        ${this.ownRows(own, this.kRows, 'tk', 'qdTile')}
        for (var t0 = queryStart; t0 < tq; t0 += ${bt}) {
          ${this.stagePair(['Q', 'Dy'], this.qRows, 't0', 'tq', bt, 'qdTile')}
          for (var e = i32(localIndex); e < ${2 * bt}; e += ${threads}) {
            var value = 0.0;
            if (t0 + e / 2 < tq) {
              value = RowStats[2 * (bh * tq + t0) + e];
            }
            statsTile[e] = value;
          }
          workgroupBarrier();
          ${this.ownTimesStagedT('k', 'qdTile', '0', 'sTile')}
          ${this.ownTimesStagedT('v', 'qdTile', `${bt * ds}`, 'dpTile')}
          workgroupBarrier();
          for (var c = part; c < ${bt / 4}; c += ${rowLanes}) {
            for (var i = 0; i < 4; i++) {
              let j = 4 * c + i;
              let qPos = uniforms.queryOffset + t0 + j;
              var p = 0.0;
              var ds = 0.0;
              if (keyVisible && t0 + j < tq && (uniforms.causal == 0 || key <= qPos)) {
                let s = ${this.score('j', 'key')};
                p = exp(s - statsTile[2 * j]);
                ds = p * (dpTile[rowLocal * ${bt} + j] - statsTile[2 * j + 1]);
              }
              pTile[rowLocal * ${ps} + j] = ${c.toHalf('p')};
              dsTile[rowLocal * ${ps} + j] = ${c.toHalf('ds')};
            }
          }
          workgroupBarrier();
          ${this.addWeightsTimesStaged('pTile', 'qdTile', `${bt * ds}`, 'dvTile')}
          ${this.addWeightsTimesStaged('dsTile', 'qdTile', '0', 'dkTile')}
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
