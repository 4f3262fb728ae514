// Kernel-level measurements: square float32 matmul throughput (the run's measured peak) and the fused
// flash-attention kernel against the plain-ops attention at one shape.
import { alibiAttention, alibiSlopes, resolveAttentionImpl } from '@mptjs/alibi-attention';
import * as tf from '@tensorflow/tfjs-core';
import { timeQueued, withGpuErrors } from './timing.mjs';

export async function measureMatmul(sizes, run) {
  const results = [];
  for (const n of sizes) {
    // The next size costs about (n / previous n)^3 times the previous call, for a warm-up, a sizing call and
    // the timed bursts (at least one call each).
    const prev = results.findLast((r) => r.tflops > 0);
    const estimate = prev ? prev.seconds_per_call * (n / prev.n) ** 3 * (2 + run.repeats) : 0;
    if (prev && run.budget.remaining() - run.reserveS < Math.max(5, 1.5 * estimate)) {
      results.push({ n, skipped: `out of time budget (estimated ${estimate.toFixed(0)} s)` });
      continue;
    }
    const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
    const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
    try {
      const t = await timeQueued(() => tf.matMul(a, b), {
        budget: run.budget,
        reserveS: run.reserveS,
        repeats: run.repeats,
      });
      results.push({ n, ...t, tflops: (2 * n ** 3) / t.seconds_per_call / 1e12 });
    } finally {
      tf.dispose([a, b]);
    }
  }
  const measured = results.filter((r) => r.tflops > 0);
  if (measured.length === 0) throw new Error('no matmul size could be measured');
  return {
    dtype: 'float32',
    results,
    peak_tflops: Math.max(...measured.map((r) => r.tflops)),
    method: 'C = A @ B queued back to back, one scalar read back per burst',
  };
}

async function maxAbsDiff(a, b) {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const [v] = await d.data();
  d.dispose();
  return v;
}

export async function measureAttention(shape, run) {
  const { batch, heads, seq, headDim } = shape;
  const dims = [batch, heads, seq, headDim];
  const q = tf.randomNormal(dims, 0, 1, 'float32', 11);
  const k = tf.randomNormal(dims, 0, 1, 'float32', 12);
  const v = tf.randomNormal(dims, 0, 1, 'float32', 13);
  const slopes = alibiSlopes(heads, 8);
  try {
    if (resolveAttentionImpl('flash') !== 'fused') {
      throw new Error(`the fused attention kernel is not active on the ${tf.getBackend()} backend`);
    }
    const options = (impl) => ({ slopes, impl, causal: true });
    const diff = await withGpuErrors(async () => {
      const fused = alibiAttention(q, k, v, options('flash'));
      const plain = alibiAttention(q, k, v, options('torch'));
      const d = await maxAbsDiff(fused, plain);
      tf.dispose([fused, plain]);
      return d;
    });
    const timing = {};
    for (const impl of ['flash', 'torch']) {
      timing[impl] = await timeQueued(() => alibiAttention(q, k, v, options(impl)), {
        budget: run.budget,
        reserveS: run.reserveS,
        repeats: run.repeats,
      });
    }
    // Causal attention does half of the full-square 4*B*H*T^2*Dh FLOPs (QK^T and PV).
    const flops = 2 * batch * heads * seq * seq * headDim;
    const rate = (t) => flops / t.seconds_per_call / 1e12;
    return {
      shape: { batch, heads, seq, head_dim: headDim, causal: true, alibi: true },
      fused: { ...timing.flash, ms: 1000 * timing.flash.seconds_per_call, tflops: rate(timing.flash) },
      plain: { ...timing.torch, ms: 1000 * timing.torch.seconds_per_call, tflops: rate(timing.torch) },
      speedup_fused_over_plain: timing.torch.seconds_per_call / timing.flash.seconds_per_call,
      max_abs_diff: diff,
      note: 'forward only; TFLOP/s counts 2*B*H*T^2*Dh (causal half of QK^T and PV)',
    };
  } finally {
    tf.dispose([q, k, v]);
  }
}
