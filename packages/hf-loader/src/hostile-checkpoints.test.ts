// Malformed and hostile checkpoints: every number a pickle gives is checked, inflation is capped, and config sizes
// are compared with the weights before anything is allocated.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, deflateRawSync } from 'node:zlib';
import { ConfigError } from '@mptjs/mpt-model';
import { sharedFile, TINY_MOSAIC_DIR } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from './checkpoint.js';
import { crc32 } from './crc32.js';
import { CheckpointError } from './errors.js';
import { writeSafetensors } from './safetensors.js';
import { rewritePickle, tempDir } from './testing/checkpoint-files.js';
import { type PickleValue, stateDictPickle, type TensorSpec } from './testing/pickle-writer.js';
import { buildZip, type ZipInput } from './testing/zip-writer.js';
import { readTorchStateDict, TorchCheckpoint } from './torch-bin.js';

const dir = tempDir('hf-loader-hostile-');
const SERVE_CLI = join(dirname(fileURLToPath(import.meta.url)), '../../../apps/serve/dist/cli.js');
let serial = 0;

/** A one-tensor checkpoint: storage "0" of four floats [1, 2, 3, 4], with the tensor fields as given. */
function oneTensorBin(spec: Partial<TensorSpec>, extra: ZipInput[] = []): string {
  const tensor: TensorSpec = {
    storage: ['FloatStorage', '0', 4],
    offset: 0,
    size: [4],
    stride: [1],
    ...spec,
  };
  const path = join(dir, `t${serial++}.bin`);
  writeFileSync(
    path,
    buildZip([
      { name: 'archive/data.pkl', data: stateDictPickle({ w: tensor }) },
      { name: 'archive/byteorder', data: Buffer.from('little') },
      { name: 'archive/data/0', data: new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer) },
      ...extra,
    ]),
  );
  return path;
}

describe('pickle numbers: integer, in-range offsets, sizes, strides and storages only', () => {
  it('reads a well-formed view (the control case)', async () => {
    const got = await readTorchStateDict(oneTensorBin({ offset: 1, size: [3], stride: [1] }));
    expect(got.get('w')).toEqual({ shape: [3], data: new Float32Array([2, 3, 4]) });
  });

  const bad: [string, Partial<TensorSpec>, string][] = [
    [
      'a string offset',
      { offset: 'zero' },
      'tensor "w": storage offset must be a non-negative integer, got "zero"',
    ],
    ['a numeric string offset', { offset: '1' }, 'storage offset must be a non-negative integer, got "1"'],
    ['a negative offset', { offset: -1 }, 'storage offset must be a non-negative integer, got -1'],
    ['a fractional offset', { offset: 1.5 }, 'storage offset must be a non-negative integer, got 1.5'],
    ['a None offset', { offset: null }, 'storage offset must be a non-negative integer, got None'],
    [
      'an offset past 2^53',
      { offset: 2n ** 70n },
      'storage offset must be a non-negative integer, got 1180591620717411303424',
    ],
    [
      'a view past the end of its storage',
      { offset: 3 },
      'tensor "w": storage offset 3 with size (4) and stride (1) reaches element 6 of storage "0", which has 4',
    ],
    ['a string in the size', { size: ['4'] }, 'tensor "w": size[0] must be a non-negative integer, got "4"'],
    ['a negative size', { size: [-4], stride: [1] }, 'size[0] must be a non-negative integer, got -4'],
    ['a size that is not a tuple', { size: 4 }, 'size must be a tuple of at most 64 integers, got 4'],
    ['a negative stride', { size: [2], stride: [-1] }, 'stride[0] must be a non-negative integer, got -1'],
    ['a float stride', { size: [2], stride: [0.5] }, 'stride[0] must be a non-negative integer, got 0.5'],
    [
      'size and stride of different ranks',
      { size: [2, 2], stride: [1] },
      'size has 2 dimensions but stride has 1',
    ],
    [
      'a huge broadcast view of a small storage',
      { size: [1_000_000, 1_000_000], stride: [0, 0] },
      'size (1000000, 1000000) has 1000000000000 elements, more than its storage "0" holds (4)',
    ],
    [
      'a string element count',
      { storage: ['FloatStorage', '0', '4'] },
      'storage "0" has element count "4", expected a non-negative integer',
    ],
    [
      'an element count the entry does not hold',
      { storage: ['FloatStorage', '0', 5], size: [5] },
      'storage "0" should hold 20 bytes (5 x F32), the archive has 16',
    ],
    [
      'a path-like storage key',
      { storage: ['FloatStorage', '../0', 4] },
      'persistent id has storage key "../0", expected a short alphanumeric name',
    ],
    [
      'a storage key with no entry',
      { storage: ['FloatStorage', '7', 4] },
      'storage "7" has no zip entry "archive/data/7"',
    ],
    [
      'a storage type whose elements the entry does not hold',
      { storage: ['DoubleStorage', '0', 4] },
      'storage "0" should hold 32 bytes (4 x F64), the archive has 16',
    ],
  ];
  for (const [what, spec, message] of bad) {
    it(`refuses ${what} when the checkpoint is opened`, async () => {
      const path = oneTensorBin(spec);
      const opened = TorchCheckpoint.open(path);
      await expect(opened).rejects.toThrow(CheckpointError);
      await expect(TorchCheckpoint.open(path)).rejects.toThrow(message);
    });
  }

  it('keeps every message on one line with a short excerpt of a huge value', async () => {
    const long: PickleValue = 'x\n'.repeat(10_000);
    const path = oneTensorBin({ offset: long });
    const err = await TorchCheckpoint.open(path).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).not.toContain('\n');
    expect((err as Error).message.length).toBeLessThan(300);
  });

  const bin = sharedFile(`${TINY_MOSAIC_DIR}/pytorch_model.bin`);
  const config = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);
  /** The tiny fixture with its first tensor's storage offset (BINPERSID, BININT1 0) replaced by the string "zero". */
  async function stringOffsetModel(name: string): Promise<string> {
    const modelDir = join(dir, name);
    mkdirSync(modelDir);
    copyFileSync(config!, join(modelDir, 'config.json'));
    await rewritePickle(bin!, join(modelDir, 'pytorch_model.bin'), (pkl) => {
      const at = Buffer.from(pkl).indexOf(Buffer.from([0x51, 0x4b, 0x00]));
      expect(at).toBeGreaterThan(0);
      const str = Buffer.from([0x58, 4, 0, 0, 0, ...Buffer.from('zero')]);
      return Buffer.concat([pkl.subarray(0, at + 1), str, pkl.subarray(at + 3)]);
    });
    return modelDir;
  }
  const STRING_OFFSET_ERROR =
    'pytorch_model.bin: pytorch_model/data.pkl: tensor "transformer.wte.weight": storage offset must be a non-negative integer, got "zero"';

  it.skipIf(!bin || !config)(
    'refuses a real checkpoint whose data.pkl gives a storage offset as a string (it used to load as NaN)',
    async () => {
      await expect(loadCheckpoint(await stringOffsetModel('string-offset'))).rejects.toThrow(
        STRING_OFFSET_ERROR,
      );
    },
  );

  if (!existsSync(SERVE_CLI))
    console.warn(`[skip] ${SERVE_CLI} is not built (pnpm --filter @mptjs/serve build)`);
  it.skipIf(!bin || !config || !existsSync(SERVE_CLI))(
    'mptjs-serve logits exits non-zero on it, naming the tensor and field, instead of writing NaN logits',
    async () => {
      const modelDir = await stringOffsetModel('string-offset-cli');
      const input = join(dir, 'ids.safetensors');
      await writeSafetensors(input, { input_ids: { shape: [1, 3], data: new BigInt64Array([1n, 2n, 3n]) } });
      const out = join(dir, 'logits.safetensors');
      const r = spawnSync(
        process.execPath,
        [SERVE_CLI, 'logits', modelDir, '--input', input, '--out', out, '--backend', 'cpu'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(STRING_OFFSET_ERROR);
      expect(existsSync(out)).toBe(false);
    },
  );
});

/** Raw DEFLATE data of `mib` MiB of zeros, built from one flushed 1 MiB block so it costs nothing to make. */
function zeroBomb(mib: number): Uint8Array {
  const block = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: constants.Z_SYNC_FLUSH });
  return Buffer.concat([...Array<Buffer>(mib).fill(block), deflateRawSync(Buffer.alloc(0))]);
}

/** Runs `f`, sampling the resident set every few milliseconds; returns the largest growth seen, in MiB. */
async function peakRssGrowth(f: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 2);
  try {
    await f().catch(() => {});
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return (peak - before) / 2 ** 20;
}

describe('zip inflation is capped at the declared size', () => {
  const pkl = stateDictPickle({
    w: { storage: ['FloatStorage', '0', 4], offset: 0, size: [4], stride: [1] },
  });
  const storage = { name: 'archive/data/0', data: new Uint8Array(16) };
  const bomb = zeroBomb(512);

  function archive(dataPkl: ZipInput['data']): string {
    const path = join(dir, `z${serial++}.bin`);
    writeFileSync(path, buildZip([{ name: 'archive/data.pkl', data: dataPkl }, storage]));
    return path;
  }

  it('reads a deflated data.pkl that inflates to its declared size', async () => {
    const path = archive({ deflated: deflateRawSync(pkl), size: pkl.length, crc: crc32(pkl) });
    expect((await readTorchStateDict(path)).get('w')!.shape).toEqual([4]);
  });

  it('stops a 0.5 MB data.pkl that inflates to 512 MiB at its declared size, in bounded memory', async () => {
    expect(bomb.length).toBeLessThan(600_000);
    const path = archive({ deflated: bomb, size: pkl.length, crc: 0 });
    await expect(readTorchStateDict(path)).rejects.toThrow(
      `zip entry "archive/data.pkl" inflates to more than its declared ${pkl.length} bytes`,
    );
    const growth = await peakRssGrowth(() => readTorchStateDict(path));
    expect(growth).toBeLessThan(64);
  });

  it('refuses a data.pkl that declares 512 MiB before inflating any of it', async () => {
    const path = archive({ deflated: bomb, size: 512 * 2 ** 20, crc: 0 });
    await expect(readTorchStateDict(path)).rejects.toThrow(
      'zip entry "archive/data.pkl" declares 536870912 bytes, more than the 67108864 allowed for it',
    );
    expect(await peakRssGrowth(() => readTorchStateDict(path))).toBeLessThan(64);
  });

  it('refuses a declared size that DEFLATE cannot reach from the compressed bytes', async () => {
    const path = archive({ deflated: deflateRawSync(pkl), size: 2 ** 31, crc: 0 });
    await expect(readTorchStateDict(path)).rejects.toThrow(
      /declares 2147483648 bytes, more than \d+ DEFLATE bytes can hold/,
    );
  });

  it('refuses an entry that inflates to fewer bytes than declared', async () => {
    const path = archive({ deflated: deflateRawSync(pkl), size: pkl.length + 10, crc: crc32(pkl) });
    await expect(readTorchStateDict(path)).rejects.toThrow(
      `inflated to ${pkl.length} bytes, its declared size is ${pkl.length + 10}`,
    );
  });

  it('refuses corrupt DEFLATE data and a CRC-32 that does not match', async () => {
    const junk = archive({ deflated: new Uint8Array([0xff, 0xff, 0xff, 0xff]), size: 10, crc: 0 });
    await expect(readTorchStateDict(junk)).rejects.toThrow('is not valid DEFLATE data');
    const crc = archive({ deflated: deflateRawSync(pkl), size: pkl.length, crc: (crc32(pkl) ^ 1) >>> 0 });
    await expect(readTorchStateDict(crc)).rejects.toThrow(/zip entry "archive\/data.pkl" is corrupt: CRC-32/);
  });
});

describe('config sizes are checked against the weights before allocation', () => {
  const bin = sharedFile(`${TINY_MOSAIC_DIR}/pytorch_model.bin`);
  const config = sharedFile(`${TINY_MOSAIC_DIR}/config.json`);

  function modelWith(patch: Record<string, unknown>): string {
    const modelDir = join(dir, `cfg${serial++}`);
    mkdirSync(modelDir);
    const json = { ...JSON.parse(readFileSync(config!, 'utf8')), ...patch };
    writeFileSync(join(modelDir, 'config.json'), JSON.stringify(json));
    copyFileSync(bin!, join(modelDir, 'pytorch_model.bin'));
    return modelDir;
  }

  async function timed(f: () => Promise<unknown>): Promise<{ ms: number; error: Error }> {
    const t0 = performance.now();
    const error = (await f().then(
      () => new Error('loaded'),
      (e: Error) => e,
    )) as Error;
    return { ms: performance.now() - t0, error };
  }

  it.skipIf(!bin || !config)('fails n_layers: 1000000 in milliseconds, naming the key', async () => {
    const { ms, error } = await timed(() => loadCheckpoint(modelWith({ n_layers: 1_000_000 })));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe('config key "n_layers" must be an integer in 1..1024, got 1000000');
    expect(ms).toBeLessThan(1000);
  });

  const mismatches: [Record<string, unknown>, string][] = [
    [{ n_layers: 1000 }, 'config key "n_layers" is 1000 but the weights hold 2 blocks'],
    [
      { vocab_size: 4_000_000 },
      'config key "vocab_size" is 4000000 but transformer.wte.weight has 50432 rows',
    ],
    [
      { d_model: 65_536, n_heads: 4 },
      'config key "d_model" is 65536 but transformer.wte.weight has 64 columns',
    ],
    [
      { mlp_ratio: 64 },
      'config key "mlp_ratio" is 64 but transformer.blocks.0 has an MLP of width 256, not 4096',
    ],
  ];
  for (const [patch, message] of mismatches) {
    it.skipIf(!bin || !config)(
      `names ${Object.keys(patch)[0]} when it disagrees with the weights`,
      async () => {
        const { ms, error } = await timed(() => loadCheckpoint(modelWith(patch)));
        expect(error).toBeInstanceOf(CheckpointError);
        expect(error.message).toContain(message);
        expect(ms).toBeLessThan(1000);
      },
    );
  }
});
