/**
 * A restricted unpickler for torch state dicts. It implements the protocol 2-5 opcodes such files use and resolves
 * globals only from an allowlist (tensor rebuild functions, storage types, dtypes, OrderedDict). Any other global
 * (`os.system`, `builtins.eval`, ...) raises UnsafePickleError at the GLOBAL opcode, before any call could run,
 * and nothing is ever executed: allowlisted callables are plain TypeScript functions that build descriptions.
 */
import { CheckpointError, UnsafePickleError } from './errors.js';

/** A Python callable or type the unpickler knows; `call` runs for REDUCE / NEWOBJ. */
export interface PyGlobal {
  readonly module: string;
  readonly name: string;
  call(args: unknown[]): unknown;
}

export interface UnpickleOptions {
  /** The only globals that may be referenced, keyed "module.name". */
  globals: ReadonlyMap<string, PyGlobal>;
  /** Resolves BINPERSID ids (torch uses them for storages). */
  persistentLoad?: (pid: unknown) => unknown;
}

const MAX_LONG_BYTES = 64;

/** A name from the pickle, quoted and escaped for a one-line message, at most 80 characters. */
const quote = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);

const OPCODE_NAMES: Record<number, string> = {
  73: 'INT',
  76: 'LONG',
  70: 'FLOAT',
  83: 'STRING',
  86: 'UNICODE',
  112: 'PUT',
  103: 'GET',
  105: 'INST',
  111: 'OBJ',
  80: 'PERSID',
  130: 'EXT1',
  131: 'EXT2',
  132: 'EXT4',
  151: 'NEXT_BUFFER',
  152: 'READONLY_BUFFER',
};

/** Decodes a pickle byte string into plain values: dicts become Map, lists and tuples arrays, sets Set. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number) => {
    if (pos + n > bytes.byteLength) {
      throw new CheckpointError(
        `pickle truncated: needs ${n} more bytes at offset ${pos}, only ${bytes.byteLength - pos} left`,
      );
    }
  };
  const u8 = () => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UnsafePickleError(`pickle length ${v} is too large`);
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new CheckpointError(`pickle truncated: unterminated line at offset ${pos}`);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw new UnsafePickleError(`pickle stack underflow at offset ${pos - 1}`);
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) throw new UnsafePickleError(`pickle stack underflow at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) throw new UnsafePickleError(`pickle MARK missing at offset ${pos - 1}`);
    stack = prev;
    return items;
  };
  const findGlobal = (module: string, name: string): PyGlobal => {
    const g = options.globals.get(`${module}.${name}`);
    if (!g) {
      throw new UnsafePickleError(
        `pickle references global ${quote(`${module}.${name}`)}, which is not allowed in a checkpoint ` +
          `(allowed: ${[...options.globals.keys()].join(', ')})`,
      );
    }
    return g;
  };
  const callable = (f: unknown, at: number): PyGlobal => {
    if (typeof f === 'object' && f !== null && 'call' in f) return f as PyGlobal;
    throw new UnsafePickleError(`pickle calls a non-callable value at offset ${at}`);
  };
  const longFrom = (b: Uint8Array, at: number): number | bigint => {
    if (b.length === 0) return 0;
    // Decoding is quadratic in the length; no number in a state dict needs more than a few bytes.
    if (b.length > MAX_LONG_BYTES) {
      throw new UnsafePickleError(
        `pickle LONG of ${b.length} bytes at offset ${at} is too large (at most ${MAX_LONG_BYTES})`,
      );
    }
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  // Not `stack.push(popMark())`: that would look up `stack` before popMark() replaces it.
  const push = (v: unknown) => {
    stack.push(v);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map))
      throw new UnsafePickleError(`pickle SETITEM(S) on a non-dict at offset ${pos - 1}`);
    for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const appendItems = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list))
      throw new UnsafePickleError(`pickle APPEND(S) on a non-list at offset ${pos - 1}`);
    // One at a time: spreading a long run of items into push() overflows the call stack.
    for (const item of items) list.push(item);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw new UnsafePickleError(`pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: framing is only a read-ahead hint
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x74: // TUPLE
        push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x64: {
        // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x91: // FROZENSET
        push(new Set(popMark()));
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw new UnsafePickleError(`pickle ADDITEMS on a non-set at offset ${at}`);
        for (const x of items) s.add(x);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) throw new UnsafePickleError(`pickle memo key ${key} is unset (offset ${at})`);
        stack.push(memo.get(key));
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(findGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') {
          throw new UnsafePickleError(`pickle STACK_GLOBAL needs two strings (offset ${at})`);
        }
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(take(u64())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1.decode(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()).slice());
        break;
      case 0x4a: {
        // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      }
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longFrom(take(u8()), at));
        break;
      case 0x8b: // LONG4
        stack.push(longFrom(take(u32()), at));
        break;
      case 0x47: {
        // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const f = callable(pop(), at);
        if (!Array.isArray(args))
          throw new UnsafePickleError(`pickle REDUCE needs an argument tuple (offset ${at})`);
        stack.push(f.call(args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = callable(pop(), at);
        stack.push(cls.call(Array.isArray(args) ? args : []));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        const cls = callable(pop(), at);
        stack.push(cls.call(Array.isArray(args) ? args : []));
        break;
      }
      case 0x62: {
        // BUILD: only state on dicts (OrderedDict's `_metadata`), which carries nothing we use.
        pop();
        const obj = top();
        if (!(obj instanceof Map))
          throw new UnsafePickleError(`pickle BUILD on an unsupported object (offset ${at})`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!options.persistentLoad)
          throw new UnsafePickleError(`pickle has a persistent id but no loader (offset ${at})`);
        stack.push(options.persistentLoad(pid));
        break;
      }
      default: {
        const name = OPCODE_NAMES[op];
        throw new UnsafePickleError(
          `pickle opcode 0x${op.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''} at offset ${at} is not supported in a checkpoint`,
        );
      }
    }
  }
}
