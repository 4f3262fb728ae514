import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveTokenizerFile } from '@mptjs/data-mixer';
import { FsdpParameters, type ProcessGroup, SHARDING_STRATEGIES, type ShardingStrategy } from '@mptjs/fsdp';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { type BackendInfo, type BackendRequest, selectBackend } from '@mptjs/kernels';
import {
  crossEntropyLoss,
  expectedParameterShapes,
  MPTModel,
  parseMptConfig,
  type StateDict,
} from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import {
  type LoadedTrainingCheckpoint,
  loadLatestCheckpoint,
  loadTrainingCheckpoint,
  pruneCheckpoints,
  saveTrainingCheckpoint,
} from './checkpoint/checkpoints.js';
import {
  convertDuration,
  type Duration,
  reached,
  type Timestamp,
  timestampValue,
} from './config/duration.js';
import { TrainConfigError } from './config/errors.js';
import type { TrainConfig } from './config/schema.js';
import type { Json } from './config/section.js';
import { BatchStream, openMixer } from './data.js';
import { LocalParameters } from './driver/local-parameters.js';
import { type LmContext, lmContext, mptChainUnits } from './driver/mpt-units.js';
import type { ParameterHost } from './driver/parameter-host.js';
import { type ChainUnit, forwardBackwardChain, forwardChain } from './driver/unit-chain.js';
import { exportHfDirectory } from './export/export.js';
import { writeLossCurve } from './metrics/loss-curve.js';
import { measureMatmulFlops } from './metrics/measure-flops.js';
import { type EvalMetrics, MetricsLog, type StepMetrics } from './metrics/metrics-log.js';
import { flopsPerSample, mfu, PEAK_FLOPS } from './metrics/mfu.js';
import { ProgressBar } from './metrics/progress-bar.js';
import { buildOptimizer } from './optim/build.js';
import { gradSumOfSquares, unscaleAndClip } from './optim/clip.js';
import { endPrecision, type LossScalerOptions, setupPrecision } from './precision/index.js';
import { scheduleMultiplier } from './schedule/schedulers.js';

export interface TrainOptions {
  config: TrainConfig;
  /** The resolved config as a plain object (the loaders' sections are handed to the data mixer as written). */
  resolved: Json;
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
   * The ranks of a data-parallel job (torchrun convention, from `@mptjs/fsdp`'s `initFromEnv`). With more than one
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

/** Fires when a run crosses a multiple of `interval` between two timestamps. */
function crossed(
  interval: Duration,
  before: Timestamp,
  after: Timestamp,
  max: Duration,
  geometry: { batchSize: number; seqLen: number },
): boolean {
  const unit = interval.unit === 'dur' ? (max.unit as 'ba' | 'tok' | 'sp') : interval.unit;
  const every = convertDuration(interval, unit, max, geometry);
  if (!(every > 0)) return false;
  return Math.floor(timestampValue(after, unit) / every) > Math.floor(timestampValue(before, unit) / every);
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
 * Where checkpoints go: `save_folder` as llm-foundry writes it (`{run_name}` expanded, relative to the working
 * directory), else `RUN_DIR/checkpoints`. `--autoresume` looks in the same place.
 */
export function checkpointFolder(cfg: TrainConfig, runDir: string): string {
  if (cfg.saveFolder === undefined) return join(runDir, 'checkpoints');
  return resolve(cfg.saveFolder.replaceAll('{run_name}', cfg.runName));
}

/** `[mptjs] rank R (local_rank L): ...` for a line a rank prints about itself. */
function rankLine(line: string, rank: number): string {
  const local = process.env['LOCAL_RANK'];
  const where = local !== undefined && local !== '' ? ` (local_rank ${local})` : '';
  return line.replace(/^\[mptjs\] /, `[mptjs] rank ${rank}${where}: `);
}

/** Trains as the config says, writing metrics, checkpoints and the final export under `runDir`. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { config: cfg, runDir } = opts;
  const pg = opts.processGroup;
  const rank = pg?.rank ?? 0;
  const worldSize = pg?.worldSize ?? 1;
  const distributed = pg !== undefined && worldSize > 1;
  const lead = rank === 0;
  const print = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const bar =
    lead && opts.progress && cfg.progressBar !== false ? new ProgressBar(opts.progress, 0) : undefined;
  const log = (line: string) => {
    if (!lead) return;
    if (bar) bar.print(line, print);
    else print(line);
  };
  // Every rank says which backend and adapter it got (rank 0 through the progress bar's log).
  const backend = await selectBackend(opts.backend ?? 'auto', {
    log: distributed ? (line) => (lead ? log : print)(rankLine(line, rank)) : log,
  });
  if (distributed) log(`[mptjs] ${worldSize} ranks, FSDP ${shardingStrategy(cfg)}`);
  const precision = await setupPrecision(cfg.precision, backend.name, opts.lossScaler);
  log(precision.notice);
  const scaler = precision.scaler;
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
    let ckpt: (LoadedTrainingCheckpoint & { name: string }) | undefined;
    if (autoresume) {
      // Rank 0 clears a crashed writer's leftovers before the others look.
      if (!lead) await pg?.barrier();
      ckpt = await loadLatestCheckpoint(ckptDir, rank, worldSize);
      if (lead && distributed) await pg.barrier();
    }
    // Composer's load_path: start from another run's checkpoint, unless this run has its own to resume.
    if (!ckpt && cfg.loadPath) {
      ckpt = {
        name: resolve(cfg.loadPath),
        ...(await loadTrainingCheckpoint(cfg.loadPath, rank, worldSize)),
      };
    }
    if (ckpt) {
      model.dispose();
      model = MPTModel.fromStateDict(ckpt.config, ckpt.stateDict);
      optimizer.loadState(ckpt.optimizer);
      timestamp = ckpt.state.timestamp;
      dataState = ckpt.state.data;
      elapsedBefore = ckpt.state.elapsedS;
      if (scaler && ckpt.state.lossScaler) scaler.load(ckpt.state.lossScaler);
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
  // The full parameters for checkpoints and the export (a collective under FSDP; null off rank 0).
  const fullStateDict = (): Promise<StateDict | null> => (fsdp ? fsdp.fullStateDict() : model.toStateDict());
  const meanOverRanks = async (x: number): Promise<number> =>
    distributed ? (await pg.allReduce(new Float32Array([x]), 'sum'))[0]! / worldSize : x;

  const nParams = model.numParameters;
  const flops = flopsPerSample(model.config, nParams, seqLen);
  const peakFlops = cfg.peakFlops ?? PEAK_FLOPS[backend.name] ?? (await measureMatmulFlops());
  log(
    `[mptjs] model: ${nParams.toLocaleString('en-US')} parameters, seq ${seqLen}; batch ${cfg.globalTrainBatchSize} = ` +
      `${worldSize} rank(s) x ${deviceBatch / micro} microbatch(es) x ${micro}; peak ${(peakFlops / 1e9).toFixed(1)} GFLOP/s`,
  );

  const trainStream = new BatchStream(
    await openMixer(opts.resolved['train_loader'], cfg.tokenizer.name, seqLen, dataState),
    deviceBatch,
    rank,
    worldSize,
  );
  if (bar) bar.total = Math.ceil(convertDuration(cfg.maxDuration, 'ba', cfg.maxDuration, geometry));
  const runStart = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - runStart) / 1000;

  const evaluate = async (): Promise<void> => {
    if (!cfg.evalLoader) return;
    // Every rank runs the same eval batches (FSDP's gathers are collectives); rank 0 records them.
    const r = await runEval(model, opts.resolved['eval_loader'], cfg, seqLen, host);
    const record: EvalMetrics = {
      step: timestamp.batches,
      eval_loss: r.loss,
      eval_perplexity: Math.exp(r.loss),
      tokens: timestamp.tokens,
      elapsed_s: elapsed(),
    };
    for (const [name, l] of Object.entries(r.perStream)) {
      record[`eval_loss/${name}`] = l;
      record[`eval_perplexity/${name}`] = Math.exp(l);
    }
    if (lead) metrics.write(record);
    if (cfg.logToConsole) {
      log(
        `[eval batch=${timestamp.batches}] loss=${r.loss.toFixed(4)} perplexity=${Math.exp(r.loss).toFixed(2)}`,
      );
    }
  };

  const save = async (): Promise<void> => {
    const ranks = distributed ? { rank, worldSize, barrier: () => pg.barrier() } : undefined;
    const name = await saveTrainingCheckpoint(
      ckptDir,
      {
        config: model.config,
        stateDict: await fullStateDict(),
        optimizer: await optimizer.state(),
        state: {
          version: 1,
          runName: cfg.runName,
          timestamp,
          data: trainStream.state(),
          rng: { seed: cfg.seed },
          elapsedS: elapsed(),
          worldSize,
          ...(scaler ? { lossScaler: scaler.state() } : {}),
        },
        tokenizerFile: resolveTokenizerFile(cfg.tokenizer.name),
      },
      ranks,
    );
    if (lead) await pruneCheckpoints(ckptDir, cfg.saveNumCheckpointsToKeep);
    log(`[mptjs] checkpoint ${join(ckptDir, name)}`);
  };

  if (cfg.evalFirst && timestamp.batches === 0) await evaluate();
  let steps = 0;
  let finalLoss = Number.NaN;
  let lastSaved = timestamp.batches;
  // A failed step must not leave the mixer's prefetch workers holding the process open.
  try {
    while (!reached(timestamp, cfg.maxDuration)) {
      const t0 = performance.now();
      const batch = await trainStream.next();
      const lr = cfg.optimizer.lr * scheduleMultiplier(cfg.scheduler, timestamp, cfg.maxDuration, geometry);
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
          throw explainHeapExhaustion(err, backend.name, micro, seqLen, model.config.vocabSize);
        }
        tf.dispose([ids, ctx.targets]);
      }
      loss = await meanOverRanks(loss);
      const grads = host.takeGradients();
      const names = [...grads.keys()];
      const localSq = await gradSumOfSquares([...grads.values()]);
      const gradNorm = Math.sqrt((await host.globalSumOfSquares?.(localSq)) ?? localSq) / lossScale;
      // Every rank sees the same global norm, so all skip an overflowed step together.
      const applied = scaler ? scaler.update(Number.isFinite(gradNorm)) : true;
      let final = [...grads.values()];
      if (applied) {
        final = unscaleAndClip(final, lossScale, gradNorm, cfg.gradientClipping?.clippingThreshold);
        const params = host.optimizerParameters();
        optimizer.step(
          names.map((n, i) => ({ name: n, param: params.get(n)!, grad: final[i]! })),
          lr,
        );
      } else {
        log(
          `[mptjs] batch ${timestamp.batches + 1}: gradients overflowed f16 at loss scale ${lossScale}; ` +
            `step skipped, scale now ${scaler!.scale}`,
        );
      }
      tf.dispose([...new Set([...grads.values(), ...final])]);

      const before = timestamp;
      timestamp = {
        batches: before.batches + 1,
        samples: before.samples + cfg.globalTrainBatchSize,
        tokens: before.tokens + cfg.globalTrainBatchSize * seqLen,
      };
      steps++;
      finalLoss = loss;
      const stepS = (performance.now() - t0) / 1000;
      const record: StepMetrics = {
        step: timestamp.batches,
        loss,
        lr,
        grad_norm: gradNorm,
        tokens: timestamp.tokens,
        tokens_per_s: (cfg.globalTrainBatchSize * seqLen) / stepS,
        // Per device: each rank runs deviceBatch samples a step against its own peak.
        mfu: mfu(flops, deviceBatch / stepS, peakFlops),
        elapsed_s: elapsed(),
        ...(scaler ? { loss_scale: lossScale, ...(applied ? {} : { skipped: true }) } : {}),
      };
      // Bad records the mixer left out so far (`on_bad_record: skip`), per stream, once there are any.
      const skipped = Object.entries(batch.skipped).filter(([, n]) => n > 0);
      if (skipped.length > 0) {
        record.skipped_records = skipped.reduce((a, [, n]) => a + n, 0);
        for (const [name, n] of skipped) record[`skipped_records/${name}`] = n;
      }
      if (lead) metrics.write(record);
      bar?.update({
        step: timestamp.batches,
        loss,
        tokensPerS: record.tokens_per_s,
        secondsPerStep: (performance.now() - runStart) / 1000 / steps,
      });
      if (
        !bar &&
        cfg.logToConsole &&
        crossed(cfg.consoleLogInterval, before, timestamp, cfg.maxDuration, geometry)
      ) {
        log(
          `[batch=${timestamp.batches}] loss=${loss.toFixed(4)} lr=${lr.toExponential(3)} grad_norm=${gradNorm.toFixed(4)} ` +
            `tok/s=${record.tokens_per_s.toFixed(0)} mfu=${record.mfu === null ? '-' : `${(record.mfu * 100).toFixed(2)}%`}` +
            (record.skipped_records === undefined ? '' : ` skipped_records=${record.skipped_records}`),
        );
      }
      if (cfg.evalLoader && crossed(cfg.evalInterval, before, timestamp, cfg.maxDuration, geometry))
        await evaluate();
      if (crossed(cfg.saveInterval, before, timestamp, cfg.maxDuration, geometry)) {
        await save();
        lastSaved = timestamp.batches;
      }
    }
  } catch (err) {
    endPrecision(precision);
    await trainStream.close().catch(() => {});
    throw err;
  }
  if (lastSaved !== timestamp.batches) await save();
  await trainStream.close();
  bar?.finish();
  if (lead) writeLossCurve(metrics.path, join(runDir, 'loss-curve.html'), `${cfg.runName}: loss`);

  const exportDir = join(runDir, 'export');
  const finalWeights = await fullStateDict();
  if (lead && finalWeights) {
    await exportHfDirectory(exportDir, model.config, finalWeights, {
      tokenizerFile: resolveTokenizerFile(cfg.tokenizer.name),
    });
    log(`[mptjs] exported ${exportDir}`);
  }
  if (distributed) await pg.barrier();
  optimizer.dispose();
  fsdp?.dispose();
  model.dispose();
  endPrecision(precision);
  const result: TrainResult = { backend, steps, timestamp, finalLoss, exportDir };
  if (resumedFrom) result.resumedFrom = resumedFrom;
  return result;
}

/** Mean next-token loss over the eval split, overall and per stream (each sample weighs the same). */
async function runEval(
  model: MPTModel,
  loaderSection: unknown,
  cfg: TrainConfig,
  seqLen: number,
  host: ParameterHost<LmContext>,
): Promise<{ loss: number; perStream: Record<string, number> }> {
  const stream = new BatchStream(
    await openMixer(loaderSection, cfg.tokenizer.name, seqLen),
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

/** Eval batches when `eval_subset_num_batches` is -1: the mixer streams without end, so "all" needs a bound. */
export const DEFAULT_EVAL_BATCHES = 8;
