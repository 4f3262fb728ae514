/**
 * The fused attention backward pass (FlashAttention-2 style) as three tfjs-backend-webgpu programs. None of them
 * writes a score, probability or bias matrix: each recomputes `P = exp(S - lse)` tile by tile from Q, K, the
 * in-kernel ALiBi bias and masks, and the per-row log-sum-exp saved by the forward.
 *
 * 1. `FlashAttentionRowStatsProgram`: per query row, `(lse, D)` with `D = rowsum(dO * O)`.
 * 2. `FlashAttentionDqProgram`: one thread per query row, iterating over key tiles:
 *    `dQ_i = scale * sum_j P_ij (dO_i . V_j - D_i) K_j`.
 * 3. `FlashAttentionDkDvProgram`: one thread per key row, iterating over query tiles:
 *    `dV_j = sum_i P_ij dO_i`, `dK_j = scale * sum_i P_ij (dO_i . V_j - D_i) Q_i`.
 * Splitting dQ from dK/dV lets every thread own its output rows, so no atomics are needed.
 *
 * Inputs are float32 and contiguous: Q and dO (`Dy`) `[B, H, Tq, Dh]`, K and V `[B, H, Tk, Dh]`, Slopes `[H]`,
 * KeyMask `[B, Tk]`. That is seven storage buffers plus the output: WebGPU's default per-stage limit is eight.
 */
import {
  BlockedAttentionProgram,
  HEAD_INDICES,
  keyTileLoop,
  queryBlockMain,
  type WebGpuProgramLike,
} from './blocked-program.js';

/**
 * Per query row `(lse, D)` interleaved, `[B*H*Tq*2]`. `Forward` is the forward's flat output with `withLse`
 * (O then the log-sum-exps), so the saved forward result feeds this program without a copy.
 */
export class FlashAttentionRowStatsProgram implements WebGpuProgramLike {
  readonly variableNames = ['Forward', 'Dy'];
  readonly uniforms = '';
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [64, 1, 1];
  private readonly headDim: number;

  constructor(dyShape: readonly number[]) {
    const [b, h, tq, dh] = dyShape as [number, number, number, number];
    this.headDim = dh;
    this.outputShape = [b * h * tq * 2];
    this.dispatch = [Math.ceil(tq / 64), b * h, 1];
    this.shaderKey = `mptFlashAttentionRowStats_${dh}`;
  }

  getUserCode(): string {
    return `
      const DH : i32 = ${this.headDim};

      fn main(index : i32) {
        let tq = uniforms.dyShape[2];
        let rows = uniforms.dyShape[0] * uniforms.dyShape[1] * tq;
        let row = i32(workgroupId.x) * 64 + i32(localId.x);
        if (row >= tq) {
          return;
        }
        let r = i32(workgroupId.y) * tq + row;
        var delta = 0.0;
        for (var d = 0; d < DH; d++) {
          delta += Forward[r * DH + d] * Dy[r * DH + d];
        }
        result[2 * r] = Forward[rows * DH + r];
        result[2 * r + 1] = delta;
      }
    `;
  }
}

/** `dQ [B, H, Tq, Dh]`: one workgroup per (batch*head, block of query rows); K and V tiles in workgroup memory. */
export class FlashAttentionDqProgram extends BlockedAttentionProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Dy', 'RowStats', 'Slopes', 'KeyMask'];

  constructor(queryShape: readonly number[]) {
    super('mptFlashAttentionDq', queryShape, [...queryShape]);
  }

  getUserCode(): string {
    const dh = this.headDim;
    return `${queryBlockMain(this.prelude(), this.tile, dh)}

        let r = bh * tq + min(row, tq - 1);
        var qRow : array<f32, ${dh}>;
        var dyRow : array<f32, ${dh}>;
        var dq : array<f32, ${dh}>;
        for (var d = 0; d < DH; d++) {
          qRow[d] = Q[r * DH + d] * uniforms.scale;
          dyRow[d] = Dy[r * DH + d];
          dq[d] = 0.0;
        }
        let lse = RowStats[2 * r];
        let delta = RowStats[2 * r + 1];
${keyTileLoop(`
              var dp = 0.0;
              for (var d = 0; d < DH; d++) {
                dp += dyRow[d] * vTile[jj * DH + d];
              }
              let ds = exp(s - lse) * (dp - delta);
              for (var d = 0; d < DH; d++) {
                dq[d] += ds * kTile[jj * DH + d];
              }`)}

        if (rowInRange) {
          for (var d = 0; d < DH; d++) {
            result[(bh * tq + row) * DH + d] = dq[d] * uniforms.scale;
          }
        }
      }
    `;
  }
}

/**
 * dK and dV, flat: `B*H*Tk*Dh` floats of dK, then as many of dV. One workgroup per (batch*head, block of key
 * rows); Q, dO and the row statistics are staged in workgroup memory tile by tile.
 */
export class FlashAttentionDkDvProgram extends BlockedAttentionProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Dy', 'RowStats', 'Slopes', 'KeyMask'];

  constructor(keyShape: readonly number[]) {
    const [b, h, tk, dh] = keyShape as [number, number, number, number];
    super('mptFlashAttentionDkDv', keyShape, [2 * b * h * tk * dh]);
  }

  getUserCode(): string {
    const dh = this.headDim;
    const tile = this.tile;
    return `${this.prelude()}
      var<workgroup> qTile : array<f32, ${tile * dh}>;
      var<workgroup> dyTile : array<f32, ${tile * dh}>;
      var<workgroup> statTile : array<f32, ${2 * tile}>;
      var<workgroup> queryStartShared : i32;

      fn main(index : i32) {${HEAD_INDICES}
        let firstKey = i32(workgroupId.x) * ROWS;
        let j = firstKey + lane;
        let keyInRange = j < tk;
        let slope = Slopes[h];

        let kvRow = (bh * tk + min(j, tk - 1)) * DH;
        var kRow : array<f32, ${dh}>;
        var vRow : array<f32, ${dh}>;
        var dk : array<f32, ${dh}>;
        var dv : array<f32, ${dh}>;
        for (var d = 0; d < DH; d++) {
          kRow[d] = K[kvRow + d] * uniforms.scale;
          vRow[d] = V[kvRow + d];
          dk[d] = 0.0;
          dv[d] = 0.0;
        }
        // A padding key gets no probability from any query, hence zero gradients.
        let keyVisible = keyInRange && KeyMask[b * tk + min(j, tk - 1)] != 0.0;

        // Under the causal mask the queries before this block's first key see none of its keys.
        if (lane == 0) {
          var queryStart = 0;
          if (uniforms.causal != 0) {
            queryStart = clamp(firstKey - uniforms.queryOffset, 0, tq);
          }
          queryStartShared = queryStart;
        }
        let queryStart = workgroupUniformLoad(&queryStartShared);

        let qBase = bh * tq;
        for (var t0 = queryStart; t0 < tq; t0 += TILE) {
          for (var e = lane; e < TILE * DH; e += ROWS) {
            let i = t0 + e / DH;
            var qValue = 0.0;
            var dyValue = 0.0;
            if (i < tq) {
              qValue = Q[(qBase + i) * DH + e % DH];
              dyValue = Dy[(qBase + i) * DH + e % DH];
            }
            qTile[e] = qValue;
            dyTile[e] = dyValue;
          }
          for (var e = lane; e < 2 * TILE; e += ROWS) {
            let i = t0 + e / 2;
            var stat = 0.0;
            if (i < tq) {
              stat = RowStats[2 * (qBase + i) + e % 2];
            }
            statTile[e] = stat;
          }
          workgroupBarrier();

          if (keyVisible) {
            let tileEnd = min(TILE, tq - t0);
            for (var ii = 0; ii < tileEnd; ii++) {
              let qPos = uniforms.queryOffset + t0 + ii;
              if (uniforms.causal != 0 && j > qPos) {
                continue;
              }
              var s = slope * f32(j - qPos);
              var dp = 0.0;
              for (var d = 0; d < DH; d++) {
                s += kRow[d] * qTile[ii * DH + d];
                dp += vRow[d] * dyTile[ii * DH + d];
              }
              let p = exp(s - statTile[2 * ii]);
              let ds = p * (dp - statTile[2 * ii + 1]);
              for (var d = 0; d < DH; d++) {
                dv[d] += p * dyTile[ii * DH + d];
                dk[d] += ds * qTile[ii * DH + d];
              }
            }
          }
          workgroupBarrier();
        }

        if (keyInRange) {
          let out = (bh * tk + j) * DH;
          let dvOffset = uniforms.kShape[0] * heads * tk * DH;
          for (var d = 0; d < DH; d++) {
            result[out + d] = dk[d] * uniforms.scale;
            result[dvOffset + out + d] = dv[d];
          }
        }
      }
    `;
  }
}
