// Test-only access to checkpoint fixtures (config + weights + expected.safetensors) through hf-loader's sources.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MPTConfig } from '../config.js';
import type { StateDict } from '../unit-chain/host-tensor.js';

interface HfLoader {
  loadCheckpoint(dir: string): Promise<{ config: MPTConfig; stateDict: StateDict }>;
  readSafetensors(
    path: string,
  ): Promise<Map<string, { shape: number[]; data: Float32Array | Int32Array | BigInt64Array }>>;
  toMptName(name: string): string | null;
}

const HF_LOADER_SRC = fileURLToPath(new URL('../../../hf-loader/src/index.ts', import.meta.url));
export const REPO_FIXTURES_DIR = fileURLToPath(new URL('../../../../fixtures/', import.meta.url));

/** hf-loader's source module, or undefined (with a notice; an error under CI) when it is not in the checkout. */
export async function hfLoader(): Promise<HfLoader | undefined> {
  if (!existsSync(HF_LOADER_SRC)) {
    const message = `hf-loader sources missing at ${HF_LOADER_SRC}`;
    if (process.env['CI'] === 'true') throw new Error(message);
    console.warn(`[skip] ${message}`);
    return undefined;
  }
  const mod = (await import(/* @vite-ignore */ HF_LOADER_SRC)) as Partial<HfLoader>;
  if (!mod.loadCheckpoint || !mod.readSafetensors || !mod.toMptName) {
    throw new Error('hf-loader does not export loadCheckpoint, readSafetensors and toMptName');
  }
  return mod as HfLoader;
}

export interface Fixture {
  dir: string;
  config: MPTConfig;
  stateDict: StateDict;
  inputIds: number[][];
  logits: { shape: number[]; data: Float32Array };
}

export async function loadFixture(loader: HfLoader, dir: string): Promise<Fixture> {
  const { config, stateDict } = await loader.loadCheckpoint(dir);
  const expected = await loader.readSafetensors(join(dir, 'expected.safetensors'));
  const ids = expected.get('input_ids');
  const logits = expected.get('logits');
  if (!ids || !logits) throw new Error(`${dir}/expected.safetensors needs input_ids and logits`);
  const [b, t] = ids.shape as [number, number];
  const flat = Array.from(ids.data as ArrayLike<number | bigint>, Number);
  const inputIds = Array.from({ length: b }, (_, i) => flat.slice(i * t, (i + 1) * t));
  return {
    dir,
    config,
    stateDict,
    inputIds,
    logits: { shape: logits.shape, data: logits.data as Float32Array },
  };
}

/** Checkpoint fixture directories under the repo's `fixtures/` (each with config.json and expected.safetensors). */
export function repoFixtureDirs(): string[] {
  if (!existsSync(REPO_FIXTURES_DIR)) return [];
  return readdirSync(REPO_FIXTURES_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(REPO_FIXTURES_DIR, e.name))
    .filter((d) => existsSync(join(d, 'config.json')) && existsSync(join(d, 'expected.safetensors')))
    .sort();
}

/** `||a - b|| / ||b||` in float64. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num / den);
}
