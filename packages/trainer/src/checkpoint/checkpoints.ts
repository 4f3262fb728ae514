import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  loadCheckpoint,
  readSafetensors,
  readSafetensorsHeader,
  saveCheckpoint,
  writeSafetensors,
} from '@mptjs/hf-loader';
import type { MPTConfig, StateDict } from '@mptjs/mpt-model';
import type { Timestamp } from '../config/duration.js';
import type { HostArray, OptimizerState } from '../optim/optimizer.js';
import { removeStaleTemps, writeDirAtomic, writeFileAtomic } from './atomic.js';

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
}

export interface TrainingCheckpoint {
  config: MPTConfig;
  stateDict: StateDict;
  optimizer: OptimizerState;
  state: TrainingState;
}

const LATEST = 'latest';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'state.json';
const SLOT_SEPARATOR = '::';

export function checkpointName(batches: number): string {
  return `ba${String(batches).padStart(8, '0')}`;
}

/**
 * Writes `dir/<name>/` (model config.json + model.safetensors, optimizer.safetensors, state.json) atomically,
 * then points `dir/latest` at it. A crash at any moment leaves the previous `latest` checkpoint intact.
 */
export async function saveTrainingCheckpoint(dir: string, ckpt: TrainingCheckpoint): Promise<string> {
  const name = checkpointName(ckpt.state.timestamp.batches);
  await writeDirAtomic(join(dir, name), async (tmp) => {
    await saveCheckpoint(tmp, ckpt.config, ckpt.stateDict);
    const slots = new Map<string, HostArray>();
    for (const [param, s] of Object.entries(ckpt.optimizer.slots)) {
      for (const [slot, a] of Object.entries(s)) slots.set(`${param}${SLOT_SEPARATOR}${slot}`, a);
    }
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), slots, {
      metadata: { optimizer: ckpt.optimizer.name, step: String(ckpt.optimizer.step) },
    });
    await writeFile(join(tmp, STATE_FILE), `${JSON.stringify(ckpt.state, null, 2)}\n`);
  });
  await writeFileAtomic(join(dir, LATEST), `${name}\n`);
  return name;
}

/** The checkpoint `latest` points to, or undefined when there is none. Leftovers of a crashed write are removed. */
export async function loadLatestCheckpoint(
  dir: string,
): Promise<(TrainingCheckpoint & { name: string }) | undefined> {
  await removeStaleTemps(dir);
  const latest = join(dir, LATEST);
  if (!existsSync(latest)) return undefined;
  const name = (await readFile(latest, 'utf8')).trim();
  return { name, ...(await loadTrainingCheckpoint(join(dir, name))) };
}

export async function loadTrainingCheckpoint(path: string): Promise<TrainingCheckpoint> {
  const { config, stateDict } = await loadCheckpoint(path);
  const state = JSON.parse(await readFile(join(path, STATE_FILE), 'utf8')) as TrainingState;
  if (state.version !== 1) throw new Error(`${path}: unsupported training state version ${state.version}`);
  const optPath = join(path, OPTIMIZER_FILE);
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
