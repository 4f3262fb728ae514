import { existsSync } from 'node:fs';
import { copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  loadCheckpoint,
  readSafetensors,
  readSafetensorsHeader,
  saveCheckpoint,
  writeSafetensors,
} from '@mptjs/hf-loader';
import type { HostTensor, MPTConfig, StateDict } from '@mptjs/mpt-model';
import type { Timestamp } from '../config/duration.js';
import type { OptimizerState } from '../optim/optimizer.js';
import type { LossScalerState } from '../precision/loss-scaler.js';
import { removeStaleTemps, tempDirFor, writeDirAtomic, writeFileAtomic } from './atomic.js';

/** Everything besides tensors that a resumed run needs to continue exactly. */
export interface TrainingState {
  version: 1;
  runName: string;
  /** Batches, samples and tokens trained so far (the scheduler's clock). */
  timestamp: Timestamp;
  /** The data mixer's state after the last trained batch. */
  data: unknown;
  /** The run's seed; no step draws random numbers beyond the seeded data order (dropout is 0). */
  rng: { seed: number };
  /** Seconds of training before this checkpoint (elapsed time keeps counting after a resume). */
  elapsedS: number;
  /** Ranks that wrote it: each saved the optimizer state of its own parameter shards. */
  worldSize: number;
  /** The dynamic loss scale of an `amp_fp16` / `amp_bf16` run on f16 GEMMs. */
  lossScaler?: LossScalerState;
}

export type LoadedTrainingCheckpoint = TrainingCheckpoint & { stateDict: StateDict };

/** How ranks of a multi-process run write one checkpoint together. */
export interface CheckpointRanks {
  rank: number;
  worldSize: number;
  barrier(): Promise<void>;
}

export interface TrainingCheckpoint {
  config: MPTConfig;
  /** The full (consolidated) parameters; null on ranks other than 0, which write only their optimizer shard. */
  stateDict: StateDict | null;
  optimizer: OptimizerState;
  state: TrainingState;
  /** The run's tokenizer.json, copied into the checkpoint so `mptjs-train export` can ship it with the weights. */
  tokenizerFile?: string;
}

const LATEST = 'latest';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'state.json';
const SLOT_SEPARATOR = '::';

export function checkpointName(batches: number): string {
  return `ba${String(batches).padStart(8, '0')}`;
}

function optimizerFile(rank: number, worldSize: number): string {
  return worldSize === 1 ? OPTIMIZER_FILE : `optimizer.rank${rank}-of-${worldSize}.safetensors`;
}

async function writeOptimizer(path: string, state: OptimizerState): Promise<void> {
  const slots = new Map<string, HostTensor>();
  for (const [param, s] of Object.entries(state.slots)) {
    for (const [slot, a] of Object.entries(s)) slots.set(`${param}${SLOT_SEPARATOR}${slot}`, a);
  }
  await writeSafetensors(path, slots, { metadata: { optimizer: state.name, step: String(state.step) } });
}

/**
 * Writes `dir/<name>/` (model config.json + model.safetensors, optimizer state, state.json) atomically, then
 * points `dir/latest` at it. A crash at any moment leaves the previous `latest` checkpoint intact. With several
 * ranks, every rank calls this: rank 0 creates the temporary directory, each rank adds its optimizer shard, and
 * rank 0 adds the model and state and renames it into place.
 */
export async function saveTrainingCheckpoint(
  dir: string,
  ckpt: TrainingCheckpoint,
  ranks?: CheckpointRanks,
): Promise<string> {
  const name = checkpointName(ckpt.state.timestamp.batches);
  const rank = ranks?.rank ?? 0;
  const worldSize = ranks?.worldSize ?? 1;
  const optFile = optimizerFile(rank, worldSize);
  if (rank === 0) {
    if (!ckpt.stateDict) throw new Error('rank 0 must hold the full state dict to write a checkpoint');
    const stateDict = ckpt.stateDict;
    await writeDirAtomic(join(dir, name), async (tmp) => {
      await ranks?.barrier(); // the directory exists: other ranks write their shards now
      await writeOptimizer(join(tmp, optFile), ckpt.optimizer);
      await saveCheckpoint(tmp, ckpt.config, stateDict);
      await writeFile(join(tmp, STATE_FILE), `${JSON.stringify(ckpt.state, null, 2)}\n`);
      if (ckpt.tokenizerFile) await copyFile(ckpt.tokenizerFile, join(tmp, 'tokenizer.json'));
      await ranks?.barrier(); // every shard is written
    });
    await writeFileAtomic(join(dir, LATEST), `${name}\n`);
  } else {
    await ranks!.barrier();
    await writeOptimizer(join(tempDirFor(join(dir, name)), optFile), ckpt.optimizer);
    await ranks!.barrier();
  }
  await ranks?.barrier(); // renamed and pointed to before anyone goes on
  return name;
}

/** The checkpoint `latest` points to, or undefined when there is none. Leftovers of a crashed write are removed. */
export async function loadLatestCheckpoint(
  dir: string,
  rank = 0,
  worldSize = 1,
): Promise<(LoadedTrainingCheckpoint & { name: string }) | undefined> {
  if (rank === 0) await removeStaleTemps(dir);
  const latest = join(dir, LATEST);
  if (!existsSync(latest)) return undefined;
  const name = (await readFile(latest, 'utf8')).trim();
  return { name, ...(await loadTrainingCheckpoint(join(dir, name), rank, worldSize)) };
}

/** Loads a checkpoint directory; `rank` picks this rank's optimizer shard (the world size must match). */
export async function loadTrainingCheckpoint(
  path: string,
  rank = 0,
  worldSize = 1,
): Promise<LoadedTrainingCheckpoint> {
  const { config, stateDict } = await loadCheckpoint(path);
  const state = JSON.parse(await readFile(join(path, STATE_FILE), 'utf8')) as TrainingState;
  if (state.version !== 1) throw new Error(`${path}: unsupported training state version ${state.version}`);
  const savedWorld = state.worldSize ?? 1;
  if (savedWorld !== worldSize) {
    throw new Error(
      `${path} was written by ${savedWorld} rank(s); resume it with the same world size (this run has ${worldSize})`,
    );
  }
  const optPath = join(path, optimizerFile(rank, worldSize));
  const meta = (await readSafetensorsHeader(optPath)).metadata ?? {};
  const slots: OptimizerState['slots'] = {};
  for (const [key, t] of await readSafetensors(optPath)) {
    const cut = key.lastIndexOf(SLOT_SEPARATOR);
    const param = key.slice(0, cut);
    slots[param] ??= {};
    slots[param][key.slice(cut + SLOT_SEPARATOR.length)] = { shape: t.shape, data: t.data as Float32Array };
  }
  const optimizer: OptimizerState = { name: meta['optimizer'] ?? '', step: Number(meta['step'] ?? 0), slots };
  return { config, stateDict, optimizer, state };
}

/** Deletes all but the newest `keep` checkpoints (`keep` < 0 keeps all); the one `latest` names always stays. */
export async function pruneCheckpoints(dir: string, keep: number): Promise<string[]> {
  if (keep < 0) return [];
  const latest = existsSync(join(dir, LATEST))
    ? (await readFile(join(dir, LATEST), 'utf8')).trim()
    : undefined;
  const names = (await readdir(dir)).filter((n) => /^ba\d+$/.test(n)).sort();
  const doomed = names.slice(0, Math.max(0, names.length - keep)).filter((n) => n !== latest);
  for (const n of doomed) await rm(join(dir, n), { recursive: true, force: true });
  return doomed;
}
