// MosaicML streaming's MDS format (version 2), as written by `streaming.MDSWriter`:
//   index.json  {"version": 2, "shards": [{column_encodings, column_names, column_sizes, compression, format: "mds",
//                hashes, raw_data: {basename, bytes, hashes}, samples, size_limit, version: 2, zip_data}]}
//   shard file  uint32 num_samples | uint32 offsets[num_samples + 1] (absolute) | shard config JSON | samples
//   sample      uint32 size per variable-size column (column_sizes[i] == null) | column bytes, in column order
//   ndarray:<dtype>          uint8 (ndim << 2 | shape dtype code) | shape (uint8/16/32/64 each) | values
//   ndarray:<dtype>:<shape>  values only;  ndarray (no dtype)  uint8 dtype code first, then as above
// All integers little-endian. Compressed shards (`zip_data`) are whole-file zstd frames.
import { createHash, getHashes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { zstdDecompress } from './zstd.js';

export interface MdsFileInfo {
  basename: string;
  bytes: number;
  hashes: Record<string, string>;
}

export interface MdsShardInfo {
  column_encodings: string[];
  column_names: string[];
  column_sizes: Array<number | null>;
  compression: string | null;
  format: 'mds';
  hashes: string[];
  raw_data: MdsFileInfo;
  samples: number;
  size_limit: number | null;
  version: 2;
  zip_data: MdsFileInfo | null;
}

export interface MdsIndex {
  version: 2;
  shards: MdsShardInfo[];
}

/** A decoded record: text (from a `str` column) or token ids (from `ndarray`/legacy `bytes` columns). */
export type MdsRecord = string | Int32Array;

const VALUE_DTYPES: Record<number, string> = {
  8: 'uint8',
  9: 'int8',
  16: 'uint16',
  17: 'int16',
  32: 'uint32',
  33: 'int32',
  64: 'uint64',
  65: 'int64',
};

const DTYPE_BYTES: Record<string, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  uint64: 8,
  int64: 8,
};

/** Reads and validates `<dir>/index.json`. */
export async function readMdsIndex(dir: string): Promise<MdsIndex> {
  const path = join(dir, 'index.json');
  let obj: unknown;
  try {
    obj = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  const index = obj as Partial<MdsIndex>;
  if (index.version !== 2)
    throw new Error(`${path}: unsupported MDS index version ${JSON.stringify(index.version)}`);
  if (!Array.isArray(index.shards)) throw new Error(`${path}: "shards" must be a list`);
  index.shards.forEach((shard, i) => {
    const where = `${path}: shards[${i}]`;
    if (shard.format !== 'mds')
      throw new Error(`${where}: format ${JSON.stringify(shard.format)} is not "mds"`);
    if (!Number.isInteger(shard.samples) || shard.samples < 0) throw new Error(`${where}: bad samples count`);
    if (!Array.isArray(shard.column_names) || !Array.isArray(shard.column_encodings)) {
      throw new Error(`${where}: column_names / column_encodings missing`);
    }
    if (
      shard.column_names.length !== shard.column_encodings.length ||
      shard.column_names.length !== shard.column_sizes?.length
    ) {
      throw new Error(`${where}: column_names, column_encodings and column_sizes differ in length`);
    }
    if (!shard.raw_data?.basename) throw new Error(`${where}: raw_data.basename missing`);
    if (shard.compression && !shard.compression.startsWith('zstd')) {
      throw new Error(`${where}: compression ${shard.compression} is not supported (only zstd)`);
    }
    if (shard.compression && !shard.zip_data?.basename)
      throw new Error(`${where}: compressed shard without zip_data`);
  });
  return index as MdsIndex;
}

/** Which column holds the documents: `tokens` if present, else `text`, else the only column. */
export function documentColumn(shard: MdsShardInfo, where: string): number {
  for (const name of ['tokens', 'text']) {
    const i = shard.column_names.indexOf(name);
    if (i >= 0) return i;
  }
  if (shard.column_names.length === 1) return 0;
  throw new Error(`${where}: no "tokens" or "text" column (columns: ${shard.column_names.join(', ')})`);
}

// streaming's hash names (Python hashlib / xxhash) -> node:crypto's. Names node:crypto lacks (xxh32, xxh64,
// xxh128, xxh3_64, xxh3_128, ...) are not verified.
const HASH_ALIASES: Record<string, string> = {
  sha3_224: 'sha3-224',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
  blake2b: 'blake2b512',
  blake2s: 'blake2s256',
};

let NODE_HASHES: Set<string> | undefined;

/** The node:crypto algorithm for one of streaming's hash names, or undefined when node:crypto has none. */
export function nodeHashAlgorithm(name: string): string | undefined {
  const algorithm = HASH_ALIASES[name] ?? name;
  NODE_HASHES ??= new Set(getHashes());
  return NODE_HASHES.has(algorithm) ? algorithm : undefined;
}

/**
 * Checks a shard file against the digests index.json records for it (`hashes` lists the algorithms, the file's
 * `raw_data` / `zip_data` entry the hex digests). Algorithms node:crypto lacks are skipped.
 */
export function verifyShardHashes(
  data: Uint8Array,
  shard: MdsShardInfo,
  file: MdsFileInfo,
  path: string,
): void {
  for (const name of shard.hashes ?? []) {
    const algorithm = nodeHashAlgorithm(name);
    if (!algorithm) continue;
    const expected = file.hashes?.[name];
    if (typeof expected !== 'string') {
      throw new Error(`${path}: index.json lists hash ${name} but gives no ${name} digest for this file`);
    }
    const actual = createHash(algorithm).update(data).digest('hex');
    if (actual !== expected.toLowerCase()) {
      throw new Error(
        `${path}: ${name} digest ${actual} does not match index.json's ${expected} (corrupted shard)`,
      );
    }
  }
}

/**
 * Reads one shard file (decompressing if needed), verifies the digests index.json gives for it, and checks its
 * header against the index.
 */
export async function readMdsShard(dir: string, shard: MdsShardInfo): Promise<Uint8Array> {
  const info = shard.zip_data && shard.compression ? shard.zip_data : shard.raw_data;
  const path = join(dir, info.basename);
  let data: Uint8Array = await readFile(path);
  verifyShardHashes(data, shard, info, path);
  if (shard.zip_data && shard.compression) data = zstdDecompress(data, path);
  checkShardHeader(data, shard, path);
  return data;
}

function checkShardHeader(data: Uint8Array, shard: MdsShardInfo, path: string): void {
  if (data.byteLength < 4)
    throw new Error(`${path}: shard is ${data.byteLength} bytes, too short for a header`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = view.getUint32(0, true);
  if (n !== shard.samples)
    throw new Error(`${path}: shard holds ${n} samples, index.json says ${shard.samples}`);
  const headerEnd = 4 + 4 * (n + 1);
  if (data.byteLength < headerEnd) throw new Error(`${path}: shard truncated inside its offset table`);
  let prev = headerEnd;
  for (let i = 0; i <= n; i++) {
    const offset = view.getUint32(4 + 4 * i, true);
    if (offset < prev || offset > data.byteLength) {
      throw new Error(
        `${path}: bad offset[${i}] = ${offset} (must be >= ${prev} and <= shard size ${data.byteLength})`,
      );
    }
    prev = offset;
  }
  if (prev !== data.byteLength) {
    throw new Error(`${path}: last offset ${prev} does not match shard size ${data.byteLength}`);
  }
}

/** Decodes the document column of sample `i` of a checked shard. */
export function decodeMdsRecord(
  data: Uint8Array,
  shard: MdsShardInfo,
  column: number,
  i: number,
  path: string,
): MdsRecord {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const begin = view.getUint32(4 + 4 * i, true);
  const end = view.getUint32(8 + 4 * i, true);
  let pos = begin;
  const sizes: number[] = [];
  for (const size of shard.column_sizes) {
    if (size === null) {
      if (pos + 4 > end) throw new Error(`${path}: sample ${i} truncated in its size header`);
      sizes.push(view.getUint32(pos, true));
      pos += 4;
    } else sizes.push(size);
  }
  for (let c = 0; c < column; c++) pos += sizes[c]!;
  const size = sizes[column]!;
  if (pos + size > end)
    throw new Error(`${path}: sample ${i} column ${shard.column_names[column]} overruns the sample`);
  return decodeColumn(
    data.subarray(pos, pos + size),
    shard.column_encodings[column]!,
    `${path}: sample ${i}`,
  );
}

function decodeColumn(bytes: Uint8Array, encoding: string, where: string): MdsRecord {
  if (encoding === 'str') return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  // llm-foundry's older concat_tokens: `np.asarray(ids).tobytes()`, i.e. int64.
  if (encoding === 'bytes') return toInt32(bytes, 'int64', where);
  if (encoding === 'ndarray' || encoding.startsWith('ndarray:')) return decodeNdarray(bytes, encoding, where);
  throw new Error(`${where}: column encoding ${encoding} cannot hold documents (use str, ndarray or bytes)`);
}

function decodeNdarray(bytes: Uint8Array, encoding: string, where: string): Int32Array {
  const [, fixedDtype, fixedShape] = encoding.split(':');
  let pos = 0;
  let dtype = fixedDtype;
  if (!dtype) {
    dtype = VALUE_DTYPES[bytes[pos++]!];
    if (!dtype) throw new Error(`${where}: unsupported ndarray dtype code ${bytes[0]}`);
  }
  if (!(dtype in DTYPE_BYTES)) throw new Error(`${where}: ndarray dtype ${dtype} cannot hold token ids`);
  let count: number;
  if (fixedShape) {
    count = fixedShape.split(',').reduce((a, d) => a * Number(d), 1);
  } else {
    const byte = bytes[pos++];
    if (byte === undefined) throw new Error(`${where}: empty ndarray`);
    const ndim = byte >> 2;
    const shapeBytes = 2 ** (byte & 3);
    count = 1;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let d = 0; d < ndim; d++, pos += shapeBytes) {
      if (pos + shapeBytes > bytes.byteLength) throw new Error(`${where}: ndarray shape truncated`);
      count *=
        shapeBytes === 1
          ? view.getUint8(pos)
          : shapeBytes === 2
            ? view.getUint16(pos, true)
            : shapeBytes === 4
              ? view.getUint32(pos, true)
              : Number(view.getBigUint64(pos, true));
    }
  }
  const values = bytes.subarray(pos);
  if (values.byteLength !== count * DTYPE_BYTES[dtype]!) {
    throw new Error(
      `${where}: ndarray has ${values.byteLength} value bytes, shape needs ${count * DTYPE_BYTES[dtype]!}`,
    );
  }
  return toInt32(values, dtype, where);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function toInt32(bytes: Uint8Array, dtype: string, where: string): Int32Array {
  const width = DTYPE_BYTES[dtype]!;
  if (bytes.byteLength % width !== 0)
    throw new Error(`${where}: ${bytes.byteLength} bytes is not a whole number of ${dtype}`);
  const n = bytes.byteLength / width;
  if (dtype === 'int32' && LITTLE_ENDIAN_HOST) {
    // The common case (llm-foundry's `tokens`): one copy into an aligned buffer, then a range check.
    const out = new Int32Array(n);
    new Uint8Array(out.buffer).set(bytes);
    for (let i = 0; i < n; i++) if (out[i]! < 0) throw new Error(`${where}: token id ${out[i]} out of range`);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * width;
    let v: number;
    switch (dtype) {
      case 'int32':
        v = view.getInt32(o, true);
        break;
      case 'uint32':
        v = view.getUint32(o, true);
        break;
      case 'int64':
      case 'uint64':
        v = Number(view.getBigInt64(o, true));
        break;
      case 'uint16':
        v = view.getUint16(o, true);
        break;
      case 'int16':
        v = view.getInt16(o, true);
        break;
      case 'uint8':
        v = view.getUint8(o);
        break;
      default:
        v = view.getInt8(o);
    }
    if (v < 0 || v > 0x7fffffff) throw new Error(`${where}: token id ${v} out of range`);
    out[i] = v;
  }
  return out;
}
