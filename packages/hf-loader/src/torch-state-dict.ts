/**
 * The pickled half of a `pytorch_model.bin`: `data.pkl` decoded through the restricted unpickler into tensor
 * descriptions (storage, offset, shape, stride), each number checked to be a non-negative safe integer and each
 * view checked to lie inside its storage before any tensor data is touched.
 */
import { CheckpointError } from './errors.js';
import { type PyGlobal, unpickle } from './pickle.js';

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

export const ELEMENT_BYTES: Record<TorchDtype, number> = {
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

// Torch tensors have at most 64 dimensions (PyTorch's own limit).
const MAX_DIMS = 64;

export interface TorchStorage {
  key: string;
  dtype: TorchDtype;
  /** Elements in the storage. */
  numel: number;
}

/** A tensor as the pickle describes it: a strided view into a storage, already checked to fit in it. */
export interface TorchTensorRef {
  storage: TorchStorage;
  /** Offset into the storage, in elements. */
  offset: number;
  shape: number[];
  stride: number[];
}

/** `_rebuild_tensor_v2`'s arguments as the pickle gave them; checked once the tensor's name is known. */
class RawTensor {
  constructor(
    readonly storage: unknown,
    readonly offset: unknown,
    readonly shape: unknown,
    readonly stride: unknown,
  ) {}
}

/** A storage made by the persistent-id loader (so a pickle cannot forge one out of a plain dict). */
class Storage implements TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: TorchDtype,
    readonly numel: number,
  ) {}
}

/** A short, single-line rendering of a pickled value for error messages (values may be huge or cyclic). */
export function describeValue(v: unknown, depth = 0): string {
  if (typeof v === 'string') {
    const s = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
    return s;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v}`.length > 40 ? `a ${`${v}`.length}-digit integer` : `${v}`;
  if (v === null || v === undefined) return 'None';
  if (Array.isArray(v)) {
    if (depth > 1) return '(...)';
    const items = v.slice(0, 6).map((x) => describeValue(x, depth + 1));
    return `(${items.join(', ')}${v.length > 6 ? `, ... ${v.length - 6} more` : ''})`;
  }
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (v instanceof Storage) return `storage ${JSON.stringify(v.key)}`;
  if (typeof v === 'object' && 'module' in v && 'name' in v) {
    return `${String((v as PyGlobal).module)}.${String((v as PyGlobal).name)}`;
  }
  return `a ${typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v}`;
}

function fn(module: string, name: string, call: (args: unknown[]) => unknown): [string, PyGlobal] {
  return [`${module}.${name}`, { module, name, call }];
}

/** The only globals a torch state dict may reference. */
export const TORCH_GLOBALS: ReadonlyMap<string, PyGlobal> = new Map<string, PyGlobal>([
  fn('torch._utils', '_rebuild_tensor_v2', (args) => new RawTensor(args[0], args[1], args[2], args[3])),
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

function storageDtype(type: unknown, label: string): TorchDtype {
  const g = type as Partial<PyGlobal> | null;
  const dtype =
    typeof g === 'object' && g !== null && g.module === 'torch' && typeof g.name === 'string'
      ? (STORAGE_TYPES[g.name] ?? TORCH_DTYPES[g.name])
      : undefined;
  if (!dtype)
    throw new CheckpointError(`${label}: persistent id names an unknown storage type ${describeValue(type)}`);
  return dtype;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A storage key names a zip entry (`data/<key>`): torch writes decimal strings; nothing path-like is allowed. */
function storageKey(v: unknown, label: string): string {
  const key = typeof v === 'number' && isCount(v) ? String(v) : v;
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) {
    throw new CheckpointError(
      `${label}: persistent id has storage key ${describeValue(v)}, expected a short alphanumeric name`,
    );
  }
  return key;
}

/** Decodes `data.pkl` into validated tensor descriptions; `label` prefixes every error (the file name). */
export function parseTorchStateDict(
  pickle: Uint8Array,
  label: string,
): { tensors: Map<string, TorchTensorRef>; storages: Map<string, TorchStorage> } {
  const storages = new Map<string, Storage>();
  const root = unpickle(pickle, {
    globals: TORCH_GLOBALS,
    persistentLoad: (pid) => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
        throw new CheckpointError(`${label}: unexpected persistent id ${describeValue(pid)}`);
      }
      const key = storageKey(pid[2], label);
      const dtype = storageDtype(pid[1], label);
      if (!isCount(pid[4])) {
        throw new CheckpointError(
          `${label}: storage "${key}" has element count ${describeValue(pid[4])}, expected a non-negative integer`,
        );
      }
      const numel = pid[4];
      if (!Number.isSafeInteger(numel * ELEMENT_BYTES[dtype])) {
        throw new CheckpointError(`${label}: storage "${key}" has ${numel} elements, too many to address`);
      }
      const known = storages.get(key);
      if (known) {
        if (known.dtype !== dtype || known.numel !== numel) {
          throw new CheckpointError(
            `${label}: storage "${key}" is declared twice, as ${known.numel} x ${known.dtype} and ${numel} x ${dtype}`,
          );
        }
        return known;
      }
      const storage = new Storage(key, dtype, numel);
      storages.set(key, storage);
      return storage;
    },
  });
  if (!(root instanceof Map)) {
    throw new CheckpointError(
      `${label}: the pickled object is not a dict of tensors (got ${describeValue(root)})`,
    );
  }
  const tensors = new Map<string, TorchTensorRef>();
  for (const [k, v] of root) {
    if (typeof k !== 'string')
      throw new CheckpointError(`${label}: state dict key ${describeValue(k)} is not a string`);
    if (!(v instanceof RawTensor)) {
      throw new CheckpointError(
        `${label}: state dict entry "${k}" is not a tensor (got ${describeValue(v)})`,
      );
    }
    tensors.set(k, checkTensor(v, `${label}: tensor "${k}"`));
  }
  return { tensors, storages };
}

function dims(v: unknown, what: string, field: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_DIMS) {
    throw new CheckpointError(
      `${what}: ${field} must be a tuple of at most ${MAX_DIMS} integers, got ${describeValue(v)}`,
    );
  }
  v.forEach((x, i) => {
    if (!isCount(x)) {
      throw new CheckpointError(
        `${what}: ${field}[${i}] must be a non-negative integer, got ${describeValue(x)}`,
      );
    }
  });
  return v as number[];
}

/** Checks every number of a tensor view and that the view lies inside its storage. */
function checkTensor(raw: RawTensor, what: string): TorchTensorRef {
  const storage = raw.storage;
  if (!(storage instanceof Storage)) {
    throw new CheckpointError(`${what}: has no storage (got ${describeValue(storage)})`);
  }
  if (!isCount(raw.offset)) {
    throw new CheckpointError(
      `${what}: storage offset must be a non-negative integer, got ${describeValue(raw.offset)}`,
    );
  }
  const offset = raw.offset;
  const shape = dims(raw.shape, what, 'size');
  const stride = dims(raw.stride, what, 'stride');
  if (shape.length !== stride.length) {
    throw new CheckpointError(`${what}: size has ${shape.length} dimensions but stride has ${stride.length}`);
  }
  let n = 1;
  for (const d of shape) n *= d;
  if (n > 0) {
    // Elements in a state dict are never repeated, so a view cannot have more of them than its storage.
    if (n > storage.numel) {
      throw new CheckpointError(
        `${what}: size (${shape.join(', ')}) has ${n} elements, more than its storage "${storage.key}" holds (${storage.numel})`,
      );
    }
    let last = offset;
    for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * stride[i]!;
    if (!(last < storage.numel)) {
      throw new CheckpointError(
        `${what}: storage offset ${offset} with size (${shape.join(', ')}) and stride (${stride.join(', ')}) reaches element ${last} of storage "${storage.key}", which has ${storage.numel}`,
      );
    }
  } else if (offset > storage.numel) {
    throw new CheckpointError(
      `${what}: storage offset ${offset} is past the end of storage "${storage.key}" (${storage.numel} elements)`,
    );
  }
  return { storage, offset, shape: [...shape], stride: [...stride] };
}
