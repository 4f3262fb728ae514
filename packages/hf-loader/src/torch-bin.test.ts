import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FIXTURES_DIR, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from './errors.js';
import { readSafetensors } from './safetensors.js';
import { rewritePickle, tempDir } from './testing/checkpoint-files.js';
import { buildZip, writeSparseZip, type ZipInput } from './testing/zip-writer.js';
import { readTorchStateDict, TorchCheckpoint } from './torch-bin.js';
import { ZipArchive } from './zip.js';

const cases = join(FIXTURES_DIR, 'torch-bin-cases');
const dir = tempDir();

describe('pytorch_model.bin reader', () => {
  for (const file of ['cases.bin', 'cases-deflate.bin']) {
    it(`reads every view of ${file} as torch materializes it (strides, offsets, shared storages, F16/BF16/F64)`, async () => {
      const reference = await readSafetensors(join(cases, 'reference.safetensors'));
      const got = await readTorchStateDict(join(cases, file));
      expect([...got.keys()].sort()).toEqual([...reference.keys()].sort());
      for (const [name, want] of reference) {
        expect(got.get(name)!.shape, name).toEqual(want.shape);
        expect(got.get(name)!.data, name).toEqual(want.data);
      }
    });
  }

  for (const protocol of [2, 4, 5]) {
    it(`reads a module state_dict (OrderedDict with _metadata) pickled with protocol ${protocol}`, async () => {
      const reference = await readSafetensors(join(cases, 'module-reference.safetensors'));
      const got = await readTorchStateDict(join(cases, `module-p${protocol}.bin`));
      expect([...got.keys()]).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
      for (const [name, want] of reference)
        expect(got.get(name), name).toEqual({ shape: want.shape, data: want.data });
    });
  }

  it('describes storages shared between tensors once', async () => {
    const ckpt = await TorchCheckpoint.open(join(cases, 'cases.bin'));
    try {
      const a = ckpt.tensors.get('contiguous')!;
      const t = ckpt.tensors.get('transposed')!;
      expect(t.storage).toBe(a.storage);
      expect(t.stride).toEqual([1, 8]);
      expect(ckpt.tensors.get('row_slice')!.offset).toBe(16);
      expect(ckpt.tensors.get('half')!.storage.dtype).toBe('F16');
    } finally {
      await ckpt.close();
    }
  });

  it('reads only the named tensors', async () => {
    const got = await readTorchStateDict(join(cases, 'cases.bin'), { names: ['scalar'] });
    expect([...got]).toEqual([['scalar', { shape: [], data: new Float32Array([2.5]) }]]);
  });

  it('explains that the legacy (non-zip) format is out of scope', async () => {
    await expect(readTorchStateDict(join(cases, 'legacy.bin'))).rejects.toThrow(
      'legacy (pre-1.6, non-zip) torch.save format is not supported',
    );
  });

  it('refuses files that are not torch checkpoints', async () => {
    const path = join(dir, 'text.bin');
    writeFileSync(path, 'hello world');
    await expect(readTorchStateDict(path)).rejects.toThrow('not a torch zip checkpoint');
  });

  const bin = sharedFile(`${TINY_MOSAIC_DIR}/pytorch_model.bin`);
  it.skipIf(!bin)('reports a truncated file with the bytes expected and present', async () => {
    const full = readFileSync(bin!);
    const cut = join(dir, 'cut.bin');
    // Cut inside the data: the central directory at the end is gone.
    writeFileSync(cut, full.subarray(0, full.length - 5000));
    await expect(readTorchStateDict(cut)).rejects.toThrow(CheckpointError);
    await expect(readTorchStateDict(cut)).rejects.toThrow(
      'no zip end-of-central-directory record (file truncated',
    );
    // Keep the directory but drop data in the middle: the entries now point past the end of the file.
    const holed = join(dir, 'holed.bin');
    writeFileSync(holed, Buffer.concat([full.subarray(0, 1000), full.subarray(full.length - 3000)]));
    await expect(readTorchStateDict(holed)).rejects.toThrow(
      /file truncated: the zip central directory ends at byte \d+, the file has 4000/,
    );
  });

  it.skipIf(!bin)(
    'rejects a checkpoint whose pickle calls os.system, before reading any tensor',
    async () => {
      // Replace data.pkl inside a real archive with a malicious pickle.
      const evil = Buffer.concat([
        Buffer.from([0x80, 0x02]),
        Buffer.from('cos\nsystem\n(X\x04\x00\x00\x00truetR.', 'latin1'),
      ]);
      const path = join(dir, 'evil.bin');
      await rewritePickle(bin!, path, () => evil);
      await expect(readTorchStateDict(path)).rejects.toThrow(
        'pickle references global "os.system", which is not allowed',
      );
    },
  );

  it('opens a copy under another name (the archive prefix is not fixed)', async () => {
    const path = join(dir, 'renamed.bin');
    copyFileSync(join(cases, 'cases.bin'), path);
    expect((await readTorchStateDict(path, { names: ['double'] })).get('double')!.shape).toEqual([5]);
  });
});

describe('zip container', () => {
  it('reads zip64 archives with padded local headers (how torch writes files over 4 GiB)', async () => {
    const handle = await open(join(cases, 'cases.bin'), 'r');
    const entries: ZipInput[] = [];
    try {
      const zip = await ZipArchive.open(handle, 'cases.bin');
      for (const name of zip.entries.keys())
        entries.push({ name: name.replace(/^cases\//, 'archive/'), data: await zip.read(name) });
    } finally {
      await handle.close();
    }
    const path = join(dir, 'zip64.bin');
    writeFileSync(path, buildZip(entries, { zip64: true, align: 64 }));
    const reference = await readSafetensors(join(cases, 'reference.safetensors'));
    const got = await readTorchStateDict(path);
    for (const [name, want] of reference) expect(got.get(name)!.data, name).toEqual(want.data);
    // The plain (non-zip64) form of the same entries reads the same.
    writeFileSync(path, buildZip(entries));
    expect((await readTorchStateDict(path)).get('column_slice')).toEqual(got.get('column_slice'));
  });

  it('reads entries that sit past 4 GiB in the file (a sparse 4.5 GB archive)', async () => {
    const handle = await open(join(cases, 'cases.bin'), 'r');
    const entries: ZipInput[] = [{ name: 'archive/padding', data: { hole: 4.5e9 } }];
    try {
      const zip = await ZipArchive.open(handle, 'cases.bin');
      for (const name of zip.entries.keys())
        entries.push({ name: name.replace(/^cases\//, 'archive/'), data: await zip.read(name) });
    } finally {
      await handle.close();
    }
    const path = join(dir, 'big.bin');
    const size = await writeSparseZip(path, entries, { zip64: true, align: 64 });
    expect(size).toBeGreaterThan(2 ** 32);
    try {
      const reference = await readSafetensors(join(cases, 'reference.safetensors'));
      const got = await readTorchStateDict(path);
      for (const [name, want] of reference) expect(got.get(name)!.data, name).toEqual(want.data);
    } finally {
      rmSync(path);
    }
  });
});
