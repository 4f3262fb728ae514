// Writes torch-style state-dict pickles (protocol 2) for tests, with any value in any field, so the loader's
// checks can be driven with the exact malformed numbers a hostile or broken checkpoint would carry.

/** A value to pickle: numbers (ints as BININT/LONG1, others as BINFLOAT), strings, bigints, tuples, null. */
export type PickleValue = number | bigint | string | boolean | null | PickleValue[];

export interface TensorSpec {
  /** Storage persistent id fields: [type name under torch, key, element count]. */
  storage: [string, PickleValue, PickleValue];
  offset: PickleValue;
  size: PickleValue;
  stride: PickleValue;
}

function long1(v: bigint): number[] {
  const bytes: number[] = [];
  let x = v;
  // Two's complement little-endian, shortest form that keeps the sign.
  for (;;) {
    bytes.push(Number(x & 0xffn));
    x >>= 8n;
    const sign = bytes[bytes.length - 1]! & 0x80;
    if ((x === 0n && !sign) || (x === -1n && sign)) break;
  }
  return [0x8a, bytes.length, ...bytes];
}

function encode(v: PickleValue): number[] {
  if (v === null) return [0x4e];
  if (v === true) return [0x88];
  if (v === false) return [0x89];
  if (typeof v === 'bigint') return long1(v);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      return [0x4a, ...b];
    }
    if (Number.isSafeInteger(v)) return long1(BigInt(v));
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return [0x47, ...b];
  }
  if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(s.length);
    return [0x58, ...len, ...s];
  }
  return [0x28, ...v.flatMap(encode), 0x74];
}

const global = (module: string, name: string) => [...Buffer.from(`c${module}\n${name}\n`, 'latin1')];

/** `{name: _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())}` as torch pickles it. */
export function stateDictPickle(tensors: Record<string, TensorSpec>): Uint8Array {
  const out: number[] = [0x80, 0x02, 0x7d, 0x28];
  for (const [name, t] of Object.entries(tensors)) {
    out.push(...encode(name));
    out.push(...global('torch._utils', '_rebuild_tensor_v2'));
    out.push(0x28); // MARK of the argument tuple
    out.push(0x28, ...encode('storage'), ...global('torch', t.storage[0]));
    out.push(...encode(t.storage[1]), ...encode('cpu'), ...encode(t.storage[2]), 0x74, 0x51);
    out.push(...encode(t.offset), ...encode(t.size), ...encode(t.stride), 0x89);
    out.push(...global('collections', 'OrderedDict'), 0x29, 0x52, 0x74, 0x52);
  }
  out.push(0x75, 0x2e);
  return new Uint8Array(out);
}
