/**
 * The attention forward for mixed-precision training: the fused kernel's inputs, uniforms and output layout
 * (O, and with `withLse` each row's log-sum-exp after it), with both products on f16 operands and f32 sums.
 * One workgroup owns a block of `subgroups * M` query rows of one batch*head, each subgroup `M` rows; per tile
 * of `keys` keys:
 * 1. K and V rows are staged in workgroup memory as f16 (head dim zero-padded to a multiple of the matrices');
 * 2. each subgroup multiplies its Q rows by K^T into an f32 score tile;
 * 3. the threads of each row (`lanes / M` of them) add ALiBi and the masks, keep the running max and sum in f32,
 *    rescale the row's f32 output accumulator and write the probabilities P rounded to f16;
 * 4. each subgroup adds P V to its rows of the accumulator.
 * Two engines share the tiling, the staging, the softmax and the stores (as the f16 GEMM's do):
 * - `matrix`: Dawn's subgroup matrices (`f16 x f16 -> f32`), Q held in left matrices for the whole pass;
 * - `scalar`: the same tiles in f32 workgroup memory holding f16-rounded values and scalar multiply-adds by
 *   `SCALAR_LANES`-thread groups, so the tiling and indexing run on any WebGPU (SwiftShader included).
 */
import { type AttentionLayout, headsShape } from './blocked-program.js';
import {
  F16FlashBlockProgram,
  type FlashEngineConfig,
  type FlashTile,
  flashLanes,
  flashUnit,
  paddedHeadDim,
} from './f16-flash-block.js';

export { type FlashEngineConfig, type FlashTile, flashTileName, paddedHeadDim } from './f16-flash-block.js';

/**
 * Which program a tile is for: the forward, or the backward's dQ (per query block, over key tiles) or dK/dV (per
 * key block, over query tiles; `keys` is then the query tile's length).
 */
export type FlashKind = 'forward' | 'dq' | 'dkdv';

/** Bytes of workgroup memory the program uses for head dim `dh`. */
export function flashWorkgroupBytes(
  config: FlashEngineConfig,
  tile: FlashTile,
  dh: number,
  kind: FlashKind = 'forward',
): number {
  const { M } = config.shape;
  const rows = tile.subgroups * M;
  const dhp = paddedHeadDim(dh, config.shape);
  const half = config.engine === 'matrix' ? 2 : 4;
  const staged = 2 * tile.keys * (dhp + tile.pad) * half;
  const scores = rows * tile.keys * 4;
  const weights = rows * (tile.keys + tile.pad) * half;
  const accumulator = rows * dhp * 4;
  // The scalar engine keeps the block's own rows staged (the matrix engine keeps them in left matrices).
  const own = config.engine === 'scalar' ? rows * (dhp + tile.pad) * 4 : 0;
  const scalars = Math.ceil(tile.keys / 4) * 16 + 16;
  if (kind === 'forward') return staged + scores + weights + accumulator + own + scalars;
  // dQ: scores and dP, dS, the dQ accumulator; dK/dV: both of those twice over, and the row statistics.
  if (kind === 'dq') return staged + 2 * scores + weights + accumulator + 2 * own + scalars;
  return staged + 2 * scores + 2 * weights + 2 * accumulator + 2 * own + 2 * tile.keys * 4 + 16;
}

/** Why `tile` can't run with this engine and head dim on a device with these limits, or null. */
export function flashTileProblem(
  config: FlashEngineConfig,
  tile: FlashTile,
  dh: number,
  maxWorkgroupBytes: number,
  maxInvocations: number,
  kind: FlashKind = 'forward',
): string | null {
  const { M, N, K } = config.shape;
  const lanes = flashLanes(config);
  if (!Number.isInteger(dh) || dh < 1) return `head dim must be a positive integer, got ${dh}`;
  if (!Number.isInteger(tile.subgroups) || tile.subgroups < 1) return 'subgroups must be a positive integer';
  if (!Number.isInteger(tile.keys) || tile.keys < 1 || tile.keys % flashUnit(config.shape) !== 0)
    return `keys ${tile.keys} is not a multiple of the matrices' N ${N}, K ${K} and of 4`;
  if (!Number.isInteger(tile.pad) || tile.pad < 0 || tile.pad % 8 !== 0) return 'pad must be a multiple of 8';
  if (lanes < M || lanes % M !== 0) return `a subgroup of ${lanes} threads can't share ${M} rows evenly`;
  // The matrix engine stages its block's own rows through the tiles once (the backward two kinds of rows).
  const room = kind === 'forward' ? 2 * tile.keys : tile.keys;
  if (config.engine === 'matrix' && tile.subgroups * M > room)
    return `${tile.subgroups * M} rows of the block don't fit the ${room} staged rows`;
  const threads = tile.subgroups * lanes;
  if (threads > maxInvocations) return `${threads} threads, more than the device's ${maxInvocations}`;
  const bytes = flashWorkgroupBytes(config, tile, dh, kind);
  if (bytes > maxWorkgroupBytes)
    return `${bytes} bytes of workgroup memory at head dim ${dh}, more than the device's ${maxWorkgroupBytes}`;
  return null;
}

/** Tiles in order of preference: more query rows per workgroup, then longer key tiles. */
export function flashTileCandidates(config: FlashEngineConfig): FlashTile[] {
  const unit = flashUnit(config.shape);
  const keys = [...new Set([Math.max(unit, 32), unit])];
  return [4, 2, 1].flatMap((subgroups) => keys.map((k) => ({ subgroups, keys: k, pad: 8 })));
}

/** The first candidate tile that fits, or why none does. */
export function chooseFlashTile(
  config: FlashEngineConfig,
  dh: number,
  maxWorkgroupBytes: number,
  maxInvocations: number,
  kind: FlashKind = 'forward',
): { tile: FlashTile } | { problem: string } {
  const problems: string[] = [];
  for (const tile of flashTileCandidates(config)) {
    const problem = flashTileProblem(config, tile, dh, maxWorkgroupBytes, maxInvocations, kind);
    if (problem === null) return { tile };
    problems.push(problem);
  }
  return { problem: `no f16 flash-attention ${kind} tile fits (${problems.at(-1)})` };
}

export class F16FlashAttentionProgram extends F16FlashBlockProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Slopes', 'KeyMask'];
  private readonly withLse: boolean;

  /**
   * `queryShape` is Q's shape in `layout` (`[B, H, Tq, Dh]`, or `[B, Tq, H, Dh]` for `rows`; O has the same);
   * the tile must pass `flashTileProblem` for the device.
   */
  constructor(
    queryShape: readonly number[],
    withLse: boolean,
    config: FlashEngineConfig,
    tile: FlashTile,
    layout: AttentionLayout = 'heads',
  ) {
    const [b, h, tq, dh] = headsShape(queryShape, layout);
    const outputShape = withLse ? [b * h * tq * (dh + 1)] : [...queryShape];
    super(`mptF16Flash${withLse ? 'Lse' : ''}`, [b, h, tq, dh], outputShape, config, tile, layout);
    this.withLse = withLse;
  }

  getUserCode(): string {
    const c = this.code;
    const { dhp, ds, ps, bt, rowLanes } = this.dims;
    const asF32 = (v: string) => (c.matrix ? `f32(${v})` : v);
    const lse = this.withLse
      ? `
          if (part == 0) {
            var lse = 0.0;
            if (denominator > 0.0) {
              lse = runningMax + log(denominator);
            }
            result[uniforms.qShape[0] * heads * tq * ${this.dh} + bh * tq + row] = lse;
          }`
      : '';
    const visible = (key: string) =>
      `${key} < keyEnd && maskTile[${key} - t0] != 0.0 && (uniforms.causal == 0 || ${key} <= qPos)`;
    return `
      ${c.header()}
      ${this.tiles({ staged: 'kvTile', scores: ['sTile'], weights: ['pTile'], sums: ['oTile'], own: ['q'] })}
      ${this.keyTiles()}

      fn main(index : i32) {${this.indices()}
        let row = first + rowLocal;
        let qPos = uniforms.queryOffset + row;
        ${this.keyEnd()}
        ${this.zero(['oTile'])}
        ${this.ownRows([{ source: 'Q', name: 'q' }], this.qRows, 'tq', 'kvTile')}
        var runningMax = -3.402823e+38;
        var denominator = 0.0;
        for (var t0 = 0; t0 < keyEnd; t0 += ${bt}) {
          ${this.stageKeys()}
          workgroupBarrier();
          ${this.ownTimesStagedT('q', 'kvTile', '0', 'sTile')}
          workgroupBarrier();
          {
            // Every thread of a row computes the row's statistics (identical values), then writes its share.
            var tileMax = -3.402823e+38;
            for (var j = 0; j < ${bt}; j++) {
              let key = t0 + j;
              if (${visible('key')}) {
                tileMax = max(tileMax, ${this.score('j', 'key')});
              }
            }
            let newMax = max(runningMax, tileMax);
            let correction = exp(runningMax - newMax);
            var tileSum = 0.0;
            for (var c = 0; c < ${bt / 4}; c++) {
              var p4 = vec4<f32>(0.0);
              for (var i = 0; i < 4; i++) {
                let key = t0 + 4 * c + i;
                if (${visible('key')}) {
                  let s = ${this.score('4 * c + i', 'key')};
                  p4[i] = ${asF32(c.toHalf('exp(s - newMax)'))};
                }
              }
              tileSum += dot(p4, vec4<f32>(1.0));
              if (c % ${rowLanes} == part) {
                for (var i = 0; i < 4; i++) {
                  pTile[rowLocal * ${ps} + 4 * c + i] = ${c.store16('p4[i]')};
                }
              }
            }
            for (var d = part; d < ${dhp}; d += ${rowLanes}) {
              oTile[rowLocal * ${dhp} + d] *= correction;
            }
            // The sum of the f16 weights P V uses: O stays their weighted mean.
            denominator = denominator * correction + tileSum;
            runningMax = newMax;
          }
          workgroupBarrier();
          ${this.addWeightsTimesStaged('pTile', 'kvTile', `${bt * ds}`, 'oTile')}
          workgroupBarrier();
        }
        workgroupBarrier();
        if (row < tq) {
          var inverse = 0.0;
          if (denominator > 0.0) {
            inverse = 1.0 / denominator;
          }
          for (var d = part; d < ${this.dh}; d += ${rowLanes}) {
            result[${this.qRows('row')} * ${this.dh} + d] = oTile[rowLocal * ${dhp} + d] * inverse;
          }${lse}
        }
      }
    `;
  }
}
