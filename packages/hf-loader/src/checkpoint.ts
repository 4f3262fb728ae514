/**
 * Whole checkpoints: `loadCheckpoint(dir)` reads config.json (either dialect) and the weights (any layout), renames
 * them to llm-foundry MPT names and checks them against the config before reading any data;
 * `saveCheckpoint` writes the `mpt` dialect config.json and safetensors weights, sharded when asked.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  expectedParameterShapes,
  type HostTensor,
  type MPTConfig,
  parseMptConfig,
  type StateDict,
  toMptConfigJson,
} from '@mptjs/mpt-model';
import type { FloatDtype } from './dtypes.js';
import { assertFloatDtype } from './dtypes.js';
import { CheckpointError } from './errors.js';
import { toMptName } from './names.js';
import { storedByteLength, writeSafetensors } from './safetensors.js';
import { openWeights, readShardIndex, type WeightFormat } from './weights.js';

export interface CheckpointSource {
  format: WeightFormat;
  /** The stored dtype of the parameters, or 'mixed'. */
  dtype: string;
  /** Weight files read, in shard order. */
  files: string[];
}

export interface LoadedCheckpoint {
  config: MPTConfig;
  stateDict: StateDict;
  /** config.json as found (either dialect). */
  configJson: Record<string, unknown>;
  source: CheckpointSource;
}

/** Reads and parses `config.json` of a checkpoint directory (either dialect). */
export async function readConfig(
  dir: string,
): Promise<{ config: MPTConfig; configJson: Record<string, unknown> }> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new CheckpointError(`${dir}: no config.json`);
  let configJson: Record<string, unknown>;
  try {
    configJson = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  return { config: parseMptConfig(configJson), configJson };
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Every way `shapes` (name -> shape) differs from what `config` needs, as sentences; empty when they match. */
export function stateDictProblems(
  config: MPTConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
): string[] {
  const expected = expectedParameterShapes(config);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const got = shapes.get(name);
    if (!got) problems.push(`missing tensor "${name}" ${shapeText(shape)}`);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      problems.push(`tensor "${name}" has shape ${shapeText(got)}, the config needs ${shapeText(shape)}`);
    }
  }
  for (const [name, shape] of shapes) {
    if (!expected.has(name)) problems.push(`unexpected tensor "${name}" ${shapeText(shape)}`);
  }
  return problems;
}

/**
 * Compares the sizes a config asks for with what the checkpoint lists, key by key, before anything is built from
 * the config: a wrong `n_layers` or `vocab_size` is reported by name in milliseconds, not after allocating for it.
 */
export function checkConfigSizes(
  config: MPTConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
  what: string,
): void {
  const blocks = new Set<number>();
  for (const name of shapes.keys()) {
    const m = /^transformer\.blocks\.(\d+)\./.exec(name);
    if (m) blocks.add(Number(m[1]));
  }
  const fail = (key: string, value: number, found: string): never => {
    throw new CheckpointError(`${what}: config key "${key}" is ${value} but ${found}`);
  };
  if (blocks.size !== config.nLayers) {
    fail('n_layers', config.nLayers, `the weights hold ${blocks.size} blocks`);
  }
  const wte = shapes.get('transformer.wte.weight');
  if (wte?.length === 2) {
    if (wte[0] !== config.vocabSize)
      fail('vocab_size', config.vocabSize, `transformer.wte.weight has ${wte[0]} rows`);
    if (wte[1] !== config.dModel)
      fail('d_model', config.dModel, `transformer.wte.weight has ${wte[1]} columns`);
  }
  const wpe = shapes.get('transformer.wpe.weight');
  if (config.learnedPosEmb && wpe?.length === 2 && wpe[0] !== config.maxSeqLen) {
    fail('max_seq_len', config.maxSeqLen, `transformer.wpe.weight has ${wpe[0]} rows`);
  }
  const up = shapes.get('transformer.blocks.0.ffn.up_proj.weight');
  const hidden = Math.round(config.expansionRatio * config.dModel);
  if (up?.length === 2 && up[1] === config.dModel && up[0] !== hidden) {
    fail(
      config.modelType === 'mosaic_gpt' ? 'mlp_ratio' : 'expansion_ratio',
      config.expansionRatio,
      `transformer.blocks.0 has an MLP of width ${up[0]}, not ${hidden}`,
    );
  }
}

function throwProblems(what: string, problems: string[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 12).join('; ');
  const more = problems.length > 12 ? `; and ${problems.length - 12} more` : '';
  throw new CheckpointError(`${what} does not match its config: ${shown}${more}`);
}

/** Throws a CheckpointError naming every missing, unexpected or misshapen tensor. */
export function validateStateDict(config: MPTConfig, stateDict: StateDict): void {
  const shapes = new Map([...stateDict].map(([k, v]) => [k, v.shape]));
  throwProblems('state dict', stateDictProblems(config, shapes));
  for (const [name, t] of stateDict) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) {
      throw new CheckpointError(
        `tensor "${name}" has shape ${shapeText(t.shape)} (${n} values) but ${t.data.length} values`,
      );
    }
  }
}

/** Loads a checkpoint directory into an MPT-named float32 state dict, validated against its config. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const { config, configJson } = await readConfig(dir);
  const weights = await openWeights(dir);
  try {
    const sourceOf = new Map<string, string>();
    for (const name of weights.tensors.keys()) {
      const mpt = toMptName(name);
      if (mpt === null) continue;
      const clash = sourceOf.get(mpt);
      if (clash) throw new CheckpointError(`${dir}: tensors "${clash}" and "${name}" are both "${mpt}"`);
      sourceOf.set(mpt, name);
    }
    const shapes = new Map([...sourceOf].map(([mpt, src]) => [mpt, weights.tensors.get(src)!.shape]));
    checkConfigSizes(config, shapes, `checkpoint ${dir}`);
    throwProblems(`checkpoint ${dir}`, stateDictProblems(config, shapes));

    const stateDict: StateDict = new Map();
    const dtypes = new Set<string>();
    // Read in the order the config lists parameters, so every StateDict iterates the same way.
    for (const mpt of expectedParameterShapes(config).keys()) {
      const src = sourceOf.get(mpt)!;
      dtypes.add(weights.tensors.get(src)!.dtype);
      stateDict.set(mpt, await weights.read(src));
    }
    const dtype = dtypes.size === 1 ? [...dtypes][0]! : 'mixed';
    return { config, stateDict, configJson, source: { format: weights.format, dtype, files: weights.files } };
  } finally {
    await weights.close();
  }
}

export interface SaveOptions {
  /** Storage dtype of the weights (default F32). */
  dtype?: FloatDtype;
  format?: 'safetensors';
  /** Split the weights into shards of at most this many bytes (a larger tensor gets a shard of its own). */
  shardSizeBytes?: number;
}

export interface SavedCheckpoint {
  /** Files written, relative to the directory. */
  files: string[];
  totalBytes: number;
}

/** Groups tensors into shards of at most `limit` bytes, keeping their order. */
function planShards(
  tensors: [string, HostTensor][],
  dtype: FloatDtype,
  limit: number,
): [string, HostTensor][][] {
  const shards: [string, HostTensor][][] = [];
  let current: [string, HostTensor][] = [];
  let bytes = 0;
  for (const entry of tensors) {
    const size = storedByteLength(entry[0], entry[1], dtype);
    if (current.length > 0 && bytes + size > limit) {
      shards.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/**
 * Writes `config.json` (llm-foundry `mpt` dialect) and `model.safetensors`, or numbered shards plus
 * `model.safetensors.index.json` when `shardSizeBytes` splits them. Each file is written to a temporary name and
 * renamed into place; weight files of a previous save that the new one does not use are removed.
 */
export async function saveCheckpoint(
  dir: string,
  config: MPTConfig,
  stateDict: StateDict,
  options: SaveOptions = {},
): Promise<SavedCheckpoint> {
  const dtype = assertFloatDtype(options.dtype ?? 'F32', 'saveCheckpoint');
  if ((options.format ?? 'safetensors') !== 'safetensors') {
    throw new CheckpointError(
      `saveCheckpoint: unsupported format ${JSON.stringify(options.format)} (only "safetensors")`,
    );
  }
  if (options.shardSizeBytes !== undefined && !(options.shardSizeBytes > 0)) {
    throw new CheckpointError(
      `saveCheckpoint: shardSizeBytes must be positive, got ${options.shardSizeBytes}`,
    );
  }
  validateStateDict(config, stateDict);
  await mkdir(dir, { recursive: true });
  const previousShards = existsSync(join(dir, 'model.safetensors.index.json'))
    ? [...(await readShardIndex(join(dir, 'model.safetensors.index.json')).catch(() => new Map())).keys()]
    : [];

  const ordered = [...expectedParameterShapes(config).keys()].map(
    (k) => [k, stateDict.get(k)!] as [string, HostTensor],
  );
  const shards = planShards(ordered, dtype, options.shardSizeBytes ?? Number.POSITIVE_INFINITY);
  const metadata = { format: 'pt' };
  const files: string[] = [];
  let totalBytes = 0;
  for (const [, t] of ordered) totalBytes += storedByteLength('', t, dtype);
  if (shards.length <= 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), new Map(ordered), { floatDtype: dtype, metadata });
    files.push('model.safetensors');
  } else {
    const weightMap: Record<string, string> = {};
    const pad = (i: number) => String(i).padStart(5, '0');
    for (let i = 0; i < shards.length; i++) {
      const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
      await writeSafetensors(join(dir, file), new Map(shards[i]!), { floatDtype: dtype, metadata });
      for (const [name] of shards[i]!) weightMap[name] = file;
      files.push(file);
    }
    const index = { metadata: { total_size: totalBytes }, weight_map: weightMap };
    await writeFileAtomic(join(dir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
    files.push('model.safetensors.index.json');
  }
  const configJson = { ...toMptConfigJson(config), torch_dtype: TORCH_DTYPE_NAMES[dtype] };
  await writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(configJson, null, 2)}\n`);
  files.push('config.json');

  // A stale layout would shadow or confuse the new one.
  const stale = [...previousShards, 'model.safetensors', 'model.safetensors.index.json'].filter(
    (f) => !files.includes(f),
  );
  for (const f of stale) await rm(join(dir, f), { force: true });
  return { files, totalBytes };
}

const TORCH_DTYPE_NAMES: Record<FloatDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
