import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** fsync a directory so a rename inside it survives a power loss, not only a process crash. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync every file directly inside `dir`. */
export async function fsyncFiles(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const handle = await open(join(dir, entry.name), 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** Writes a small file by temp name + fsync + rename: readers see the old content or the new, never a torn one. */
export async function writeFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  fsyncDir(dirname(path));
}

/** The temporary directory `writeDirAtomic` fills for `finalPath` (other ranks write their files into it too). */
export function tempDirFor(finalPath: string): string {
  return join(dirname(finalPath), `.tmp-${basename(finalPath)}`);
}

/**
 * Builds a directory under a temporary name, fsyncs its files, then renames it to `finalPath` in one step. A crash
 * before the rename leaves only a `.tmp-*` directory, which `removeStaleTemps` deletes on the next start.
 */
export async function writeDirAtomic(finalPath: string, fill: (dir: string) => Promise<void>): Promise<void> {
  const parent = dirname(finalPath);
  await mkdir(parent, { recursive: true });
  const tmp = tempDirFor(finalPath);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    await fill(tmp);
    await fsyncFiles(tmp);
    fsyncDir(tmp);
    await rm(finalPath, { recursive: true, force: true });
    await rename(tmp, finalPath);
    fsyncDir(parent);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Deletes directories a crashed writer left behind. */
export async function removeStaleTemps(parent: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return [];
  }
  const stale = entries.filter((e) => e.startsWith('.tmp-') || (e.startsWith('.') && e.endsWith('.tmp')));
  for (const e of stale) await rm(join(parent, e), { recursive: true, force: true });
  return stale;
}
