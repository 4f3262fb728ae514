// Wall-clock budget and GPU-aware timing for the measurement kit.
import * as tf from '@tensorflow/tfjs-core';

/** The run's time budget: sections ask it before starting and shrink their repeats to what is left. */
export class Budget {
  constructor(seconds) {
    this.seconds = seconds;
    this.start = performance.now();
  }

  elapsed() {
    return (performance.now() - this.start) / 1000;
  }

  remaining() {
    return this.seconds - this.elapsed();
  }
}

/**
 * Runs `fn` inside WebGPU error scopes so an out-of-memory or validation error (reported asynchronously by the
 * device, never thrown by tfjs) fails the measurement instead of timing a broken computation.
 */
export async function withGpuErrors(fn) {
  const device = tf.backend().device;
  if (!device?.pushErrorScope) return fn();
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result;
  let failure;
  try {
    result = await fn();
  } catch (err) {
    failure = err;
  }
  // A lost device rejects the pops; the error that lost it is the one to report then.
  const validation = await device.popErrorScope().catch(() => null);
  const oom = await device.popErrorScope().catch(() => null);
  if (oom) throw new Error(`GPU out of memory: ${oom.message}`);
  if (validation) throw new Error(`GPU validation error: ${validation.message}`);
  if (failure) throw failure;
  return result;
}

/**
 * Median seconds of `fn` (async; it must wait for its GPU work) after one warm-up run, over up to `repeats`
 * runs: stops early when the next run would pass `budget`'s end minus `reserveS`. Always times at least once.
 */
export async function timeRuns(fn, { repeats, budget, reserveS = 0, warmup = 1 }) {
  let warmupS = 0;
  for (let i = 0; i < warmup; i++) {
    const t0 = performance.now();
    await fn();
    warmupS = (performance.now() - t0) / 1000;
  }
  const times = [];
  while (times.length < repeats) {
    const last = times.length > 0 ? times[times.length - 1] : warmupS;
    if (times.length > 0 && budget.remaining() - reserveS < last) break;
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    median_s: sorted[Math.floor(sorted.length / 2)],
    min_s: sorted[0],
    max_s: sorted[sorted.length - 1],
    runs: times.length,
    warmup_s: warmupS,
  };
}

/**
 * Seconds per call of a GPU op, queued `k` times back to back and waited on once, so the readback of one
 * scalar, not of the full output, closes the timing. `op` returns a tensor the caller does not keep.
 */
export function timeQueued(op, options) {
  return withGpuErrors(() => timeQueuedUnchecked(op, options));
}

async function timeQueuedUnchecked(op, { budget, reserveS = 0, repeats = 3, targetS = 0.25 }) {
  const burst = async (k) => {
    let last = null;
    for (let i = 0; i < k; i++) {
      last?.dispose();
      last = op();
    }
    const probe = tf.tidy(() => tf.sum(tf.slice(tf.reshape(last, [-1]), 0, 1)));
    await probe.data();
    tf.dispose([probe, last]);
  };
  const t0 = performance.now();
  await burst(1);
  const first = (performance.now() - t0) / 1000;
  // One more single call after the warm-up gives the steady per-call time to size the bursts with.
  const t1 = performance.now();
  await burst(1);
  const single = Math.max((performance.now() - t1) / 1000, 1e-6);
  const k = Math.max(1, Math.min(256, Math.ceil(targetS / single)));
  const timing = await timeRuns(() => burst(k), { repeats, budget, reserveS, warmup: 0 });
  return {
    seconds_per_call: timing.median_s / k,
    calls_per_burst: k,
    bursts: timing.runs,
    first_call_s: first,
  };
}
