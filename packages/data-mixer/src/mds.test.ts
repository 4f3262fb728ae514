import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeMdsRecord, readMdsIndex, readMdsShard } from './mds.js';
import { MdsWriter } from './mds-writer.js';
import { openSource } from './source.js';
import { tempDir } from './testing/fixtures.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A shard built by hand from MosaicML streaming's layout, to hold the writer to it byte for byte. */
function handBuiltShard(samples: Int32Array[], config: string): Uint8Array {
  const enc = samples.map((ids) => {
    // sizes header (one variable column) + ndarray: (ndim 1 << 2 | uint8 shape code 0), shape, int32 values
    const b = new DataView(new ArrayBuffer(4 + 2 + ids.length * 4));
    b.setUint32(0, 2 + ids.length * 4, true);
    b.setUint8(4, (1 << 2) | 0);
    b.setUint8(5, ids.length);
    for (let i = 0; i < ids.length; i++) b.setInt32(6 + 4 * i, ids[i]!, true);
    return new Uint8Array(b.buffer);
  });
  const cfg = new TextEncoder().encode(config);
  const head = new DataView(new ArrayBuffer(4 + 4 * (samples.length + 1)));
  head.setUint32(0, samples.length, true);
  let off = head.byteLength + cfg.byteLength;
  for (let i = 0; i <= samples.length; i++) {
    head.setUint32(4 + 4 * i, off, true);
    off += enc[i]?.byteLength ?? 0;
  }
  return new Uint8Array(Buffer.concat([new Uint8Array(head.buffer), cfg, ...enc]));
}

describe('MDS', () => {
  it('writes the shard layout and index.json that MosaicML streaming writes', async () => {
    const dir = join(tmp.dir, 'layout');
    const samples = [Int32Array.of(5, 6, 7), Int32Array.of(0, 50276)];
    const writer = new MdsWriter(dir, { columns: { tokens: 'ndarray:int32' }, compression: null });
    for (const s of samples) await writer.write({ tokens: s });
    await writer.finish();
    const config =
      '{"column_encodings": ["ndarray:int32"], "column_names": ["tokens"], "column_sizes": [null], ' +
      '"compression": null, "format": "mds", "hashes": [], "size_limit": 67108864, "version": 2}';
    const expected = handBuiltShard(samples, config);
    expect(new Uint8Array(readFileSync(join(dir, 'shard.00000.mds')))).toEqual(expected);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(index).toEqual({
      version: 2,
      shards: [
        {
          ...JSON.parse(config),
          raw_data: { basename: 'shard.00000.mds', bytes: expected.byteLength, hashes: {} },
          samples: 2,
          zip_data: null,
        },
      ],
    });
  });

  it('round-trips token and text columns through zstd shards, split at the size limit', async () => {
    const dir = join(tmp.dir, 'roundtrip');
    const writer = new MdsWriter(dir, { columns: { tokens: 'ndarray:int32', text: 'str' }, sizeLimit: 4096 });
    const rows = Array.from({ length: 120 }, (_, i) => ({
      tokens: Int32Array.from({ length: 1 + (i % 300) }, (_, j) => (i * 7919 + j * 31) % 50277),
      text: `sample ${i} — ${'é'.repeat(i % 5)}`,
    }));
    for (const r of rows) await writer.write(r);
    const index = await writer.finish();
    expect(index.shards.length).toBeGreaterThan(3);
    for (const shard of index.shards) {
      expect(shard.zip_data?.basename).toBe(`${shard.raw_data.basename}.zstd`);
      // The reference zstd CLI decompresses our shard to the raw size recorded in the index.
      const raw = execFileSync('zstd', ['-d', '-c', join(dir, shard.zip_data!.basename)]);
      expect(raw.byteLength).toBe(shard.raw_data.bytes);
      expect(new Uint8Array(raw)).toEqual(await readMdsShard(dir, shard));
    }
    expect(index.shards.reduce((a, s) => a + s.samples, 0)).toBe(120);
    const source = await openSource(dir);
    const tokens: Int32Array[] = [];
    for (let u = 0; u < source.units.length; u++)
      tokens.push(...((await collect(source.read(u, 0))) as Int32Array[]));
    expect(tokens).toEqual(rows.map((r) => r.tokens));
    // The text column is decoded when it is the only document column.
    const shard = index.shards[0]!;
    const data = await readMdsShard(dir, shard);
    expect(decodeMdsRecord(data, shard, shard.column_names.indexOf('text'), 1, 'x')).toBe(rows[1]!.text);
  });

  it('reads legacy int64 `bytes` token columns and fixed-shape ndarrays', async () => {
    for (const [encoding, size, bytesOf] of [
      ['bytes', null, (ids: number[]) => new Uint8Array(BigInt64Array.from(ids.map(BigInt)).buffer)],
      ['ndarray:int32:3', 12, (ids: number[]) => new Uint8Array(Int32Array.from(ids).buffer)],
    ] as const) {
      const dir = join(tmp.dir, encoding.replace(/:/g, '_'));
      const ids = [3, 1, 4];
      const values = bytesOf(ids);
      const sample =
        size === null
          ? Buffer.concat([new Uint8Array(Uint32Array.of(values.byteLength).buffer), values])
          : values;
      const cfg = Buffer.from('{}');
      const head = new DataView(new ArrayBuffer(12));
      head.setUint32(0, 1, true);
      head.setUint32(4, 12 + cfg.byteLength, true);
      head.setUint32(8, 12 + cfg.byteLength + sample.byteLength, true);
      const shard = Buffer.concat([new Uint8Array(head.buffer), cfg, sample]);
      const { mkdirSync } = await import('node:fs');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'shard.00000.mds'), shard);
      const info = {
        column_encodings: [encoding],
        column_names: ['tokens'],
        column_sizes: [size],
        compression: null,
        format: 'mds',
        hashes: [],
        raw_data: { basename: 'shard.00000.mds', bytes: shard.byteLength, hashes: {} },
        samples: 1,
        size_limit: 67108864,
        version: 2,
        zip_data: null,
      };
      writeFileSync(join(dir, 'index.json'), JSON.stringify({ version: 2, shards: [info] }));
      const source = await openSource(dir);
      expect(await collect(source.read(0, 0))).toEqual([Int32Array.from(ids)]);
    }
  });

  it('rejects bad offsets, sample-count mismatches, truncated zstd and bad indexes precisely', async () => {
    const dir = join(tmp.dir, 'corrupt');
    const writer = new MdsWriter(dir, { columns: { tokens: 'ndarray:int32' }, compression: null });
    for (let i = 0; i < 3; i++) await writer.write({ tokens: Int32Array.of(i, i + 1) });
    const index = await writer.finish();
    const shard = index.shards[0]!;
    const path = join(dir, 'shard.00000.mds');
    const good = readFileSync(path);

    const badOffset = Buffer.from(good);
    badOffset.writeUInt32LE(good.byteLength + 100, 4 + 4 * 2);
    writeFileSync(path, badOffset);
    await expect(readMdsShard(dir, shard)).rejects.toThrow(
      `${path}: bad offset[2] = ${good.byteLength + 100} (must be >=`,
    );

    const badCount = Buffer.from(good);
    badCount.writeUInt32LE(4, 0);
    writeFileSync(path, badCount);
    await expect(readMdsShard(dir, shard)).rejects.toThrow(
      `${path}: shard holds 4 samples, index.json says 3`,
    );

    writeFileSync(path, good.subarray(0, good.byteLength - 3));
    await expect(readMdsShard(dir, shard)).rejects.toThrow(
      `${path}: bad offset[3] = ${good.byteLength} (must be >= ${good.byteLength - 14} and <= shard size ${good.byteLength - 3})`,
    );

    const zdir = join(tmp.dir, 'corrupt-zstd');
    const zw = new MdsWriter(zdir, { columns: { tokens: 'ndarray:int32' } });
    await zw.write({ tokens: Int32Array.from({ length: 500 }, (_, i) => i) });
    const zindex = await zw.finish();
    const zpath = join(zdir, 'shard.00000.mds.zstd');
    const zdata = readFileSync(zpath);
    writeFileSync(zpath, zdata.subarray(0, zdata.byteLength >> 1));
    await expect(readMdsShard(zdir, zindex.shards[0]!)).rejects.toThrow(
      `${zpath}: corrupt or truncated zstd data`,
    );

    const ndir = join(tmp.dir, 'negative');
    const nw = new MdsWriter(ndir, { columns: { tokens: 'ndarray:int32' }, compression: null });
    await nw.write({ tokens: Int32Array.of(5, -1) });
    await nw.finish();
    const negative = await openSource(ndir);
    await expect(collect(negative.read(0, 0))).rejects.toThrow(
      `${join(ndir, 'shard.00000.mds')}: sample 0: token id -1 out of range`,
    );

    writeFileSync(join(dir, 'index.json'), JSON.stringify({ version: 1, shards: [] }));
    await expect(readMdsIndex(dir)).rejects.toThrow(
      `${join(dir, 'index.json')}: unsupported MDS index version 1`,
    );
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({ version: 2, shards: [{ ...shard, format: 'json' }] }),
    );
    await expect(readMdsIndex(dir)).rejects.toThrow('shards[0]: format "json" is not "mds"');
  });

  it('records sha1 digests when asked and rejects a shard with a changed byte, naming file and digests', async () => {
    for (const compression of ['zstd', null]) {
      const dir = join(tmp.dir, `hashed-${compression}`);
      const writer = new MdsWriter(dir, {
        columns: { tokens: 'ndarray:int32' },
        compression,
        hashes: ['sha1'],
      });
      for (let i = 0; i < 20; i++)
        await writer.write({ tokens: Int32Array.from({ length: 50 }, (_, j) => i + j) });
      const index = await writer.finish();
      const shard = index.shards[0]!;
      const info = shard.zip_data ?? shard.raw_data;
      const path = join(dir, info.basename);
      const good = readFileSync(path);
      expect(shard.hashes).toEqual(['sha1']);
      expect(info.hashes).toEqual({ sha1: createHash('sha1').update(good).digest('hex') });
      expect(JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).shards[0].hashes).toEqual(['sha1']);
      expect(await collect((await openSource(dir)).read(0, 0))).toHaveLength(20);

      const bad = Buffer.from(good);
      bad[bad.byteLength - 5]! ^= 0x01;
      writeFileSync(path, bad);
      const actual = createHash('sha1').update(bad).digest('hex');
      await expect(collect((await openSource(dir)).read(0, 0))).rejects.toThrow(
        `${path}: sha1 digest ${actual} does not match index.json's ${info.hashes['sha1']} (corrupted shard)`,
      );
      writeFileSync(path, good);
    }
  });

  it('verifies the hash algorithms node:crypto has and skips the others (xxh64)', async () => {
    const dir = join(tmp.dir, 'hash-names');
    const writer = new MdsWriter(dir, { columns: { tokens: 'ndarray:int32' }, compression: null });
    await writer.write({ tokens: Int32Array.of(1, 2, 3) });
    const shard = (await writer.finish()).shards[0]!;
    const data = readFileSync(join(dir, shard.raw_data.basename));
    const md5 = createHash('md5').update(data).digest('hex');
    const sha3 = createHash('sha3-256').update(data).digest('hex');
    const hashed = (hashes: string[], digests: Record<string, string>) => ({
      ...shard,
      hashes,
      raw_data: { ...shard.raw_data, hashes: digests },
    });
    await readMdsShard(
      dir,
      hashed(['md5', 'sha3_256', 'xxh64'], { md5, sha3_256: sha3, xxh64: 'not checked' }),
    );
    await expect(readMdsShard(dir, hashed(['md5'], { md5: '0'.repeat(32) }))).rejects.toThrow(
      `md5 digest ${md5} does not match index.json's ${'0'.repeat(32)}`,
    );
    await expect(readMdsShard(dir, hashed(['sha256'], {}))).rejects.toThrow(
      'index.json lists hash sha256 but gives no sha256 digest for this file',
    );
    expect(() => new MdsWriter(dir, { columns: { tokens: 'ndarray:int32' }, hashes: ['xxh64'] })).toThrow(
      'MDS writer: hash xxh64 is not available (node:crypto)',
    );
  });
});
