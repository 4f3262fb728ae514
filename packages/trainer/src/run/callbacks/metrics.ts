import { join } from 'node:path';
import { writeLossCurve } from '../../metrics/loss-curve.js';
import type { StepMetrics } from '../../metrics/metrics-log.js';
import { mfu } from '../../metrics/mfu.js';
import type { Run } from '../build-run.js';
import type { StepOutcome } from '../train-step.js';
import type { Callback } from './callback.js';

/** The metrics.jsonl line of a step that took `stepS` seconds. */
export function stepMetrics(
  run: Run,
  outcome: StepOutcome,
  lr: number,
  stepS: number,
  skippedRecords: Record<string, number>,
): StepMetrics {
  const { cfg, seqLen } = run;
  const scaler = run.precision.scaler;
  const record: StepMetrics = {
    step: run.timestamp.batches,
    loss: outcome.loss,
    lr,
    grad_norm: outcome.gradNorm,
    tokens: run.timestamp.tokens,
    tokens_per_s: (cfg.globalTrainBatchSize * seqLen) / stepS,
    // Per device: each rank runs deviceBatch samples a step against its own peak.
    mfu: mfu(run.flopsPerSample, run.deviceBatch / stepS, run.peakFlops),
    elapsed_s: run.elapsed(),
    ...(scaler ? { loss_scale: outcome.lossScale, ...(outcome.applied ? {} : { skipped: true }) } : {}),
  };
  // Bad records the mixer left out so far (`on_bad_record: skip`), per stream, once there are any.
  const skipped = Object.entries(skippedRecords).filter(([, n]) => n > 0);
  if (skipped.length > 0) {
    record.skipped_records = skipped.reduce((a, [, n]) => a + n, 0);
    for (const [name, n] of skipped) record[`skipped_records/${name}`] = n;
  }
  return record;
}

/** Rank 0 appends each step's line to metrics.jsonl, and draws the loss curve at the end. */
export const metricsCallback: Callback = {
  afterStep(run, step) {
    if (run.lead) run.metrics.write(step.record);
  },
  end(run) {
    if (run.lead)
      writeLossCurve(run.metrics.path, join(run.opts.runDir, 'loss-curve.html'), `${run.cfg.runName}: loss`);
  },
};
