// The f16 GEMM (mixed precision): the device's plan and self-check, a sweep of workgroup tiles at 4096^3, and
// the best tile on the products of an mpt-1b training step against tfjs's float32 matmul, and the f16 flash
// attention's self-check and forward time against the float32 kernel at that step's attention shape. The best
// tile stays settled for the model stages, which then time their training step in amp_fp16 as well.
import { alibiAttention, alibiSlopes, settleF16FlashAttention } from '@mptjs/alibi-attention';
import { layoutName, parseTile, setF16Gemm, settleF16Gemm, tileName } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { timeQueued } from './timing.mjs';

/** Tiles tried on the matrix engine (16 x 16 x 16 f16 matrices, 32-lane subgroups, 48 KiB of workgroup memory). */
export const MATRIX_TILES = [
  '2x2x4x4x32s2p8',
  '2x2x4x4x32s1p8',
  '2x2x4x4x32s2p0',
  '2x2x4x4x16s2p8',
  '2x2x4x2x32s2p8',
  '2x4x4x2x32s2p8',
  '4x2x2x4x32s2p8',
  '4x4x2x2x16s2p8',
  '2x2x2x2x32s2p8',
  '1x1x4x4x32s2p8',
];
const SCALAR_TILES = ['2x2x1x1x16s2p0', '1x2x1x2x16s1p8'];

/** `[m, k] x [k, n]` as stored for each transpose, and its float32 / f16 TFLOP/s. */
async function timeProduct({ m, n, k, transposeA, transposeB }, run, f16) {
  const a = tf.randomNormal(transposeA ? [k, m] : [m, k], 0, 1, 'float32', 3);
  const b = tf.randomNormal(transposeB ? [n, k] : [k, n], 0, 1, 'float32', 4);
  setF16Gemm(f16);
  try {
    const t = await timeQueued(() => tf.matMul(a, b, transposeA, transposeB), {
      budget: run.budget,
      reserveS: run.reserveS,
      repeats: run.repeats,
    });
    return { tflops: (2 * m * n * k) / t.seconds_per_call / 1e12, ms: t.seconds_per_call * 1000 };
  } finally {
    setF16Gemm(false);
    tf.dispose([a, b]);
  }
}

/** Largest |f16 GEMM - float32 matmul| over max |float32| at one product: the precision a step sees. */
async function relativeError(p) {
  const a = tf.randomNormal(p.transposeA ? [p.k, p.m] : [p.m, p.k], 0, 1, 'float32', 5);
  const b = tf.randomNormal(p.transposeB ? [p.n, p.k] : [p.k, p.n], 0, 1, 'float32', 6);
  try {
    setF16Gemm(true);
    const half = tf.matMul(a, b, p.transposeA, p.transposeB);
    setF16Gemm(false);
    const full = tf.matMul(a, b, p.transposeA, p.transposeB);
    const stats = tf.tidy(() => tf.stack([tf.max(tf.abs(tf.sub(half, full))), tf.max(tf.abs(full))]));
    const [diff, scale] = await stats.data();
    tf.dispose([half, full, stats]);
    return diff / scale;
  } finally {
    setF16Gemm(false);
    tf.dispose([a, b]);
  }
}

export function f16Products(shape) {
  const rows = shape.batch * shape.seq;
  const d = shape.dModel;
  return [
    { name: 'up_proj x W^T', m: rows, n: 4 * d, k: d, transposeA: false, transposeB: true },
    { name: 'down_proj dY W', m: rows, n: d, k: 4 * d, transposeA: false, transposeB: false },
    { name: 'up_proj dW = dY^T X', m: 4 * d, n: d, k: rows, transposeA: true, transposeB: false },
    { name: 'LM head x E^T', m: rows, n: shape.vocab, k: d, transposeA: false, transposeB: true },
  ];
}

export async function measureF16(shapes, run, tiny) {
  const base = await settleF16Gemm();
  const result = { default_plan: base.plan, default_reason: base.reason, sweep: [], products: [] };
  let engine = base.plan?.engine ?? null;
  if (!base.plan) {
    // A device with f16 matrices whose default tile failed still tries the others.
    if (/^matrix engine/.test(base.reason)) engine = 'matrix';
    // An emulated adapter has no f16 matrices: the scalar engine runs the same tiles, so the section's code runs.
    else if (tiny) engine = 'scalar';
    else {
      result.note = 'no f16 GEMM on this device: the model stages train in float32 only';
      return result;
    }
  }
  // A tile named in MPTJS_F16_GEMM_TILE is the only one tried (no sweep).
  const pinned = process.env.MPTJS_F16_GEMM_TILE;
  const tiles = pinned ? [pinned] : engine === 'matrix' ? MATRIX_TILES : SCALAR_TILES;
  const n = shapes.size;
  const square = { m: n, n, k: n, transposeA: false, transposeB: false };
  let best = null;
  let layout;
  let shape;
  for (const name of tiles) {
    if (run.budget.remaining() - run.reserveS < 10) {
      result.sweep.push({ tile: name, skipped: 'out of time budget' });
      continue;
    }
    // Once a layout passed, the other tiles use it.
    const settled = await settleF16Gemm({ tile: parseTile(name), engine, layout, shape });
    if (!settled.plan) {
      result.sweep.push({ tile: name, error: settled.reason });
      // No layout passed with the first tile: the others share its loads and stores.
      if (!layout) break;
      continue;
    }
    layout = settled.plan.layout;
    shape = settled.plan.shape;
    const t = await timeProduct(square, run, true);
    result.sweep.push({ tile: name, layout: layoutName(layout), n, ...t });
    if (!best || t.tflops > best.tflops) best = { tile: name, n, ...t };
  }
  if (!best) throw new Error(`no tile passed its self-check: ${JSON.stringify(result.sweep)}`);
  const settled = await settleF16Gemm({ tile: parseTile(best.tile), engine, layout, shape });
  result.plan = settled.plan;
  result.best_tile = tileName(settled.plan.tile);
  result.layout = layoutName(settled.plan.layout);
  result.square_f32 = { n, ...(await timeProduct(square, run, false)) };
  result.square_f16 = best;
  for (const p of f16Products(shapes.products)) {
    if (run.budget.remaining() - run.reserveS < 10) break;
    const f32 = await timeProduct(p, run, false);
    const f16 = await timeProduct(p, run, true);
    result.products.push({
      ...p,
      f32_tflops: f32.tflops,
      f16_tflops: f16.tflops,
      speedup: f16.tflops / f32.tflops,
      rel_error_vs_f32: await relativeError(p),
    });
  }
  if (run.budget.remaining() - run.reserveS >= 10) {
    result.flash_attention = await measureF16Flash(result.plan, shapes.products, run);
  } else {
    result.flash_attention = { skipped: 'out of time budget' };
  }
  run.f16 = true;
  return result;
}

/**
 * The f16 flash attention with the settled GEMM plan: its self-check line and, where it passed, the causal ALiBi
 * forward, and the forward with its backward (`tf.grads`), at the step's shape (head dim 128, or 16 at the tiny
 * shapes) in f16 and in float32, with the forward's largest difference over max |O|.
 */
async function measureF16Flash(plan, shape, run) {
  const settled = await settleF16FlashAttention(plan);
  const result = { check: settled.line, engine: settled.config?.engine ?? null };
  if (!settled.config) return result;
  const dh = shape.dModel >= 128 ? 128 : 16;
  const heads = shape.dModel / dh;
  const dims = [shape.batch, heads, shape.seq, dh];
  const [q, k, v] = [7, 8, 9].map((seed) => tf.randomNormal(dims, 0, 1, 'float32', seed));
  const slopes = alibiSlopes(heads);
  const forward = () => alibiAttention(q, k, v, { slopes, impl: 'flash' });
  const dy = tf.randomNormal(dims, 0, 1, 'float32', 10);
  // The gradient of <O, dY>: the training forward, the row statistics, dQ and dK/dV; dQ is what is waited on.
  const loss = (a, b, c) => tf.sum(tf.mul(alibiAttention(a, b, c, { slopes, impl: 'flash' }), dy));
  const train = () => tf.tidy(() => tf.grads(loss)([q, k, v])[0]);
  // Q K^T and P V: 2 * 2 * Tq * Tk * Dh per head, half of it under the causal mask.
  const flops = 2 * shape.batch * heads * shape.seq * shape.seq * dh;
  // With the backward, the usual 3.5x the forward's work (the kernels recompute S and dP in both backward passes).
  const time = async (f16, op = forward, work = flops) => {
    setF16Gemm(f16);
    try {
      const t = await timeQueued(op, {
        budget: run.budget,
        reserveS: run.reserveS,
        repeats: run.repeats,
      });
      return { ms: t.seconds_per_call * 1000, tflops: work / t.seconds_per_call / 1e12 };
    } finally {
      setF16Gemm(false);
    }
  };
  try {
    result.shape = { batch: shape.batch, heads, seq: shape.seq, head_dim: dh, causal: true, alibi: true };
    result.f32 = await time(false);
    result.f16 = await time(true);
    result.speedup = result.f32.ms / result.f16.ms;
    result.f32_with_backward = await time(false, train, 3.5 * flops);
    result.f16_with_backward = await time(true, train, 3.5 * flops);
    result.speedup_with_backward = result.f32_with_backward.ms / result.f16_with_backward.ms;
    setF16Gemm(true);
    const half = forward();
    setF16Gemm(false);
    const full = forward();
    const stats = tf.tidy(() => tf.stack([tf.max(tf.abs(tf.sub(half, full))), tf.max(tf.abs(full))]));
    const [diff, scale] = await stats.data();
    result.rel_error_vs_f32 = diff / scale;
    tf.dispose([half, full, stats]);
  } finally {
    setF16Gemm(false);
    tf.dispose([q, k, v, dy]);
  }
  return result;
}
