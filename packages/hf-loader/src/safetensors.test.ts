import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { randomFloats, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToBf16, f32ToF16 } from './dtypes.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';
import { tempDir } from './testing/checkpoint-files.js';

const dir = tempDir();

/** A safetensors file from a raw header object and data bytes. */
function rawFile(name: string, header: unknown, data: Uint8Array, headerLen?: bigint): string {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

describe('safetensors round trip', () => {
  it('writes and reads F32, F16, BF16, I32 and I64 with metadata', async () => {
    const path = join(dir, 'all.safetensors');
    const w = randomFloats(24, 7);
    const ids = new BigInt64Array([1n, 50431n, -3n, 2n ** 40n]);
    const i32 = new Int32Array([5, -6, 7]);
    await writeSafetensors(
      path,
      {
        w32: { shape: [4, 6], data: w },
        w16: { shape: [4, 6], data: w, dtype: 'F16' },
        wbf: { shape: [4, 6], data: w, dtype: 'BF16' },
        ids: { shape: [2, 2], data: ids },
        ids32as64: { shape: [3], data: i32, dtype: 'I64' },
        i32: { shape: [3], data: i32 },
        scalar: { shape: [], data: new Float32Array([3.5]) },
      },
      { metadata: { format: 'pt' } },
    );
    const header = await readSafetensorsHeader(path);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.dataStart % 8).toBe(0);
    const t = await readSafetensors(path);
    expect(t.get('w32')!.data).toEqual(w);
    expect(t.get('w16')!.dtype).toBe('F16');
    expect(t.get('w16')!.data).toEqual(f16ToF32(f32ToF16(w)));
    const bf = t.get('wbf')!.data as Float32Array;
    const expectedBf = f32ToBf16(w);
    for (let i = 0; i < w.length; i++) {
      expect(new Uint32Array(bf.buffer)[i]).toBe((expectedBf[i]! << 16) >>> 0);
      expect(Math.abs(bf[i]! - w[i]!)).toBeLessThanOrEqual(Math.abs(w[i]!) * 2 ** -8);
    }
    expect(t.get('ids')).toEqual({ dtype: 'I64', shape: [2, 2], data: ids });
    expect(t.get('ids32as64')!.data).toEqual(new BigInt64Array([5n, -6n, 7n]));
    expect(t.get('i32')).toEqual({ dtype: 'I32', shape: [3], data: i32 });
    expect(t.get('scalar')).toEqual({ dtype: 'F32', shape: [], data: new Float32Array([3.5]) });
  });

  it('reads only the named tensors and names a missing one', async () => {
    const path = join(dir, 'named.safetensors');
    await writeSafetensors(
      path,
      new Map([
        ['a', { shape: [2], data: new Float32Array([1, 2]) }],
        ['b', { shape: [1], data: new Float32Array([3]) }],
      ]),
    );
    const t = await readSafetensors(path, { names: ['b'] });
    expect([...t.keys()]).toEqual(['b']);
    await expect(readSafetensors(path, { names: ['c'] })).rejects.toThrow('no tensor named "c"');
  });

  it('refuses a shape that does not match the data', async () => {
    await expect(
      writeSafetensors(join(dir, 'bad.safetensors'), { a: { shape: [3], data: new Float32Array(2) } }),
    ).rejects.toThrow('shape [3] holds 3 values, data has 2');
    await expect(
      writeSafetensors(join(dir, 'bad.safetensors'), {
        a: { shape: [2], data: new BigInt64Array(2), dtype: 'F32' },
      }),
    ).rejects.toThrow('cannot store BigInt64Array as F32');
  });
});

describe('safetensors header validation', () => {
  const f32 = (n: number) => new Uint8Array(n * 4);
  it('names an unknown dtype', async () => {
    const p = rawFile(
      'dtype.safetensors',
      { x: { dtype: 'F12', shape: [2], data_offsets: [0, 3] } },
      new Uint8Array(3),
    );
    await expect(readSafetensors(p)).rejects.toThrow('tensor "x" has unknown dtype "F12"');
  });
  it('accepts the other safetensors dtypes in a header, and names them when asked to read one', async () => {
    const p = rawFile(
      'bool.safetensors',
      {
        mask: { dtype: 'BOOL', shape: [2, 2], data_offsets: [0, 4] },
        w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      },
      new Uint8Array([1, 0, 1, 1, 0, 0, 0x80, 0x3f]),
    );
    expect((await readSafetensorsHeader(p)).tensors.get('mask')!.dtype).toBe('BOOL');
    expect((await readSafetensors(p, { names: ['w'] })).get('w')!.data).toEqual(new Float32Array([1]));
    await expect(readSafetensors(p)).rejects.toThrow(
      'tensor "mask" has dtype BOOL, which is not read (supported: F32, F16, BF16, I64, I32)',
    );
  });
  it('checks shape x dtype size against the byte range', async () => {
    const p = rawFile('size.safetensors', { x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2));
    await expect(readSafetensors(p)).rejects.toThrow(
      'tensor "x" (F32 [3]) needs 12 bytes but data_offsets [0, 8] span 8',
    );
  });
  it('accepts only non-negative integer offsets and dimensions, naming the tensor and field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ shape: [2], data_offsets: ['0', 8] }, 'tensor "x" has invalid data_offsets ["0",8]'],
      [{ shape: [2], data_offsets: [0.5, 8.5] }, 'tensor "x" has invalid data_offsets [0.5,8.5]'],
      [{ shape: [2], data_offsets: [-8, 0] }, 'tensor "x" has invalid data_offsets [-8,0]'],
      [{ shape: [2], data_offsets: [8, 0] }, 'tensor "x" has invalid data_offsets [8,0]'],
      [
        { shape: [2], data_offsets: [0, 2 ** 60] },
        'tensor "x" has invalid data_offsets [0,1152921504606847000]',
      ],
      [{ shape: ['2'], data_offsets: [0, 8] }, 'tensor "x" has invalid shape ["2"]'],
      [{ shape: [-2], data_offsets: [0, 8] }, 'tensor "x" has invalid shape [-2]'],
      [
        { shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] },
        'tensor "x" (F32 [1099511627776, 1099511627776]) needs',
      ],
      [
        { shape: [2], data_offsets: [0, 16] },
        'tensor "x" (F32 [2]) needs 8 bytes but data_offsets [0, 16] span 16',
      ],
    ];
    for (const [entry, message] of cases) {
      const p = rawFile('fields.safetensors', { x: { dtype: 'F32', ...entry } }, f32(2));
      await expect(readSafetensors(p), message).rejects.toThrow(message);
    }
  });

  it('says what a truncated file lacks', async () => {
    const p = rawFile(
      'trunc.safetensors',
      { x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } },
      f32(3),
    );
    await expect(readSafetensors(p)).rejects.toThrow(
      'file truncated: tensors need 16 data bytes, the file holds 12',
    );
    const h = rawFile('trunc-header.safetensors', { x: 1 }, new Uint8Array(0), 4000n);
    await expect(readSafetensors(h)).rejects.toThrow('header needs 4000 bytes');
  });
  it('rejects overlaps, gaps and trailing bytes', async () => {
    const overlap = rawFile(
      'overlap.safetensors',
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      f32(3),
    );
    await expect(readSafetensors(overlap)).rejects.toThrow('overlaps');
    const gap = rawFile('gap.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2));
    await expect(readSafetensors(gap)).rejects.toThrow('gap in the data section before tensor "a"');
    const trailing = rawFile(
      'trailing.safetensors',
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      f32(2),
    );
    await expect(readSafetensors(trailing)).rejects.toThrow('4 trailing bytes after the last tensor');
  });
  it('rejects absurd header lengths, non-JSON headers and bad metadata', async () => {
    await expect(
      readSafetensors(rawFile('len.safetensors', {}, new Uint8Array(0), 2n ** 40n)),
    ).rejects.toThrow('header length 1099511627776 is not in 1..100000000');
    const notJson = join(dir, 'notjson.safetensors');
    writeFileSync(notJson, Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{ab')]));
    await expect(readSafetensors(notJson)).rejects.toThrow('header is not valid UTF-8 JSON');
    const meta = rawFile('meta.safetensors', { __metadata__: { format: 1 } }, new Uint8Array(0));
    await expect(readSafetensors(meta)).rejects.toThrow('__metadata__.format is not a string');
    const tiny = join(dir, 'tiny.safetensors');
    writeFileSync(tiny, Buffer.from([1, 2]));
    await expect(readSafetensors(tiny)).rejects.toThrow('file truncated: 2 bytes');
  });
});

describe('large files', () => {
  it('reads a tensor that sits past 4 GiB (a sparse 4.5 GB file)', async () => {
    const hole = 4.5e9;
    const header = {
      padding: { dtype: 'F32', shape: [hole / 4], data_offsets: [0, hole] },
      x: { dtype: 'F32', shape: [2, 2], data_offsets: [hole, hole + 16] },
    };
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const path = join(dir, 'big.safetensors');
    const handle = await open(path, 'w');
    try {
      await handle.write(Buffer.concat([len, json]), 0, 8 + json.length, 0);
      const x = Buffer.from(new Float32Array([1.5, -2, 3, 4e-8]).buffer);
      await handle.write(x, 0, 16, 8 + json.length + hole);
    } finally {
      await handle.close();
    }
    try {
      const t = await readSafetensors(path, { names: ['x'] });
      expect(t.get('x')).toEqual({ dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2, 3, 4e-8]) });
    } finally {
      rmSync(path);
    }
  });
});

describe('shared golden file', () => {
  const path = sharedFile(`${TINY_MOSAIC_DIR}/expected.safetensors`);
  it.skipIf(!path)('reads input_ids I64 and logits F32 of the reference output', async () => {
    const t = await readSafetensors(path!);
    const ids = t.get('input_ids')!;
    expect(ids.dtype).toBe('I64');
    expect(ids.shape).toEqual([2, 24]);
    const expected = JSON.parse(readFileSync(path!.replace('expected.safetensors', 'expected.json'), 'utf8'));
    expect(Array.from(ids.data as BigInt64Array, Number)).toEqual(expected.input_ids.flat());
    const logits = t.get('logits')!;
    expect(logits.shape).toEqual([2, 24, 50432]);
    expect(logits.data).toBeInstanceOf(Float32Array);
    expect(Number.isFinite((logits.data as Float32Array)[12345])).toBe(true);
  });
});
