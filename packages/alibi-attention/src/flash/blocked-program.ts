/**
 * What the fused attention programs share: the thread layout, the tile sizes and the WGSL that stages tiles
 * and turns partial dot products into scores.
 *
 * Layout: `LANES` threads own one row (a query row, or a key row in the dK/dV program); lane `part` of a row
 * owns the vec4 columns `part + LANES * m` (m < `PART4`) of that row's vectors, so a thread holds `Dh / LANES`
 * floats per vector in registers instead of `Dh` (at Dh 128 a thread-per-row layout needs 256+ registers for q
 * and the output accumulator and spills). Interleaved columns make the lanes of a row read neighbouring vec4s of
 * a staged tile: no bank conflicts. Each tile of keys (or queries) is processed in two phases with a barrier
 * between them: every thread writes its partial dot products for the tile, four keys per vec4, to workgroup
 * memory (consecutive threads write consecutive vec4s); then every thread sums its row's `LANES` partials,
 * which needs no subgroup operations and gives identical results whatever the subgroup size. Tiles are as
 * large as the device's `maxComputeWorkgroupStorageSize` allows (baked into the shader key), up to `MAX_TILE`
 * keys, so the three barriers per tile are amortized over up to 32 keys. All loads from storage and workgroup
 * memory are vec4s: the head dim must be a multiple of 4 (it is in every MPT config).
 */
import type { WebGpuProgramLike } from '@mptjs/kernels';

export type { WebGpuProgramLike };

/** WebGPU's guaranteed `maxComputeWorkgroupStorageSize`, for a device whose limits are not known. */
export const MIN_WORKGROUP_STORAGE_BYTES = 16384;

/** Most keys (or queries) per staged tile; a multiple of 4. */
const MAX_TILE = 32;

/** Most threads per workgroup. */
const MAX_THREADS = 128;

/** Floats of workgroup memory kept aside for the scalars a program shares. */
const RESERVED_FLOATS = 16;

/** Throws unless the head dim suits the vec4 programs. */
export function checkHeadDim(dh: number): void {
  if (!Number.isInteger(dh) || dh < 4 || dh % 4 !== 0) {
    throw new RangeError(`the fused attention kernels need a head dim that is a multiple of 4, got ${dh}`);
  }
}

/**
 * Threads per row: as many as keep each thread's share of a row vector at `floatsPerLane` floats or more, at
 * most 8, dividing the row's `Dh / 4` vec4s.
 */
export function lanesPerRow(headDim: number, floatsPerLane: number): number {
  const vec4s = headDim / 4;
  let lanes = 1;
  while (lanes < 8 && vec4s % (2 * lanes) === 0 && headDim / (2 * lanes) >= floatsPerLane) lanes *= 2;
  return lanes;
}

/**
 * Rows per workgroup: `MAX_THREADS / lanes`, or for a short block (a decode step has one row) enough rows for
 * 32 threads, at least 8: the idle rows cost no time on a GPU whose SIMD width is 32, and their threads help
 * stage the tiles, which is what a block of few rows waits on.
 */
export function blockRows(length: number, lanes: number): number {
  const most = MAX_THREADS / lanes;
  return length <= 8 ? Math.min(most, Math.max(8, 32 / lanes)) : most;
}

/**
 * Keys per tile (a multiple of 4): each staged key costs `2 * Dh` floats of tile, `floatsPerKey` more (mask or
 * row statistics) and `partials * threads` floats of partial dot products.
 */
export function tileRows(
  headDim: number,
  threads: number,
  partials: number,
  floatsPerKey: number,
  storageBytes: number,
): number {
  const budget = Math.floor(storageBytes / 4) - RESERVED_FLOATS;
  const perKey = 2 * headDim + partials * threads + floatsPerKey;
  if (4 * perKey > budget) {
    throw new RangeError(
      `head dim ${headDim} needs ${16 * perKey} bytes of workgroup memory per 4-key tile; the device has ${storageBytes}`,
    );
  }
  return Math.max(4, Math.min(MAX_TILE, 4 * Math.floor(budget / perKey / 4)));
}

/**
 * How Q, K, V and the matching outputs and gradients lie in memory: `heads` is `[B, H, T, Dh]`; `rows` is
 * `[B, T, H, Dh]`, the rows as a `[B, T, H * Dh]` projection gives them, so attention between projections needs
 * no head transposes. Element (b, h, t, e) sits at `row * Dh + e`, `row` being `(b * H + h) * T + t` or
 * `(b * T + t) * H + h`; only the row index differs. Row statistics (log-sum-exps, `D`) stay in heads order.
 */
export type AttentionLayout = 'heads' | 'rows';

/** `[B, H, T, Dh]` of a tensor of `shape` in `layout`. */
export function headsShape(
  shape: readonly number[],
  layout: AttentionLayout,
): [number, number, number, number] {
  const [s0, s1, s2, s3] = shape as [number, number, number, number];
  return layout === 'rows' ? [s0, s2, s1, s3] : [s0, s1, s2, s3];
}

/** WGSL: the memory row of position `t` of `count` for the thread's `b`, `h` (`bh = b * heads + h`). */
export function rowAt(layout: AttentionLayout, t: string, count: string): string {
  return layout === 'rows' ? `((b * ${count} + ${t}) * heads + h)` : `(bh * ${count} + ${t})`;
}

/** WGSL: `heads`, `tq` and `tk` from the Q and K shape uniforms (`qShape`, `kShape`) in `layout`. */
export function shapeLets(layout: AttentionLayout, q = 'qShape', k = 'kShape'): string {
  return layout === 'rows'
    ? `
        let heads = uniforms.${q}[2];
        let tq = uniforms.${q}[1];
        let tk = uniforms.${k}[1];`
    : `
        let heads = uniforms.${q}[1];
        let tq = uniforms.${q}[2];
        let tk = uniforms.${k}[2];`;
}

/** `f(0) … f(n - 1)` joined by newlines: the per-vec4 statements, unrolled so private arrays stay in registers. */
export function unroll(n: number, f: (m: number) => string): string {
  return Array.from({ length: n }, (_, m) => f(m)).join('\n');
}

/** A program over `[B, H, T, Dh]` rows in blocks of `rows` rows of `lanes` threads, with the score uniforms. */
export abstract class BlockedAttentionProgram implements WebGpuProgramLike {
  abstract readonly variableNames: string[];
  abstract readonly variableComponents: number[];
  readonly uniforms = 'scale : f32, queryOffset : i32, causal : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  protected readonly headDim: number;
  protected readonly lanes: number;
  protected readonly rows: number;
  protected readonly tile: number;
  protected readonly layout: AttentionLayout;

  /**
   * `rowShape` is the `[B, H, T, Dh]` shape whose T rows the threads own; `floatsPerLane` sizes each thread's
   * share of a row vector, `partials` is the number of dot products per (row, key) and `floatsPerKey` the
   * other workgroup floats per staged key; `layout` is how the tensors lie in memory.
   */
  constructor(
    name: string,
    rowShape: readonly number[],
    outputShape: number[],
    layout: {
      floatsPerLane: number;
      partials: number;
      floatsPerKey: number;
      storageBytes: number;
      memory?: AttentionLayout;
    },
  ) {
    const [b, h, t, dh] = rowShape as [number, number, number, number];
    this.layout = layout.memory ?? 'heads';
    checkHeadDim(dh);
    this.headDim = dh;
    this.lanes = lanesPerRow(dh, layout.floatsPerLane);
    this.rows = blockRows(t, this.lanes);
    const threads = this.rows * this.lanes;
    this.tile = tileRows(dh, threads, layout.partials, layout.floatsPerKey, layout.storageBytes);
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.workgroupSize = [threads, 1, 1];
    this.dispatch = [Math.ceil(t / this.rows), b * h, 1];
    this.shaderKey = `${name}_${dh}_${this.lanes}_${this.rows}_${this.tile}${this.layout === 'rows' ? '_rows' : ''}`;
  }

  abstract getUserCode(): string;

  /** Vec4s of a row vector each thread owns. */
  protected get part4(): number {
    return this.headDim / 4 / this.lanes;
  }

  /** WGSL constants. */
  protected prelude(): string {
    return `
      const DH : i32 = ${this.headDim};
      const DH4 : i32 = ${this.headDim / 4};
      const LANES : i32 = ${this.lanes};
      const ROWS : i32 = ${this.rows};
      const THREADS : i32 = ${this.rows * this.lanes};
      const TILE : i32 = ${this.tile};
      const TILE4 : i32 = ${this.tile / 4};
      const NEG : f32 = -3.402823e+38;`;
  }
}

/**
 * WGSL, inside main: the shapes, this workgroup's batch*head `bh` (and `b`, `h`), the thread's `lane`, its
 * row in the block `rowLocal`, its `part` of the row, and `ownRow`, the first partial of its row in a group.
 */
export function headIndices(layout: AttentionLayout): string {
  return `${shapeLets(layout)}
        let bh = i32(workgroupId.y);
        let b = bh / heads;
        let h = bh % heads;
        let lane = i32(localId.x);
        let rowLocal = lane / LANES;
        let part = lane % LANES;
        let ownRow = rowLocal * LANES;`;
}

/** WGSL: the column of the thread's vec4 `m` (`part + LANES * m`). */
export function column(m: number): string {
  return `(part + ${m} * LANES)`;
}

/**
 * WGSL: stages rows `t0 …` of two storage arrays of vec4s (`aName`, `bName`, `count` rows per batch*head, the
 * memory row of position j being `rowOf(j)`) into the `[TILE, Dh]` workgroup tiles `aTile`, `bTile`, zeros past `count`.
 */
export function stageTiles(
  aName: string,
  bName: string,
  aTile: string,
  bTile: string,
  rowOf: (j: string) => string,
  count: string,
): string {
  return `
          for (var e = lane; e < TILE * DH4; e += THREADS) {
            let j = t0 + e / DH4;
            var aValue = vec4<f32>(0.0);
            var bValue = vec4<f32>(0.0);
            if (j < ${count}) {
              let at = ${rowOf('j')} * DH4 + e % DH4;
              aValue = ${aName}[at];
              bValue = ${bName}[at];
            }
            ${aTile}[e] = aValue;
            ${bTile}[e] = bValue;
          }`;
}

/**
 * WGSL: phase one of a tile, the partial dot products of the thread's vectors `mine` (vec4 arrays of `PART4`)
 * with the staged tiles `tiles` for the tile's groups of four keys, into the workgroup arrays `partials`.
 */
export function partialDots(part4: number, mine: string[], tiles: string[], partials: string[]): string {
  const pairs = mine.map((v, i) => ({ v, tile: tiles[i]!, out: partials[i]! }));
  return `
          for (var g = 0; g < groups; g++) {
            let k0 = 4 * g * DH4;
${pairs.map(({ out }) => `            var ${out}Sum = vec4<f32>(0.0);`).join('\n')}
${unroll(part4, (m) =>
  pairs
    .map(
      ({ v, tile, out }) => `            {
              let x = ${v}[${m}];
              let c = k0 + ${column(m)};
              ${out}Sum += vec4<f32>(dot(x, ${tile}[c]), dot(x, ${tile}[c + DH4]), dot(x, ${tile}[c + 2 * DH4]), dot(x, ${tile}[c + 3 * DH4]));
            }`,
    )
    .join('\n'),
)}
${pairs.map(({ out }) => `            ${out}[g * THREADS + lane] = ${out}Sum;`).join('\n')}
          }`;
}

/** WGSL: the sum over the row's lanes of the partials of group `g` in the workgroup array `partials`. */
export function rowSum(partials: string, lanes: number): string {
  return Array.from({ length: lanes }, (_, p) => `${partials}[g * THREADS + ownRow + ${p}]`).join(' + ');
}

/**
 * WGSL: `acc[m] += w.x * tile[key 0] + … + w.w * tile[key 3]` for the thread's columns of the group's four
 * staged rows (`k0` is the group's first vec4 in the tile).
 */
export function accumulate(part4: number, acc: string, w: string, tile: string, scaleBy?: string): string {
  return unroll(part4, (m) => {
    const c = `k0 + ${column(m)}`;
    const sum = `${w}.x * ${tile}[${c}] + ${w}.y * ${tile}[${c} + DH4] + ${w}.z * ${tile}[${c} + 2 * DH4] + ${w}.w * ${tile}[${c} + 3 * DH4]`;
    return scaleBy
      ? `              ${acc}[${m}] = ${acc}[${m}] * ${scaleBy} + ${sum};`
      : `              ${acc}[${m}] += ${sum};`;
  });
}

/**
 * WGSL from the program's `prelude` to the opening of main for a program whose threads own query rows and loop
 * over key tiles: the tile declarations for `keyTileLoop`, `headIndices`, and the thread's `row`, whether it
 * is in range, its clamped row `r` in `[B*H*Tq]` (`qr` in memory), its absolute position `qPos` and its head's ALiBi `slope`.
 */
export function queryBlockMain(prelude: string, partials: string[], layout: AttentionLayout): string {
  return `${prelude}
      var<workgroup> kTile : array<vec4<f32>, TILE * DH4>;
      var<workgroup> vTile : array<vec4<f32>, TILE * DH4>;
      var<workgroup> maskTile : array<f32, TILE>;
${partials.map((p) => `      var<workgroup> ${p} : array<vec4<f32>, TILE4 * THREADS>;`).join('\n')}
      var<workgroup> keyEndShared : i32;

      fn main(index : i32) {${headIndices(layout)}
        let firstRow = i32(workgroupId.x) * ROWS;
        let row = firstRow + rowLocal;
        let rowInRange = row < tq;
        // r: the row's statistics (heads order); qr: its Q (and dO) row in memory.
        let r = bh * tq + min(row, tq - 1);
        let qr = ${rowAt(layout, 'min(row, tq - 1)', 'tq')};
        let qPos = uniforms.queryOffset + row;
        let slope = Slopes[h];`;
}

/**
 * WGSL, inside a main opened by `queryBlockMain`: loops over the key tiles a block of query rows can see,
 * staging K, V and the key mask in workgroup memory, runs `phaseOne` (which writes the partials, with `groups`
 * in scope) for every thread, and then, for threads whose row is in range, `perGroup` for every group of four
 * keys with `k0` (the group's first vec4 in the tile), `s` (the four scores, scaled, with ALiBi), `visible`
 * (which of the four the row sees) and `g` in scope.
 */
export function keyTileLoop(
  phaseOne: string,
  scorePartials: string,
  lanes: number,
  perGroup: string,
  layout: AttentionLayout,
): string {
  return `
        // Under the causal mask no query of this block sees past its last row's position.
        if (lane == 0) {
          var keyEnd = tk;
          if (uniforms.causal != 0) {
            keyEnd = min(tk, uniforms.queryOffset + min(firstRow + ROWS, tq));
          }
          keyEndShared = keyEnd;
        }
        let keyEnd = workgroupUniformLoad(&keyEndShared);

        for (var t0 = 0; t0 < keyEnd; t0 += TILE) {
${stageTiles('K', 'V', 'kTile', 'vTile', (j) => rowAt(layout, j, 'tk'), 'tk')}
          for (var e = lane; e < TILE; e += THREADS) {
            let j = t0 + e;
            var m = 0.0;
            if (j < tk) {
              m = KeyMask[b * tk + j];
            }
            maskTile[e] = m;
          }
          workgroupBarrier();
          let groups = (min(TILE, keyEnd - t0) + 3) / 4;
${phaseOne}
          workgroupBarrier();

          if (rowInRange) {
            for (var g = 0; g < groups; g++) {
              let k0 = 4 * g * DH4;
              let js = vec4<i32>(t0 + 4 * g) + vec4<i32>(0, 1, 2, 3);
              let keyMask = vec4<f32>(maskTile[4 * g], maskTile[4 * g + 1], maskTile[4 * g + 2], maskTile[4 * g + 3]);
              let visible = (keyMask != vec4<f32>(0.0)) & (js < vec4<i32>(keyEnd)) &
                ((js <= vec4<i32>(qPos)) | vec4<bool>(uniforms.causal == 0));
              let s = ${rowSum(scorePartials, lanes)} + slope * vec4<f32>(js - vec4<i32>(qPos));
${perGroup}
            }
          }
          workgroupBarrier();
        }`;
}
