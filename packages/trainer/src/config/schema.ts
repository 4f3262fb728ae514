import type { LoaderConfig } from '@mptjs/data-mixer';
import { loaders } from '../data/loaders.js';
import { type OptimizerConfig, optimizers } from '../optim/registry.js';
import { type SchedulerConfig, schedulers } from '../schedule/registry.js';
import type { Duration } from './duration.js';
import { TrainConfigError } from './errors.js';
import { type ModelSectionConfig, readModel } from './model-section.js';
import { type Json, positive, Section } from './section.js';

export interface TrainConfig {
  runName: string;
  seed: number;
  model: ModelSectionConfig;
  tokenizer: { name: string; modelMaxLength?: number };
  trainLoader: LoaderConfig;
  evalLoader?: LoaderConfig;
  optimizer: OptimizerConfig;
  scheduler: SchedulerConfig;
  maxDuration: Duration;
  evalInterval: Duration;
  evalFirst: boolean;
  /** Batches per eval (-1: the whole eval split). */
  evalSubsetNumBatches: number;
  globalTrainBatchSize: number;
  deviceTrainMicrobatchSize: number | 'auto';
  deviceEvalBatchSize: number;
  /** `amp_*` run the products of a step on the f16 GEMM where the backend has one (see precision/). */
  precision: 'fp32' | 'amp_bf16' | 'amp_fp16' | 'amp_fp8';
  fsdpConfig?: Json;
  saveFolder?: string;
  saveInterval: Duration;
  saveNumCheckpointsToKeep: number;
  saveOverwrite: boolean;
  loadPath?: string;
  autoresume: boolean;
  /** Unset: a live bar whenever the run has a terminal; false: plain lines (llm-foundry's yamls say false). */
  progressBar?: boolean;
  logToConsole: boolean;
  consoleLogInterval: Duration;
  gradientClipping?: { clippingType: 'norm'; clippingThreshold: number };
  callbacks: Json;
  loggers: Json;
  variables: Json;
  distTimeout: number;
  /** Peak FLOP/s used for MFU; overrides the per-backend table. */
  peakFlops?: number;
}

function readOptimizer(s: Section): OptimizerConfig {
  const { name, entry } = optimizers.choose(s);
  const cfg = entry.read(s, name);
  s.finish();
  return cfg;
}

function readScheduler(s: Section): SchedulerConfig {
  const { name, entry } = schedulers.choose(s);
  const cfg = entry.read(s, name);
  s.finish();
  return cfg;
}

function readLoader(s: Section, defaultSeqLen: number): LoaderConfig {
  const { name, entry } = loaders.choose(s, 'name', 'text');
  const loader = entry.read(s, name, defaultSeqLen);
  s.finish();
  return loader;
}

function readClipping(s: Section): TrainConfig['gradientClipping'] {
  const clip = s.optionalSection('gradient_clipping');
  s.finish();
  if (!clip) return undefined;
  const clippingType = clip.oneOf('clipping_type', ['norm'] as const) ?? 'norm';
  const clippingThreshold = clip.required('clipping_threshold', (sec, k) =>
    sec.num(k, positive, 'a positive number'),
  );
  clip.finish();
  return { clippingType, clippingThreshold };
}

/**
 * Validates a resolved (interpolated, overridden) config and fills llm-foundry's defaults. The top-level keys are
 * read here; `optimizer`, `scheduler`, `train_loader` and `eval_loader` are read by the registry entry their
 * `name` picks (`optimizers`, `schedulers`, `loaders`), and `model` by `readModel`.
 */
export function validateTrainConfig(raw: Json): TrainConfig {
  const root = new Section(raw, '');
  const seed = root.int('seed') ?? root.int('global_seed') ?? 17;
  const model = readModel(root.section('model'));
  const seqLen = root.int('max_seq_len', 1) ?? (model.mptConfig['max_seq_len'] as number | undefined) ?? 2048;
  const tok = root.section('tokenizer');
  const tokenizer: TrainConfig['tokenizer'] = { name: tok.required('name', (sec, k) => sec.str(k)) };
  const kwargs = tok.optionalSection('kwargs');
  if (kwargs) {
    const mml = kwargs.int('model_max_length', 1);
    if (mml !== undefined) tokenizer.modelMaxLength = mml;
    kwargs.finish();
  }
  tok.finish();

  const trainLoader = readLoader(root.section('train_loader'), seqLen);
  const evalSection = root.optionalSection('eval_loader');
  const evalLoader = evalSection ? readLoader(evalSection, seqLen) : undefined;
  const maxDuration = root.required('max_duration', (s, k) => s.duration(k));
  if (maxDuration.unit === 'dur') throw new TrainConfigError('config key "max_duration" cannot be in "dur"');
  const globalTrainBatchSize = root.required('global_train_batch_size', (s, k) => s.int(k, 1));
  const mbRaw = root.raw('device_train_microbatch_size');
  let deviceTrainMicrobatchSize: number | 'auto' = globalTrainBatchSize;
  if (mbRaw === 'auto') deviceTrainMicrobatchSize = 'auto';
  else if (mbRaw !== undefined) {
    if (typeof mbRaw !== 'number' || !Number.isInteger(mbRaw) || mbRaw < 1) {
      return root.fail('device_train_microbatch_size', 'an integer >= 1 or "auto"');
    }
    deviceTrainMicrobatchSize = mbRaw;
  }
  const fsdp = root.optionalSection('fsdp_config');
  fsdp?.oneOf('sharding_strategy', ['FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD'] as const);
  // The other FSDP knobs (mixed_precision, activation_checkpointing, ...) have no effect here: accepted as written.
  fsdp?.accept(...Object.keys(fsdp.obj));

  const cfg: TrainConfig = {
    runName: root.str('run_name') ?? 'mptjs-run',
    seed,
    model,
    tokenizer,
    trainLoader,
    optimizer: readOptimizer(root.section('optimizer')),
    scheduler: readScheduler(root.section('scheduler')),
    maxDuration,
    evalInterval: root.duration('eval_interval') ?? { value: 1, unit: 'dur' },
    evalFirst: root.bool('eval_first') ?? false,
    evalSubsetNumBatches:
      root.num(
        'eval_subset_num_batches',
        (n) => Number.isInteger(n) && (n === -1 || n >= 1),
        'an integer >= 1 or -1',
      ) ?? -1,
    globalTrainBatchSize,
    deviceTrainMicrobatchSize,
    deviceEvalBatchSize: root.int('device_eval_batch_size', 1) ?? 1,
    precision: root.oneOf('precision', ['fp32', 'amp_bf16', 'amp_fp16', 'amp_fp8'] as const) ?? 'fp32',
    saveInterval: root.duration('save_interval') ?? { value: 1000, unit: 'ba' },
    saveNumCheckpointsToKeep:
      root.num('save_num_checkpoints_to_keep', (n) => Number.isInteger(n) && n >= -1, 'an integer >= -1') ??
      -1,
    saveOverwrite: root.bool('save_overwrite') ?? false,
    autoresume: root.bool('autoresume') ?? false,
    logToConsole: root.bool('log_to_console') ?? true,
    consoleLogInterval: root.duration('console_log_interval') ?? { value: 1, unit: 'ba' },
    gradientClipping: readClipping(root.section('algorithms')),
    callbacks: (root.raw('callbacks') as Json | undefined) ?? {},
    loggers: (root.raw('loggers') as Json | undefined) ?? {},
    variables: (root.raw('variables') as Json | undefined) ?? {},
    distTimeout: root.num('dist_timeout', positive, 'a positive number of seconds') ?? 600,
  };
  if (evalLoader) cfg.evalLoader = evalLoader;
  if (fsdp) cfg.fsdpConfig = fsdp.obj;
  const progressBar = root.bool('progress_bar');
  if (progressBar !== undefined) cfg.progressBar = progressBar;
  const saveFolder = root.str('save_folder');
  if (saveFolder !== undefined) cfg.saveFolder = saveFolder;
  const loadPath = root.str('load_path');
  if (loadPath !== undefined) cfg.loadPath = loadPath;
  const peak = root.num('peak_flops', positive, 'a positive number');
  if (peak !== undefined) cfg.peakFlops = peak;
  root.accept(
    'max_seq_len',
    'global_seed',
    'eval_gauntlet',
    'icl_tasks',
    'save_weights_only',
    'python_log_level',
    'cpu_offload',
    'compile_config',
    'metadata',
    'code_paths',
  );
  root.finish();

  const mb = cfg.deviceTrainMicrobatchSize;
  if (typeof mb === 'number' && mb > globalTrainBatchSize) {
    throw new TrainConfigError(
      `config key "device_train_microbatch_size" (${mb}) exceeds "global_train_batch_size" (${globalTrainBatchSize})`,
    );
  }
  return cfg;
}
