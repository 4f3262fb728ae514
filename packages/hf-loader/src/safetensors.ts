/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`), then the tensor bytes.
 * Reads validate the header fully, then read each tensor by offset into its own buffer (never the whole file).
 */
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  DTYPE_BYTES,
  type Dtype,
  encodeFloats,
  type FloatDtype,
  isDtype,
  isFloatDtype,
  SAFETENSORS_DTYPE_BYTES,
  widen16InPlace,
} from './dtypes.js';
import { CheckpointError } from './errors.js';
import { readExactly, writeAll } from './file-io.js';

export type TensorData = Float32Array | Int32Array | BigInt64Array;

/** A tensor as read: floats widened to Float32Array, I32 as Int32Array, I64 as BigInt64Array. */
export interface SafeTensor {
  /** The dtype stored in the file. */
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

/** A tensor to write; `dtype` defaults to the float dtype option for Float32Array, I32 / I64 for integers. */
export interface TensorToWrite {
  shape: readonly number[];
  data: TensorData;
  dtype?: Dtype;
}

export interface SafetensorsEntry {
  /** Any safetensors dtype; only F32, F16, BF16, I64 and I32 can be read. */
  dtype: string;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  /** Entries in file order. */
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string> | null;
  /** File offset where the data section begins (8 + header length). */
  dataStart: number;
  fileSize: number;
}

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
const MAX_HEADER_BYTES = 100_000_000;

function fail(path: string, message: string): never {
  throw new CheckpointError(`${basename(path)}: ${message}`);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Checks a parsed header object and returns its entries in file order. */
export function validateHeader(
  path: string,
  header: unknown,
  dataBytes: number,
): Pick<SafetensorsHeader, 'tensors' | 'metadata'> {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(path, 'header is not a JSON object');
  }
  let metadata: Record<string, string> | null = null;
  const entries: [string, SafetensorsEntry][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        fail(path, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') fail(path, `__metadata__.${k} is not a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null)
      fail(path, `tensor "${name}" has no {dtype, shape, data_offsets}`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
      fail(path, `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(path, `tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[1] < offsets[0]
    ) {
      fail(path, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = numel(shape) * SAFETENSORS_DTYPE_BYTES[dtype]!;
    if (end - begin !== expected) {
      fail(
        path,
        `tensor "${name}" (${dtype} [${shape.join(', ')}]) needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push([name, { dtype, shape: shape as number[], begin, end }]);
  }
  entries.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  for (const [name, e] of entries) {
    if (e.begin < cursor)
      fail(path, `tensor "${name}" at [${e.begin}, ${e.end}] overlaps the previous tensor`);
    if (e.begin > cursor)
      fail(path, `gap in the data section before tensor "${name}" (bytes ${cursor}..${e.begin})`);
    cursor = e.end;
  }
  if (cursor > dataBytes) {
    fail(path, `file truncated: tensors need ${cursor} data bytes, the file holds ${dataBytes}`);
  }
  if (cursor < dataBytes) fail(path, `${dataBytes - cursor} trailing bytes after the last tensor`);
  return { tensors: new Map(entries), metadata };
}

/** Reads and validates the header of a safetensors file (no tensor data is read). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const handle = await open(path, 'r');
  try {
    return await readHeaderFrom(handle, path);
  } finally {
    await handle.close();
  }
}

async function readHeaderFrom(
  handle: import('node:fs/promises').FileHandle,
  path: string,
): Promise<SafetensorsHeader> {
  const fileSize = (await handle.stat()).size;
  if (fileSize < 8)
    fail(path, `file truncated: ${fileSize} bytes, a safetensors file starts with an 8-byte header length`);
  const lenBytes = new Uint8Array(8);
  await readExactly(handle, lenBytes, 0, () => basename(path));
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (headerLen === 0n || headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(path, `header length ${headerLen} is not in 1..${MAX_HEADER_BYTES} (not a safetensors file?)`);
  }
  const n = Number(headerLen);
  if (8 + n > fileSize)
    fail(path, `file truncated: header needs ${n} bytes, the file has ${fileSize - 8} after the length`);
  const headerBytes = new Uint8Array(n);
  await readExactly(handle, headerBytes, 8, () => basename(path));
  if (headerBytes[0] !== 0x7b) fail(path, 'header does not start with "{" (not a safetensors file?)');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(path, `header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  const dataStart = 8 + n;
  return { path, ...validateHeader(path, json, fileSize - dataStart), dataStart, fileSize };
}

async function readEntry(
  handle: import('node:fs/promises').FileHandle,
  header: SafetensorsHeader,
  name: string,
  entry: SafetensorsEntry,
): Promise<SafeTensor> {
  if (!isDtype(entry.dtype)) {
    fail(
      header.path,
      `tensor "${name}" has dtype ${entry.dtype}, which is not read (supported: F32, F16, BF16, I64, I32)`,
    );
  }
  const n = numel(entry.shape);
  const where = () => `${basename(header.path)}: tensor "${name}"`;
  const position = header.dataStart + entry.begin;
  let data: TensorData;
  if (entry.dtype === 'F32') {
    data = new Float32Array(n);
    await readExactly(handle, new Uint8Array(data.buffer), position, where);
  } else if (entry.dtype === 'F16' || entry.dtype === 'BF16') {
    data = new Float32Array(n);
    await readExactly(handle, new Uint8Array(data.buffer, 0, n * 2), position, where);
    widen16InPlace(data, entry.dtype);
  } else if (entry.dtype === 'I32') {
    data = new Int32Array(n);
    await readExactly(handle, new Uint8Array(data.buffer), position, where);
  } else {
    data = new BigInt64Array(n);
    await readExactly(handle, new Uint8Array(data.buffer), position, where);
  }
  return { dtype: entry.dtype, shape: [...entry.shape], data };
}

/**
 * Reads tensors from a safetensors file: all of them, or only `names` (a missing name is an error).
 * Each tensor is read by offset straight into its own typed array.
 */
export async function readSafetensors(
  path: string,
  options: { names?: readonly string[] } = {},
): Promise<Map<string, SafeTensor>> {
  const handle = await open(path, 'r');
  try {
    const header = await readHeaderFrom(handle, path);
    const names = options.names ?? [...header.tensors.keys()];
    const out = new Map<string, SafeTensor>();
    for (const name of names) {
      const entry = header.tensors.get(name);
      if (!entry)
        fail(path, `no tensor named "${name}" (has: ${[...header.tensors.keys()].slice(0, 20).join(', ')})`);
      out.set(name, await readEntry(handle, header, name, entry));
    }
    return out;
  } finally {
    await handle.close();
  }
}

export interface WriteSafetensorsOptions {
  /** Storage dtype for Float32Array tensors without their own `dtype` (default F32). */
  floatDtype?: FloatDtype;
  /** String key/values stored as `__metadata__` (HF writes `{format: "pt"}`). */
  metadata?: Record<string, string>;
}

function resolveDtype(name: string, t: TensorToWrite, floatDtype: FloatDtype): Dtype {
  const dtype =
    t.dtype ?? (t.data instanceof Float32Array ? floatDtype : t.data instanceof Int32Array ? 'I32' : 'I64');
  const ok =
    t.data instanceof Float32Array
      ? isFloatDtype(dtype)
      : t.data instanceof Int32Array
        ? dtype === 'I32' || dtype === 'I64'
        : dtype === 'I64';
  if (!ok) throw new CheckpointError(`tensor "${name}": cannot store ${t.data.constructor.name} as ${dtype}`);
  return dtype;
}

function encodeTensor(t: TensorToWrite, dtype: Dtype): Uint8Array {
  if (t.data instanceof Float32Array) return encodeFloats(t.data, dtype as FloatDtype);
  if (dtype === 'I64' && t.data instanceof Int32Array) {
    const wide = BigInt64Array.from(t.data, (v) => BigInt(v));
    return new Uint8Array(wide.buffer);
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Serializes the header for tensors in the given order; returns the header bytes and each tensor's dtype. */
function buildHeader(
  tensors: [string, TensorToWrite][],
  options: WriteSafetensorsOptions,
): { headerBytes: Uint8Array; dtypes: Dtype[] } {
  const header: Record<string, unknown> = {};
  if (options.metadata) header['__metadata__'] = options.metadata;
  let offset = 0;
  const dtypes: Dtype[] = [];
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new CheckpointError('a tensor cannot be named "__metadata__"');
    const dtype = resolveDtype(name, t, options.floatDtype ?? 'F32');
    const n = numel(t.shape);
    if (n !== t.data.length) {
      throw new CheckpointError(
        `tensor "${name}": shape [${t.shape.join(', ')}] holds ${n} values, data has ${t.data.length}`,
      );
    }
    const bytes = n * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
    dtypes.push(dtype);
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  return { headerBytes: new TextEncoder().encode(json), dtypes };
}

/** Byte size a tensor takes when written with these options. */
export function storedByteLength(name: string, t: TensorToWrite, floatDtype: FloatDtype = 'F32'): number {
  return numel(t.shape) * DTYPE_BYTES[resolveDtype(name, t, floatDtype)];
}

/**
 * Writes tensors (in iteration order) to a safetensors file, atomically: the bytes go to a temporary file in the
 * same directory, which is renamed over `path` once complete.
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const { headerBytes, dtypes } = buildHeader(list, options);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
    await writeAll(handle, len);
    await writeAll(handle, headerBytes);
    for (let i = 0; i < list.length; i++) {
      const [, t] = list[i]!;
      await writeAll(handle, encodeTensor(t, dtypes[i]!));
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, path);
  } catch (e) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}
