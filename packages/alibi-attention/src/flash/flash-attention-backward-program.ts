/**
 * The fused attention backward pass (FlashAttention-2 style) as three tfjs-backend-webgpu programs. None of them
 * writes a score, probability or bias matrix: each recomputes `P = exp(S - lse)` tile by tile from Q, K, the
 * in-kernel ALiBi bias and masks, and the per-row log-sum-exp saved by the forward.
 *
 * 1. `FlashAttentionRowStatsProgram`: per query row, `(lse, D)` with `D = rowsum(dO * O)`.
 * 2. `FlashAttentionDqProgram`: `LANES` threads per query row, iterating over key tiles:
 *    `dQ_i = scale * sum_j P_ij (dO_i . V_j - D_i) K_j`.
 * 3. `FlashAttentionDkDvProgram`: `LANES` threads per key row, iterating over query tiles:
 *    `dV_j = sum_i P_ij dO_i`, `dK_j = scale * sum_i P_ij (dO_i . V_j - D_i) Q_i`.
 * The dQ and dK/dV programs use the forward's layout (blocked-program.ts): each thread holds its columns of
 * the row's vectors (q, dO, dQ: 32 floats each; k, v, dK, dV: 16 floats each, so at most about 96 and 64
 * live floats per thread), both dot products of a (row, key) pair are summed across the row's lanes through
 * workgroup memory, four keys per vec4, and every load is a vec4.
 * Splitting dQ from dK/dV lets every thread own its output rows, so no atomics are needed.
 *
 * Inputs are float32 and contiguous: Q and dO (`Dy`) `[B, H, Tq, Dh]`, K and V `[B, H, Tk, Dh]`, Slopes `[H]`,
 * KeyMask `[B, Tk]`. That is seven storage buffers plus the output: WebGPU's default per-stage limit is eight.
 * In the `rows` layout Q, dO, K, V, dQ, dK and dV are `[B, T, H, Dh]` (blocked-program.ts, `AttentionLayout`);
 * the row statistics stay in heads order.
 */
import {
  type AttentionLayout,
  accumulate,
  BlockedAttentionProgram,
  column,
  headIndices,
  headsShape,
  keyTileLoop,
  MIN_WORKGROUP_STORAGE_BYTES,
  partialDots,
  queryBlockMain,
  rowAt,
  rowSum,
  shapeLets,
  stageTiles,
  unroll,
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
  private readonly layout: AttentionLayout;

  /** `dyShape` is dO's (and O's) shape in `layout`. */
  constructor(dyShape: readonly number[], layout: AttentionLayout = 'heads') {
    const [b, h, tq, dh] = headsShape(dyShape, layout);
    this.headDim = dh;
    this.layout = layout;
    this.outputShape = [b * h * tq * 2];
    this.dispatch = [Math.ceil(tq / 64), b * h, 1];
    this.shaderKey = `mptFlashAttentionRowStats_${dh}${layout === 'rows' ? '_rows' : ''}`;
  }

  getUserCode(): string {
    return `
      const DH : i32 = ${this.headDim};

      fn main(index : i32) {${shapeLets(this.layout, 'dyShape', 'dyShape')}
        let rows = uniforms.dyShape[0] * heads * tq;
        let row = i32(workgroupId.x) * 64 + i32(localId.x);
        if (row >= tq) {
          return;
        }
        let bh = i32(workgroupId.y);
        let b = bh / heads;
        let h = bh % heads;
        let r = bh * tq + row;
        let at = ${rowAt(this.layout, 'row', 'tq')} * DH;
        var delta = 0.0;
        for (var d = 0; d < DH; d++) {
          delta += Forward[at + d] * Dy[at + d];
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
  readonly variableComponents = [4, 4, 4, 4, 1, 1, 1];

  /** `queryShape` is Q's in `layout`; `storageBytes` is the device's `maxComputeWorkgroupStorageSize`. */
  constructor(
    queryShape: readonly number[],
    storageBytes = MIN_WORKGROUP_STORAGE_BYTES,
    layout: AttentionLayout = 'heads',
  ) {
    super('mptFlashAttentionDq', headsShape(queryShape, layout), [...queryShape], {
      floatsPerLane: 32,
      partials: 2,
      floatsPerKey: 1,
      storageBytes,
      memory: layout,
    });
  }

  getUserCode(): string {
    const n = this.part4;
    return `${queryBlockMain(this.prelude(), ['sPart', 'dpPart'], this.layout)}

        var qRow : array<vec4<f32>, ${n}>;
        var dyRow : array<vec4<f32>, ${n}>;
        var dq : array<vec4<f32>, ${n}>;
${unroll(
  n,
  (m) => `        qRow[${m}] = Q[qr * DH4 + ${column(m)}] * uniforms.scale;
        dyRow[${m}] = Dy[qr * DH4 + ${column(m)}];
        dq[${m}] = vec4<f32>(0.0);`,
)}
        let lse = RowStats[2 * r];
        let delta = RowStats[2 * r + 1];
${keyTileLoop(
  partialDots(n, ['qRow', 'dyRow'], ['kTile', 'vTile'], ['sPart', 'dpPart']),
  'sPart',
  this.lanes,
  `
              let dp = ${rowSum('dpPart', this.lanes)};
              let p = select(vec4<f32>(0.0), exp(s - vec4<f32>(lse)), visible);
              let ds = p * (dp - vec4<f32>(delta));
${accumulate(n, 'dq', 'ds', 'kTile')}`,
  this.layout,
)}

        if (rowInRange) {
          let outBase = ${rowAt(this.layout, 'row', 'tq')} * DH;
${writeRow(n, 'outBase', 'dq', ' * uniforms.scale')}
        }
      }
    `;
  }
}

/** WGSL: the thread's columns of `acc` (times `suffix`) to `result` from float offset `base`. */
function writeRow(n: number, base: string, acc: string, suffix = ''): string {
  return unroll(n, (m) => {
    const c = `${base} + 4 * ${column(m)}`;
    return `          {
            let o = ${acc}[${m}]${suffix};
            result[${c}] = o.x;
            result[${c} + 1] = o.y;
            result[${c} + 2] = o.z;
            result[${c} + 3] = o.w;
          }`;
  });
}

/**
 * dK and dV, flat: `B*H*Tk*Dh` floats of dK, then as many of dV. One workgroup per (batch*head, block of key
 * rows); Q, dO and the row statistics are staged in workgroup memory tile by tile.
 */
export class FlashAttentionDkDvProgram extends BlockedAttentionProgram {
  readonly variableNames = ['Q', 'K', 'V', 'Dy', 'RowStats', 'Slopes', 'KeyMask'];
  readonly variableComponents = [4, 4, 4, 4, 1, 1, 1];

  /** `keyShape` is K's in `layout`; `storageBytes` is the device's `maxComputeWorkgroupStorageSize`. */
  constructor(
    keyShape: readonly number[],
    storageBytes = MIN_WORKGROUP_STORAGE_BYTES,
    layout: AttentionLayout = 'heads',
  ) {
    const [b, h, tk, dh] = headsShape(keyShape, layout);
    super('mptFlashAttentionDkDv', [b, h, tk, dh], [2 * b * h * tk * dh], {
      floatsPerLane: 16,
      partials: 2,
      floatsPerKey: 2,
      storageBytes,
      memory: layout,
    });
  }

  getUserCode(): string {
    const n = this.part4;
    return `${this.prelude()}
      var<workgroup> qTile : array<vec4<f32>, TILE * DH4>;
      var<workgroup> dyTile : array<vec4<f32>, TILE * DH4>;
      var<workgroup> lseTile : array<f32, TILE>;
      var<workgroup> deltaTile : array<f32, TILE>;
      var<workgroup> sPart : array<vec4<f32>, TILE4 * THREADS>;
      var<workgroup> dpPart : array<vec4<f32>, TILE4 * THREADS>;
      var<workgroup> queryStartShared : i32;

      fn main(index : i32) {${headIndices(this.layout)}
        let firstKey = i32(workgroupId.x) * ROWS;
        let j = firstKey + rowLocal;
        let keyInRange = j < tk;
        let slope = Slopes[h];

        let kvRow = ${rowAt(this.layout, 'min(j, tk - 1)', 'tk')};
        var kRow : array<vec4<f32>, ${n}>;
        var vRow : array<vec4<f32>, ${n}>;
        var dk : array<vec4<f32>, ${n}>;
        var dv : array<vec4<f32>, ${n}>;
${unroll(
  n,
  (m) => `        kRow[${m}] = K[kvRow * DH4 + ${column(m)}] * uniforms.scale;
        vRow[${m}] = V[kvRow * DH4 + ${column(m)}];
        dk[${m}] = vec4<f32>(0.0);
        dv[${m}] = vec4<f32>(0.0);`,
)}
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

        let qRows = bh * tq;
        for (var t0 = queryStart; t0 < tq; t0 += TILE) {
${stageTiles('Q', 'Dy', 'qTile', 'dyTile', (i) => rowAt(this.layout, i, 'tq'), 'tq')}
          for (var e = lane; e < TILE; e += THREADS) {
            let i = t0 + e;
            var lseValue = 0.0;
            var deltaValue = 0.0;
            if (i < tq) {
              lseValue = RowStats[2 * (qRows + i)];
              deltaValue = RowStats[2 * (qRows + i) + 1];
            }
            lseTile[e] = lseValue;
            deltaTile[e] = deltaValue;
          }
          workgroupBarrier();
          let groups = (min(TILE, tq - t0) + 3) / 4;
${partialDots(n, ['kRow', 'vRow'], ['qTile', 'dyTile'], ['sPart', 'dpPart'])}
          workgroupBarrier();

          if (keyVisible) {
            for (var g = 0; g < groups; g++) {
              let k0 = 4 * g * DH4;
              let qi = vec4<i32>(t0 + 4 * g) + vec4<i32>(0, 1, 2, 3);
              let qPos = vec4<i32>(uniforms.queryOffset) + qi;
              let visible = (qi < vec4<i32>(tq)) & ((vec4<i32>(j) <= qPos) | vec4<bool>(uniforms.causal == 0));
              let s = ${rowSum('sPart', this.lanes)} + slope * vec4<f32>(vec4<i32>(j) - qPos);
              let dp = ${rowSum('dpPart', this.lanes)};
              let lse = vec4<f32>(lseTile[4 * g], lseTile[4 * g + 1], lseTile[4 * g + 2], lseTile[4 * g + 3]);
              let delta = vec4<f32>(deltaTile[4 * g], deltaTile[4 * g + 1], deltaTile[4 * g + 2], deltaTile[4 * g + 3]);
              let p = select(vec4<f32>(0.0), exp(s - lse), visible);
              let ds = p * (dp - delta);
${accumulate(n, 'dv', 'p', 'dyTile')}
${accumulate(n, 'dk', 'ds', 'qTile')}
            }
          }
          workgroupBarrier();
        }

        if (keyInRange) {
          let out = ${rowAt(this.layout, 'j', 'tk')} * DH;
          let dvOffset = uniforms.kShape[0] * heads * tk * DH;
${writeRow(n, 'out', 'dk', ' * uniforms.scale')}
${writeRow(n, 'dvOffset + out', 'dv')}
        }
      }
    `;
  }
}
