import type { MixerBatch } from '@mptjs/data-mixer';
import type { Timestamp } from '../../config/duration.js';
import type { StepMetrics } from '../../metrics/metrics-log.js';
import type { Run } from '../build-run.js';
import type { StepOutcome } from '../train-step.js';

/** One finished step, as the callbacks see it (`run.timestamp` is already past it). */
export interface StepReport extends StepOutcome {
  /** The timestamp before the step. */
  before: Timestamp;
  lr: number;
  /** Steps this process has run (1 after its first). */
  steps: number;
  batch: MixerBatch;
  /** The metrics.jsonl line of the step. */
  record: StepMetrics;
}

/**
 * Something that happens around the steps (Composer's callbacks): `start` before the first step, `afterStep`
 * after each, in the order the callbacks are listed, and `end` after the last, in reverse order.
 */
export interface Callback {
  start?(run: Run): Promise<void> | void;
  afterStep?(run: Run, step: StepReport): Promise<void> | void;
  end?(run: Run): Promise<void> | void;
}
