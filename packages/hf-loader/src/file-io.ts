/** Positional file reads straight into caller-owned buffers, so large tensors are never held twice. */
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from './errors.js';

// One read call is capped below 2 GiB by Node; large tensors are read in pieces.
const MAX_READ = 1 << 30;

/** Fills `dest` with bytes from `position`; a short read is a truncated file. */
export async function readExactly(
  handle: FileHandle,
  dest: Uint8Array,
  position: number,
  what: () => string,
): Promise<void> {
  let done = 0;
  while (done < dest.byteLength) {
    const length = Math.min(MAX_READ, dest.byteLength - done);
    const { bytesRead } = await handle.read(dest, done, length, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(
        `${what()}: file truncated, expected ${dest.byteLength} bytes at offset ${position}, found ${done}`,
      );
    }
    done += bytesRead;
  }
}

/** Writes all of `bytes` at the current position (a write call may write less than asked). */
export async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const length = Math.min(MAX_READ, bytes.byteLength - done);
    const { bytesWritten } = await handle.write(bytes, done, length);
    done += bytesWritten;
  }
}
