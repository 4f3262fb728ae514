// The WebGPU flag sweep: one model of the mpt-125m shape, a training step and greedy decoding timed under each
// of a few settings of the tfjs-backend-webgpu flags that change how matmul-heavy work is recorded, submitted and
// tiled, so one run on a GPU machine says which settings to put in MPTJS_TFJS_FLAGS.
import { applyTfjsFlags, formatTfjsFlags } from '@mptjs/kernels';
import { MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainer, decodeOnce, modelConfig, randomTokens } from './model-stage.mjs';
import { timeRuns, withGpuErrors } from './timing.mjs';

/**
 * Each configuration changes one thing from the flags selectBackend applied (mptjs's defaults). Not swept:
 * WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD (read once when the backend is imported; WEBGPU_CPU_FORWARD switches the same
 * path at run time), the conv2d flags (no convolutions), and the debugging/profiling flags.
 */
export const SWEEP_CONFIGS = [
  { name: 'mptjs defaults', flags: {} },
  // tfjs's own submit batch: one queue submit per 15 dispatches.
  { name: 'submit every 15', flags: { WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 15 } },
  { name: 'submit every 60', flags: { WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 60 } },
  // Small ops on CPU-resident inputs run on the GPU too (no CPU kernel, no upload of its result).
  { name: 'no cpu forward', flags: { WEBGPU_CPU_FORWARD: false } },
  // tfjs switches a matmul to a smaller-tile or split-K program when its 32x32 tiles make at most 8 workgroups
  // (16 on Intel gen 12+); a GPU with ~100 SMs may want that for the decode matmuls (one row) much earlier.
  {
    name: 'more matmul workgroups',
    flags: { WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL: 64 },
  },
  // Always the 32x32-tiled program, never the reduce / split-K / small-output ones.
  { name: 'packed matmul only', flags: { WEBGPU_MATMUL_PROGRAM_TYPE: 3 } },
];

/** Every flag some configuration sets: the sweep records their values for each configuration. */
export const SWEPT_FLAGS = [...new Set(SWEEP_CONFIGS.flatMap((c) => Object.keys(c.flags)))];

function currentFlags() {
  return Object.fromEntries(SWEPT_FLAGS.map((name) => [name, tf.env().get(name)]));
}

/**
 * The best configuration for training, for decoding, and overall (the best geometric mean of both speedups over
 * the first configuration). Configurations without both figures are not ranked.
 */
export function pickBest(configs) {
  const ranked = configs.filter((c) => c.train_tokens_per_s > 0 && c.decode_tokens_per_s > 0);
  if (ranked.length === 0) return null;
  const base = ranked[0];
  const by = (key) => ranked.reduce((best, c) => (c[key] > best[key] ? c : best)).name;
  const score = (c) =>
    Math.sqrt(
      (c.train_tokens_per_s / base.train_tokens_per_s) * (c.decode_tokens_per_s / base.decode_tokens_per_s),
    );
  const overall = ranked.reduce((best, c) => (score(c) > score(best) ? c : best));
  return {
    train: by('train_tokens_per_s'),
    decode: by('decode_tokens_per_s'),
    overall: overall.name,
    overall_speedup: score(overall),
    mptjs_tfjs_flags: formatTfjsFlags(overall.flags),
  };
}

async function measureConfig(model, trainer, shape, sweep, run, endS) {
  const train = await withGpuErrors(() =>
    timeRuns(() => trainer.step(), {
      repeats: sweep.repeats,
      budget: run.budget,
      reserveS: run.budget.seconds - endS,
      warmup: sweep.warmup,
    }),
  );
  const prompt = Array.from(randomTokens(sweep.decode.prompt, model.config.vocabSize, 777));
  // The warm-up decode compiles the shaders this configuration's programs need.
  for (let i = 0; i < sweep.warmup; i++) {
    await withGpuErrors(() => decodeOnce(model, prompt, sweep.decode.newTokens));
  }
  const decode = await withGpuErrors(() => decodeOnce(model, prompt, sweep.decode.newTokens));
  return {
    train_step_s: train.median_s,
    train_runs: train.runs,
    train_tokens_per_s: (shape.batch * shape.seq) / train.median_s,
    decode_tokens_per_s: (sweep.decode.newTokens - 1) / decode.decode_s,
    prefill_tokens_per_s: sweep.decode.prompt / decode.prefill_s,
  };
}

/**
 * Runs the configurations in order until `limitS` seconds from now, each after the flags of the one before are
 * restored; leaves the flags as it found them.
 */
export async function runFlagSweep(shape, sweep, run, limitS) {
  const endS = run.budget.elapsed() + limitS;
  const base = currentFlags();
  const model = MPTModel.init(modelConfig(shape, shape.nLayers), 3);
  const trainer = createTrainer(model, shape);
  const configs = [];
  let lastS = 0;
  try {
    for (const config of SWEEP_CONFIGS) {
      const left = endS - run.budget.elapsed();
      // The first configuration's time (it also compiled most shaders) bounds each later one.
      if (configs.length > 0 && left < 1.2 * lastS) {
        configs.push({ name: config.name, flags: { ...base, ...config.flags }, skipped: 'out of time' });
        continue;
      }
      applyTfjsFlags({ ...base, ...config.flags });
      const entry = { name: config.name, flags: currentFlags() };
      const t0 = performance.now();
      try {
        Object.assign(entry, await measureConfig(model, trainer, shape, sweep, run, endS));
      } catch (err) {
        entry.error = err instanceof Error ? err.message : String(err);
      }
      lastS = (performance.now() - t0) / 1000;
      entry.seconds = lastS;
      configs.push(entry);
    }
  } finally {
    applyTfjsFlags(base);
    trainer.dispose();
    model.dispose();
  }
  const measured = configs.filter((c) => c.train_tokens_per_s > 0);
  if (measured.length === 0) {
    throw new Error(`no configuration was measured: ${configs.map((c) => c.error ?? c.skipped).join('; ')}`);
  }
  return {
    shape: { d_model: shape.dModel, n_layers: shape.nLayers, seq: shape.seq, batch: shape.batch },
    decode: sweep.decode,
    base_flags: base,
    configs,
    configs_measured: measured.length,
    best: pickBest(configs),
    note: 'one change each from the mptjs defaults; the best overall is the best geometric mean of the train and decode speedups over the first configuration',
  };
}
