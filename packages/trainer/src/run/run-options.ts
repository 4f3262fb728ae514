import type { ProcessGroup } from '@mptjs/distributed';
import type { BackendInfo, BackendRequest } from '@mptjs/kernels';
import type { ChainUnit, MPTModel, ParameterHost } from '@mptjs/mpt-model';
import type { Timestamp } from '../config/duration.js';
import type { TrainConfig } from '../config/schema.js';
import type { LmContext } from '../driver/mpt-units.js';
import type { LossScalerOptions } from '../precision/index.js';

export interface TrainOptions {
  config: TrainConfig;
  /** Where metrics.jsonl, checkpoints/ and export/ go. */
  runDir: string;
  backend?: BackendRequest;
  /** Resume from `runDir/checkpoints/latest` when it exists (also set by `autoresume: true` in the config). */
  autoresume?: boolean;
  /** Progress output (default: stderr). */
  log?: (line: string) => void;
  /**
   * A terminal to draw a live progress bar on (step/total, loss, tokens/s, ETA; rewritten in place with `\r`).
   * With it, per-step console lines are replaced by the bar and other lines are printed above it.
   */
  progress?: (text: string) => void;
  /**
   * The ranks of a data-parallel job (torchrun convention, from `@mptjs/distributed`'s `initFromEnv`). With more than one
   * rank the parameters are sharded with FSDP (`fsdp_config.sharding_strategy`, default FULL_SHARD), each rank
   * trains its slice of every global batch, and rank 0 writes metrics, checkpoints and the export.
   */
  processGroup?: ProcessGroup;
  /** Replaces the parameter host (single-device `LocalParameters`, or FSDP with a process group). */
  createParameterHost?: (model: MPTModel, units: ChainUnit<LmContext>[]) => Promise<ParameterHost<LmContext>>;
  /** The dynamic loss scaler's settings under `amp_fp16` / `amp_bf16` (torch GradScaler's defaults otherwise). */
  lossScaler?: LossScalerOptions;
}

export interface TrainResult {
  backend: BackendInfo;
  steps: number;
  timestamp: Timestamp;
  resumedFrom?: string;
  finalLoss: number;
  exportDir: string;
}
