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
import { BlockedAttentionProgram, keyTileLoop, queryBlockMain } from './blocked-program.js';

export type { WebGpuProgramLike } from './blocked-program.js';

export class FlashAttentionProgram extends BlockedAttentionProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Slopes', 'KeyMask'];
  private readonly withLse: boolean;

  constructor(queryShape: readonly number[], withLse = false) {
    const [b, h, tq, dh] = queryShape as [number, number, number, number];
    super(
      withLse ? 'mptFlashAttentionLse' : 'mptFlashAttention',
      queryShape,
      withLse ? [b * h * tq * (dh + 1)] : [b, h, tq, dh],
    );
    this.withLse = withLse;
  }

  getUserCode(): string {
    const dh = this.headDim;
    return `${queryBlockMain(this.prelude(), this.tile, dh)}

        var qRow : array<f32, ${dh}>;
        var acc : array<f32, ${dh}>;
        let qBase = (bh * tq + min(row, tq - 1)) * DH;
        for (var d = 0; d < DH; d++) {
          qRow[d] = Q[qBase + d] * uniforms.scale;
          acc[d] = 0.0;
        }
        var runningMax = -3.402823e+38;
        var denominator = 0.0;
${keyTileLoop(`
              let newMax = max(runningMax, s);
              let correction = exp(runningMax - newMax);
              let p = exp(s - newMax);
              denominator = denominator * correction + p;
              for (var d = 0; d < DH; d++) {
                acc[d] = acc[d] * correction + p * vTile[jj * DH + d];
              }
              runningMax = newMax;`)}

        if (rowInRange) {
          var inverse = 0.0;
          if (denominator > 0.0) {
            inverse = 1.0 / denominator;
          }
          let outBase = (bh * tq + row) * DH;
          for (var d = 0; d < DH; d++) {
            result[outBase + d] = acc[d] * inverse;
          }${this.withLse ? LSE_OUTPUT : ''}
        }
      }
    `;
  }
}

/** WGSL: after O, the row's log-sum-exp (0 for a fully masked row, whose keys the backward skips anyway). */
const LSE_OUTPUT = `
          var lse = 0.0;
          if (denominator > 0.0) {
            lse = runningMax + log(denominator);
          }
          result[uniforms.qShape[0] * heads * tq * DH + bh * tq + row] = lse;`;
