import { describe, expect, it } from 'vitest';
import { CheckpointError, UnsafePickleError } from './errors.js';
import { unpickle } from './pickle.js';
import { TORCH_GLOBALS } from './torch-bin.js';
import { parseTorchStateDict } from './torch-state-dict.js';

const bytes = (...parts: (number[] | string)[]) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p, 'latin1')] : p)));

describe('restricted unpickler', () => {
  it('rejects os.system (what `pickle.dumps` emits for a __reduce__ exploit) before calling it', () => {
    // \x80\x02 c os\nsystem\n ( X"echo pwned" t R .
    const evil = bytes(
      [0x80, 0x02],
      'cos\nsystem\n',
      [0x28, 0x58, 10, 0, 0, 0],
      'echo pwned',
      [0x74, 0x52, 0x2e],
    );
    expect(() => unpickle(evil, { globals: TORCH_GLOBALS })).toThrow(UnsafePickleError);
    expect(() => unpickle(evil, { globals: TORCH_GLOBALS })).toThrow(
      'pickle references global "os.system", which is not allowed',
    );
  });

  it('rejects posix.system and builtins.eval reached through STACK_GLOBAL (protocol 4)', () => {
    const g = (module: string, name: string) =>
      bytes([0x80, 0x04, 0x8c, module.length], module, [0x8c, name.length], name, [0x93, 0x29, 0x52, 0x2e]);
    expect(() => unpickle(g('posix', 'system'), { globals: TORCH_GLOBALS })).toThrow('"posix.system"');
    expect(() => unpickle(g('builtins', 'eval'), { globals: TORCH_GLOBALS })).toThrow('"builtins.eval"');
    expect(() => unpickle(g('torch', 'load'), { globals: TORCH_GLOBALS })).toThrow('"torch.load"');
  });

  it('decodes the containers and scalars of protocols 2-5', () => {
    // {'a': [1, -2, 3.5, None, True], 'b': (b'xy', 300, 2**70)}, hand-assembled as CPython's protocol-3 pickler emits it.
    const p = bytes(
      [0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01, 0, 0, 0],
      'a',
      [
        0x5d, 0x71, 0x01, 0x28, 0x4b, 0x01, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x47, 0x40, 0x0c, 0, 0, 0, 0, 0, 0,
        0x4e, 0x88, 0x65,
      ],
      [0x58, 0x01, 0, 0, 0],
      'b',
      [0x43, 0x02],
      'xy',
      [0x4d, 0x2c, 0x01, 0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x87, 0x75, 0x2e],
    );
    const out = unpickle(p, { globals: TORCH_GLOBALS }) as Map<string, unknown>;
    expect(out.get('a')).toEqual([1, -2, 3.5, null, true]);
    expect(out.get('b')).toEqual([new Uint8Array([120, 121]), 300, 2n ** 70n]);
  });

  it('reports a truncated pickle with what was expected', () => {
    const p = bytes([0x80, 0x02, 0x58, 0x10, 0, 0, 0], 'abc');
    expect(() => unpickle(p, { globals: TORCH_GLOBALS })).toThrow(CheckpointError);
    expect(() => unpickle(p, { globals: TORCH_GLOBALS })).toThrow(
      'pickle truncated: needs 16 more bytes at offset 7, only 3 left',
    );
  });

  it('names an opcode a checkpoint never needs', () => {
    expect(() => unpickle(bytes([0x80, 0x02], 'p0\n'), { globals: TORCH_GLOBALS })).toThrow(
      'opcode 0x70 (PUT) at offset 2 is not supported',
    );
    expect(() => unpickle(bytes([0x80, 0x06]), { globals: TORCH_GLOBALS })).toThrow(
      'pickle protocol 6 is newer than 5',
    );
  });

  it('appends long runs of items without overflowing the call stack', () => {
    // [] MARK 0 0 ... APPENDS STOP: one APPENDS with 300,000 items.
    const n = 300_000;
    const p = new Uint8Array(4 + 2 * n + 2);
    p.set([0x80, 0x02, 0x5d, 0x28]);
    for (let i = 0; i < n; i++) p.set([0x4b, i & 0xff], 4 + 2 * i);
    p.set([0x65, 0x2e], 4 + 2 * n);
    const out = unpickle(p, { globals: TORCH_GLOBALS }) as number[];
    expect(out).toHaveLength(n);
    expect(out[n - 1]).toBe((n - 1) & 0xff);
  });

  it('refuses an integer too long to be a size before decoding it (decoding is quadratic)', () => {
    const len = 1 << 20;
    const p = new Uint8Array(2 + 5 + len + 1);
    p.set([0x80, 0x02, 0x8b, 0, 0, 0x10, 0]);
    p[p.length - 1] = 0x2e;
    const t0 = performance.now();
    expect(() => unpickle(p, { globals: TORCH_GLOBALS })).toThrow(
      'pickle LONG of 1048576 bytes at offset 2 is too large (at most 64)',
    );
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('describes a self-referencing persistent id without crashing on the cycle', () => {
    // l = []; l.append(l); persistent_load(l)
    const p = bytes([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x51, 0x2e]);
    expect(() => parseTorchStateDict(p, 'data.pkl')).toThrow(CheckpointError);
    expect(() => parseTorchStateDict(p, 'data.pkl')).toThrow('data.pkl: unexpected persistent id (((...)))');
  });
});
