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
import { type PyGlobal, unpickle } from './pickle.js';
import { ZipArchive } from './zip.js';

/** Element types torch storages can have; only the float ones become parameters. */
export type TorchDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const STORAGE_TYPES: Record<string, TorchDtype> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const TORCH_DTYPES: Record<string, TorchDtype> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

const ELEMENT_BYTES: Record<TorchDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface TorchStorage {
  key: string;
  dtype: TorchDtype;
  /** Elements in the storage. */
  numel: number;
}

/** A tensor as the pickle describes it: a strided view into a storage. */
export interface TorchTensorRef {
  storage: TorchStorage;
  /** Offset into the storage, in elements. */
  offset: number;
  shape: number[];
  stride: number[];
}

function isTensorRef(v: unknown): v is TorchTensorRef {
  return typeof v === 'object' && v !== null && 'storage' in v && 'stride' in v;
}

function ints(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x))) {
    throw new CheckpointError(`${what} is not a tuple of integers: ${JSON.stringify(v)}`);
  }
  return v as number[];
}

function fn(module: string, name: string, call: (args: unknown[]) => unknown): [string, PyGlobal] {
  return [`${module}.${name}`, { module, name, call }];
}

function rebuildTensor(args: unknown[]): TorchTensorRef {
  const [storage, offset, size, stride] = args;
  if (!(typeof storage === 'object' && storage !== null && 'key' in storage)) {
    throw new CheckpointError('_rebuild_tensor_v2 got no storage');
  }
  return {
    storage: storage as TorchStorage,
    offset: Number(offset),
    shape: ints(size, 'tensor size'),
    stride: ints(stride, 'tensor stride'),
  };
}

/** The only globals a torch state dict may reference. */
export const TORCH_GLOBALS: ReadonlyMap<string, PyGlobal> = new Map<string, PyGlobal>([
  fn('torch._utils', '_rebuild_tensor_v2', rebuildTensor),
  fn('torch._utils', '_rebuild_parameter', (args) => args[0]),
  fn('torch._utils', '_rebuild_parameter_with_state', (args) => args[0]),
  fn('collections', 'OrderedDict', () => new Map()),
  // Storage types and dtypes are only ever named (in persistent ids), never called.
  ...[...Object.keys(STORAGE_TYPES), ...Object.keys(TORCH_DTYPES)].map((name) =>
    fn('torch', name, () => {
      throw new CheckpointError(`torch.${name} cannot be called in a checkpoint`);
    }),
  ),
]);

function storageDtype(type: unknown): TorchDtype {
  const g = type as Partial<PyGlobal> | null;
  const dtype = g?.module === 'torch' && g.name ? (STORAGE_TYPES[g.name] ?? TORCH_DTYPES[g.name]) : undefined;
  if (!dtype)
    throw new CheckpointError(`persistent id names an unknown storage type ${g?.module}.${g?.name}`);
  return dtype;
}

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
        ? await zip.read(`${prefix}byteorder`)
        : undefined;
      if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
        throw new CheckpointError(`${path}: big-endian torch checkpoints are not supported`);
      }
      const storages = new Map<string, TorchStorage>();
      const root = unpickle(await zip.read(pkl), {
        globals: TORCH_GLOBALS,
        persistentLoad: (pid) => {
          if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
            throw new CheckpointError(`${path}: unexpected persistent id ${JSON.stringify(pid)}`);
          }
          const key = String(pid[2]);
          const known = storages.get(key);
          if (known) return known;
          const storage = { key, dtype: storageDtype(pid[1]), numel: Number(pid[4]) };
          storages.set(key, storage);
          return storage;
        },
      });
      const tensors = collectTensors(root, path);
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
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length !== stride.length) throw new CheckpointError(`${what}: shape and stride lengths differ`);
    let last = offset;
    for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * stride[i]!;
    if (n > 0 && (offset < 0 || last >= storage.numel || stride.some((s) => s < 0))) {
      throw new CheckpointError(
        `${what}: view reaches element ${last} of a storage with ${storage.numel} elements`,
      );
    }
    const entryName = `${this.prefix}data/${storage.key}`;
    const entry = this.zip.entry(entryName);
    if (entry.size !== storage.numel * es) {
      throw new CheckpointError(
        `${what}: storage ${storage.key} should hold ${storage.numel * es} bytes (${storage.numel} x ${storage.dtype}), the archive has ${entry.size}`,
      );
    }
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

function collectTensors(root: unknown, path: string): Map<string, TorchTensorRef> {
  if (!(root instanceof Map))
    throw new CheckpointError(`${path}: the pickled object is not a dict of tensors`);
  const out = new Map<string, TorchTensorRef>();
  for (const [k, v] of root) {
    if (typeof k !== 'string')
      throw new CheckpointError(`${path}: state dict key ${String(k)} is not a string`);
    if (!isTensorRef(v)) throw new CheckpointError(`${path}: state dict entry "${k}" is not a tensor`);
    out.set(k, v);
  }
  return out;
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
