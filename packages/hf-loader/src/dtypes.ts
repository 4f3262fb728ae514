/**
 * Element types that checkpoints store, and the exact conversions between them and float32.
 * Half and bfloat16 widen exactly; narrowing rounds to nearest, ties to even (as torch's `.to()` does).
 */
import { CheckpointError } from './errors.js';

export type FloatDtype = 'F32' | 'F16' | 'BF16';
export type IntDtype = 'I64' | 'I32';
export type Dtype = FloatDtype | IntDtype;

export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

export function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

/**
 * Every element type the safetensors format defines, with its size. Files may hold ones we do not decode (a BOOL
 * mask buffer, say): their headers still validate, and only reading such a tensor is an error.
 */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  ...DTYPE_BYTES,
  F64: 8,
  U64: 8,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function isFloatDtype(value: unknown): value is FloatDtype {
  return value === 'F32' || value === 'F16' || value === 'BF16';
}

export function assertFloatDtype(value: unknown, what: string): FloatDtype {
  if (!isFloatDtype(value)) {
    throw new CheckpointError(
      `${what}: unsupported dtype ${JSON.stringify(value)} (expected F32, F16 or BF16)`,
    );
  }
  return value;
}

// All 65536 half-precision values as float32: one table lookup per element beats bit twiddling in JS.
let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}

/** Widens little-endian float16 bits into `out` (exact). */
export function f16ToF32(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  const table = halfToFloatTable();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i] as number] as number;
  return out;
}

/** Widens bfloat16 bits into `out` (exact: bfloat16 is the top half of a float32). */
export function bf16ToF32(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  const u32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i]! << 16;
  return out;
}

/**
 * Widens `out.length` F16 / BF16 values held in the first half of `out`'s bytes into the float32s of `out`, in
 * place: a checkpoint tensor is read straight into its final buffer, with no temporary copy. Back to front, so each
 * 16-bit value is read before the 32-bit writes reach it.
 */
export function widen16InPlace(out: Float32Array, dtype: 'F16' | 'BF16'): Float32Array {
  const n = out.length;
  const u16 = new Uint16Array(out.buffer, out.byteOffset, n);
  const u32 = new Uint32Array(out.buffer, out.byteOffset, n);
  if (dtype === 'BF16') {
    for (let i = n - 1; i >= 0; i--) u32[i] = (u16[i] as number) << 16;
  } else {
    const table = halfToFloatTable();
    const bitsTable = new Uint32Array(table.buffer);
    for (let i = n - 1; i >= 0; i--) u32[i] = bitsTable[u16[i] as number] as number;
  }
  return out;
}

/** Narrows float32 to bfloat16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u32.length; i++) {
    const x = u32[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      out[i] = (x >>> 16) | 0x40; // quiet NaN
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** One float32 to float16 bits, round to nearest even, overflow to infinity. */
function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct
  return sign | h;
}

/** Narrows float32 to float16 bits, round to nearest even. */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]!);
  return out;
}

/** Bytes of `values` stored as `dtype` (little-endian). */
export function encodeFloats(values: Float32Array, dtype: FloatDtype): Uint8Array {
  const narrowed = dtype === 'F32' ? values : dtype === 'F16' ? f32ToF16(values) : f32ToBf16(values);
  return new Uint8Array(narrowed.buffer, narrowed.byteOffset, narrowed.byteLength);
}

/** float32 values of little-endian bytes stored as `dtype`; `bytes` must be 2- or 4-byte aligned. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype, out?: Float32Array): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  if (dtype === 'F32') {
    const view = new Float32Array(bytes.buffer, bytes.byteOffset, n);
    if (!out) return view;
    out.set(view);
    return out;
  }
  const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return dtype === 'F16' ? f16ToF32(bits, out) : bf16ToF32(bits, out);
}
