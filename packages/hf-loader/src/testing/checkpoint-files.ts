// Shared by this package's tests: temporary directories, state-dict comparison and checkpoint file surgery.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { ZipArchive } from '../zip.js';
import { buildZip } from './zip-writer.js';

/** A fresh temporary directory, removed after the test file. */
export function tempDir(prefix = 'hf-loader-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Same names in the same order, same shapes, bit-identical data (fast on big tensors, unlike deep equality). */
export function expectSameStateDict(
  got: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
  want: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [name, w] of want) {
    const g = got.get(name)!;
    expect(g.shape, name).toEqual(w.shape);
    const same = Buffer.from(g.data.buffer, g.data.byteOffset, g.data.byteLength).equals(
      Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength),
    );
    expect(same, `${name} differs`).toBe(true);
  }
}

/** Rewrites a safetensors file with one more tensor of any dtype (the writer only makes the dtypes we read). */
export function appendRawTensor(
  path: string,
  name: string,
  dtype: string,
  shape: number[],
  bytes: Uint8Array,
): void {
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8'));
  const data = file.subarray(8 + n);
  header[name] = { dtype, shape, data_offsets: [data.length, data.length + bytes.length] };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, data, bytes]));
}

/** The entries of a zip archive (a torch checkpoint), in order, with their uncompressed bytes. */
export async function zipEntries(path: string): Promise<{ name: string; data: Uint8Array }[]> {
  const handle = await open(path, 'r');
  try {
    const zip = await ZipArchive.open(handle, path);
    const out: { name: string; data: Uint8Array }[] = [];
    for (const name of zip.entries.keys()) out.push({ name, data: await zip.read(name) });
    return out;
  } finally {
    await handle.close();
  }
}

/** Copies a torch checkpoint to `dest` (STORED, valid CRCs) with its data.pkl replaced by `edit(data.pkl)`. */
export async function rewritePickle(
  src: string,
  dest: string,
  edit: (pickle: Uint8Array) => Uint8Array,
): Promise<void> {
  const entries = await zipEntries(src);
  writeFileSync(
    dest,
    buildZip(entries.map((e) => (e.name.endsWith('data.pkl') ? { name: e.name, data: edit(e.data) } : e))),
  );
}
