import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedParameterShapes } from '@mptjs/mpt-model';
import { FIXTURES_DIR, modelFixtureNames, sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from './checkpoint.js';
import { readSafetensors, readSafetensorsHeader } from './safetensors.js';

const names = modelFixtureNames();

describe('model fixtures', () => {
  it('are all present', () => {
    expect(names.length).toBeGreaterThanOrEqual(10);
  });

  for (const name of names) {
    it(`${name} loads into the state dict its config expects`, async () => {
      const dir = join(FIXTURES_DIR, name);
      const meta = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
      const ckpt = await loadCheckpoint(dir);
      expect(ckpt.source.dtype).toBe(meta.storage_dtype);
      expect(ckpt.source.files).toEqual(meta.weight_files.filter((f: string) => !f.endsWith('.index.json')));
      expect(ckpt.config.modelType).toBe(meta.model_type);
      const expected = expectedParameterShapes(ckpt.config);
      expect([...ckpt.stateDict.keys()]).toEqual([...expected.keys()]);
      for (const [k, t] of ckpt.stateDict) expect(t.shape, k).toEqual(expected.get(k));
      const golden = await readSafetensors(join(dir, 'expected.safetensors'));
      expect(golden.get('input_ids')!.dtype).toBe('I64');
      expect(golden.get('logits')!.shape).toEqual([...meta.input_ids_shape, ckpt.config.vocabSize]);
    });
  }

  it('mosaic-6heads (MosaicGPT names, pytorch_model.bin) loads to the names and shapes of mpt-6heads', async () => {
    const mosaic = await loadCheckpoint(join(FIXTURES_DIR, 'mosaic-6heads'));
    const mpt = await loadCheckpoint(join(FIXTURES_DIR, 'mpt-6heads'));
    expect([...mosaic.stateDict].map(([k, v]) => [k, v.shape])).toEqual(
      [...mpt.stateDict].map(([k, v]) => [k, v.shape]),
    );
    expect(mosaic.config.logitScale).toBeCloseTo(1 / Math.sqrt(48), 12);
    expect(mpt.config.nHeads).toBe(6);
  });

  const shared = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
  it.skipIf(!shared)(
    'the shared mpt-tiny-mosaic loads into the same parameter names as the mpt fixtures',
    async () => {
      const tiny = await loadCheckpoint(join(shared!, '..'));
      const f32 = await loadCheckpoint(join(FIXTURES_DIR, 'mpt-f32'));
      expect([...tiny.stateDict.keys()]).toEqual([...f32.stateDict.keys()]);
    },
  );

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`${dtype} weights widen exactly (checked against the raw bits in the file)`, async () => {
      const dir = join(FIXTURES_DIR, dtype === 'F16' ? 'mpt-f16' : 'mpt-bf16');
      const ckpt = await loadCheckpoint(dir);
      const header = await readSafetensorsHeader(join(dir, 'model.safetensors'));
      const handle = await open(header.path, 'r');
      try {
        for (const [name, entry] of header.tensors) {
          const raw = Buffer.alloc(entry.end - entry.begin);
          await handle.read(raw, 0, raw.length, header.dataStart + entry.begin);
          const got = ckpt.stateDict.get(name)!.data;
          const view = new DataView(new Float32Array(1).buffer);
          for (let i = 0; i < got.length; i++) {
            const bits = raw.readUInt16LE(2 * i);
            let want: number;
            if (dtype === 'BF16') {
              view.setUint32(0, bits * 65536, true);
              want = view.getFloat32(0, true);
            } else {
              const e = (bits >> 10) & 31;
              const m = bits & 1023;
              want = (bits >> 15 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
            }
            if (got[i] !== want)
              throw new Error(`${name}[${i}]: got ${got[i]}, bits ${bits.toString(16)} are ${want}`);
          }
        }
      } finally {
        await handle.close();
      }
    });
  }
});
