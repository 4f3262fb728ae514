import { crossEntropyLoss, forwardChain, type MPTModel, type ParameterHost } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainConfig } from '../../config/schema.js';
import { BatchStream } from '../../data/batch-stream.js';
import { loaders } from '../../data/loaders.js';
import { type LmContext, lmContext, mptChainUnits } from '../../driver/mpt-units.js';
import type { EvalMetrics } from '../../metrics/metrics-log.js';
import type { Run } from '../build-run.js';
import type { Callback } from './callback.js';
import { crossed } from './interval.js';

/** Eval batches when `eval_subset_num_batches` is -1: the mixer streams without end, so "all" needs a bound. */
export const DEFAULT_EVAL_BATCHES = 8;

/** Mean next-token loss over the eval split, overall and per stream (each sample weighs the same). */
async function evalLoss(
  model: MPTModel,
  cfg: TrainConfig,
  seqLen: number,
  host: ParameterHost<LmContext>,
): Promise<{ loss: number; perStream: Record<string, number> }> {
  const loader = cfg.evalLoader!;
  const stream = new BatchStream(
    await loaders.get(loader.name).open(loader, cfg.tokenizer.name, seqLen),
    cfg.deviceEvalBatchSize,
  );
  const units = mptChainUnits(model, { withLoss: false });
  const nBatches = cfg.evalSubsetNumBatches > 0 ? cfg.evalSubsetNumBatches : DEFAULT_EVAL_BATCHES;
  const sums = new Map<number, { total: number; n: number }>();
  try {
    for (let b = 0; b < nBatches; b++) {
      const batch = await stream.next();
      const ids = tf.tensor2d(batch.tokens, [batch.batchSize, seqLen], 'int32');
      const ctx = lmContext(model, ids);
      const logits = await forwardChain(units, ids, ctx, host);
      const rowLosses = tf.tidy(() =>
        tf.stack(
          Array.from({ length: batch.batchSize }, (_, r) =>
            crossEntropyLoss(
              tf.slice(logits, [r, 0, 0], [1, -1, -1]),
              tf.slice(ctx.targets, [r, 0], [1, -1]),
            ),
          ),
        ),
      );
      const values = await rowLosses.data();
      tf.dispose([ids, ctx.targets, logits, rowLosses]);
      for (let r = 0; r < batch.batchSize; r++) {
        const s = batch.streams[r]!;
        const acc = sums.get(s) ?? { total: 0, n: 0 };
        acc.total += values[r]!;
        acc.n += 1;
        sums.set(s, acc);
      }
    }
  } finally {
    await stream.close();
  }
  let total = 0;
  let n = 0;
  const perStream: Record<string, number> = {};
  for (const [s, acc] of sums) {
    total += acc.total;
    n += acc.n;
    perStream[stream.streamNames[s] ?? String(s)] = acc.total / acc.n;
  }
  return { loss: total / n, perStream };
}

/** Runs the eval loader and records `eval_loss`, `eval_perplexity` and their per-stream figures. */
export async function evaluate(run: Run): Promise<void> {
  const { cfg, timestamp } = run;
  if (!cfg.evalLoader) return;
  // Every rank runs the same eval batches (FSDP's gathers are collectives); rank 0 records them.
  const r = await evalLoss(run.model, cfg, run.seqLen, run.host);
  const record: EvalMetrics = {
    step: timestamp.batches,
    eval_loss: r.loss,
    eval_perplexity: Math.exp(r.loss),
    tokens: timestamp.tokens,
    elapsed_s: run.elapsed(),
  };
  for (const [name, l] of Object.entries(r.perStream)) {
    record[`eval_loss/${name}`] = l;
    record[`eval_perplexity/${name}`] = Math.exp(l);
  }
  if (run.lead) run.metrics.write(record);
  if (cfg.logToConsole) {
    run.console.log(
      `[eval batch=${timestamp.batches}] loss=${r.loss.toFixed(4)} perplexity=${Math.exp(r.loss).toFixed(2)}`,
    );
  }
}

/** Eval before the first step (`eval_first`, not on resume) and every `eval_interval`. */
export const evalCallback: Callback = {
  async start(run) {
    if (run.cfg.evalFirst && run.timestamp.batches === 0) await evaluate(run);
  },
  async afterStep(run, step) {
    const { cfg } = run;
    if (
      cfg.evalLoader &&
      crossed(cfg.evalInterval, step.before, run.timestamp, cfg.maxDuration, run.geometry)
    )
      await evaluate(run);
  },
};
