// The byte layout of PyTorch's c10d TCPStore protocol (torch/csrc/distributed/c10d/TCPStore*.cpp): a query is one
// command byte followed by its arguments; strings and byte values are a uint64 length and the bytes; counts and
// `add` deltas are int64; every number is little-endian (the host order of the machines torch runs on). Replies
// carry no header: the client knows what each query answers.
//
// The command numbers changed once: torch 2.3 added VALIDATE as command 0 (shifting every other command up by one)
// and made it the mandatory first message of every connection; torch 2.2 had already dropped WATCH_KEY, which
// moves DELETE_KEY down by one relative to torch <= 2.1.

/** Which numbering a server speaks. */
export type C10dProtocol = 'legacy' | 'validated';

/** torch 2.3+ refuses (legacy backend) or ignores (libuv backend) a connection whose first query is not this. */
export const VALIDATION_MAGIC = 0x3c85f7ce;

/** Command numbers of torch <= 2.2 ('legacy') and torch >= 2.3 ('validated'). */
export const COMMANDS = {
  legacy: { set: 0, compareSet: 1, get: 2, add: 3, check: 4, wait: 5, numKeys: 6 },
  validated: {
    validate: 0,
    set: 1,
    compareSet: 2,
    get: 3,
    add: 4,
    check: 5,
    wait: 6,
    numKeys: 7,
    deleteKey: 8,
  },
} as const;

/** DELETE_KEY before VALIDATE existed: 8 on torch <= 2.1 (after WATCH_KEY = 7), 7 on torch 2.2. */
export const LEGACY_DELETE_KEY = { withWatchKey: 8, withoutWatchKey: 7 } as const;
/** torch <= 2.1's WATCH_KEY, used once to tell those servers from 2.2's. */
export const LEGACY_WATCH_KEY = 7;
/** What a torch <= 2.1 server answers WATCH_KEY with (WatchResponseType::KEY_CALLBACK_REGISTERED). */
export const KEY_CALLBACK_REGISTERED = 3;

export const CHECK_READY = 0;
export const CHECK_NOT_READY = 1;
export const STOP_WAITING = 0;

/** torch's TCPStore prefixes every key with '/', so keys here name the same entries as Python's `store.get(k)`. */
export const KEY_PREFIX = '/';

/** The libuv server's limits (MAX_STRING_LEN, MAX_PAYLOAD_LEN); larger keys or values close the connection. */
export const MAX_KEY_BYTES = 8 * 1024;
export const MAX_VALUE_BYTES = 8 * 1024 * 1024;

/** Builds one query. */
export class QueryWriter {
  private readonly parts: Buffer[] = [];

  constructor(command: number) {
    this.parts.push(Buffer.from([command]));
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v, 0);
    this.parts.push(b);
    return this;
  }

  u64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v), 0);
    this.parts.push(b);
    return this;
  }

  i64(v: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64LE(v, 0);
    this.parts.push(b);
    return this;
  }

  /** A key: torch's '/' prefix, then length and UTF-8 bytes. */
  key(k: string): this {
    const bytes = Buffer.from(KEY_PREFIX + k, 'utf8');
    if (bytes.length > MAX_KEY_BYTES) {
      throw new RangeError(`c10d store key of ${bytes.length} bytes exceeds the ${MAX_KEY_BYTES}-byte limit`);
    }
    return this.u64(bytes.length).raw(bytes);
  }

  bytes(v: Uint8Array): this {
    if (v.length > MAX_VALUE_BYTES) {
      throw new RangeError(`c10d store value of ${v.length} bytes exceeds the ${MAX_VALUE_BYTES}-byte limit`);
    }
    return this.u64(v.length).raw(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }

  keys(ks: readonly string[]): this {
    this.u64(ks.length);
    for (const k of ks) this.key(k);
    return this;
  }

  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Reads a reply out of the bytes received so far: `null` until it is complete. */
export type ReplyParser<T> = (buf: Buffer) => { value: T; used: number } | null;

export const readU8: ReplyParser<number> = (buf) => (buf.length >= 1 ? { value: buf[0]!, used: 1 } : null);

export const readI64: ReplyParser<bigint> = (buf) =>
  buf.length >= 8 ? { value: buf.readBigInt64LE(0), used: 8 } : null;

export const readBytes: ReplyParser<Buffer> = (buf) => {
  if (buf.length < 8) return null;
  const len = buf.readBigUInt64LE(0);
  if (len > BigInt(MAX_VALUE_BYTES)) {
    throw new Error(`reply announces ${len} bytes, more than any store value (not a c10d TCPStore?)`);
  }
  const n = Number(len);
  if (buf.length < 8 + n) return null;
  return { value: Buffer.from(buf.subarray(8, 8 + n)), used: 8 + n };
};
