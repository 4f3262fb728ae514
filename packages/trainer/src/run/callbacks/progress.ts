import type { Callback } from './callback.js';
import { crossed } from './interval.js';

/** The live bar when the run has a terminal, else a `[batch=N] ...` line every `console_log_interval`. */
export const progressCallback: Callback = {
  afterStep(run, step) {
    const { cfg, console: out } = run;
    const { record } = step;
    out.bar?.update({
      step: run.timestamp.batches,
      loss: step.loss,
      tokensPerS: record.tokens_per_s,
      secondsPerStep: (performance.now() - run.startMs) / 1000 / step.steps,
    });
    if (
      !out.bar &&
      cfg.logToConsole &&
      crossed(cfg.consoleLogInterval, step.before, run.timestamp, cfg.maxDuration, run.geometry)
    ) {
      out.log(
        `[batch=${run.timestamp.batches}] loss=${step.loss.toFixed(4)} lr=${step.lr.toExponential(3)} grad_norm=${step.gradNorm.toFixed(4)} ` +
          `tok/s=${record.tokens_per_s.toFixed(0)} mfu=${record.mfu === null ? '-' : `${(record.mfu * 100).toFixed(2)}%`}` +
          (record.skipped_records === undefined ? '' : ` skipped_records=${record.skipped_records}`),
      );
    }
  },
  end(run) {
    run.console.bar?.finish();
  },
};
