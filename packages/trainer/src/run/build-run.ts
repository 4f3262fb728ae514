import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ProcessGroup } from '@mptjs/distributed';
import { FsdpParameters, SHARDING_STRATEGIES, type ShardingStrategy } from '@mptjs/fsdp';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { type BackendInfo, selectBackend } from '@mptjs/kernels';
import {
  type ChainUnit,
  expectedParameterShapes,
  LocalParameters,
  MPTModel,
  type ParameterHost,
  parseMptConfig,
  type StateDict,
} from '@mptjs/mpt-model';
import {
  type LoadedTrainingCheckpoint,
  loadLatestCheckpoint,
  loadTrainingCheckpoint,
} from '../checkpoint/checkpoints.js';
import { type BatchGeometry, convertDuration, type Timestamp } from '../config/duration.js';
import { TrainConfigError } from '../config/errors.js';
import type { TrainConfig } from '../config/schema.js';
import { BatchStream } from '../data/batch-stream.js';
import { loaders } from '../data/loaders.js';
import { type LmContext, mptChainUnits } from '../driver/mpt-units.js';
import { measureMatmulFlops } from '../metrics/measure-flops.js';
import { MetricsLog } from '../metrics/metrics-log.js';
import { flopsPerSample, PEAK_FLOPS } from '../metrics/mfu.js';
import { buildOptimizer } from '../optim/build.js';
import type { Optimizer } from '../optim/optimizer.js';
import { type PrecisionPlan, setupPrecision } from '../precision/index.js';
import { type RunConsole, rankLine, runConsole } from './console.js';
import type { TrainOptions } from './run-options.js';

/** Everything a run is made of, built from its config: what the step and the callbacks work with. */
export interface Run {
  readonly opts: TrainOptions;
  readonly cfg: TrainConfig;
  readonly pg: ProcessGroup | undefined;
  readonly rank: number;
  readonly worldSize: number;
  /** More than one rank: parameters sharded with FSDP. */
  readonly distributed: boolean;
  /** Rank 0: writes metrics, the loss curve and the export. */
  readonly lead: boolean;
  readonly console: RunConsole;
  readonly backend: BackendInfo;
  readonly precision: PrecisionPlan;
  readonly ckptDir: string;
  readonly metrics: MetricsLog;
  readonly model: MPTModel;
  readonly optimizer: Optimizer;
  readonly units: ChainUnit<LmContext>[];
  readonly host: ParameterHost<LmContext>;
  readonly fsdp: FsdpParameters | undefined;
  readonly seqLen: number;
  readonly geometry: BatchGeometry;
  /** Samples this rank trains per batch, and per microbatch. */
  readonly deviceBatch: number;
  readonly micro: number;
  readonly flopsPerSample: number;
  readonly peakFlops: number;
  readonly trainStream: BatchStream;
  readonly resumedFrom: string | undefined;
  /** What has been trained so far (restored on resume); the loop advances it. */
  timestamp: Timestamp;
  /** Seconds trained, the resumed run's included. */
  elapsed(): number;
  /** When this process started stepping (`performance.now()`). */
  readonly startMs: number;
  /** The full parameters for checkpoints and the export (a collective under FSDP; null off rank 0). */
  fullStateDict(): Promise<StateDict | null>;
  meanOverRanks(x: number): Promise<number>;
}

async function buildModel(cfg: TrainConfig): Promise<MPTModel> {
  const pretrained = cfg.model.pretrainedModelNameOrPath;
  if (pretrained) {
    if (!existsSync(pretrained) || !statSync(pretrained).isDirectory()) {
      throw new Error(
        `model.pretrained_model_name_or_path "${pretrained}" is not a local directory ` +
          '(models cannot be downloaded here: give the directory holding config.json and the weights)',
      );
    }
    const { config, stateDict } = await loadCheckpoint(pretrained);
    return MPTModel.fromStateDict(config, stateDict);
  }
  return MPTModel.init(parseMptConfig(cfg.model.mptConfig), cfg.seed);
}

function shardingStrategy(cfg: TrainConfig): ShardingStrategy {
  const v = cfg.fsdpConfig?.['sharding_strategy'] ?? 'FULL_SHARD';
  if (typeof v !== 'string' || !(SHARDING_STRATEGIES as readonly string[]).includes(v)) {
    throw new TrainConfigError(
      `config key "fsdp_config.sharding_strategy" must be one of ${SHARDING_STRATEGIES.join(', ')}, got ${JSON.stringify(v)}`,
    );
  }
  return v as ShardingStrategy;
}

function microbatchPlan(cfg: TrainConfig, worldSize: number): { deviceBatch: number; micro: number } {
  if (cfg.globalTrainBatchSize % worldSize !== 0) {
    throw new Error(
      `global_train_batch_size (${cfg.globalTrainBatchSize}) must divide by the world size (${worldSize})`,
    );
  }
  const deviceBatch = cfg.globalTrainBatchSize / worldSize;
  // tfjs cannot catch an out-of-memory and retry smaller, so "auto" runs the whole device batch at once.
  const micro =
    cfg.deviceTrainMicrobatchSize === 'auto'
      ? deviceBatch
      : Math.min(cfg.deviceTrainMicrobatchSize, deviceBatch);
  if (deviceBatch % micro !== 0) {
    throw new Error(
      `the per-device batch (${deviceBatch}) must divide by device_train_microbatch_size (${micro})`,
    );
  }
  return { deviceBatch, micro };
}

/**
 * Where checkpoints go: `save_folder` as llm-foundry writes it (`{run_name}` expanded, relative to the working
 * directory), else `RUN_DIR/checkpoints`. `--autoresume` looks in the same place.
 */
export function checkpointFolder(cfg: TrainConfig, runDir: string): string {
  if (cfg.saveFolder === undefined) return join(runDir, 'checkpoints');
  return resolve(cfg.saveFolder.replaceAll('{run_name}', cfg.runName));
}

/**
 * The checkpoint a run starts from: this run's latest under `--autoresume`, else Composer's `load_path` (another
 * run's checkpoint), else none.
 */
async function findStartCheckpoint(
  cfg: TrainConfig,
  autoresume: boolean,
  ckptDir: string,
  pg: ProcessGroup | undefined,
  rank: number,
  worldSize: number,
): Promise<(LoadedTrainingCheckpoint & { name: string }) | undefined> {
  let ckpt: (LoadedTrainingCheckpoint & { name: string }) | undefined;
  if (autoresume) {
    // Rank 0 clears a crashed writer's leftovers before the others look.
    if (rank !== 0) await pg?.barrier();
    ckpt = await loadLatestCheckpoint(ckptDir, rank, worldSize);
    if (rank === 0 && pg !== undefined && worldSize > 1) await pg.barrier();
  }
  if (!ckpt && cfg.loadPath) {
    ckpt = { name: resolve(cfg.loadPath), ...(await loadTrainingCheckpoint(cfg.loadPath, rank, worldSize)) };
  }
  return ckpt;
}

/**
 * Builds a run from its config: backend, precision, model (initialised, fine-tuned from a directory, or resumed),
 * optimizer, parameter host (local or FSDP), the train loader positioned where the run left off, and the MFU
 * figures. Prints what it resolved, as llm-foundry does.
 */
export async function buildRun(opts: TrainOptions): Promise<Run> {
  const { config: cfg, runDir } = opts;
  const pg = opts.processGroup;
  const rank = pg?.rank ?? 0;
  const worldSize = pg?.worldSize ?? 1;
  const distributed = pg !== undefined && worldSize > 1;
  const lead = rank === 0;
  const out = runConsole(opts, lead);
  const { log, print } = out;
  // Every rank says which backend and adapter it got (rank 0 through the progress bar's log).
  const backend = await selectBackend(opts.backend ?? 'auto', {
    log: distributed ? (line) => (lead ? log : print)(rankLine(line, rank)) : log,
  });
  if (distributed) log(`[mptjs] ${worldSize} ranks, FSDP ${shardingStrategy(cfg)}`);
  const precision = await setupPrecision(cfg.precision, backend.name, opts.lossScaler);
  log(precision.notice);
  for (const line of precision.companions) log(line);
  mkdirSync(runDir, { recursive: true });
  const ckptDir = checkpointFolder(cfg, runDir);
  const metrics = new MetricsLog(join(runDir, 'metrics.jsonl'));

  let model = await buildModel(cfg);
  const seqLen = cfg.trainLoader.dataset.maxSeqLen;
  if (seqLen > model.config.maxSeqLen) {
    throw new Error(
      `train_loader max_seq_len (${seqLen}) exceeds the model's max_seq_len (${model.config.maxSeqLen})`,
    );
  }
  const optimizer = buildOptimizer(cfg.optimizer);
  const geometry = { batchSize: cfg.globalTrainBatchSize, seqLen };
  const { deviceBatch, micro } = microbatchPlan(cfg, worldSize);

  let timestamp: Timestamp = { batches: 0, samples: 0, tokens: 0 };
  let dataState: unknown;
  let elapsedBefore = 0;
  let resumedFrom: string | undefined;
  const autoresume = opts.autoresume ?? cfg.autoresume;
  if (autoresume || cfg.loadPath) {
    const ckpt = await findStartCheckpoint(cfg, autoresume, ckptDir, pg, rank, worldSize);
    if (ckpt) {
      model.dispose();
      model = MPTModel.fromStateDict(ckpt.config, ckpt.stateDict);
      optimizer.loadState(ckpt.optimizer);
      timestamp = ckpt.state.timestamp;
      dataState = ckpt.state.data;
      elapsedBefore = ckpt.state.elapsedS;
      if (precision.scaler && ckpt.state.lossScaler) precision.scaler.load(ckpt.state.lossScaler);
      resumedFrom = ckpt.name;
      if (lead) metrics.truncateAfter(timestamp.batches);
      log(`[mptjs] resumed from ${resolve(ckptDir, ckpt.name)} at batch ${timestamp.batches}`);
    }
  }

  const units = mptChainUnits(model);
  let fsdp: FsdpParameters | undefined;
  let host: ParameterHost<LmContext>;
  if (opts.createParameterHost) host = await opts.createParameterHost(model, units);
  else if (distributed) {
    fsdp = await FsdpParameters.create(
      pg,
      { units, paramShapes: expectedParameterShapes(model.config), strategy: shardingStrategy(cfg) },
      await model.toStateDict(),
    );
    host = fsdp;
  } else host = new LocalParameters(model.params);

  const nParams = model.numParameters;
  const flops = flopsPerSample(model.config, nParams, seqLen);
  const peakFlops = cfg.peakFlops ?? PEAK_FLOPS[backend.name] ?? (await measureMatmulFlops());
  log(
    `[mptjs] model: ${nParams.toLocaleString('en-US')} parameters, seq ${seqLen}; batch ${cfg.globalTrainBatchSize} = ` +
      `${worldSize} rank(s) x ${deviceBatch / micro} microbatch(es) x ${micro}; peak ${(peakFlops / 1e9).toFixed(1)} GFLOP/s`,
  );

  const trainStream = new BatchStream(
    await loaders.get(cfg.trainLoader.name).open(cfg.trainLoader, cfg.tokenizer.name, seqLen, dataState),
    deviceBatch,
    rank,
    worldSize,
  );
  if (out.bar) out.bar.total = Math.ceil(convertDuration(cfg.maxDuration, 'ba', cfg.maxDuration, geometry));
  const startMs = performance.now();
  const built = model;
  return {
    opts,
    cfg,
    pg,
    rank,
    worldSize,
    distributed,
    lead,
    console: out,
    backend,
    precision,
    ckptDir,
    metrics,
    model,
    optimizer,
    units,
    host,
    fsdp,
    seqLen,
    geometry,
    deviceBatch,
    micro,
    flopsPerSample: flops,
    peakFlops,
    trainStream,
    resumedFrom,
    timestamp,
    startMs,
    elapsed: () => elapsedBefore + (performance.now() - startMs) / 1000,
    fullStateDict: () => (fsdp ? fsdp.fullStateDict() : built.toStateDict()),
    meanOverRanks: async (x) =>
      distributed ? (await pg.allReduce(new Float32Array([x]), 'sum'))[0]! / worldSize : x,
  };
}
