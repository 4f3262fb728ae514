// The "same learning" section: the mpt-125m shape trained on the bundled sample's tokens from the same
// initial weights, once in fp32 and once as `precision: amp_fp16` runs it (f16 GEMMs with f32 master weights,
// LayerNorm, softmax, loss and AdamW, dynamic loss scaling), the same batches in the same order. It passes when
// the two final losses (each the mean of the last steps) are within 1% of each other.
import { setF16Gemm } from '@mptjs/kernels';
import { forwardBackwardChain, LocalParameters, MPTModel } from '@mptjs/mpt-model';
import {
  DecoupledAdamW,
  gradientCoefficient,
  gradSumOfSquares,
  lmContext,
  mptChainUnits,
  setupPrecision,
} from '@mptjs/trainer';
import * as tf from '@tensorflow/tfjs-core';
import { modelConfig } from './model-stage.mjs';
import { withGpuErrors } from './timing.mjs';

/** The final loss is the mean over this many last steps (one step's loss is one batch's noise). */
const TAIL = 10;

/** Linear warm-up over the first tenth of the steps, then constant. */
function learningRate(spec, step) {
  const warmup = Math.max(1, Math.round(spec.steps / 10));
  return spec.lr * Math.min(1, (step + 1) / warmup);
}

/** Batch `step`'s ids `[batch, seq]`: consecutive samples, wrapping around; ids folded into a small vocabulary. */
function batchIds(tokens, shape, step) {
  const { seq_len: stored, samples } = tokens.meta;
  const ids = new Int32Array(shape.batch * shape.seq);
  for (let r = 0; r < shape.batch; r++) {
    const sample = (step * shape.batch + r) % samples;
    for (let t = 0; t < shape.seq; t++)
      ids[r * shape.seq + t] = tokens.ids[sample * stored + t] % shape.vocab;
  }
  return ids;
}

/**
 * Trains `steps` steps from `seed`'s weights in one precision; returns per-step losses, the skipped steps and the
 * loss scale. `plan` is the trainer's precision plan (f16 GEMMs and the loss scaler) or null for fp32.
 */
async function trainRun(tokens, spec, shape, steps, plan) {
  const model = MPTModel.init(modelConfig(shape, shape.nLayers), spec.seed);
  const optimizer = new DecoupledAdamW({ lr: spec.lr, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0 });
  const host = new LocalParameters(model.params);
  const units = mptChainUnits(model);
  const losses = [];
  const stepSeconds = [];
  let skipped = 0;
  const t0 = performance.now();
  try {
    for (let step = 0; step < steps; step++) {
      const s0 = performance.now();
      const scale = plan?.scaler?.scale ?? 1;
      const ids = tf.tensor2d(batchIds(tokens, shape, step), [shape.batch, shape.seq], 'int32');
      const ctx = lmContext(model, ids);
      const loss = await forwardBackwardChain(units, ids, ctx, host, scale);
      tf.dispose([ids, ctx.targets]);
      const grads = host.takeGradients();
      const list = [...grads.values()];
      const norm = Math.sqrt(await gradSumOfSquares(list)) / scale;
      const applied = plan?.scaler ? plan.scaler.update(Number.isFinite(norm)) : Number.isFinite(norm);
      if (applied) {
        // The unscaling and clipping factor rides along in the optimizer's update (as the trainer runs it).
        optimizer.step(
          [...grads.keys()].map((n, i) => ({ name: n, param: model.params.get(n), grad: list[i] })),
          learningRate(spec, step),
          gradientCoefficient(scale, norm, 1.0),
        );
      } else skipped++;
      tf.dispose(list);
      if (!Number.isFinite(loss)) throw new Error(`step ${step + 1}: the loss is ${loss}`);
      losses.push(loss);
      stepSeconds.push((performance.now() - s0) / 1000);
    }
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  return {
    steps,
    seconds: (performance.now() - t0) / 1000,
    last_step_s: stepSeconds[stepSeconds.length - 1],
    losses,
    skipped_steps: skipped,
    final_loss_scale: plan?.scaler?.scale ?? null,
  };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Both runs' losses summarized: first, final (mean of the last TAIL steps), every tenth. */
function summarize(runResult) {
  const { losses } = runResult;
  const every = Math.max(1, Math.floor(losses.length / 10));
  return {
    ...runResult,
    first_loss: losses[0],
    final_loss: mean(losses.slice(-Math.min(TAIL, losses.length))),
    losses: losses.filter((_, i) => i % every === 0 || i === losses.length - 1),
  };
}

/**
 * Runs the section: `spec` = { model, steps, lr, seed }, `tokens` from readSampleTokens, `limitS` the seconds it
 * may take, `Skip` the kit's error for a section that decides not to run. Trains fp32 first (as many steps as fit half the time, at most `spec.steps`), then amp_fp16 for the
 * same number of steps.
 */
export async function runSameLearning(spec, tokens, run, limitS, Skip) {
  const shape = spec.model;
  if (shape.seq > tokens.meta.seq_len) {
    throw new RangeError(
      `the kit's sample tokens hold ${tokens.meta.seq_len} per sample, the run needs ${shape.seq}`,
    );
  }
  const endS = run.budget.elapsed() + limitS;
  const plan = await setupPrecision('amp_fp16', tf.getBackend());
  setF16Gemm(false);
  if (!plan.f16) throw new Skip(`amp_fp16 cannot run here (${plan.notice}), so there is nothing to compare`);
  // Two steps first, to know how many fit (the first compiles shaders); f16 steps are given the same time.
  const probe = await withGpuErrors(() => trainRun(tokens, spec, shape, 2, null));
  const perStep = probe.last_step_s;
  const fit = Math.floor((endS - run.budget.elapsed()) / 2 / (perStep * 1.2));
  const steps = Math.max(1, Math.min(spec.steps, fit));
  const fp32 = summarize(await withGpuErrors(() => trainRun(tokens, spec, shape, steps, null)));
  setF16Gemm(true);
  let amp;
  try {
    amp = summarize(await withGpuErrors(() => trainRun(tokens, spec, shape, steps, plan)));
  } finally {
    setF16Gemm(false);
  }
  const relative = Math.abs(amp.final_loss - fp32.final_loss) / fp32.final_loss;
  return {
    shape: {
      d_model: shape.dModel,
      n_layers: shape.nLayers,
      vocab: shape.vocab,
      seq: shape.seq,
      batch: shape.batch,
    },
    data: tokens.meta.source,
    steps,
    steps_wanted: spec.steps,
    ...(steps < spec.steps ? { note: `${steps} of ${spec.steps} steps fit the time left` } : {}),
    lr: spec.lr,
    final_loss_over_last_steps: Math.min(TAIL, steps),
    fp32,
    amp_fp16: { ...amp, precision_notice: plan.notice },
    relative_difference: relative,
    within_1_percent: relative <= 0.01,
  };
}
