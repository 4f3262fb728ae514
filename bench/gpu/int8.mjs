// int8 on webgpu: one Linear layer's matmul in float32 (tfjs), with int8 weights (the row program for few rows,
// the widened weight for many) and with int8 weights and activations on the int8 subgroup matrices (W8A8, where
// the device has them and they passed their startup check), then greedy decoding of a model quantized both ways.
import {
  dequantizeInt8,
  INT8_MATMUL_W8A8_KERNEL,
  int8Linear,
  int8MatrixPlan,
  quantizeInt8,
  settleInt8MatrixPlan,
  uploadInt8,
} from '@mptjs/kernels';
import { MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { decodeOnce, modelConfig, randomTokens } from './model-stage.mjs';
import { summarize } from './profile.mjs';
import { timeQueued, withGpuErrors } from './timing.mjs';

async function relativeError(y, ref) {
  const [diff, peak] = tf.tidy(() => [tf.max(tf.abs(tf.sub(y, ref))), tf.max(tf.abs(ref))]);
  const [d] = await diff.data();
  const [p] = await peak.data();
  tf.dispose([diff, peak]);
  return d / p;
}

/** Times `x [rows, k] @ W^T` each way at one shape; errors are against the float product of the same weight. */
async function measureLinear({ rows, k, n }, weights, run) {
  const { wide, int8, w8a8 } = weights;
  const x = tf.randomNormal([rows, k], 0, 1, 'float32', 5);
  const ref = tf.matMul(x, wide, false, true);
  const variants = [
    ['float32', () => tf.matMul(x, wide, false, true), 4],
    ['int8 weights', () => int8Linear(x, int8), 1],
  ];
  const plan = int8MatrixPlan();
  if (rows > 16 && plan) {
    variants.push(['int8 weights + activations (W8A8)', () => int8Linear(x, w8a8), 1]);
    // The other layouts that passed the startup check, through the kernel directly.
    for (const t of weights.tried) {
      const same =
        t.layout.staged === plan.layout.staged &&
        t.layout.offsetUnit === plan.layout.offsetUnit &&
        !!t.layout.templated === !!plan.layout.templated;
      if (!t.ok || same) continue;
      const attrs = { n, k, rowBytes: int8.rowBytes, plan: { ...plan, layout: t.layout } };
      const inputs = { x, packed: int8.packed, scales: int8.scales };
      const name = `W8A8, ${t.layout.templated ? 'templated' : 'legacy'}, ${t.layout.staged ? 'staged' : 'direct'} loads, unit ${t.layout.offsetUnit}`;
      variants.push([name, () => tf.engine().runKernel(INT8_MATMUL_W8A8_KERNEL, inputs, attrs), 1]);
    }
  }
  const results = [];
  try {
    for (const [name, fn, bytesPerWeight] of variants) {
      const error = await withGpuErrors(async () => {
        const y = fn();
        const e = await relativeError(y, ref);
        y.dispose();
        return e;
      });
      const t = await timeQueued(fn, { budget: run.budget, reserveS: run.reserveS, repeats: run.repeats });
      results.push({
        name,
        max_rel_error: error,
        ms: 1000 * t.seconds_per_call,
        tflops: (2 * rows * k * n) / t.seconds_per_call / 1e12,
        weight_gb_per_s: (bytesPerWeight * k * n) / t.seconds_per_call / 1e9,
      });
    }
  } finally {
    tf.dispose([x, ref]);
  }
  const base = results[0].ms;
  for (const r of results) r.speedup_vs_float32 = base / r.ms;
  return { rows, k, n, results };
}

async function measureDecodeQuantized(shape, decode) {
  const config = modelConfig(shape, shape.nLayers);
  const prompt = Array.from(randomTokens(decode.prompt, config.vocabSize, 321));
  const model = MPTModel.init(config, 3);
  const stateDict = await model.toStateDict();
  const out = [];
  let reference = null;
  try {
    for (const quantize of [undefined, 'int8', 'w8a8']) {
      if (quantize === 'w8a8' && !int8MatrixPlan()) continue;
      const m = quantize ? MPTModel.fromStateDict(config, stateDict, { quantize }) : model;
      try {
        await withGpuErrors(() => decodeOnce(m, prompt, decode.newTokens));
        const t = await withGpuErrors(() => decodeOnce(m, prompt, decode.newTokens));
        const steps = decode.newTokens - 1;
        // Where a few tokens' time goes: GPU time per kernel against the wall time (the rest is dispatch).
        const t0 = performance.now();
        const info = await withGpuErrors(() => tf.profile(() => decodeOnce(m, prompt.slice(0, 8), 4)));
        const wallMs = performance.now() - t0;
        const gpuMs = info.kernels.reduce(
          (a, k) => a + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0),
          0,
        );
        out.push({
          profile_8_prompt_4_new: {
            wall_ms: wallMs,
            gpu_kernel_ms: gpuMs,
            kernels: info.kernels.length,
            top: summarize(info.kernels, (k) => k.name, 6),
          },
          weights: quantize ?? 'float32',
          prefill_tokens_per_s: decode.prompt / t.prefill_s,
          decode_tokens_per_s: steps / t.decode_s,
          ms_per_token: (1000 * t.decode_s) / steps,
        });
      } finally {
        if (m !== model) m.dispose();
      }
    }
  } finally {
    model.dispose();
  }
  reference = out[0];
  for (const r of out) {
    r.prefill_speedup = r.prefill_tokens_per_s / reference.prefill_tokens_per_s;
    r.decode_speedup = r.decode_tokens_per_s / reference.decode_tokens_per_s;
  }
  return {
    shape: { name: shape.name, d_model: shape.dModel, n_layers: shape.nLayers },
    prompt_tokens: decode.prompt,
    new_tokens: decode.newTokens,
    runs: out,
  };
}

export async function measureInt8(shape, run) {
  const settled = await settleInt8MatrixPlan();
  const { k, n } = shape.linear;
  const random = tf.tidy(() => tf.mul(tf.randomNormal([n, k], 0, 1, 'float32', 9), 0.02));
  const host = await random.data();
  random.dispose();
  const q = quantizeInt8(host, [n, k]);
  const int8 = uploadInt8(q);
  const w8a8 = { ...int8, activations: 'int8' };
  const wide = tf.tensor2d(dequantizeInt8(q), [n, k]);
  const weights = { wide, int8, w8a8, tried: settled.tried };
  try {
    const linear = [];
    for (const rows of shape.rows) linear.push(await measureLinear({ rows, k, n }, weights, run));
    const decode = await measureDecodeQuantized(shape.model, shape.decode);
    return {
      int8_matrix_plan: settled.plan,
      int8_matrix_reason: settled.reason,
      int8_matrix_layouts_tried: settled.tried,
      linear,
      decode,
      note: 'errors are max |y - y_ref| / max |y_ref| against the float32 product with the dequantized weight',
    };
  } finally {
    tf.dispose([wide, int8.packed, int8.scales]);
  }
}
