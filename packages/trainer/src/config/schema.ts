import {
  type BadRecordPolicy,
  DEFAULT_SHUFFLE_SEED,
  DATASET_KEYS as MIXER_DATASET_KEYS,
  STREAM_KEYS as MIXER_STREAM_KEYS,
  PRESETS,
} from '@mptjs/data-mixer';
import type { Duration } from './duration.js';
import { TrainConfigError } from './errors.js';
import { type Json, Section } from './section.js';

export type OptimizerName = 'decoupled_adamw' | 'decoupled_lionw';
export type SchedulerName = 'cosine_with_warmup' | 'linear_decay_with_warmup' | 'constant_with_warmup';

export interface OptimizerConfig {
  name: OptimizerName;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export interface SchedulerConfig {
  name: SchedulerName;
  tWarmup: Duration;
  /** Defaults to `1dur` (max_duration). */
  tMax: Duration;
  /** Final multiplier (cosine and linear). */
  alphaF: number;
  /** Start multiplier of the linear decay, and the constant of constant_with_warmup. */
  alphaI: number;
}

export interface StreamConfig {
  name: string;
  local?: string;
  remote?: string;
  split?: string;
  proportion?: number;
  repeat?: number;
  choose?: number;
  /** JSON-lines field holding the text (default: the dataset's, else `text`). */
  textField?: string;
}

export interface LoaderConfig {
  name: 'text';
  /** The dataset section as written (streams included), for the data mixer. */
  dataset: {
    local?: string;
    remote?: string;
    split?: string;
    shuffle: boolean;
    shuffleSeed: number;
    maxSeqLen: number;
    eosTokenId?: number;
    bosTokenId?: number;
    /** What the mixer does with a bad record: stop (`fail`, default) or leave it out and count it (`skip`). */
    onBadRecord: BadRecordPolicy;
    textField?: string;
    /** `preset: redpajama` with `root`: the mixer expands it into the seven RedPajama streams. */
    preset?: { name: string; root: string };
    streams: StreamConfig[];
  };
  dropLast: boolean;
  numWorkers: number;
}

export interface ModelSectionConfig {
  name: 'mpt_causal_lm';
  /** A local HF directory to fine-tune from (hub ids cannot be downloaded here). */
  pretrainedModelNameOrPath?: string;
  /** MPT keys in the llm-foundry `mpt` dialect, ready for mpt-model's `parseMptConfig`. */
  mptConfig: Json;
}

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
  /** Accepted for compatibility; the math runs in float32 on every backend. */
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

const positive = (n: number) => Number.isFinite(n) && n > 0;
const nonNegative = (n: number) => Number.isFinite(n) && n >= 0;
const unitInterval = (n: number) => Number.isFinite(n) && n >= 0 && n < 1;

const ATTN_KEYS = [
  'attn_type',
  'attn_pdrop',
  'attn_impl',
  'qk_ln',
  'qk_gn',
  'clip_qkv',
  'softmax_scale',
  'prefix_lm',
  'attn_uses_sequence_id',
  'sliding_window_size',
  'alibi',
  'alibi_bias_max',
  'rope',
  'kv_n_heads',
];
const INIT_KEYS = [
  'name',
  'fan_mode',
  'init_nonlinearity',
  'init_div_is_residual',
  'emb_init_std',
  'emb_init_uniform_lim',
  'init_std',
  'init_gain',
  'verbose',
];
const MODEL_KEYS = [
  'd_model',
  'n_heads',
  'n_layers',
  'expansion_ratio',
  'max_seq_len',
  'vocab_size',
  'resid_pdrop',
  'emb_pdrop',
  'learned_pos_emb',
  'logit_scale',
  'no_bias',
  'embedding_fraction',
  'norm_type',
  'layer_norm_epsilon',
  'use_cache',
  'tokenizer_name',
  'init_device',
];
/** llm-foundry MPTConfig defaults for the keys parseMptConfig requires. */
const MODEL_DEFAULTS: Json = {
  d_model: 2048,
  n_heads: 16,
  n_layers: 24,
  max_seq_len: 2048,
  vocab_size: 50368,
};

function readModel(s: Section): ModelSectionConfig {
  const name = s.oneOf('name', ['mpt_causal_lm', 'hf_causal_lm'] as const) ?? 'mpt_causal_lm';
  const pretrained = s.str('pretrained_model_name_or_path');
  s.accept('pretrained', 'use_auth_token', 'loss_fn', 'use_flash_attention_2', 'trust_remote_code');
  const mpt: Json = { model_type: 'mpt' };
  for (const k of MODEL_KEYS) if (s.has(k)) mpt[k] = s.raw(k);
  for (const [k, keys] of [
    ['attn_config', ATTN_KEYS],
    ['init_config', INIT_KEYS],
  ] as const) {
    const sub = s.optionalSection(k);
    if (!sub) continue;
    sub.accept(...keys);
    sub.finish();
    mpt[k] = sub.obj;
  }
  const overrides = s.optionalSection('config_overrides');
  if (overrides) {
    overrides.accept(...MODEL_KEYS, 'attn_config', 'init_config');
    overrides.finish();
    Object.assign(mpt, overrides.obj);
  }
  s.finish();
  if (name === 'hf_causal_lm' && !pretrained) {
    throw new TrainConfigError(
      'config key "model.pretrained_model_name_or_path" is required for hf_causal_lm',
    );
  }
  if (!pretrained) for (const [k, v] of Object.entries(MODEL_DEFAULTS)) if (mpt[k] === undefined) mpt[k] = v;
  return {
    name: 'mpt_causal_lm',
    mptConfig: mpt,
    ...(pretrained ? { pretrainedModelNameOrPath: pretrained } : {}),
  };
}

// The data mixer validates these itself when it opens (see its README); here they are only known keys.
const STREAM_PASSIVE_KEYS = [...MIXER_STREAM_KEYS];
const DATASET_PASSIVE_KEYS = [...MIXER_DATASET_KEYS];

function readStream(s: Section, name: string): StreamConfig {
  const stream: StreamConfig = { name };
  const local = s.str('local');
  const remote = s.str('remote');
  const split = s.str('split');
  const proportion = s.num('proportion', nonNegative, 'a number >= 0');
  const repeat = s.num('repeat', nonNegative, 'a number >= 0');
  const choose = s.int('choose', 0);
  const textField = s.str('text_field');
  s.accept(...STREAM_PASSIVE_KEYS);
  s.finish();
  if (textField !== undefined) stream.textField = textField;
  if (local !== undefined) stream.local = local;
  if (remote !== undefined) stream.remote = remote;
  if (split !== undefined) stream.split = split;
  if (proportion !== undefined) stream.proportion = proportion;
  if (repeat !== undefined) stream.repeat = repeat;
  if (choose !== undefined) stream.choose = choose;
  const given = [proportion, repeat, choose].filter((v) => v !== undefined).length;
  if (given > 1)
    throw new TrainConfigError(`config key "${s.path}" may set only one of proportion, repeat, choose`);
  return stream;
}

function readLoader(s: Section, defaultSeqLen: number): LoaderConfig {
  const name = s.oneOf('name', ['text'] as const) ?? 'text';
  const d = s.section('dataset');
  const streamsSection = d.optionalSection('streams');
  const streams = streamsSection
    ? Object.keys(streamsSection.obj).map((k) => readStream(streamsSection.section(k), k))
    : [];
  streamsSection?.finish();
  const dataset: LoaderConfig['dataset'] = {
    shuffle: d.bool('shuffle') ?? false,
    // The mixer's default (llm-foundry's 9176), not `seed`: this view must describe what the mixer does.
    shuffleSeed: d.int('shuffle_seed') ?? DEFAULT_SHUFFLE_SEED,
    maxSeqLen: d.int('max_seq_len', 1) ?? defaultSeqLen,
    onBadRecord: d.oneOf('on_bad_record', ['fail', 'skip'] as const) ?? 'fail',
    streams,
  };
  d.int('shuffle_block_size', 1);
  const textField = d.str('text_field');
  if (textField !== undefined) dataset.textField = textField;
  const preset = d.oneOf('preset', Object.keys(PRESETS));
  const root = d.str('root');
  if (preset !== undefined) {
    if (root === undefined)
      throw new TrainConfigError(`config key "${d.key('preset')}" needs "${d.key('root')}"`);
    dataset.preset = { name: preset, root };
  } else if (root !== undefined) {
    throw new TrainConfigError(`config key "${d.key('root')}" is only used with "${d.key('preset')}"`);
  }
  const local = d.str('local');
  const remote = d.str('remote');
  const split = d.str('split');
  const eos = d.int('eos_token_id');
  const bos = d.int('bos_token_id');
  if (local !== undefined) dataset.local = local;
  if (remote !== undefined) dataset.remote = remote;
  if (split !== undefined) dataset.split = split;
  if (eos !== undefined) dataset.eosTokenId = eos;
  if (bos !== undefined) dataset.bosTokenId = bos;
  d.accept(...DATASET_PASSIVE_KEYS);
  d.finish();
  if (streams.length === 0 && local === undefined && remote === undefined && preset === undefined) {
    throw new TrainConfigError(`config key "${d.path}" needs "local", "remote", "streams" or "preset"`);
  }
  const loader: LoaderConfig = {
    name,
    dataset,
    dropLast: s.bool('drop_last') ?? true,
    numWorkers: s.int('num_workers') ?? 0,
  };
  s.accept('pin_memory', 'prefetch_factor', 'persistent_workers', 'timeout', 'label');
  s.finish();
  return loader;
}

function readOptimizer(s: Section): OptimizerConfig {
  const name = s.required('name', (sec, k) => sec.oneOf(k, ['decoupled_adamw', 'decoupled_lionw'] as const));
  const adam = name === 'decoupled_adamw';
  const lr = s.num('lr', positive, 'a positive number') ?? (adam ? 1e-3 : 1e-4);
  const betasRaw = s.raw('betas');
  let betas: [number, number] = adam ? [0.9, 0.95] : [0.9, 0.99];
  if (betasRaw !== undefined) {
    if (
      !Array.isArray(betasRaw) ||
      betasRaw.length !== 2 ||
      !betasRaw.every((b) => typeof b === 'number' && unitInterval(b))
    ) {
      s.fail('betas', 'a list of two numbers in [0, 1)');
    }
    betas = [betasRaw[0] as number, betasRaw[1] as number];
  }
  const eps = s.num('eps', positive, 'a positive number') ?? 1e-8;
  const weightDecay = s.num('weight_decay', nonNegative, 'a number >= 0') ?? (adam ? 1e-5 : 0);
  if (!adam && s.has('eps'))
    throw new TrainConfigError(`config key "${s.key('eps')}" does not apply to decoupled_lionw`);
  s.finish();
  return { name, lr, betas, eps, weightDecay };
}

function readScheduler(s: Section): SchedulerConfig {
  const name = s.required('name', (sec, k) =>
    sec.oneOf(k, ['cosine_with_warmup', 'linear_decay_with_warmup', 'constant_with_warmup'] as const),
  );
  const tWarmup = s.required('t_warmup', (sec, k) => sec.duration(k));
  const tMax = s.duration('t_max') ?? { value: 1, unit: 'dur' };
  const alphaF = s.num('alpha_f', nonNegative, 'a number >= 0') ?? (name === 'cosine_with_warmup' ? 0 : 0);
  const alphaI =
    s.num(name === 'constant_with_warmup' ? 'alpha' : 'alpha_i', nonNegative, 'a number >= 0') ?? 1;
  s.accept('scale_warmup');
  s.finish();
  return { name, tWarmup, tMax, alphaF, alphaI };
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

/** Validates a resolved (interpolated, overridden) config and fills llm-foundry's defaults. */
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
