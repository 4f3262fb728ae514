/**
 * A minimal zip reader for torch checkpoints: the central directory (with zip64 for files over 4 GiB), STORED
 * entries read by byte range straight from the file, DEFLATE entries inflated with node:zlib under a hard output
 * cap (the entry's declared size), so a small entry that inflates to gigabytes fails before it is buffered.
 * Whole-entry reads check the CRC-32 the directory declares.
 * Hand-written because torch archives need random access into multi-GB STORED entries, which the streaming
 * zip libraries on npm either do not offer or do by buffering whole entries.
 */
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { crc32 } from './crc32.js';
import { CheckpointError } from './errors.js';
import { readExactly } from './file-io.js';

const inflateRawAsync = promisify(inflateRaw);

// DEFLATE cannot expand data by more than about 1032:1, so a larger declared size is a lie about the entry.
const MAX_DEFLATE_RATIO = 1032;

export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** CRC-32 of the uncompressed bytes, as the central directory declares it. */
  crc: number;
}

export interface ReadOptions {
  /** Refuse the entry, before reading it, when it declares more than this many uncompressed bytes. */
  maxBytes?: number;
}

/** A 64-bit zip field as a number, refused when it cannot be an offset or size in a file. */
function safeSize(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(`${what} ${v} is out of range`);
  return Number(v);
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

export class ZipArchive {
  private dataOffsets = new Map<string, number>();

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly entries: Map<string, ZipEntry>,
  ) {}

  /** Opens a zip file and reads its central directory. The caller closes it. */
  static async open(handle: FileHandle, path: string): Promise<ZipArchive> {
    const size = (await handle.stat()).size;
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = new Uint8Array(tailLen);
    await readExactly(handle, tail, size - tailLen, () => path);
    const tv = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === EOCD_SIG) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw new CheckpointError(
        `${path}: no zip end-of-central-directory record (file truncated or not a zip archive)`,
      );
    }
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || tv.getUint32(loc, true) !== ZIP64_LOCATOR_SIG) {
        throw new CheckpointError(`${path}: zip64 archive without a zip64 end-of-central-directory locator`);
      }
      const z64Offset = safeSize(
        tv.getBigUint64(loc + 8, true),
        `${path}: zip64 end-of-central-directory offset`,
      );
      const z64 = new Uint8Array(56);
      await readExactly(handle, z64, z64Offset, () => path);
      const zv = new DataView(z64.buffer);
      if (zv.getUint32(0, true) !== ZIP64_EOCD_SIG)
        throw new CheckpointError(`${path}: bad zip64 end-of-central-directory`);
      count = safeSize(zv.getBigUint64(32, true), `${path}: zip64 entry count`);
      cdSize = safeSize(zv.getBigUint64(40, true), `${path}: zip64 central directory size`);
      cdOffset = safeSize(zv.getBigUint64(48, true), `${path}: zip64 central directory offset`);
    }
    if (cdOffset + cdSize > size) {
      throw new CheckpointError(
        `${path}: file truncated: the zip central directory ends at byte ${cdOffset + cdSize}, the file has ${size}`,
      );
    }
    const cd = new Uint8Array(cdSize);
    await readExactly(handle, cd, cdOffset, () => path);
    return new ZipArchive(handle, path, parseCentralDirectory(cd, count, path, size));
  }

  private async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry.name);
    if (known !== undefined) return known;
    const local = new Uint8Array(30);
    await readExactly(this.handle, local, entry.localHeaderOffset, () => `${this.path}: ${entry.name}`);
    const lv = new DataView(local.buffer);
    if (lv.getUint32(0, true) !== LOCAL_SIG) {
      throw new CheckpointError(`${this.path}: bad local header for zip entry "${entry.name}"`);
    }
    // The local extra field may differ from the central one (torch pads it to align data to 64 bytes).
    const offset = entry.localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    this.dataOffsets.set(entry.name, offset);
    return offset;
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(`${this.path}: zip entry "${name}" is missing`);
    return e;
  }

  /**
   * The whole (uncompressed) content of an entry, checked against its declared size and CRC-32. Inflation stops
   * as soon as the output would pass the declared size, so memory stays bounded by it.
   */
  async read(name: string, options: ReadOptions = {}): Promise<Uint8Array> {
    const e = this.entry(name);
    if (options.maxBytes !== undefined && e.size > options.maxBytes) {
      throw new CheckpointError(
        `${this.path}: zip entry "${name}" declares ${e.size} bytes, more than the ${options.maxBytes} allowed for it`,
      );
    }
    let out: Uint8Array;
    if (e.method === 0) {
      out = new Uint8Array(e.size);
      await this.readRange(name, 0, out);
    } else {
      const raw = new Uint8Array(e.compressedSize);
      await readExactly(this.handle, raw, await this.dataOffset(e), () => `${this.path}: ${name}`);
      out = await inflateCapped(raw, e.size, () => `${this.path}: zip entry "${name}"`);
    }
    const crc = crc32(out);
    if (crc !== e.crc) {
      throw new CheckpointError(
        `${this.path}: zip entry "${name}" is corrupt: CRC-32 ${hex(crc)}, the archive declares ${hex(e.crc)}`,
      );
    }
    return out;
  }

  /** Reads `dest.byteLength` bytes from `start` within a STORED entry, straight into `dest`. */
  async readRange(name: string, start: number, dest: Uint8Array): Promise<void> {
    const e = this.entry(name);
    if (e.method !== 0)
      throw new CheckpointError(`${this.path}: entry "${name}" is compressed; read it whole`);
    if (start + dest.byteLength > e.size) {
      throw new CheckpointError(
        `${this.path}: entry "${name}" has ${e.size} bytes, bytes ${start}..${start + dest.byteLength} were asked for`,
      );
    }
    await readExactly(this.handle, dest, (await this.dataOffset(e)) + start, () => `${this.path}: ${name}`);
  }
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Inflates raw DEFLATE data that must come to exactly `size` bytes, never buffering more than `size`. */
async function inflateCapped(raw: Uint8Array, size: number, what: () => string): Promise<Uint8Array> {
  let out: Buffer;
  try {
    // maxOutputLength makes zlib abort as soon as the output would pass it; size 0 still needs a valid cap.
    out = await inflateRawAsync(raw, { maxOutputLength: Math.max(size, 1) });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new CheckpointError(`${what()} inflates to more than its declared ${size} bytes`);
    }
    throw new CheckpointError(`${what()} is not valid DEFLATE data: ${(e as Error).message}`);
  }
  if (out.byteLength !== size) {
    throw new CheckpointError(`${what()} inflated to ${out.byteLength} bytes, its declared size is ${size}`);
  }
  // Small Buffers come from a shared pool at any offset; typed-array views of the result need 8-byte alignment.
  return out.byteOffset % 8 === 0
    ? new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
    : new Uint8Array(out);
}

function parseCentralDirectory(
  cd: Uint8Array,
  count: number,
  path: string,
  fileSize: number,
): Map<string, ZipEntry> {
  const v = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const decoder = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.byteLength || v.getUint32(p, true) !== CENTRAL_SIG) {
      throw new CheckpointError(`${path}: corrupt zip central directory at entry ${i}`);
    }
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let localHeaderOffset = v.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cd.byteLength) {
      throw new CheckpointError(`${path}: corrupt zip central directory at entry ${i} (runs past its end)`);
    }
    const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // Zip64 extra field (id 1): the 64-bit values, in this order, for each 32-bit field that is 0xffffffff.
    let x = p + 46 + nameLen;
    const extraEnd = x + extraLen;
    while (x + 4 <= extraEnd) {
      const id = v.getUint16(x, true);
      const len = v.getUint16(x + 2, true);
      if (id === 1) {
        const fieldEnd = Math.min(x + 4 + len, extraEnd);
        let q = x + 4;
        const next = (field: string): number => {
          if (q + 8 > fieldEnd) {
            throw new CheckpointError(
              `${path}: zip entry "${name}" has a zip64 extra field without its ${field}`,
            );
          }
          const value = safeSize(v.getBigUint64(q, true), `${path}: zip entry "${name}" ${field}`);
          q += 8;
          return value;
        };
        if (size === 0xffffffff) size = next('size');
        if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next('local header offset');
      }
      x += 4 + len;
    }
    if (method !== 0 && method !== 8) {
      throw new CheckpointError(
        `${path}: zip entry "${name}" uses compression method ${method} (only STORED and DEFLATE)`,
      );
    }
    if (method === 0 && compressedSize !== size) {
      throw new CheckpointError(
        `${path}: STORED zip entry "${name}" declares ${size} bytes but stores ${compressedSize}`,
      );
    }
    if (method === 8 && size > compressedSize * MAX_DEFLATE_RATIO + 64) {
      throw new CheckpointError(
        `${path}: zip entry "${name}" declares ${size} bytes, more than ${compressedSize} DEFLATE bytes can hold`,
      );
    }
    if (entries.has(name)) throw new CheckpointError(`${path}: zip entry "${name}" appears twice`);
    if (localHeaderOffset + compressedSize > fileSize) {
      throw new CheckpointError(
        `${path}: file truncated: zip entry "${name}" ends at byte ${localHeaderOffset + compressedSize}, the file has ${fileSize}`,
      );
    }
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset, crc });
    p = extraEnd + commentLen;
  }
  return entries;
}
