/**
 * Finds and opens the weight files of a checkpoint directory: `model.safetensors`, `pytorch_model.bin`, or either
 * sharded through its `*.index.json` (`weight_map`: tensor name -> shard file). Tensors are listed with their shapes
 * first, then read one at a time.
 */
import { existsSync } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { HostTensor } from '@mptjs/mpt-model';
import { isFloatDtype, widen16InPlace } from './dtypes.js';
import { CheckpointError } from './errors.js';
import { readExactly } from './file-io.js';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { TorchCheckpoint } from './torch-bin.js';

export type WeightFormat = 'safetensors' | 'pytorch_bin';

export interface TensorListing {
  /** Name as stored in the checkpoint. */
  name: string;
  file: string;
  dtype: string;
  shape: number[];
}

export interface WeightFiles {
  format: WeightFormat;
  /** Weight files in shard order (basenames). */
  files: string[];
  tensors: Map<string, TensorListing>;
  /** Reads one tensor as float32. */
  read(name: string): Promise<HostTensor>;
  close(): Promise<void>;
}

const LAYOUTS: { file: string; format: WeightFormat; sharded: boolean }[] = [
  { file: 'model.safetensors', format: 'safetensors', sharded: false },
  { file: 'model.safetensors.index.json', format: 'safetensors', sharded: true },
  { file: 'pytorch_model.bin', format: 'pytorch_bin', sharded: false },
  { file: 'pytorch_model.bin.index.json', format: 'pytorch_bin', sharded: true },
];

/** Reads a `*.index.json`: each shard file named in its `weight_map`, with the tensor names it holds. */
export async function readShardIndex(path: string): Promise<Map<string, string[]>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${basename(path)}: not valid JSON: ${(e as Error).message}`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(`${basename(path)}: has no "weight_map" object`);
  }
  const shards = new Map<string, string[]>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (
      typeof file !== 'string' ||
      file === '' ||
      file.includes('/') ||
      file.includes('\\') ||
      file.startsWith('.')
    ) {
      throw new CheckpointError(
        `${basename(path)}: weight_map["${name}"] is not a file name in this directory: ${JSON.stringify(file)}`,
      );
    }
    const names = shards.get(file) ?? [];
    names.push(name);
    shards.set(file, names);
  }
  return shards;
}

/** Opens the weights of `dir` in the first layout present (safetensors before pytorch_model.bin, as transformers). */
export async function openWeights(dir: string): Promise<WeightFiles> {
  const layout = LAYOUTS.find((l) => existsSync(join(dir, l.file)));
  if (!layout) {
    const present = existsSync(dir) ? (await readdir(dir)).join(', ') || 'nothing' : 'no such directory';
    throw new CheckpointError(
      `${dir}: no weights found (looked for ${LAYOUTS.map((l) => l.file).join(', ')}; found ${present})`,
    );
  }
  let shardFiles: string[] = [layout.file];
  let indexed: Map<string, string[]> | undefined;
  if (layout.sharded) {
    indexed = await readShardIndex(join(dir, layout.file));
    shardFiles = [...indexed.keys()].sort();
    for (const f of shardFiles) {
      if (!existsSync(join(dir, f)))
        throw new CheckpointError(`${dir}: shard "${f}" named in ${layout.file} is missing`);
    }
  }
  return layout.format === 'safetensors'
    ? openSafetensorsShards(dir, shardFiles, indexed)
    : openTorchShards(dir, shardFiles, indexed);
}

function checkIndexed(
  file: string,
  present: Iterable<string>,
  indexed: Map<string, string[]> | undefined,
): void {
  if (!indexed) return;
  const have = new Set(present);
  for (const name of indexed.get(file) ?? []) {
    if (!have.has(name))
      throw new CheckpointError(`shard "${file}" has no tensor "${name}" although the index says so`);
  }
}

async function openSafetensorsShards(
  dir: string,
  files: string[],
  indexed: Map<string, string[]> | undefined,
): Promise<WeightFiles> {
  const headers = new Map<string, SafetensorsHeader>();
  const tensors = new Map<string, TensorListing>();
  for (const file of files) {
    const header = await readSafetensorsHeader(join(dir, file));
    checkIndexed(file, header.tensors.keys(), indexed);
    headers.set(file, header);
    for (const [name, e] of header.tensors) {
      if (tensors.has(name))
        throw new CheckpointError(`tensor "${name}" appears in both ${tensors.get(name)!.file} and ${file}`);
      tensors.set(name, { name, file, dtype: e.dtype, shape: e.shape });
    }
  }
  return {
    format: 'safetensors',
    files,
    tensors,
    async read(name) {
      const listing = tensors.get(name);
      if (!listing) throw new CheckpointError(`no tensor named "${name}"`);
      const header = headers.get(listing.file)!;
      const entry = header.tensors.get(name)!;
      if (!isFloatDtype(entry.dtype)) {
        throw new CheckpointError(
          `${listing.file}: tensor "${name}" has dtype ${entry.dtype}, a parameter must be F32, F16 or BF16`,
        );
      }
      const handle = await open(header.path, 'r');
      try {
        const n = entry.shape.reduce((a, b) => a * b, 1);
        const data = new Float32Array(n);
        const position = header.dataStart + entry.begin;
        const where = () => `${listing.file}: tensor "${name}"`;
        if (entry.dtype === 'F32') {
          await readExactly(handle, new Uint8Array(data.buffer), position, where);
        } else {
          await readExactly(handle, new Uint8Array(data.buffer, 0, n * 2), position, where);
          widen16InPlace(data, entry.dtype);
        }
        return { shape: [...entry.shape], data };
      } finally {
        await handle.close();
      }
    },
    async close() {},
  };
}

async function openTorchShards(
  dir: string,
  files: string[],
  indexed: Map<string, string[]> | undefined,
): Promise<WeightFiles> {
  const opened = new Map<string, TorchCheckpoint>();
  const tensors = new Map<string, TensorListing>();
  const closeAll = async () => {
    for (const c of opened.values()) await c.close();
  };
  try {
    for (const file of files) {
      const ckpt = await TorchCheckpoint.open(join(dir, file));
      opened.set(file, ckpt);
      checkIndexed(file, ckpt.tensors.keys(), indexed);
      for (const [name, ref] of ckpt.tensors) {
        if (tensors.has(name))
          throw new CheckpointError(
            `tensor "${name}" appears in both ${tensors.get(name)!.file} and ${file}`,
          );
        tensors.set(name, { name, file, dtype: ref.storage.dtype, shape: ref.shape });
      }
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  return {
    format: 'pytorch_bin',
    files,
    tensors,
    async read(name) {
      const listing = tensors.get(name);
      if (!listing) throw new CheckpointError(`no tensor named "${name}"`);
      return opened.get(listing.file)!.read(name);
    },
    close: closeAll,
  };
}
