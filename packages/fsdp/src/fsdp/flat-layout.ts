// How a group of parameters becomes one flat, padded Float32Array, and which slice of it each rank owns.

/** A parameter's place in its group's flat buffer. */
export interface FlatEntry {
  name: string;
  shape: number[];
  offset: number;
  numel: number;
}

/** One flat parameter: its entries, total size, padded size (a multiple of the world size) and shard size. */
export interface FlatLayout {
  name: string;
  entries: FlatEntry[];
  numel: number;
  paddedNumel: number;
  shardNumel: number;
}

export function flatLayout(
  name: string,
  paramNames: readonly string[],
  shapes: ReadonlyMap<string, readonly number[]>,
  worldSize: number,
): FlatLayout {
  const entries: FlatEntry[] = [];
  let offset = 0;
  for (const p of paramNames) {
    const shape = shapes.get(p);
    if (!shape) throw new Error(`FSDP: no shape given for parameter "${p}" (group "${name}")`);
    const numel = shape.reduce((a, b) => a * b, 1);
    entries.push({ name: p, shape: [...shape], offset, numel });
    offset += numel;
  }
  const shardNumel = Math.ceil(offset / worldSize);
  return { name, entries, numel: offset, paddedNumel: shardNumel * worldSize, shardNumel };
}

/** Element range [start, end) of the padded flat buffer that `rank` owns. */
export function shardRange(layout: FlatLayout, rank: number): [number, number] {
  return [rank * layout.shardNumel, (rank + 1) * layout.shardNumel];
}

/** Copies `rank`'s shard out of a full (unpadded or padded) flat buffer; the padding reads as zeros. */
export function sliceShard(layout: FlatLayout, full: Float32Array, rank: number): Float32Array {
  const [start, end] = shardRange(layout, rank);
  const shard = new Float32Array(layout.shardNumel);
  shard.set(full.subarray(Math.min(start, full.length), Math.min(end, full.length)));
  return shard;
}

/**
 * Groups parameters the way FSDP wraps modules: each parameter belongs to the first unit (in chain order) that
 * reads it, so tied weights (MPT's `wte`, read by the embedding and the head) live in one group.
 */
export function defaultGroups(
  units: readonly { name: string; paramNames: readonly string[] }[],
): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const u of units) {
    const own = u.paramNames.filter((p) => !seen.has(p));
    for (const p of own) seen.add(p);
    if (own.length > 0) groups.set(u.name, own);
  }
  return groups;
}
