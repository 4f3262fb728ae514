/**
 * What the fused attention programs share: one workgroup per (batch*head, block of rows), one thread per row,
 * `[tile, Dh]` tiles staged in workgroup memory, and the WGSL that indexes heads and stages key tiles.
 */

/** The subset of tfjs-backend-webgpu's `WebGPUProgram` these programs fill in. */
export interface WebGpuProgramLike {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms: string;
  getUserCode(): string;
}

/** Floats of workgroup memory two tiles may use together (16 KiB is WebGPU's guaranteed minimum). */
const TILE_BUDGET_FLOATS = 3072;

/** Rows of a tile staged in workgroup memory when two `[tile, Dh]` tiles share the budget. */
export function tileRows(headDim: number): number {
  return Math.max(1, Math.min(64, Math.floor(TILE_BUDGET_FLOATS / (2 * headDim))));
}

/** Threads per workgroup (one per row): decode steps (one query) waste fewer idle threads with a small one. */
export function blockRows(length: number): number {
  return length <= 8 ? 8 : length <= 32 ? 32 : 64;
}

/** A program over `[B, H, T, Dh]` rows in blocks of `rows` threads, with the score uniforms. */
export abstract class BlockedAttentionProgram implements WebGpuProgramLike {
  abstract readonly variableNames: string[];
  readonly uniforms = 'scale : f32, queryOffset : i32, causal : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  protected readonly headDim: number;
  protected readonly tile: number;
  protected readonly rows: number;

  /** `rowShape` is the `[B, H, T, Dh]` shape whose T rows the threads own. */
  constructor(name: string, rowShape: readonly number[], outputShape: number[]) {
    const [b, h, t, dh] = rowShape as [number, number, number, number];
    this.headDim = dh;
    this.rows = blockRows(t);
    this.tile = tileRows(dh);
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.workgroupSize = [this.rows, 1, 1];
    this.dispatch = [Math.ceil(t / this.rows), b * h, 1];
    this.shaderKey = `${name}_${dh}_${this.tile}_${this.rows}`;
  }

  abstract getUserCode(): string;

  /** WGSL constants and the head indices (tfjs calls main with a flat index; the workgroup ids say more). */
  protected prelude(): string {
    return `
      const DH : i32 = ${this.headDim};
      const TILE : i32 = ${this.tile};
      const ROWS : i32 = ${this.rows};`;
  }
}

/** WGSL, inside main: the shapes, this workgroup's batch*head `bh` (and `b`, `h`) and the thread's `lane`. */
export const HEAD_INDICES = `
        let heads = uniforms.qShape[1];
        let tq = uniforms.qShape[2];
        let tk = uniforms.kShape[2];
        let bh = i32(workgroupId.y);
        let b = bh / heads;
        let h = bh % heads;
        let lane = i32(localId.x);`;

/**
 * WGSL from the program's `prelude` to the opening of main for a program whose threads own query rows and loop
 * over key tiles: the tile declarations for `keyTileLoop`, `HEAD_INDICES`, and the thread's `row`, whether it
 * is in range, its absolute position `qPos` and its head's ALiBi `slope`.
 */
export function queryBlockMain(prelude: string, tile: number, dh: number): string {
  return `${prelude}
      var<workgroup> kTile : array<f32, ${tile * dh}>;
      var<workgroup> vTile : array<f32, ${tile * dh}>;
      var<workgroup> maskTile : array<f32, ${tile}>;
      var<workgroup> keyEndShared : i32;

      fn main(index : i32) {${HEAD_INDICES}
        let firstRow = i32(workgroupId.x) * ROWS;
        let row = firstRow + lane;
        let rowInRange = row < tq;
        let qPos = uniforms.queryOffset + row;
        let slope = Slopes[h];`;
}

/**
 * WGSL, inside a main opened by `queryBlockMain` (and needing `qRow`, the query row already multiplied by the
 * scale): loops over the key tiles a block of query rows can see, staging K, V and the key mask in workgroup
 * memory, and runs `perKey` for every key visible to the row with `jj` (its index in the tile), `j` and its
 * score `s` (scaled, with ALiBi) in scope.
 */
export function keyTileLoop(perKey: string): string {
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

        let kvBase = bh * tk * DH;
        for (var t0 = 0; t0 < keyEnd; t0 += TILE) {
          for (var e = lane; e < TILE * DH; e += ROWS) {
            let j = t0 + e / DH;
            var kValue = 0.0;
            var vValue = 0.0;
            if (j < tk) {
              kValue = K[kvBase + j * DH + e % DH];
              vValue = V[kvBase + j * DH + e % DH];
            }
            kTile[e] = kValue;
            vTile[e] = vValue;
          }
          for (var e = lane; e < TILE; e += ROWS) {
            let j = t0 + e;
            var m = 0.0;
            if (j < tk) {
              m = KeyMask[b * tk + j];
            }
            maskTile[e] = m;
          }
          workgroupBarrier();

          if (rowInRange) {
            let tileEnd = min(TILE, keyEnd - t0);
            for (var jj = 0; jj < tileEnd; jj++) {
              let j = t0 + jj;
              if (maskTile[jj] == 0.0 || (uniforms.causal != 0 && j > qPos)) {
                continue;
              }
              var s = slope * f32(j - qPos);
              for (var d = 0; d < DH; d++) {
                s += qRow[d] * kTile[jj * DH + d];
              }
${perKey}
            }
          }
          workgroupBarrier();
        }`;
}
