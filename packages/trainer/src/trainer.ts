import { join } from 'node:path';
import { resolveTokenizerFile } from '@mptjs/data-mixer';
import { reached, type Timestamp } from './config/duration.js';
import { exportHfDirectory } from './export/export.js';
import { endPrecision } from './precision/index.js';
import { buildRun, type Run } from './run/build-run.js';
import type { Callback } from './run/callbacks/callback.js';
import { checkpointCallback } from './run/callbacks/checkpoint.js';
import { evalCallback } from './run/callbacks/eval.js';
import { metricsCallback, stepMetrics } from './run/callbacks/metrics.js';
import { progressCallback } from './run/callbacks/progress.js';
import type { TrainOptions, TrainResult } from './run/run-options.js';
import { trainStep } from './run/train-step.js';
import { scheduleMultiplier } from './schedule/schedulers.js';

/** The timestamp after one global batch. */
function advance(t: Timestamp, run: Run): Timestamp {
  const batchSize = run.cfg.globalTrainBatchSize;
  return {
    batches: t.batches + 1,
    samples: t.samples + batchSize,
    tokens: t.tokens + batchSize * run.seqLen,
  };
}

/** Writes the Hugging Face directory `mptjs-serve` loads (rank 0), then frees what the run holds. */
async function finishRun(run: Run): Promise<string> {
  const exportDir = join(run.opts.runDir, 'export');
  const finalWeights = await run.fullStateDict();
  if (run.lead && finalWeights) {
    await exportHfDirectory(exportDir, run.model.config, finalWeights, {
      tokenizerFile: resolveTokenizerFile(run.cfg.tokenizer.name),
    });
    run.console.log(`[mptjs] exported ${exportDir}`);
  }
  if (run.distributed) await run.pg?.barrier();
  run.optimizer.dispose();
  run.fsdp?.dispose();
  run.model.dispose();
  endPrecision(run.precision);
  return exportDir;
}

/** Trains as the config says, writing metrics, checkpoints and the final export under `runDir`. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const run = await buildRun(opts);
  const { cfg } = run;
  // After each step in this order; at the end in reverse (the last checkpoint before the bar closes).
  const callbacks: Callback[] = [metricsCallback, progressCallback, evalCallback, checkpointCallback(run)];
  let steps = 0;
  let finalLoss = Number.NaN;
  // A failed step must not leave the mixer's prefetch workers holding the process open.
  try {
    for (const cb of callbacks) await cb.start?.(run);
    while (!reached(run.timestamp, cfg.maxDuration)) {
      const t0 = performance.now();
      const batch = await run.trainStream.next();
      const lr =
        cfg.optimizer.lr * scheduleMultiplier(cfg.scheduler, run.timestamp, cfg.maxDuration, run.geometry);
      const outcome = await trainStep(run, batch, lr);
      const before = run.timestamp;
      run.timestamp = advance(before, run);
      steps++;
      finalLoss = outcome.loss;
      const record = stepMetrics(run, outcome, lr, (performance.now() - t0) / 1000, batch.skipped);
      for (const cb of callbacks) await cb.afterStep?.(run, { ...outcome, before, lr, steps, batch, record });
    }
  } catch (err) {
    endPrecision(run.precision);
    await run.trainStream.close().catch(() => {});
    throw err;
  }
  for (const cb of [...callbacks].reverse()) await cb.end?.(run);
  await run.trainStream.close();
  const exportDir = await finishRun(run);
  const result: TrainResult = { backend: run.backend, steps, timestamp: run.timestamp, finalLoss, exportDir };
  if (run.resumedFrom) result.resumedFrom = run.resumedFrom;
  return result;
}
