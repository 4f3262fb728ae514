// Sharded checkpoints: each rank writes its own flat shards (plus any extra flat arrays, e.g. optimizer slots
// for those shards) as raw little-endian float32 with a JSON description, and reads them back at the same world
// size. Resuming at another world size goes through the full state dict instead (`fullStateDict` /
// `loadFullStateDict`), which any world size can load.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FsdpParameters } from './fsdp.js';

export const SHARD_FORMAT = 'mptjs-fsdp-shard/1';

export interface ShardFileMeta {
  format: typeof SHARD_FORMAT;
  rank: number;
  worldSize: number;
  strategy: string;
  /** Arrays in file order: the parameter shards (`param/<group>`) then the extras (`extra/<name>`). */
  arrays: { key: string; offset: number; length: number }[];
  /** Each group's parameters, so a reader can tell a checkpoint of another model apart. */
  groups: { name: string; shardNumel: number; params: [string, number[]][] }[];
}

export function shardFileNames(dir: string, rank: number, worldSize: number): { data: string; meta: string } {
  const base = join(dir, `shard-${rank}-of-${worldSize}`);
  return { data: `${base}.bin`, meta: `${base}.json` };
}

function describeGroups(fsdp: FsdpParameters): ShardFileMeta['groups'] {
  return [...fsdp.layouts.values()].map((l) => ({
    name: l.name,
    shardNumel: l.shardNumel,
    params: l.entries.map((e) => [e.name, e.shape] as [string, number[]]),
  }));
}

/** Collective: every rank writes its shard files into `dir`; resolves once all ranks have written. */
export async function saveShardedCheckpoint(
  fsdp: FsdpParameters,
  dir: string,
  extras: ReadonlyMap<string, Float32Array> = new Map(),
): Promise<void> {
  const { rank, worldSize } = fsdp.pg;
  const arrays: [string, Float32Array][] = [
    ...[...(await fsdp.localShards())].map(([k, v]) => [`param/${k}`, v] as [string, Float32Array]),
    ...[...extras].map(([k, v]) => [`extra/${k}`, v] as [string, Float32Array]),
  ];
  let offset = 0;
  const meta: ShardFileMeta = {
    format: SHARD_FORMAT,
    rank,
    worldSize,
    strategy: fsdp.strategy,
    arrays: arrays.map(([key, a]) => {
      const entry = { key, offset, length: a.length };
      offset += a.length;
      return entry;
    }),
    groups: describeGroups(fsdp),
  };
  const data = new Float32Array(offset);
  for (const [i, [, a]] of arrays.entries()) data.set(a, meta.arrays[i]!.offset);
  let problem: string | null = null;
  try {
    await mkdir(dir, { recursive: true });
    const files = shardFileNames(dir, rank, worldSize);
    // Write then rename, so a crash mid-write never leaves a file that looks complete.
    await writeFile(`${files.data}.tmp`, new Uint8Array(data.buffer));
    await writeFile(`${files.meta}.tmp`, JSON.stringify(meta, null, 1));
    await rename(`${files.data}.tmp`, files.data);
    await rename(`${files.meta}.tmp`, files.meta);
  } catch (err) {
    problem = `rank ${rank} could not write its shard: ${(err as Error).message}`;
  }
  await agree(fsdp, problem);
}

/**
 * Collective: every rank loads its shard files from `dir` (written at the same world size, strategy and layout)
 * and returns its extras. Fails on every rank if any rank's files are missing or do not match.
 */
export async function loadShardedCheckpoint(
  fsdp: FsdpParameters,
  dir: string,
): Promise<Map<string, Float32Array>> {
  let problem: string | null = null;
  const extras = new Map<string, Float32Array>();
  try {
    const { rank, worldSize } = fsdp.pg;
    const files = shardFileNames(dir, rank, worldSize);
    let metaText: string;
    try {
      metaText = await readFile(files.meta, 'utf8');
    } catch {
      throw new Error(
        `no shard for rank ${rank} of ${worldSize} in ${dir} (${files.meta}); a sharded checkpoint resumes only at the world size that wrote it, load the full checkpoint to change it`,
      );
    }
    const meta = JSON.parse(metaText) as ShardFileMeta;
    if (meta.format !== SHARD_FORMAT) throw new Error(`${files.meta} is not a ${SHARD_FORMAT} file`);
    if (meta.strategy !== fsdp.strategy) {
      throw new Error(`${files.meta} was written under ${meta.strategy}, this run uses ${fsdp.strategy}`);
    }
    if (JSON.stringify(meta.groups) !== JSON.stringify(describeGroups(fsdp))) {
      throw new Error(`${files.meta} describes different parameter groups or shapes than this model`);
    }
    const bytes = await readFile(files.data);
    const total = meta.arrays.reduce((n, a) => n + a.length, 0);
    if (bytes.byteLength !== total * 4) {
      throw new Error(`${files.data} has ${bytes.byteLength} bytes, expected ${total * 4} (truncated?)`);
    }
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const shards = new Map<string, Float32Array>();
    for (const a of meta.arrays) {
      const values = data.slice(a.offset, a.offset + a.length);
      if (a.key.startsWith('param/')) shards.set(a.key.slice(6), values);
      else extras.set(a.key.slice(6), values);
    }
    fsdp.setLocalShards(shards);
  } catch (err) {
    problem = (err as Error).message;
  }
  await agree(fsdp, problem);
  return extras;
}

/** Makes a per-rank failure everybody's failure, so no rank goes on alone. */
async function agree(fsdp: FsdpParameters, problem: string | null): Promise<void> {
  const failed = await fsdp.pg.allReduce(new Float32Array([problem ? 1 : 0]), 'max');
  if (problem) throw new Error(`FSDP checkpoint: ${problem}`);
  if (failed[0]! > 0)
    throw new Error('FSDP checkpoint: another rank failed to read or write its shard (see its error)');
}
