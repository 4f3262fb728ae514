/**
 * The fused attention forward pass as a tfjs-backend-webgpu program: one workgroup per (batch*head, block of
 * query rows). Key and value tiles are staged in workgroup memory; each row keeps a running max, a running
 * softmax denominator and an output accumulator (online softmax, updated once per group of four keys), so
 * neither the score matrix nor the ALiBi bias is ever written to memory. ALiBi (`slope * (j - i)`), the causal
 * mask and the key padding mask are computed in-kernel.
 *
 * Layout (see blocked-program.ts): `LANES` threads per query row, each holding `Dh / LANES` floats of the
 * scaled q row and of the output accumulator in registers (32 floats each at Dh 64 and 128: about 64 live
 * registers instead of 2 * Dh), with vec4 loads everywhere. Per tile of keys, phase one writes each thread's
 * partial `q . k` for four keys at a time to workgroup memory; after a barrier every lane of a row sums the
 * row's partials, so all lanes of a row compute the same scores and softmax weights, and each updates its own
 * columns of the accumulator with `p * v`.
 *
 * Inputs (float32, contiguous): Q [B, H, Tq, Dh], K and V [B, H, Tk, Dh], Slopes [H] (zeros for no ALiBi),
 * KeyMask [B, Tk] (1 real, 0 padding). A fully masked query row yields zeros. In the `rows` layout Q, K, V and
 * O are `[B, T, H, Dh]` instead (blocked-program.ts, `AttentionLayout`).
 *
 * With `withLse` the output is flat: O (`B*H*Tq*Dh` floats) followed by each row's log-sum-exp of the scaled,
 * biased, masked scores (`B*H*Tq` floats, 0 for a fully masked row), which the fused backward needs to recompute
 * probabilities without a score matrix.
 */
import {
  type AttentionLayout,
  accumulate,
  BlockedAttentionProgram,
  column,
  headsShape,
  keyTileLoop,
  MIN_WORKGROUP_STORAGE_BYTES,
  partialDots,
  queryBlockMain,
  rowAt,
  unroll,
} from './blocked-program.js';

export type { WebGpuProgramLike } from './blocked-program.js';

export class FlashAttentionProgram extends BlockedAttentionProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Slopes', 'KeyMask'];
  readonly variableComponents = [4, 4, 4, 1, 1];
  private readonly withLse: boolean;

  /**
   * `queryShape` is Q's shape in `layout` (`[B, H, Tq, Dh]`, or `[B, Tq, H, Dh]` for `rows`; O has the same);
   * `storageBytes` is the device's `maxComputeWorkgroupStorageSize`.
   */
  constructor(
    queryShape: readonly number[],
    withLse = false,
    storageBytes = MIN_WORKGROUP_STORAGE_BYTES,
    layout: AttentionLayout = 'heads',
  ) {
    const [b, h, tq, dh] = headsShape(queryShape, layout);
    super(
      withLse ? 'mptFlashAttentionLse' : 'mptFlashAttention',
      [b, h, tq, dh],
      withLse ? [b * h * tq * (dh + 1)] : [...queryShape],
      { floatsPerLane: 32, partials: 1, floatsPerKey: 1, storageBytes, memory: layout },
    );
    this.withLse = withLse;
  }

  getUserCode(): string {
    const n = this.part4;
    return `${queryBlockMain(this.prelude(), ['sPart'], this.layout)}

        var qRow : array<vec4<f32>, ${n}>;
        var acc : array<vec4<f32>, ${n}>;
${unroll(n, (m) => `        qRow[${m}] = Q[qr * DH4 + ${column(m)}] * uniforms.scale;\n        acc[${m}] = vec4<f32>(0.0);`)}
        var runningMax = NEG;
        var denominator = 0.0;
${keyTileLoop(
  partialDots(n, ['qRow'], ['kTile'], ['sPart']),
  'sPart',
  this.lanes,
  `
              let masked = select(vec4<f32>(NEG), s, visible);
              let newMax = max(runningMax, max(max(masked.x, masked.y), max(masked.z, masked.w)));
              let correction = exp(runningMax - newMax);
              let p = select(vec4<f32>(0.0), exp(masked - vec4<f32>(newMax)), visible);
              denominator = denominator * correction + dot(p, vec4<f32>(1.0));
${accumulate(n, 'acc', 'p', 'vTile', 'correction')}
              runningMax = newMax;`,
  this.layout,
)}

        if (rowInRange) {
          var inverse = 0.0;
          if (denominator > 0.0) {
            inverse = 1.0 / denominator;
          }
          let outBase = ${rowAt(this.layout, 'row', 'tq')} * DH;
${unroll(n, (m) => {
  const c = `4 * ${column(m)}`;
  return `          {
            let o = acc[${m}] * inverse;
            result[outBase + ${c}] = o.x;
            result[outBase + ${c} + 1] = o.y;
            result[outBase + ${c} + 2] = o.z;
            result[outBase + ${c} + 3] = o.w;
          }`;
})}${this.withLse ? LSE_OUTPUT : ''}
        }
      }
    `;
  }
}

/** WGSL: after O, the row's log-sum-exp (0 for a fully masked row, whose keys the backward skips anyway). */
const LSE_OUTPUT = `
          if (part == 0) {
            var lse = 0.0;
            if (denominator > 0.0) {
              lse = runningMax + log(denominator);
            }
            result[uniforms.qShape[0] * heads * tq * DH + bh * tq + row] = lse;
          }`;
