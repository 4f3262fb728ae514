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
import {
  type GemmEngine,
  type GemmLayout,
  layoutName,
  type MatrixShape,
  SCALAR_LANES,
  type WebGpuProgramLike,
} from '@mptjs/kernels';
import { type AttentionLayout, headsShape, rowAt, shapeLets } from './blocked-program.js';
import { F16TileCode } from './f16-tiles.js';

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

function lcm(...values: number[]): number {
  return values.reduce((a, b) => (a * b) / gcd(a, b), 1);
}

/** The staged head dim: `dh` zero-padded to a multiple of the matrices' N and K (and of 4, for whole words). */
export function paddedHeadDim(dh: number, shape: MatrixShape): number {
  const unit = lcm(shape.N, shape.K, 4);
  return Math.ceil(dh / unit) * unit;
}

function lanesOf(config: FlashEngineConfig): number {
  return config.engine === 'scalar' ? SCALAR_LANES : config.lanes;
}

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
  const lanes = lanesOf(config);
  if (!Number.isInteger(dh) || dh < 1) return `head dim must be a positive integer, got ${dh}`;
  if (!Number.isInteger(tile.subgroups) || tile.subgroups < 1) return 'subgroups must be a positive integer';
  if (!Number.isInteger(tile.keys) || tile.keys < 1 || tile.keys % lcm(N, K, 4) !== 0)
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
  const unit = lcm(config.shape.N, config.shape.K, 4);
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

export function flashTileName(tile: FlashTile): string {
  return `${tile.subgroups}x${tile.keys}p${tile.pad}`;
}

export class F16FlashAttentionProgram implements WebGpuProgramLike {
  readonly variableNames = ['Q', 'K', 'V', 'Slopes', 'KeyMask'];
  readonly uniforms = 'scale : f32, queryOffset : i32, causal : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  private readonly config: FlashEngineConfig;
  private readonly tile: FlashTile;
  private readonly dh: number;
  private readonly lanes: number;
  private readonly withLse: boolean;
  private readonly layout: AttentionLayout;

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
    this.layout = layout;
    this.config = config;
    this.tile = tile;
    this.dh = dh;
    this.withLse = withLse;
    this.lanes = lanesOf(config);
    this.outputShape = withLse ? [b * h * tq * (dh + 1)] : [...queryShape];
    this.dispatchLayout = { x: this.outputShape.map((_, i) => i) };
    this.workgroupSize = [tile.subgroups * this.lanes, 1, 1];
    this.dispatch = [Math.ceil(tq / (tile.subgroups * config.shape.M)), b * h, 1];
    const { M, N, K } = config.shape;
    this.shaderKey =
      `mptF16Flash${withLse ? 'Lse' : ''}_${config.engine}_${M}x${N}x${K}_${this.lanes}_${dh}_` +
      `${flashTileName(tile)}_${layoutName(config.layout).replace(/\//g, '_')}${layout === 'rows' ? '_rows' : ''}`;
  }

  getUserCode(): string {
    const { M } = this.config.shape;
    const matrix = this.config.engine === 'matrix';
    const { keys: BK, pad } = this.tile;
    const rows = this.tile.subgroups * M;
    const dhp = paddedHeadDim(this.dh, this.config.shape);
    const ds = dhp + pad;
    const ps = BK + pad;
    const threads = this.workgroupSize[0];
    const rowLanes = threads / rows;
    const c = new F16TileCode(this.config, this.lanes);
    const elem = c.elem;
    const asF32 = (v: string) => (matrix ? `f32(${v})` : v);
    const stage = (
      source: string,
      rowOf: (j: string) => string,
      first: string,
      count: string,
      n: number,
      target: string,
      at: string,
    ) =>
      c.stage({
        source,
        rowOf,
        first,
        count,
        rows: n,
        dh: this.dh,
        cols: dhp,
        target,
        at,
        stride: ds,
        threads,
      });
    const half = (ptr: string, base: string, stride: number, major: 'row' | 'col') => ({
      ptr,
      base,
      stride,
      major,
      f16: true,
    });
    const qRows = (j: string) => rowAt(this.layout, j, 'tq');
    const kRows = (j: string) => rowAt(this.layout, j, 'tk');
    const qStage = matrix
      ? `${stage('Q', qRows, 'firstRow', 'tq', rows, 'kvTile', '0')}
        workgroupBarrier();
        ${c.holdLeft('q', half('kvTile', `sgRow * ${ds}`, ds, 'row'), dhp)}
        workgroupBarrier();`
      : stage('Q', qRows, 'firstRow', 'tq', rows, 'qTile', '0');
    // S = Q K^T for the subgroup's rows: K^T's columns are K's rows, so K's tile loads column-major.
    const scores = c.product({
      cols: BK,
      depth: dhp,
      left: half('qTile', `sgRow * ${ds}`, ds, 'row'),
      heldLeft: 'q',
      right: half('kvTile', '0', ds, 'col'),
      out: { ptr: 'sTile', base: `sgRow * ${BK}`, stride: BK },
      accumulate: false,
    });
    // O += P V for the subgroup's rows, the accumulator loaded from and stored back to workgroup memory.
    const products = c.product({
      cols: dhp,
      depth: BK,
      left: half('pTile', `sgRow * ${ps}`, ps, 'row'),
      right: half('kvTile', `${BK * ds}`, ds, 'row'),
      out: { ptr: 'oTile', base: `sgRow * ${dhp}`, stride: dhp },
      accumulate: true,
    });
    const header = c.header();
    const toHalf = (v: string) => c.toHalf(v);
    // Vulkan's cooperative-matrix loads and stores need 16-byte aligned pointers and strides (misalignment is
    // undefined, not an error): the arrays the matrices use come first (drivers place workgroup variables in
    // order), each a whole number of 16-byte blocks, with rows and offsets at multiples of 8 halves.
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
      ${header}
      var<workgroup> kvTile : array<${elem}, ${2 * BK * ds}>;
      var<workgroup> sTile : array<f32, ${rows * BK}>;
      var<workgroup> pTile : array<${elem}, ${rows * ps}>;
      var<workgroup> oTile : array<f32, ${rows * dhp}>;
      ${matrix ? '' : `var<workgroup> qTile : array<f32, ${rows * ds}>;`}
      var<workgroup> maskTile : array<f32, ${Math.ceil(BK / 4) * 4}>;
      var<workgroup> keyEndShared : array<i32, 4>;

      fn main(index : i32) {${shapeLets(this.layout)}
        let bh = i32(workgroupId.y);
        let b = bh / heads;
        let h = bh % heads;
        let firstRow = i32(workgroupId.x) * ${rows};
        let sg = i32(localIndex) / ${this.lanes};
        let lane = i32(localIndex) % ${this.lanes};
        let sgRow = sg * ${M};
        let rowLocal = i32(localIndex) / ${rowLanes};
        let part = i32(localIndex) % ${rowLanes};
        let row = firstRow + rowLocal;
        let qPos = uniforms.queryOffset + row;
        let slope = Slopes[h];
        // Under the causal mask no query of this block sees past its last row's position.
        if (localIndex == 0u) {
          var end = tk;
          if (uniforms.causal != 0) {
            end = min(tk, uniforms.queryOffset + min(firstRow + ${rows}, tq));
          }
          keyEndShared[0] = end;
        }
        let keyEnd = workgroupUniformLoad(&keyEndShared)[0];
        for (var e = i32(localIndex); e < ${rows * dhp}; e += ${threads}) {
          oTile[e] = 0.0;
        }
        ${qStage}
        var runningMax = -3.402823e+38;
        var denominator = 0.0;
        for (var t0 = 0; t0 < keyEnd; t0 += ${BK}) {
          ${stage('K', kRows, 't0', 'tk', BK, 'kvTile', '0')}
          ${stage('V', kRows, 't0', 'tk', BK, 'kvTile', `${BK * ds}`)}
          for (var e = i32(localIndex); e < ${BK}; e += ${threads}) {
            var m = 0.0;
            if (t0 + e < tk) {
              m = KeyMask[b * tk + t0 + e];
            }
            maskTile[e] = m;
          }
          workgroupBarrier();
          ${scores}
          workgroupBarrier();
          {
            // Every thread of a row computes the row's statistics (identical values), then writes its share.
            var tileMax = -3.402823e+38;
            for (var j = 0; j < ${BK}; j++) {
              let key = t0 + j;
              if (${visible('key')}) {
                tileMax = max(tileMax, sTile[rowLocal * ${BK} + j] * uniforms.scale + slope * f32(key - qPos));
              }
            }
            let newMax = max(runningMax, tileMax);
            let correction = exp(runningMax - newMax);
            var tileSum = 0.0;
            for (var c = 0; c < ${BK / 4}; c++) {
              var p4 = vec4<f32>(0.0);
              for (var i = 0; i < 4; i++) {
                let key = t0 + 4 * c + i;
                if (${visible('key')}) {
                  let s = sTile[rowLocal * ${BK} + 4 * c + i] * uniforms.scale + slope * f32(key - qPos);
                  p4[i] = ${asF32(toHalf('exp(s - newMax)'))};
                }
              }
              tileSum += dot(p4, vec4<f32>(1.0));
              if (c % ${rowLanes} == part) {
                for (var i = 0; i < 4; i++) {
                  pTile[rowLocal * ${ps} + 4 * c + i] = ${matrix ? 'f16(p4[i])' : 'p4[i]'};
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
          ${products}
          workgroupBarrier();
        }
        workgroupBarrier();
        if (row < tq) {
          var inverse = 0.0;
          if (denominator > 0.0) {
            inverse = 1.0 / denominator;
          }
          for (var d = part; d < ${this.dh}; d += ${rowLanes}) {
            result[${qRows('row')} * ${this.dh} + d] = oTile[rowLocal * ${dhp} + d] * inverse;
          }${lse}
        }
      }
    `;
  }
}
