/**
 * Reads `pytorch_model.bin` files written by `torch.save` (the zip format, torch >= 1.6): `<archive>/data.pkl` is
 * a pickled dict of tensors whose storages live in `<archive>/data/<key>`. The pickle goes through the restricted
 * unpickler; tensors come back as descriptions (storage, offset, shape, stride) and are read lazily, contiguous
 * ones straight from the file into their Float32Array.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { HostTensor } from '@mptjs/mpt-model';
import { decodeFloats, widen16InPlace } from './dtypes.js';
import { CheckpointError } from './errors.js';
import { readExactly } from './file-io.js';
import {
  ELEMENT_BYTES,
  parseTorchStateDict,
  type TorchDtype,
  type TorchStorage,
  type TorchTensorRef,
} from './torch-state-dict.js';
import { ZipArchive } from './zip.js';

export {
  TORCH_GLOBALS,
  type TorchDtype,
  type TorchStorage,
  type TorchTensorRef,
} from './torch-state-dict.js';

// data.pkl only describes tensors (a few hundred bytes each); anything near this size is not a state dict.
export const MAX_PICKLE_BYTES = 64 * 1024 * 1024;

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && stride[i]! !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

function toFloat32(bytes: Uint8Array, dtype: TorchDtype, what: string): Float32Array {
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') return decodeFloats(bytes, dtype);
  if (dtype === 'F64')
    return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8));
  throw new CheckpointError(
    `${what}: unsupported dtype ${dtype} for a parameter (expected F32, F16, BF16 or F64)`,
  );
}

/** An open `pytorch_model.bin`: tensor descriptions now, data on demand. Close it when done. */
export class TorchCheckpoint {
  private storageCache = new Map<string, Uint8Array>();

  private constructor(
    private readonly handle: FileHandle,
    private readonly zip: ZipArchive,
    private readonly prefix: string,
    readonly path: string,
    readonly tensors: Map<string, TorchTensorRef>,
  ) {}

  static async open(path: string): Promise<TorchCheckpoint> {
    const handle = await open(path, 'r');
    try {
      await assertZipMagic(handle, path);
      const zip = await ZipArchive.open(handle, path);
      const pkl = [...zip.entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
      if (!pkl)
        throw new CheckpointError(`${path}: zip archive has no data.pkl (not a torch.save checkpoint)`);
      const prefix = pkl.slice(0, -'data.pkl'.length);
      const byteorder = zip.entries.has(`${prefix}byteorder`)
        ? await zip.read(`${prefix}byteorder`, { maxBytes: 16 })
        : undefined;
      if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
        throw new CheckpointError(`${path}: big-endian torch checkpoints are not supported`);
      }
      const { tensors, storages } = parseTorchStateDict(
        await zip.read(pkl, { maxBytes: MAX_PICKLE_BYTES }),
        `${basename(path)}: ${pkl}`,
      );
      for (const storage of storages.values()) checkStorageEntry(zip, prefix, storage, basename(path));
      return new TorchCheckpoint(handle, zip, prefix, path, tensors);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Reads one tensor as float32 (F16 / BF16 widened exactly), following its offset and strides. */
  async read(name: string): Promise<HostTensor> {
    const ref = this.tensors.get(name);
    if (!ref) throw new CheckpointError(`${basename(this.path)}: no tensor named "${name}"`);
    const what = `${basename(this.path)}: tensor "${name}"`;
    const { storage, offset, shape, stride } = ref;
    const es = ELEMENT_BYTES[storage.dtype];
    // Shapes, strides and offsets were checked against the storage, and the storage against its entry, at open.
    const n = shape.reduce((a, b) => a * b, 1);
    const entryName = `${this.prefix}data/${storage.key}`;
    const entry = this.zip.entry(entryName);
    if (isContiguous(shape, stride) && entry.method === 0) {
      if (storage.dtype === 'F32') {
        const out = new Float32Array(n);
        await this.zip.readRange(entryName, offset * es, new Uint8Array(out.buffer));
        return { shape: [...shape], data: out };
      }
      if (storage.dtype === 'F16' || storage.dtype === 'BF16') {
        const out = new Float32Array(n);
        await this.zip.readRange(entryName, offset * es, new Uint8Array(out.buffer, 0, n * 2));
        return { shape: [...shape], data: widen16InPlace(out, storage.dtype) };
      }
      const bytes = new Uint8Array(n * es);
      await this.zip.readRange(entryName, offset * es, bytes);
      return { shape: [...shape], data: toFloat32(bytes, storage.dtype, what) };
    }
    // Non-contiguous views and compressed entries: decode the whole storage once, then gather.
    const all = toFloat32(await this.storageBytes(entryName), storage.dtype, what);
    return { shape: [...shape], data: gather(all, offset, shape, stride) };
  }

  private async storageBytes(entryName: string): Promise<Uint8Array> {
    let bytes = this.storageCache.get(entryName);
    if (!bytes) {
      bytes = await this.zip.read(entryName);
      this.storageCache.set(entryName, bytes);
    }
    return bytes;
  }

  async close(): Promise<void> {
    this.storageCache.clear();
    await this.handle.close();
  }
}

/** Copies a strided view into a new contiguous array. */
function gather(src: Float32Array, offset: number, shape: number[], stride: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  let p = offset;
  for (let i = 0; i < n; i++) {
    out[i] = src[p]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      p += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      p -= idx[d]! * stride[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** A storage's zip entry must exist and hold exactly its elements. */
function checkStorageEntry(zip: ZipArchive, prefix: string, storage: TorchStorage, file: string): void {
  const name = `${prefix}data/${storage.key}`;
  const entry = zip.entries.get(name);
  if (!entry) throw new CheckpointError(`${file}: storage "${storage.key}" has no zip entry "${name}"`);
  const bytes = storage.numel * ELEMENT_BYTES[storage.dtype];
  if (entry.size !== bytes) {
    throw new CheckpointError(
      `${file}: storage "${storage.key}" should hold ${bytes} bytes (${storage.numel} x ${storage.dtype}), the archive has ${entry.size}`,
    );
  }
}

async function assertZipMagic(handle: FileHandle, path: string): Promise<void> {
  const size = (await handle.stat()).size;
  if (size < 4) throw new CheckpointError(`${path}: file truncated: ${size} bytes`);
  const magic = new Uint8Array(4);
  await readExactly(handle, magic, 0, () => path);
  if (magic[0] === 0x50 && magic[1] === 0x4b && magic[2] === 0x03 && magic[3] === 0x04) return;
  if (magic[0] === 0x80) {
    throw new CheckpointError(
      `${path}: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current torch ` +
        '(torch.save(torch.load(f), f)) or convert it to safetensors',
    );
  }
  throw new CheckpointError(
    `${path}: not a torch zip checkpoint (starts with bytes ${[...magic].join(' ')})`,
  );
}

/** Reads every tensor (or only `names`) of a `pytorch_model.bin` as float32. */
export async function readTorchStateDict(
  path: string,
  options: { names?: readonly string[] } = {},
): Promise<Map<string, HostTensor>> {
  const ckpt = await TorchCheckpoint.open(path);
  try {
    const out = new Map<string, HostTensor>();
    for (const name of options.names ?? ckpt.tensors.keys()) out.set(name, await ckpt.read(name));
    return out;
  } finally {
    await ckpt.close();
  }
}
