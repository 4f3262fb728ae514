// Writes MDS datasets that MosaicML streaming reads: the same shard layout, naming (`shard.00000.mds.zstd`),
// shard-size rule and index.json as `streaming.MDSWriter` (see mds.ts for the layout).
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type MdsFileInfo, type MdsIndex, type MdsShardInfo, nodeHashAlgorithm } from './mds.js';
import { zstdCompress } from './zstd.js';

export type MdsColumnValue = Int32Array | string;

export interface MdsWriterOptions {
  /** Column name -> encoding: `ndarray:int32`, `ndarray:int32:<len>` or `str`. */
  columns: Record<string, string>;
  /** `zstd` or `zstd:<level>` (default `zstd`), or null for raw shards. */
  compression?: string | null;
  /** Start a new shard past this many bytes (default 1 << 26, streaming's default). */
  sizeLimit?: number;
  /**
   * Digests recorded for each shard file (streaming's `hashes`, e.g. `['sha1']`; default none): any algorithm
   * node:crypto has, under streaming's name (`sha1`, `sha256`, `md5`, `sha3_256`, `blake2b`, ...).
   */
  hashes?: string[];
}

/** JSON exactly as Python's `json.dumps(obj, sort_keys=True)` prints it (ASCII keys and values assumed). */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}: ${pythonJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(', ')}}`;
  }
  return JSON.stringify(value);
}

function fixedSize(encoding: string): number | null {
  const parts = encoding.split(':');
  if (parts[0] === 'ndarray' && parts[1] === 'int32' && parts[2]) {
    return parts[2].split(',').reduce((a, d) => a * Number(d), 1) * 4;
  }
  if (encoding === 'ndarray:int32' || encoding === 'str') return null;
  throw new Error(`MDS writer: unsupported column encoding ${encoding} (use ndarray:int32[:<shape>] or str)`);
}

function encodeValue(value: MdsColumnValue, encoding: string, column: string): Uint8Array {
  if (encoding === 'str') {
    if (typeof value !== 'string') throw new Error(`MDS writer: column ${column} expects a string`);
    return new TextEncoder().encode(value);
  }
  if (!(value instanceof Int32Array)) throw new Error(`MDS writer: column ${column} expects an Int32Array`);
  if (value.length === 0) throw new Error(`MDS writer: column ${column}: empty arrays cannot be stored`);
  const values = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  const shape = encoding.split(':')[2];
  if (shape) {
    if (values.byteLength !== fixedSize(encoding))
      throw new Error(`MDS writer: column ${column}: wrong length`);
    return values.slice();
  }
  // Dynamic shape, 1-D: (ndim << 2 | shape dtype code) then the shape in the smallest unsigned type that fits.
  const n = value.length;
  const code = n < 1 << 8 ? 0 : n < 1 << 16 ? 1 : 2;
  const shapeBytes = 2 ** code;
  const out = new Uint8Array(1 + shapeBytes + values.byteLength);
  const view = new DataView(out.buffer);
  out[0] = (1 << 2) | code;
  if (code === 0) view.setUint8(1, n);
  else if (code === 1) view.setUint16(1, n, true);
  else view.setUint32(1, n, true);
  out.set(values, 1 + shapeBytes);
  return out;
}

export class MdsWriter {
  private readonly names: string[];
  private readonly encodings: string[];
  private readonly sizes: Array<number | null>;
  private readonly compression: string | null;
  private readonly sizeLimit: number | null;
  private readonly hashes: string[];
  private readonly configData: Uint8Array;
  private samples: Uint8Array[] = [];
  private shardBytes: number;
  private readonly shards: MdsShardInfo[] = [];
  private ready: Promise<void>;

  constructor(
    readonly dir: string,
    options: MdsWriterOptions,
  ) {
    this.names = Object.keys(options.columns).sort();
    this.encodings = this.names.map((n) => options.columns[n]!);
    this.sizes = this.encodings.map(fixedSize);
    this.compression = options.compression === undefined ? 'zstd' : options.compression;
    if (this.compression && !/^zstd(:\d+)?$/.test(this.compression)) {
      throw new Error(`MDS writer: compression ${this.compression} is not supported (zstd or zstd:<level>)`);
    }
    this.sizeLimit = options.sizeLimit ?? 1 << 26;
    this.hashes = [...(options.hashes ?? [])];
    for (const name of this.hashes) {
      if (!nodeHashAlgorithm(name))
        throw new Error(`MDS writer: hash ${name} is not available (node:crypto)`);
    }
    this.configData = new TextEncoder().encode(pythonJson(this.config()));
    this.shardBytes = 8 + this.configData.byteLength;
    this.ready = mkdir(dir, { recursive: true }).then(() => {});
  }

  private config() {
    return {
      version: 2,
      format: 'mds',
      compression: this.compression,
      hashes: this.hashes,
      size_limit: this.sizeLimit,
      column_names: this.names,
      column_encodings: this.encodings,
      column_sizes: this.sizes,
    };
  }

  /** Adds one sample; writes a shard first when this sample would push the current one past the size limit. */
  async write(sample: Record<string, MdsColumnValue>): Promise<void> {
    const parts = this.names.map((name, i) => {
      const value = sample[name];
      if (value === undefined) throw new Error(`MDS writer: sample has no column ${name}`);
      return encodeValue(value, this.encodings[i]!, name);
    });
    const variable = parts.filter((_, i) => this.sizes[i] === null);
    const head = new Uint8Array(4 * variable.length);
    const headView = new DataView(head.buffer);
    variable.forEach((p, i) => {
      headView.setUint32(4 * i, p.byteLength, true);
    });
    const encoded = concat([head, ...parts]);
    const cost = encoded.byteLength + 4;
    if (this.sizeLimit && this.samples.length > 0 && this.sizeLimit < this.shardBytes + cost)
      await this.flush();
    this.samples.push(encoded);
    this.shardBytes += cost;
  }

  private async flush(): Promise<void> {
    await this.ready;
    const n = this.samples.length;
    const header = new Uint8Array(4 + 4 * (n + 1));
    const view = new DataView(header.buffer);
    view.setUint32(0, n, true);
    let offset = header.byteLength + this.configData.byteLength;
    for (let i = 0; i <= n; i++) {
      view.setUint32(4 + 4 * i, offset, true);
      offset += this.samples[i]?.byteLength ?? 0;
    }
    const raw = concat([header, this.configData, ...this.samples]);
    const basename = `shard.${String(this.shards.length).padStart(5, '0')}.mds`;
    const rawInfo: MdsFileInfo = { basename, bytes: raw.byteLength, hashes: this.digests(raw) };
    let zipInfo: MdsFileInfo | null = null;
    if (this.compression) {
      const level = Number(this.compression.split(':')[1] ?? 3);
      const zipped = await zstdCompress(raw, level);
      zipInfo = { basename: `${basename}.zstd`, bytes: zipped.byteLength, hashes: this.digests(zipped) };
      await writeFile(join(this.dir, zipInfo.basename), zipped);
    } else {
      await writeFile(join(this.dir, basename), raw);
    }
    this.shards.push({ samples: n, raw_data: rawInfo, zip_data: zipInfo, ...this.config() } as MdsShardInfo);
    this.samples = [];
    this.shardBytes = 8 + this.configData.byteLength;
  }

  private digests(data: Uint8Array): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.hashes)
      out[name] = createHash(nodeHashAlgorithm(name)!).update(data).digest('hex');
    return out;
  }

  /** Writes the last shard and index.json; returns the index. */
  async finish(): Promise<MdsIndex> {
    if (this.samples.length > 0) await this.flush();
    await this.ready;
    const index: MdsIndex = { version: 2, shards: this.shards };
    await writeFile(join(this.dir, 'index.json'), pythonJson(index));
    return index;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}
