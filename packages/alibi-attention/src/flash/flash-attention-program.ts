/**
 * The fused attention forward pass as a tfjs-backend-webgpu program: one workgroup per (batch*head, block of
 * query rows), one thread per query row. Key and value tiles are staged in workgroup memory; each thread keeps
 * a running max, a running softmax denominator and an output accumulator (online softmax), so neither the score
 * matrix nor the ALiBi bias is ever written to memory. ALiBi (`slope * (j - i)`), the causal mask and the key
 * padding mask are computed in-kernel.
 *
 * Inputs (float32, contiguous): Q [B, H, Tq, Dh], K and V [B, H, Tk, Dh], Slopes [H] (zeros for no ALiBi),
 * KeyMask [B, Tk] (1 real, 0 padding). A fully masked query row yields zeros.
 *
 * With `withLse` the output is flat: O (`B*H*Tq*Dh` floats) followed by each row's log-sum-exp of the scaled,
 * biased, masked scores (`B*H*Tq` floats, 0 for a fully masked row), which the fused backward needs to recompute
 * probabilities without a score matrix.
 */

/** The subset of tfjs-backend-webgpu's `WebGPUProgram` this program fills in. */
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

/** Floats of workgroup memory the K and V tiles may use together (16 KiB is WebGPU's guaranteed minimum). */
const TILE_BUDGET_FLOATS = 3072;

/** Rows of a tile staged in workgroup memory when two `[tile, Dh]` tiles share the budget. */
export function tileRows(headDim: number): number {
  return Math.max(1, Math.min(64, Math.floor(TILE_BUDGET_FLOATS / (2 * headDim))));
}

/** Threads per workgroup (one per row): decode steps (one query) waste fewer idle threads with a small one. */
export function blockRows(length: number): number {
  return length <= 8 ? 8 : length <= 32 ? 32 : 64;
}

export class FlashAttentionProgram implements WebGpuProgramLike {
  readonly variableNames = ['Q', 'K', 'V', 'Slopes', 'KeyMask'];
  readonly uniforms = 'scale : f32, queryOffset : i32, causal : i32,';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  private readonly headDim: number;
  private readonly tile: number;
  private readonly rows: number;

  private readonly withLse: boolean;

  constructor(queryShape: readonly number[], withLse = false) {
    const [b, h, tq, dh] = queryShape as [number, number, number, number];
    this.withLse = withLse;
    this.outputShape = withLse ? [b * h * tq * (dh + 1)] : [b, h, tq, dh];
    this.headDim = dh;
    this.rows = blockRows(tq);
    this.tile = tileRows(dh);
    this.workgroupSize = [this.rows, 1, 1];
    this.dispatchLayout = { x: withLse ? [0] : [0, 1, 2, 3] };
    this.dispatch = [Math.ceil(tq / this.rows), b * h, 1];
    this.shaderKey = `mptFlashAttention_${dh}_${this.tile}_${this.rows}${withLse ? '_lse' : ''}`;
  }

  getUserCode(): string {
    const dh = this.headDim;
    const tile = this.tile;
    const rows = this.rows;
    return `
      const DH : i32 = ${dh};
      const TILE : i32 = ${tile};
      const ROWS : i32 = ${rows};
      var<workgroup> kTile : array<f32, ${tile * dh}>;
      var<workgroup> vTile : array<f32, ${tile * dh}>;
      var<workgroup> maskTile : array<f32, ${tile}>;
      var<workgroup> keyEndShared : i32;

      // tfjs calls main with a flat invocation index; rows and heads come from the workgroup ids instead.

      fn main(index : i32) {
        let heads = uniforms.qShape[1];
        let tq = uniforms.qShape[2];
        let tk = uniforms.kShape[2];
        let bh = i32(workgroupId.y);
        let b = bh / heads;
        let h = bh % heads;
        let lane = i32(localId.x);
        let firstRow = i32(workgroupId.x) * ROWS;
        let row = firstRow + lane;
        let rowInRange = row < tq;
        let qPos = uniforms.queryOffset + row;
        let slope = Slopes[h];

        var qRow : array<f32, ${dh}>;
        var acc : array<f32, ${dh}>;
        let qBase = (bh * tq + min(row, tq - 1)) * DH;
        for (var d = 0; d < DH; d++) {
          qRow[d] = Q[qBase + d] * uniforms.scale;
          acc[d] = 0.0;
        }
        var runningMax = -3.402823e+38;
        var denominator = 0.0;

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
              let newMax = max(runningMax, s);
              let correction = exp(runningMax - newMax);
              let p = exp(s - newMax);
              denominator = denominator * correction + p;
              for (var d = 0; d < DH; d++) {
                acc[d] = acc[d] * correction + p * vTile[jj * DH + d];
              }
              runningMax = newMax;
            }
          }
          workgroupBarrier();
        }

        if (rowInRange) {
          var inverse = 0.0;
          if (denominator > 0.0) {
            inverse = 1.0 / denominator;
          }
          let outBase = (bh * tq + row) * DH;
          for (var d = 0; d < DH; d++) {
            result[outBase + d] = acc[d] * inverse;
          }${
            this.withLse
              ? `
          var lse = 0.0;
          if (denominator > 0.0) {
            lse = runningMax + log(denominator);
          }
          result[uniforms.qShape[0] * heads * tq * DH + bh * tq + row] = lse;`
              : ''
          }
        }
      }
    `;
  }
}
