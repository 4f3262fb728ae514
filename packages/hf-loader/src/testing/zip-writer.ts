// Writes STORED zip archives (with CRC-32s) for tests, optionally with every size and offset moved into zip64 records (as torch
// writes archives over 4 GiB) and with local extra fields that pad data to 64 bytes (as torch does), so the reader's
// zip64 and alignment paths run without a 4 GiB file. An entry may be a hole of any size, written as a sparse
// region of the file, so archives whose entries sit past 4 GiB cost no disk.
import { open } from 'node:fs/promises';
import { crc32 } from '../crc32.js';

export interface ZipInput {
  name: string;
  /**
   * The entry's bytes, or a run of zero bytes of this length left as a hole in the file, or raw DEFLATE data
   * with the uncompressed size and CRC-32 to declare for it (which may be lies).
   */
  data: Uint8Array | { hole: number } | Deflated;
}

export interface Deflated {
  deflated: Uint8Array;
  size: number;
  crc: number;
}

interface Segment {
  offset: number;
  bytes: Buffer;
}

interface ZipOptions {
  zip64?: boolean;
  align?: number;
}

/** The archive in memory (no holes). */
export function buildZip(entries: ZipInput[], options: ZipOptions = {}): Buffer {
  const { segments, size } = layoutZip(entries, options);
  const out = Buffer.alloc(size);
  for (const s of segments) s.bytes.copy(out, s.offset);
  return out;
}

/** The archive written to `path` as a sparse file: holes are never written. */
export async function writeSparseZip(
  path: string,
  entries: ZipInput[],
  options: ZipOptions = {},
): Promise<number> {
  const { segments, size } = layoutZip(entries, options);
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    for (const s of segments) await handle.write(s.bytes, 0, s.bytes.length, s.offset);
  } finally {
    await handle.close();
  }
  return size;
}

function layoutZip(entries: ZipInput[], options: ZipOptions): { segments: Segment[]; size: number } {
  const zip64 = options.zip64 ?? false;
  const segments: Segment[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data: content } of entries) {
    const deflated = 'deflated' in content ? content : undefined;
    const data = {
      length:
        'hole' in content ? content.hole : 'deflated' in content ? content.deflated.length : content.length,
    };
    const size = deflated ? deflated.size : data.length;
    const nameBytes = Buffer.from(name);
    // Local zip64 extra: uncompressed then compressed size.
    let extra = zip64
      ? Buffer.concat([Buffer.from(u16(1, 16)), u64(size), u64(data.length)])
      : Buffer.alloc(0);
    if (options.align) {
      const start = offset + 30 + nameBytes.length + extra.length + 4;
      const pad = (options.align - (start % options.align)) % options.align;
      extra = Buffer.concat([extra, Buffer.from(u16(0x4246, pad)), Buffer.alloc(pad)]);
    }
    // Holes stand for gigabytes that are only ever read by range, where no CRC is checked.
    const crc = 'hole' in content ? 0 : 'deflated' in content ? content.crc : crc32(content);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(zip64 ? 45 : 20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt16LE(deflated ? 8 : 0, 8);
    local.writeUInt32LE(zip64 ? 0xffffffff : data.length, 18);
    local.writeUInt32LE(zip64 ? 0xffffffff : size, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    segments.push({ offset, bytes: Buffer.concat([local, nameBytes, extra]) });
    if (!('hole' in content)) {
      const bytes = Buffer.from(deflated ? deflated.deflated : (content as Uint8Array));
      segments.push({ offset: offset + 30 + nameBytes.length + extra.length, bytes });
    }
    const cExtra = zip64
      ? Buffer.concat([Buffer.from(u16(1, 24)), u64(size), u64(data.length), u64(offset)])
      : Buffer.alloc(0);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(zip64 ? 45 : 20, 6);
    c.writeUInt32LE(crc, 16);
    c.writeUInt16LE(deflated ? 8 : 0, 10);
    c.writeUInt32LE(zip64 ? 0xffffffff : data.length, 20);
    c.writeUInt32LE(zip64 ? 0xffffffff : size, 24);
    c.writeUInt16LE(nameBytes.length, 28);
    c.writeUInt16LE(cExtra.length, 30);
    c.writeUInt32LE(zip64 ? 0xffffffff : offset, 42);
    central.push(c, nameBytes, cExtra);
    offset += 30 + nameBytes.length + extra.length + data.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  const end = Buffer.concat([cd, ...tail, eocd]);
  segments.push({ offset, bytes: end });
  return { segments, size: offset + end.length };
}

function u16(a: number, b: number): number[] {
  return [a & 0xff, a >> 8, b & 0xff, b >> 8];
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
