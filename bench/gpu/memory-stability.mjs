// The memory stability run: many training steps of a small MPT with tfjs's memory counters sampled after each,
// to show that a step leaves behind no tensors and no GPU buffers once its first steps have created the
// optimizer state and filled the buffer pool.
import { MPTModel } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainer, modelConfig } from './model-stage.mjs';
import { withGpuErrors } from './timing.mjs';

/** tfjs's counters now, with the webgpu backend's buffer pool where the backend has one. */
export function memorySample(step) {
  const m = tf.memory();
  const pool = tf.backend().bufferManager;
  return {
    step,
    numTensors: m.numTensors,
    numBytes: m.numBytes,
    // webgpu only: bytes of the GPU buffers tensors (and not yet submitted work) hold, and of all buffers
    // created including those free in the pool.
    numBytesInGPU: m.numBytesInGPU ?? null,
    numBytesAllocatedInGPU: m.numBytesAllocatedInGPU ?? null,
    usedBuffers: typeof pool?.getNumUsedBuffers === 'function' ? pool.getNumUsedBuffers() : null,
    freeBuffers: typeof pool?.getNumFreeBuffers === 'function' ? pool.getNumFreeBuffers() : null,
  };
}

/**
 * Whether `key` holds the same value in every sample from step `from` (1-based) to the last. Null when the run
 * has no samples past `from` or the counter is not available.
 */
export function isFlat(samples, key, from) {
  const tail = samples.filter((s) => s.step >= from);
  if (tail.length < 2 || tail[0][key] === null || tail[0][key] === undefined) return null;
  return tail.every((s) => s[key] === tail[0][key]);
}

/** The first step after `from` where `key` differs from its value at `from`, or null. */
function firstChange(samples, key, from) {
  const tail = samples.filter((s) => s.step >= from);
  const changed = tail.find((s) => s[key] !== tail[0][key]);
  return changed ? changed.step : null;
}

/** Summarizes per-step samples: flatness from `checkFrom`, growth since then, and a few samples in full. */
export function summarizeSamples(samples, checkFrom) {
  const last = samples[samples.length - 1];
  const atCheck = samples.find((s) => s.step === checkFrom) ?? null;
  const tensorsFlat = isFlat(samples, 'numTensors', checkFrom);
  const bytesFlat = isFlat(samples, 'numBytes', checkFrom);
  const steps = samples.length;
  const keep = new Set([1, checkFrom, Math.round(steps / 4), Math.round(steps / 2), steps]);
  const growth = (key) => (atCheck && last[key] !== null ? last[key] - atCheck[key] : null);
  return {
    stable: tensorsFlat === true && bytesFlat === true,
    num_tensors_flat: tensorsFlat,
    num_bytes_flat: bytesFlat,
    gpu_bytes_in_use_flat: isFlat(samples, 'numBytesInGPU', checkFrom),
    gpu_bytes_allocated_flat: isFlat(samples, 'numBytesAllocatedInGPU', checkFrom),
    first_change_step: {
      numTensors: firstChange(samples, 'numTensors', checkFrom),
      numBytes: firstChange(samples, 'numBytes', checkFrom),
    },
    growth_since_check: {
      numTensors: growth('numTensors'),
      numBytes: growth('numBytes'),
      numBytesInGPU: growth('numBytesInGPU'),
      numBytesAllocatedInGPU: growth('numBytesAllocatedInGPU'),
    },
    samples: samples.filter((s) => keep.has(s.step)),
  };
}

/**
 * Trains `memory.steps` steps (fewer when `limitS` seconds run out: `steps_run` says how many) and samples the
 * counters after each.
 */
export async function runMemoryStability(memory, run, limitS) {
  const shape = memory.model;
  const endS = run.budget.elapsed() + limitS;
  const model = MPTModel.init(modelConfig(shape, shape.nLayers), 5);
  const trainer = createTrainer(model, shape);
  const samples = [];
  const times = [];
  let loss = Number.NaN;
  let firstLoss = Number.NaN;
  try {
    await withGpuErrors(async () => {
      for (let step = 1; step <= memory.steps; step++) {
        const last = times.length > 0 ? times[times.length - 1] : 0;
        if (step > 1 && run.budget.elapsed() + 1.5 * last > endS) break;
        const t0 = performance.now();
        loss = await trainer.step();
        if (step === 1) firstLoss = loss;
        times.push((performance.now() - t0) / 1000);
        samples.push(memorySample(step));
      }
    });
  } finally {
    trainer.dispose();
    model.dispose();
  }
  const stepsRun = samples.length;
  const sorted = times.slice(1).sort((a, b) => a - b);
  const medianS = sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)] : times[0];
  const result = {
    shape: {
      d_model: shape.dModel,
      n_layers: shape.nLayers,
      n_heads: shape.nHeads,
      vocab: shape.vocab,
      seq: shape.seq,
      batch: shape.batch,
    },
    steps_planned: memory.steps,
    steps_run: stepsRun,
    check_from_step: memory.checkFrom,
    ...summarizeSamples(samples, memory.checkFrom),
    step_median_s: medianS,
    tokens_per_s: (shape.batch * shape.seq) / medianS,
    first_loss: firstLoss,
    last_loss: loss,
  };
  if (stepsRun < memory.steps) {
    result.note = `${stepsRun} of ${memory.steps} steps: the time left for this section ran out`;
  }
  if (stepsRun <= memory.checkFrom) {
    result.stable = null;
    result.note = `${result.note ?? ''}${result.note ? '; ' : ''}too few steps to judge (${stepsRun}, needs more than ${memory.checkFrom})`;
  }
  return result;
}
