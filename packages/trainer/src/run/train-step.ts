import type { MixerBatch } from '@mptjs/data-mixer';
import { forwardBackwardChain } from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { lmContext } from '../driver/mpt-units.js';
import { gradientCoefficient, gradSumOfSquares, unscaleAndClip } from '../optim/clip.js';
import type { Run } from './build-run.js';

/** What one optimizer step did. */
export interface StepOutcome {
  /** Mean loss of the global batch (averaged over ranks). */
  loss: number;
  /** Global gradient norm before clipping, unscaled. */
  gradNorm: number;
  /** The loss scale the step ran at (1 without a loss scaler). */
  lossScale: number;
  /** False when f16 gradients overflowed and the update was skipped. */
  applied: boolean;
}

/**
 * tfjs-wasm aborts its whole module (`RuntimeError: Aborted()` or an out-of-bounds access) when its 4 GiB heap
 * runs out, and a kernel that views a too-large output in that heap fails with a `RangeError` ("Invalid typed
 * array length"); nothing after either can run. Say so in terms of the config rather than the engine's words.
 */
export function explainHeapExhaustion(
  err: unknown,
  backend: string,
  microbatch: number,
  seqLen: number,
  vocabSize: number,
): unknown {
  const heapFull =
    err instanceof WebAssembly.RuntimeError ||
    (err instanceof RangeError &&
      /Invalid typed array length|Array buffer allocation failed/.test(err.message));
  if (backend !== 'wasm' || !heapFull) return err;
  const logitsMb = Math.round((microbatch * seqLen * vocabSize * 4) / 1e6);
  return new Error(
    `the wasm backend ran out of its 4 GiB heap in a microbatch of ${microbatch} x ${seqLen} tokens ` +
      `(the logits alone are ${logitsMb} MB, their gradient as much again); ` +
      `lower device_train_microbatch_size (${err.message})`,
    { cause: err },
  );
}

/**
 * One optimizer step on this rank's slice of a global batch: forward and backward over each microbatch (its loss
 * gradient scaled by its share, and by the loss scale under f16), the global gradient norm, then clipping and the
 * update at `lr`, unless the scaler saw an overflow.
 */
export async function trainStep(run: Run, batch: MixerBatch, lr: number): Promise<StepOutcome> {
  const { model, units, host, deviceBatch, micro, seqLen } = run;
  const scaler = run.precision.scaler;
  let loss = 0;
  // Under f16 GEMMs the loss gradient is scaled up so that small gradients keep their f16 digits.
  const lossScale = scaler?.scale ?? 1;
  for (let m = 0; m < deviceBatch / micro; m++) {
    const rows = batch.tokens.subarray(m * micro * seqLen, (m + 1) * micro * seqLen);
    const ids = tf.tensor2d(rows, [micro, seqLen], 'int32');
    const ctx = lmContext(model, ids);
    try {
      loss +=
        (await forwardBackwardChain(units, ids, ctx, host, (micro / deviceBatch) * lossScale)) *
        (micro / deviceBatch);
    } catch (err) {
      throw explainHeapExhaustion(err, run.backend.name, micro, seqLen, model.config.vocabSize);
    }
    tf.dispose([ids, ctx.targets]);
  }
  loss = await run.meanOverRanks(loss);
  const grads = host.takeGradients();
  const names = [...grads.keys()];
  const localSq = await gradSumOfSquares([...grads.values()]);
  const gradNorm = Math.sqrt((await host.globalSumOfSquares?.(localSq)) ?? localSq) / lossScale;
  // Every rank sees the same global norm, so all skip an overflowed step together.
  const applied = scaler ? scaler.update(Number.isFinite(gradNorm)) : true;
  let final = [...grads.values()];
  if (applied) {
    const maxNorm = run.cfg.gradientClipping?.clippingThreshold;
    const params = host.optimizerParameters();
    const entries = () => names.map((n, i) => ({ name: n, param: params.get(n)!, grad: final[i]! }));
    if (run.optimizer.scalesGradients) {
      // The optimizer applies the unscaling and clipping factor as it reads each gradient (no pass of its own).
      run.optimizer.step(entries(), lr, gradientCoefficient(lossScale, gradNorm, maxNorm));
    } else {
      final = unscaleAndClip(final, lossScale, gradNorm, maxNorm);
      run.optimizer.step(entries(), lr);
    }
  } else {
    run.console.log(
      `[mptjs] batch ${run.timestamp.batches + 1}: gradients overflowed f16 at loss scale ${lossScale}; ` +
        `step skipped, scale now ${scaler!.scale}`,
    );
  }
  tf.dispose([...new Set([...grads.values(), ...final])]);
  return { loss, gradNorm, lossScale, applied };
}
