import { join } from 'node:path';
import { resolveTokenizerFile } from '@mptjs/data-mixer';
import { pruneCheckpoints, saveTrainingCheckpoint } from '../../checkpoint/checkpoints.js';
import type { Run } from '../build-run.js';
import type { Callback } from './callback.js';
import { crossed } from './interval.js';

/** Writes a checkpoint at `run.timestamp` (every rank takes part), then prunes to `save_num_checkpoints_to_keep`. */
export async function saveCheckpoint(run: Run): Promise<void> {
  const { cfg, pg, rank, worldSize, ckptDir } = run;
  const scaler = run.precision.scaler;
  const ranks = run.distributed && pg ? { rank, worldSize, barrier: () => pg.barrier() } : undefined;
  const name = await saveTrainingCheckpoint(
    ckptDir,
    {
      config: run.model.config,
      stateDict: await run.fullStateDict(),
      optimizer: await run.optimizer.state(),
      state: {
        version: 1,
        runName: cfg.runName,
        timestamp: run.timestamp,
        data: run.trainStream.state(),
        rng: { seed: cfg.seed },
        elapsedS: run.elapsed(),
        worldSize,
        ...(scaler ? { lossScaler: scaler.state() } : {}),
      },
      tokenizerFile: resolveTokenizerFile(cfg.tokenizer.name),
    },
    ranks,
  );
  if (run.lead) await pruneCheckpoints(ckptDir, cfg.saveNumCheckpointsToKeep);
  run.console.log(`[mptjs] checkpoint ${join(ckptDir, name)}`);
}

/** A checkpoint every `save_interval`, and one at the end unless the last step was just saved. */
export function checkpointCallback(run: Run): Callback {
  let lastSaved = run.timestamp.batches;
  return {
    async afterStep(r, step) {
      if (crossed(r.cfg.saveInterval, step.before, r.timestamp, r.cfg.maxDuration, r.geometry)) {
        await saveCheckpoint(r);
        lastSaved = r.timestamp.batches;
      }
    },
    async end(r) {
      if (lastSaved !== r.timestamp.batches) await saveCheckpoint(r);
    },
  };
}
